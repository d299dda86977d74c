"""Self-attention weights, and their gradients, read from `nn.MultiheadAttention` modules in a `with` block.

A forward pre-hook asks each attention module for its weights per head (`need_weights=True,
average_attn_weights=False`); a forward hook records them and, where gradients are wanted, the module's
output and the values it mixed. The gradient of a score S with respect to head h's weights A_h follows
from the output's: with O_h = A_h V_h and Y = [O_1 .. O_H] W_out^T + b, dS/dA_h = (dS/dY W_out)_h V_h^T.
The forward itself is not changed, and outside the block the modules run as served (fast path included).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.hooks import RemovableHandle

from explainers.errors import InvalidParams


@dataclass
class AttentionRecord:
    """One call of an attention module: weights [B, H, N, S]; with gradients, its output [B, N, E] (a node of
    the graph) and the values [B, H, S, d] its weights mixed."""

    module: nn.MultiheadAttention
    weights: torch.Tensor
    output: torch.Tensor | None = None
    values: torch.Tensor | None = None

    def weight_gradients(self, grad_output: torch.Tensor) -> torch.Tensor:
        """d score / d weights [B, H, N, S] from d score / d output [B, N, E]."""
        assert self.values is not None, "record the attention with gradients=True"
        m = self.module
        g = grad_output @ m.out_proj.weight  # d score / d [O_1 .. O_H], [B, N, E]
        b, n, e = g.shape
        heads = m.num_heads
        return g.view(b, n, heads, e // heads).transpose(1, 2) @ self.values.transpose(-1, -2)


def _batch_first(module: nn.MultiheadAttention, t: torch.Tensor) -> torch.Tensor:
    return t if module.batch_first else t.transpose(0, 1)


def _values(module: nn.MultiheadAttention, value: torch.Tensor) -> torch.Tensor:
    """The module's value projection of its `value` input, per head [B, H, S, d]."""
    e = module.embed_dim
    weight = module.in_proj_weight[2 * e:] if module._qkv_same_embed_dim else module.v_proj_weight
    bias = None if module.in_proj_bias is None else module.in_proj_bias[2 * e:]
    v = F.linear(_batch_first(module, value), weight, bias)
    b, s, _ = v.shape
    return v.view(b, s, module.num_heads, e // module.num_heads).transpose(1, 2)


def _folded_inputs(module: nn.Module, args: tuple[Any, ...],
                   kwargs: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]] | None:
    """A batch-first module's query, key and value [B, N, E] (B > 1, differentiated) laid out as [N, B, E] in
    memory, the same values: the module's own transpose then gives contiguous rows and its input
    projection one matrix product. With frozen weights PyTorch otherwise multiplies a transposed input
    batch by batch, several times slower (ViT-B/16, batch 4: 1.5x the time of the whole forward and backward)."""
    assert isinstance(module, nn.MultiheadAttention)
    names = ("query", "key", "value")
    first = args[0] if args else kwargs.get("query")
    if not (module.batch_first and torch.is_grad_enabled() and isinstance(first, torch.Tensor)
            and first.dim() == 3 and first.shape[0] > 1 and first.requires_grad):
        return None
    relaid: dict[int, torch.Tensor] = {}  # one copy per distinct tensor: self-attention's q is k is v stays so

    def relay(t: Any) -> Any:
        if not isinstance(t, torch.Tensor) or t.dim() != 3 or t.transpose(0, 1).is_contiguous():
            return t
        if id(t) not in relaid:
            relaid[id(t)] = t.transpose(0, 1).contiguous().transpose(0, 1)
        return relaid[id(t)]

    new_args = tuple(relay(a) if i < 3 else a for i, a in enumerate(args))
    new_kwargs = {k: relay(v) if k in names else v for k, v in kwargs.items()}
    return new_args, new_kwargs


@contextmanager
def folded_attention_inputs(modules: Sequence[nn.MultiheadAttention]) -> Iterator[None]:
    """Within the block, the modules' differentiated batches take the fast layout (`_folded_inputs`); inference
    (no gradients) and single inputs run as served."""
    handles = [m.register_forward_pre_hook(_folded_inputs, with_kwargs=True) for m in modules]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


@contextmanager
def recorded_attention(modules: Sequence[nn.MultiheadAttention], *,
                       gradients: bool = False) -> Iterator[list[AttentionRecord]]:
    """Within the block, each call of the modules appends an `AttentionRecord` to the yielded list."""
    records: list[AttentionRecord] = []

    def ask_for_weights(_m: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        if len(args) > 4:
            raise InvalidParams("an attention module called with need_weights by position cannot be read")
        return args, {**kwargs, "need_weights": True, "average_attn_weights": False}

    def record(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> None:
        assert isinstance(module, nn.MultiheadAttention)
        out, weights = output
        if weights is None or weights.dim() != 4:
            raise InvalidParams("an attention module returned no per-head weights for a batched input")
        entry = AttentionRecord(module, weights)
        if gradients:
            value = args[2] if len(args) > 2 else kwargs["value"]
            entry.output, entry.values = _batch_first(module, out), _values(module, value).detach()
        records.append(entry)

    handles: list[RemovableHandle] = []
    try:
        for m in modules:
            handles.append(m.register_forward_pre_hook(ask_for_weights, with_kwargs=True))
            handles.append(m.register_forward_hook(record, with_kwargs=True))
        yield records
    finally:
        for h in handles:
            h.remove()


def attention_modules(module: nn.Module, names: Sequence[str] | None = None) -> list[nn.MultiheadAttention]:
    """The self-attention modules by name (in the order given), else every `nn.MultiheadAttention` of `module`
    in registration order; an `invalid_params` error if there is none or a name is not one."""
    found = dict(module.named_modules())
    if names is None:
        chosen = [m for m in found.values() if isinstance(m, nn.MultiheadAttention)]
    else:
        bad = [n for n in names if not isinstance(found.get(n), nn.MultiheadAttention)]
        if bad:
            raise InvalidParams(f"not nn.MultiheadAttention modules of the model: {bad[:5]}")
        chosen = [found[n] for n in names]  # type: ignore[misc]
    if not chosen:
        raise InvalidParams("the model has no nn.MultiheadAttention module")
    return chosen
