"""Propagation rules: how one layer hands the relevance at its output down to its inputs.

A rule sees the layer, its inputs, its output and the relevance (or, for DeepLIFT, the multiplied
gradient) arriving at the output, and returns one tensor per input. The engine calls it from the
layer's backward pass. The layer rules follow Montavon et al. 2019 ("Layer-wise relevance
propagation: an overview"); the split of mixed-sign inputs into positive and negative parts
(so that z-plus, alpha-beta and gamma also hold where inputs are negative) is the one Zennit uses.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import ClassVar

import torch
from torch import nn

from explainers.propagation import layer_ops as ops
from explainers.propagation.nodes import Sum

Grads = tuple[torch.Tensor | None, ...]


def stabilize(z: torch.Tensor, epsilon: float) -> torch.Tensor:
    """z moved away from 0 by epsilon, with z's sign (+ for +0; -0 goes to -epsilon, where every rule's
    relevance is 0 anyway: an output that is exactly 0 hands down nothing)."""
    return z + torch.tensor(epsilon, dtype=z.dtype, device=z.device).copysign(z)


_DERIVED: weakref.WeakKeyDictionary[nn.Module, dict[str, tuple[int, torch.Tensor | None]]] = \
    weakref.WeakKeyDictionary()


def derived(layer: nn.Module, key: str, make: Callable[[], torch.Tensor | None]) -> torch.Tensor | None:
    """A tensor computed from a layer's frozen parameters (its positive weights, ...), kept until they change."""
    version = hash(tuple((id(p), p._version) for p in layer.parameters(recurse=False)))
    own = _DERIVED.setdefault(layer, {})
    if key not in own or own[key][0] != version:
        own[key] = (version, make())
    return own[key][1]


def _parts(layer: ops.Weighted, name: str, sign: float = 1.0) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """The positive and negative parts of the layer's weight or bias (times `sign`), cached."""
    t = getattr(layer, name)
    if t is None:
        return None, None
    return (derived(layer, f"{name}{sign}+", lambda: (sign * t).clamp(min=0)),
            derived(layer, f"{name}{sign}-", lambda: (sign * t).clamp(max=0)))


def _nonneg(x: torch.Tensor) -> bool:
    return not bool((x < 0).any())  # (not x.min(): a reduction over a channels-last tensor copies it first)


def _over_positive(r: torch.Tensor, z: torch.Tensor, epsilon: float) -> torch.Tensor:
    """r / (z + epsilon) for a denominator that is never negative (a sum of positive contributions)."""
    return r / z.add_(epsilon)


def _only_first(first: torch.Tensor, n_inputs: int) -> Grads:
    return (first, *([None] * (n_inputs - 1)))


class Rule:
    """One layer's modified backward pass."""

    name: ClassVar[str]

    def backward(self, module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor,
                 relevance: torch.Tensor, *, nonneg: bool = False) -> Grads:
        """Relevance (or gradient) per input; `nonneg`: the graph guarantees the first input is >= 0."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return self.name


class Pass(Rule):
    """Relevance passes unchanged (activations, elementwise constants, unfolded BatchNorm)."""

    name = "pass"

    def backward(self, module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor,
                 relevance: torch.Tensor, *, nonneg: bool = False) -> Grads:
        return _only_first(relevance, len(inputs))


class Norm(Rule):
    """Relevance split in proportion to each input's contribution (sums, average pooling, means).

    positive: only positive contributions count (excitation backprop's probabilistic rule).
    """

    name = "norm"

    def __init__(self, stabilizer: float = 1e-6, positive: bool = False) -> None:
        self.stabilizer, self.positive = stabilizer, positive

    def backward(self, module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor,
                 relevance: torch.Tensor, *, nonneg: bool = False) -> Grads:
        parts = [x.clamp(min=0) for x in inputs] if self.positive else list(inputs)
        if isinstance(module, Sum):
            total = parts[0]
            for p in parts[1:]:
                total = total + p
            s = relevance / stabilize(total, self.stabilizer)
            return tuple(p * s for p in parts)
        x = parts[0]  # `forward`, not the call: the module's own hook must not wrap it again
        z = module.forward(x, *inputs[1:]) if self.positive else output
        s = relevance / stabilize(z, self.stabilizer)
        with torch.enable_grad():
            xr = x.detach().requires_grad_(True)
            (g,) = torch.autograd.grad(module.forward(xr, *inputs[1:]), xr, s)
        return _only_first(x * g, len(inputs))


class LayerRule(Rule):
    """A rule of a layer with weights (linear, convolution)."""

    def backward(self, module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor,
                 relevance: torch.Tensor, *, nonneg: bool = False) -> Grads:
        assert isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d))
        return (self.relevance(module, inputs[0], output, relevance, nonneg),)

    def relevance(self, layer: ops.Weighted, x: torch.Tensor, z: torch.Tensor, r: torch.Tensor,
                  nonneg: bool) -> torch.Tensor:
        """Relevance at the layer's input x from r at its output z; `nonneg`: x is known to be >= 0."""
        raise NotImplementedError


class Epsilon(LayerRule):
    """LRP-epsilon (Bach et al. 2015): R_i = x_i sum_j w_ij R_j / (z_j + eps sign z_j); eps -> 0 is LRP-0."""

    name = "epsilon"

    def __init__(self, epsilon: float = 1e-6) -> None:
        self.epsilon = epsilon

    def relevance(self, layer: ops.Weighted, x: torch.Tensor, z: torch.Tensor, r: torch.Tensor,
                  nonneg: bool) -> torch.Tensor:
        return x * ops.transpose(layer, x, layer.weight, r / stabilize(z, self.epsilon))


class AlphaBeta(LayerRule):
    """LRP-alpha-beta (Bach et al. 2015): positive contributions weighted alpha, negative ones beta.

    alpha - beta = 1 keeps relevance conserved; alpha 1, beta 0 is z-plus. `ignore_bias` leaves the
    bias out of the denominators (excitation backprop); `negate` flips the layer's weights (its dual unit).
    """

    name = "alpha_beta"

    def __init__(self, alpha: float = 2.0, beta: float = 1.0, stabilizer: float = 1e-6, *,
                 ignore_bias: bool = False, negate: bool = False) -> None:
        if alpha < 0 or beta < 0 or abs(alpha - beta - 1.0) > 1e-9:
            raise ValueError("alpha - beta must be 1, with both non-negative")
        self.alpha, self.beta, self.stabilizer = alpha, beta, stabilizer
        self.ignore_bias, self.negate = ignore_bias, negate

    def relevance(self, layer: ops.Weighted, x: torch.Tensor, z: torch.Tensor, r: torch.Tensor,
                  nonneg: bool) -> torch.Tensor:
        sign = -1.0 if self.negate else 1.0
        wp, wn = _parts(layer, "weight", sign)
        bp, bn = (None, None) if self.ignore_bias else _parts(layer, "bias", sign)
        assert wp is not None and wn is not None
        mixed = not (nonneg or _nonneg(x))
        xp, xn = (x.clamp(min=0), x.clamp(max=0)) if mixed else (x, x)
        z_pos = ops.forward(layer, xp, wp, bp)
        if mixed:
            z_pos = z_pos + ops.forward(layer, xn, wn, None)
        s = _over_positive(r, z_pos, self.stabilizer)
        out = xp * ops.transpose(layer, x, wp, s)
        if mixed:
            out = out + xn * ops.transpose(layer, x, wn, s)
        if self.beta == 0:
            return self.alpha * out if self.alpha != 1 else out
        z_neg = ops.forward(layer, xp, wn, bn)
        if mixed:
            z_neg = z_neg + ops.forward(layer, xn, wp, None)
        s = -_over_positive(r, -z_neg, self.stabilizer)  # r / (z_neg - eps): z_neg sums negative contributions
        neg = xp * ops.transpose(layer, x, wn, s)
        if mixed:
            neg = neg + xn * ops.transpose(layer, x, wp, s)
        return self.alpha * out - self.beta * neg


class ZPlus(AlphaBeta):
    """z-plus (Montavon et al. 2017): only positive contributions, alpha 1 and beta 0."""

    name = "z_plus"

    def __init__(self, stabilizer: float = 1e-6, *, ignore_bias: bool = False, negate: bool = False) -> None:
        super().__init__(1.0, 0.0, stabilizer, ignore_bias=ignore_bias, negate=negate)


class Gamma(LayerRule):
    """LRP-gamma (Montavon et al. 2019): positive weights boosted by gamma, for outputs of each sign."""

    name = "gamma"

    def __init__(self, gamma: float = 0.25, stabilizer: float = 1e-6) -> None:
        self.gamma, self.stabilizer = gamma, stabilizer

    def relevance(self, layer: ops.Weighted, x: torch.Tensor, z: torch.Tensor, r: torch.Tensor,
                  nonneg: bool) -> torch.Tensor:
        g, w, b = self.gamma, layer.weight, layer.bias
        wp, wn = _parts(layer, "weight")
        bp, bn = _parts(layer, "bias")
        assert wp is not None and wn is not None
        # the weights of positive and of negative contributions
        up, down = derived(layer, f"gamma{g}+", lambda: w + g * wp), derived(layer, f"gamma{g}-", lambda: w + g * wn)
        assert up is not None and down is not None
        b_up = None if b is None or bp is None else derived(layer, f"bias_gamma{g}+", lambda: b + g * bp)
        b_down = None if b is None or bn is None else derived(layer, f"bias_gamma{g}-", lambda: b + g * bn)
        mixed = not (nonneg or _nonneg(x))
        xp, xn = (x.clamp(min=0), x.clamp(max=0)) if mixed else (x, x)
        z_pos = ops.forward(layer, xp, up, b_up)
        z_neg = ops.forward(layer, xp, down, b_down)
        if mixed:
            z_pos = z_pos + ops.forward(layer, xn, down, None)
            z_neg = z_neg + ops.forward(layer, xn, up, None)
        s_pos = (z > 0).to(r.dtype) * r / stabilize(z_pos, self.stabilizer)
        s_neg = (z < 0).to(r.dtype) * r / stabilize(z_neg, self.stabilizer)
        out = xp * (ops.transpose(layer, x, up, s_pos) + ops.transpose(layer, x, down, s_neg))
        if mixed:
            out = out + xn * (ops.transpose(layer, x, down, s_pos) + ops.transpose(layer, x, up, s_neg))
        return out


class Flat(LayerRule):
    """Flat (Lapuschkin et al. 2019): relevance spread evenly over each output's receptive field."""

    name = "flat"

    def __init__(self, stabilizer: float = 1e-6) -> None:
        self.stabilizer = stabilizer

    def relevance(self, layer: ops.Weighted, x: torch.Tensor, z: torch.Tensor, r: torch.Tensor,
                  nonneg: bool) -> torch.Tensor:
        ones, w = torch.ones_like(x), derived(layer, "ones", lambda: torch.ones_like(layer.weight))
        assert w is not None
        counts = derived(layer, f"flat{tuple(x.shape)}", lambda: ops.forward(layer, ones, w, None))  # per shape
        assert counts is not None
        s = r / stabilize(counts, self.stabilizer)
        return ops.transpose(layer, ones, w, s)


class WSquare(LayerRule):
    """w-square (Montavon et al. 2017): relevance in proportion to the squared weights, for unbounded inputs."""

    name = "w_square"

    def __init__(self, stabilizer: float = 1e-6) -> None:
        self.stabilizer = stabilizer

    def relevance(self, layer: ops.Weighted, x: torch.Tensor, z: torch.Tensor, r: torch.Tensor,
                  nonneg: bool) -> torch.Tensor:
        ones, w2 = torch.ones_like(x), derived(layer, "square", lambda: layer.weight * layer.weight)
        assert w2 is not None
        s = r / stabilize(ops.forward(layer, ones, w2, None), self.stabilizer)
        return ops.transpose(layer, ones, w2, s)


class ZBox(LayerRule):
    """z-B (Montavon et al. 2017): for inputs bounded by `low` and `high` (the pixels 0 and 255, normalised)."""

    name = "z_box"

    def __init__(self, low: torch.Tensor, high: torch.Tensor, stabilizer: float = 1e-6) -> None:
        self.low, self.high, self.stabilizer = low, high, stabilizer

    def relevance(self, layer: ops.Weighted, x: torch.Tensor, z: torch.Tensor, r: torch.Tensor,
                  nonneg: bool) -> torch.Tensor:
        wp, wn = _parts(layer, "weight")
        assert wp is not None and wn is not None
        low = self.low.to(x).expand_as(x).contiguous(memory_format=_format(x))
        high = self.high.to(x).expand_as(x).contiguous(memory_format=_format(x))
        plain = z if layer.bias is None else z - _bias_view(layer, z)
        zb = plain - ops.forward(layer, low, wp, None) - ops.forward(layer, high, wn, None)
        s = r / stabilize(zb, self.stabilizer)
        return (x * ops.transpose(layer, x, layer.weight, s) - low * ops.transpose(layer, x, wp, s)
                - high * ops.transpose(layer, x, wn, s))


def _bias_view(layer: ops.Weighted, z: torch.Tensor) -> torch.Tensor:
    assert layer.bias is not None
    if isinstance(layer, nn.Linear):
        return layer.bias
    return layer.bias.view(1, -1, *([1] * (z.dim() - 2)))


def _format(x: torch.Tensor) -> torch.memory_format:
    if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format
