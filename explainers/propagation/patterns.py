"""PatternNet and PatternAttribution's patterns (Kindermans et al. 2018): signal directions per layer.

For each weighted layer with output y = w^T x (bias left out), a pattern a estimates the direction of
the signal in x that y responds to, from statistics over a sample set:

- linear estimator: a = cov[x, y] / (w^T cov[x, y]);
- two-component estimator: one pattern per regime of the layer's output, from the samples where its
  pre-activation z is positive (a+) and where it is not (a-):
  a+ = (E+[x y] - E+[x] E[y]) / (w^T (E+[x y] - E+[x] E[y])), and likewise a- over z <= 0.

A convolution's patterns have its weights' shape: each output channel pools its statistics over every
position of every sample. The sums over patches are weight gradients (`layer_ops.weight_statistic`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from explainers.propagation import layer_ops as ops
from explainers.propagation.graph import Canonized
from explainers.propagation.nodes import WEIGHTED
from explainers.propagation.rules import LayerRule

Estimator = Literal["linear", "two_component"]
KINDS = ("linear", "positive", "negative")


@dataclass
class _Sums:
    """Running sums of one layer (float32: a VGG-16's dense layers hold 100 M weights; each batch's sum is
    one matrix product, so the rounding stays far below the sampling error of the statistics)."""

    xy: list[torch.Tensor]  # sum of x y over z > 0, over z <= 0 (weight-shaped)
    x: list[torch.Tensor]  # sum of x over the same positions (weight-shaped)
    n: list[torch.Tensor]  # positions per output channel in each regime [out]
    y: torch.Tensor  # sum of y over all positions [out]


@dataclass
class Patterns:
    """Patterns by layer (graph target) and kind (linear, positive, negative), with where they came from."""

    layers: dict[str, dict[str, torch.Tensor]]
    n_samples: int
    meta: dict[str, str] = field(default_factory=dict)
    _rules: dict[tuple[str, str, bool, bool], PatternRule] = field(default_factory=dict, repr=False)

    def rule(self, target: str, estimator: Estimator, *, attribution: bool, project: bool) -> PatternRule:
        """The layer's pattern rule (kept: it holds the patterns in the layer's dtype and memory format)."""
        key = (target, estimator, attribution, project)
        if key not in self._rules:
            own = self.layers[target]
            kinds = ("linear",) if estimator == "linear" else ("positive", "negative")
            self._rules[key] = PatternRule(*(own[k] for k in kinds), attribution=attribution, project=project)
        return self._rules[key]


class PatternRule(LayerRule):
    """The layer's backward pass with its weights replaced by patterns (PatternNet) or by patterns times
    weights (PatternAttribution); two patterns split the incoming signal by the sign of the output z."""

    name = "pattern"

    def __init__(self, first: torch.Tensor, second: torch.Tensor | None = None, *, attribution: bool,
                 project: bool) -> None:
        self.patterns = (first, second) if second is not None else (first,)
        self.attribution, self.project = attribution, project
        self._mats: list[torch.Tensor] | None = None

    def relevance(self, layer: ops.Weighted, x: torch.Tensor, z: torch.Tensor, r: torch.Tensor,
                  nonneg: bool) -> torch.Tensor:
        if self._mats is None:  # in the layer's dtype, device and memory format, once
            self._mats = [(p.to(layer.weight) * layer.weight if self.attribution else p.to(layer.weight))
                          .contiguous(memory_format=_weight_format(layer.weight)) for p in self.patterns]
        mats = self._mats
        if len(mats) == 1:
            out = ops.transpose(layer, x, mats[0], r)
        else:
            pos = (z > 0).to(r.dtype)
            out = ops.transpose(layer, x, mats[0], r * pos) + ops.transpose(layer, x, mats[1], r * (1 - pos))
        if self.project:  # only the direction of the back-projected signal is meaningful: keep it in range
            peak = out.abs().amax()
            out = out / peak if float(peak) > 0 else out
        return out


def _weight_format(w: torch.Tensor) -> torch.memory_format:
    if w.dim() == 4 and w.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format


class PatternStatistics:
    """Accumulates the statistics of every weighted layer of a canonized graph over batches."""

    def __init__(self, canon: Canonized) -> None:
        self.canon = canon
        self.layers: dict[str, ops.Weighted] = {}
        for step in canon.steps:
            if step.kind in WEIGHTED:
                assert isinstance(step.module, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d))
                self.layers.setdefault(step.target, step.module)
        self.sums: dict[str, _Sums] = {}
        self.n_samples = 0

    @contextmanager
    def _recording(self) -> Iterator[None]:
        handles = [m.register_forward_hook(self._hook(t)) for t, m in self.layers.items()]
        try:
            yield
        finally:
            for h in handles:
                h.remove()

    def _hook(self, target: str) -> Callable[[nn.Module, tuple[torch.Tensor, ...], torch.Tensor], None]:
        def hook(module: nn.Module, args: tuple[torch.Tensor, ...], z: torch.Tensor) -> None:
            self._add(target, self.layers[target], args[0], z)
        return hook

    def _add(self, target: str, layer: ops.Weighted, x: torch.Tensor, z: torch.Tensor) -> None:
        channel = -1 if isinstance(layer, nn.Linear) else 1
        y = z if layer.bias is None else z - (layer.bias if channel == -1 else
                                              layer.bias.view(1, -1, *([1] * (z.dim() - 2))))
        pos = (z > 0).to(z.dtype)
        others = [d for d in range(z.dim()) if d != (channel % z.dim())]
        stats = [(ops.weight_statistic(layer, x, y * m).float(), ops.weight_statistic(layer, x, m).float(),
                  m.sum(others).double()) for m in (pos, 1 - pos)]
        total = y.sum(others).double()
        if target not in self.sums:
            self.sums[target] = _Sums([s[0] for s in stats], [s[1] for s in stats], [s[2] for s in stats], total)
            return
        acc = self.sums[target]
        for i, (xy, xs, n) in enumerate(stats):
            acc.xy[i] += xy
            acc.x[i] += xs
            acc.n[i] += n
        acc.y += total

    def add(self, batches: Iterable[tuple[torch.Tensor, torch.Tensor | None]],
            progress: Callable[[int], None] | None = None) -> None:
        """Run the graph on batches of (attribution-space inputs [B, ...], native inputs) and accumulate."""
        with torch.no_grad(), self._recording():
            for x, native in batches:
                self.canon.forward(x, native)
                self.n_samples += x.shape[0]
                if progress is not None:
                    progress(self.n_samples)

    def patterns(self, meta: dict[str, str] | None = None) -> Patterns:
        out: dict[str, dict[str, torch.Tensor]] = {}
        for target, layer in self.layers.items():
            if target not in self.sums:
                continue  # not reached by the samples' forward pass (it cannot happen in a plain feed-forward net)
            acc, w = self.sums[target], layer.weight.detach().double()
            n_all = acc.n[0] + acc.n[1]
            mean_y = acc.y / n_all.clamp(min=1)
            xy, xs = [t.double() for t in acc.xy], [t.double() for t in acc.x]
            out[target] = {"linear": _pattern(w, xy[0] + xy[1], xs[0] + xs[1], n_all, mean_y),
                           "positive": _pattern(w, xy[0], xs[0], acc.n[0], mean_y),
                           "negative": _pattern(w, xy[1], xs[1], acc.n[1], mean_y)}
        return Patterns(out, self.n_samples, dict(meta or {}))


def _pattern(w: torch.Tensor, xy: torch.Tensor, xs: torch.Tensor, n: torch.Tensor,
             mean_y: torch.Tensor) -> torch.Tensor:
    """(E[x y] - E[x] E[y]) / (w^T (E[x y] - E[x] E[y])) per output channel, over the positions counted in n."""
    per_out = (-1, *([1] * (w.dim() - 1)))
    count = n.clamp(min=1).view(per_out)
    cov = xy / count - xs / count * mean_y.view(per_out)
    norm = (w * cov).flatten(1).sum(1).view(per_out)
    return (cov / torch.where(norm == 0, torch.ones_like(norm), norm)).float()
