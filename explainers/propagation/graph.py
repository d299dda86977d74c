"""Canonization: the served module traced with `torch.fx` into an explainable equivalent.

The copy shares every layer with the served module except those it rewrites, so the served model
is never modified:

- a BatchNorm right after a convolution or linear layer is folded into a fused copy of that layer;
- functions of computed tensors become modules the rules can hook: `F.relu` an activation, a
  residual `out += identity` a `Sum`, `x.mean(1)` an average, `x.amax(2)` a max, `(x - mean) / std`
  affine steps;
- for a text model, the token embedding's output becomes a graph input, so relevance stops there.

Anything else a computed tensor passes through (an LSTM, attention, a product of two computed
tensors) is refused with the layer's name and type: the engine never silently takes a plain
gradient where a rule belongs.
"""

from __future__ import annotations

import builtins
import copy
import itertools
import operator
import threading
import weakref
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn
from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval

from explainers.propagation.errors import UnsupportedModel
from explainers.propagation.nodes import WEIGHTED, Call, Kind, Sum, kind_of, slot

_RELU = {F.relu, torch.relu, torch.relu_, F.relu_, "relu", "relu_"}
_ACTIVATIONS = {F.gelu, F.silu, F.leaky_relu, F.elu, F.softplus, F.hardtanh, F.relu6, F.mish, torch.sigmoid,
                torch.tanh, F.sigmoid, F.tanh, "sigmoid", "tanh", "sigmoid_", "tanh_"}
_ADD = {operator.add, operator.iadd, torch.add, "add", "add_", "__add__", "__iadd__"}
_AFFINE = {operator.sub, operator.isub, operator.mul, operator.imul, operator.truediv, operator.itruediv,
           torch.sub, torch.mul, torch.div, "sub", "mul", "div", "sub_", "mul_", "div_", "__sub__", "__mul__",
           "__truediv__"} | _ADD
_AVERAGE = {torch.mean, torch.sum, F.adaptive_avg_pool1d, F.adaptive_avg_pool2d, F.adaptive_avg_pool3d,
            F.avg_pool1d, F.avg_pool2d, F.avg_pool3d, "mean", "sum"}
_MAX = {torch.amax, F.adaptive_max_pool1d, F.adaptive_max_pool2d, F.adaptive_max_pool3d, F.max_pool1d,
        F.max_pool2d, F.max_pool3d, "amax"}
_SHAPE = {torch.flatten, torch.reshape, torch.transpose, torch.permute, torch.squeeze, torch.unsqueeze, torch.cat,
          torch.concat, torch.stack, torch.chunk, torch.split, F.dropout, F.pad, operator.getitem, torch.clone,
          "flatten", "view", "reshape", "transpose", "permute", "contiguous", "squeeze", "unsqueeze", "expand",
          "expand_as", "view_as", "chunk", "split", "clone", "to", "float", "type_as", "__getitem__", "narrow"}
_META = {builtins.getattr, "size", "dim", "numel"}  # results that are not tensors: never data


@dataclass(frozen=True)
class Step:
    """One call of a module in the canonized graph, on the path of the explained input."""

    node: str  # fx node name, unique per call (a module called twice is two steps)
    target: str  # module name in the graph module (the served model's name where it is shared)
    module: nn.Module
    kind: Kind
    nonneg_input: bool = False  # its input is never negative by construction (a ReLU's output, pooled)


class Canonized:
    """The explainable equivalent of a served module, built once per module (`canonize`)."""

    def __init__(self, graph: fx.GraphModule, steps: list[Step], *, text: bool, folded: int, calls: int) -> None:
        self.graph, self.steps, self.text = graph, steps, text
        self.folded, self.calls = folded, calls
        weighted = [s for s in steps if s.kind in WEIGHTED]
        self.first: Step | None = weighted[0] if weighted else None
        self.last: Step | None = _last_weighted(graph, steps)

    def forward(self, x: torch.Tensor, native: torch.Tensor | None = None) -> torch.Tensor:
        """Outputs [B, K] for points x [B, ...] of the attribution space (token embeddings for text)."""
        if self.text:
            assert native is not None, "a text model's graph takes the token ids too"
            return self.graph(native.expand(x.shape[0], *native.shape[1:]), x)
        return self.graph(x)

    def summary(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for s in self.steps:
            counts[s.kind.value] = counts.get(s.kind.value, 0) + 1
        return {"layers": counts.get("conv", 0) + counts.get("linear", 0), "batchnorms_folded": self.folded,
                "functions_made_modules": self.calls, "sums": counts.get("sum", 0)}


_CACHE: weakref.WeakKeyDictionary[nn.Module, dict[str | None, tuple[int, Canonized]]] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def _fingerprint(module: nn.Module) -> int:
    """Changes whenever a parameter or buffer is replaced or written in place (a sanity check's randomisation)."""
    return hash(tuple((id(t), t._version) for t in itertools.chain(module.parameters(), module.buffers())))


def canonize(module: nn.Module, embedding: str | None = None) -> Canonized:
    """The canonized graph of `module`, built once per state of its weights (the served ones are frozen;
    fused layers are copies, so new weights need a new graph).

    `embedding`: module name of a text model's token embedding, whose output is the attribution input.
    """
    with _LOCK:
        per_module = _CACHE.setdefault(module, {})
        fingerprint = _fingerprint(module)
        if embedding not in per_module or per_module[embedding][0] != fingerprint:
            with torch.inference_mode(False), torch.no_grad():  # fused weights must be usable by autograd
                per_module[embedding] = (fingerprint, _build(module, embedding))
        return per_module[embedding][1]


def _build(module: nn.Module, embedding: str | None) -> Canonized:
    try:
        gm = fx.symbolic_trace(module)
    except Exception as exc:  # data-dependent control flow and the like
        raise UnsupportedModel(f"the propagation engine cannot trace this model with torch.fx: "
                               f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}") from None
    graph = gm.graph
    source = _input_node(gm, embedding)
    data = _data_nodes(graph, source)
    calls = 0
    for node in list(graph.nodes):
        if node not in data or node.op not in ("call_function", "call_method"):
            continue
        replacement = _as_module(node, data)
        if replacement is None:
            continue
        calls += 1
        name = f"canonized_{node.name}"
        gm.add_submodule(name, replacement)
        tensors = [a for a in node.args if isinstance(a, fx.Node)]
        if isinstance(replacement, Call):  # the computed tensor first, then the graph constants in order
            tensors.sort(key=lambda a: a not in data)
        with graph.inserting_before(node):
            new = graph.call_module(name, args=tuple(tensors))
        node.replace_all_uses_with(new)
        graph.erase_node(node)
        data.add(new)
    _out_of_place(gm, data)
    folded = _fold_batchnorms(gm, data)
    graph.lint()
    gm.recompile()
    steps = []
    nonneg = _nonneg_nodes(gm, data)
    for node in graph.nodes:
        if node.op == "call_module" and node in data:
            sub = gm.get_submodule(str(node.target))
            kind = kind_of(sub)
            if kind is None:
                raise UnsupportedModel(f"layer {node.target!r} ({type(sub).__name__}) is not supported by the "
                                       "propagation engine", details={"layer": node.target,
                                                                      "type": type(sub).__name__})
            first = node.args[0] if node.args else None
            steps.append(Step(node.name, str(node.target), sub, kind, nonneg_input=first in nonneg))
    return Canonized(gm, steps, text=embedding is not None, folded=folded, calls=calls)


_NONNEG_OUTPUT = (nn.ReLU, nn.ReLU6, nn.Sigmoid, nn.Softplus)
_KEEPS_SIGN = (Kind.MAX, Kind.AVERAGE, Kind.SHAPE, Kind.SUM)


def _nonneg_nodes(gm: fx.GraphModule, data: set[fx.Node]) -> set[fx.Node]:
    """Nodes whose values are never negative: ReLU outputs, and their poolings, sums and reshapes."""
    out: set[fx.Node] = set()
    for node in gm.graph.nodes:
        if node not in data or node.op not in ("call_module", "call_function", "call_method"):
            continue
        tensors = [a for a in node.all_input_nodes if a in data]
        if node.op == "call_module":
            module = gm.get_submodule(str(node.target))
            if isinstance(module, _NONNEG_OUTPUT) or (kind_of(module) in _KEEPS_SIGN and tensors
                                                      and all(a in out for a in tensors)):
                out.add(node)
        elif node.target in _SHAPE and tensors and all(a in out for a in tensors):
            out.add(node)
    return out


def _input_node(gm: fx.GraphModule, embedding: str | None) -> fx.Node:
    graph = gm.graph
    placeholders = [n for n in graph.nodes if n.op == "placeholder"]
    if embedding is None:
        if len(placeholders) != 1:
            raise UnsupportedModel(f"the model takes {len(placeholders)} inputs; the engine explains one")
        return placeholders[0]
    uses = [n for n in graph.nodes if n.op == "call_module" and n.target == embedding]
    if len(uses) != 1:
        raise UnsupportedModel(f"the embedding layer {embedding!r} is called {len(uses)} times in the forward pass")
    with graph.inserting_after(placeholders[-1]):
        embedded = graph.placeholder("embedded")
    uses[0].replace_all_uses_with(embedded)
    graph.erase_node(uses[0])
    return embedded


def _data_nodes(graph: fx.Graph, source: fx.Node) -> set[fx.Node]:
    """Nodes computed from the attribution input (shape queries such as `x.size()` are not data)."""
    data = {source}
    for node in graph.nodes:
        if node is source or node.target in _META:
            continue
        if any(isinstance(a, fx.Node) and a in data for a in node.all_input_nodes):
            data.add(node)
    return data


def _as_module(node: fx.Node, data: set[fx.Node]) -> nn.Module | None:
    """The module that takes the place of a function node, None for a shape operation."""
    target = node.target
    if isinstance(target, str) and target.endswith("_") and not target.startswith("__"):
        target = target[:-1]  # x.mul_(c) computes x.mul(c): the canonized graph writes nothing in place
    fn: Any = getattr(torch.Tensor, target) if isinstance(target, str) else target
    tensors = [a for a in node.args if isinstance(a, fx.Node)]
    computed = [a for a in tensors if a in data]
    if any(isinstance(v, fx.Node) for v in node.kwargs.values()):
        raise _refuse(node, "takes a computed keyword argument")
    if target in _SHAPE:
        return None
    if target in _ADD and len(computed) >= 2:
        if len(computed) != len(node.args):
            raise _refuse(node, "adds computed tensors and constants in one call")
        return Sum()
    if len(computed) != 1:
        raise _refuse(node, "combines several computed tensors (a product, attention)")
    if target in _RELU:
        return nn.ReLU()
    kind = (Kind.ACTIVATION if target in _ACTIVATIONS else Kind.AFFINE if target in _AFFINE
            else Kind.AVERAGE if target in _AVERAGE else Kind.MAX if target in _MAX else None)
    if kind is None:
        raise _refuse(node, "is not supported by the propagation engine")
    position = node.args.index(computed[0])
    args = tuple(slot() if isinstance(a, fx.Node) else a for i, a in enumerate(node.args) if i != position)
    kwargs = {k: v for k, v in node.kwargs.items() if k != "inplace"}
    return Call(fn, kind, args, kwargs, position=position, label=str(getattr(target, "__name__", target)))


def _out_of_place(gm: fx.GraphModule, data: set[fx.Node]) -> None:
    """In-place activation modules get out-of-place copies in the graph (the served module keeps its own):
    an in-place write would clobber the tensors the rules read in the backward pass."""
    copies: dict[str, str] = {}
    for node in gm.graph.nodes:
        if node.op != "call_module" or node not in data:
            continue
        module = gm.get_submodule(str(node.target))
        if not getattr(module, "inplace", False):
            continue
        if node.target not in copies:
            clone = copy.copy(module)
            setattr(clone, "inplace", False)  # noqa: B010  (not declared on nn.Module)
            copies[str(node.target)] = f"canonized_{str(node.target).replace('.', '_')}"
            gm.add_submodule(copies[str(node.target)], clone)
        node.target = copies[str(node.target)]


def _refuse(node: fx.Node, why: str) -> UnsupportedModel:
    name = getattr(node.target, "__name__", str(node.target))
    return UnsupportedModel(f"operation {node.name!r} ({name}) {why}",
                            details={"layer": node.name, "type": name})


def _fold_batchnorms(gm: fx.GraphModule, data: set[fx.Node]) -> int:
    """Fold each BatchNorm that follows a conv / linear layer (its only user) into a fused copy of it."""
    graph = gm.graph
    calls: dict[str, int] = {}
    for node in graph.nodes:
        if node.op == "call_module":
            calls[str(node.target)] = calls.get(str(node.target), 0) + 1
    folded = 0
    for node in list(graph.nodes):
        if node.op != "call_module" or node not in data:
            continue
        bn = gm.get_submodule(str(node.target))
        if kind_of(bn) is not Kind.BATCHNORM or not isinstance(node.args[0], fx.Node):
            continue
        if bn.running_mean is None or bn.running_var is None:
            raise UnsupportedModel(f"layer {node.target!r} normalises with batch statistics (no running stats)",
                                   details={"layer": node.target, "type": type(bn).__name__})
        prev = node.args[0]
        if prev.op != "call_module" or len(prev.users) != 1 or calls[str(prev.target)] != 1 \
                or calls[str(node.target)] != 1:
            continue
        layer = gm.get_submodule(str(prev.target))
        if isinstance(layer, nn.Linear) and isinstance(bn, nn.BatchNorm1d):
            fused: nn.Module = fuse_linear_bn_eval(layer, bn)
        elif isinstance(layer, (nn.Conv1d, nn.Conv2d, nn.Conv3d)) and isinstance(bn, nn.modules.batchnorm._BatchNorm):
            fused = fuse_conv_bn_eval(layer, bn)
        else:
            continue
        fused.requires_grad_(False)
        gm.add_submodule(str(prev.target), fused)  # the graph module's own container: the served model keeps its layer
        node.replace_all_uses_with(prev)
        graph.erase_node(node)
        folded += 1
    return folded


def _last_weighted(graph: fx.GraphModule, steps: list[Step]) -> Step | None:
    """The weighted layer whose output reaches the model's output through no other weighted layer."""
    by_node = {s.node: s for s in steps}
    output = next(n for n in graph.graph.nodes if n.op == "output")
    found: list[Step] = []
    seen: set[fx.Node] = set()
    todo = list(output.all_input_nodes)
    while todo:
        node = todo.pop()
        if node in seen:
            continue
        seen.add(node)
        step = by_node.get(node.name)
        if step is not None and step.kind in WEIGHTED:
            found.append(step)
            continue
        todo.extend(node.all_input_nodes)
    return found[0] if len(found) == 1 else None
