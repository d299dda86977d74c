"""DeepLIFT's rescale rule (Shrikumar et al. 2017) on the rule engine.

The input and its reference run as one batch [inputs; references]. Linear steps (weighted layers,
sums, poolings by average, BatchNorm, elementwise constants) keep their gradient, which is their
multiplier; an elementwise nonlinearity's multiplier is (y - y0) / (x - x0), its gradient where
x and x0 (almost) coincide; a max hands the change of its output to the winners of both passes
(the maximum of the two outputs splits it), as Captum does for max pooling. Each step then gives
sum_i m_i (x_i - x0_i) = y - y0, so the attributions (x - x0) * m sum to f(x) - f(x0).
"""

from __future__ import annotations

import torch
from torch import nn

from explainers.propagation.graph import Canonized
from explainers.propagation.nodes import Kind
from explainers.propagation.rules import Grads, Rule

NEAR = 1e-10  # |x - x0| below this: the multiplier is the gradient


def _halves(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    x, x0 = t.chunk(2)
    return x, x0


def _vjp(module: nn.Module, x: torch.Tensor, constants: tuple[torch.Tensor, ...], grad: torch.Tensor) -> torch.Tensor:
    """d <grad, module(x)> / dx, running the module's own forward (not its hooked call)."""
    with torch.enable_grad():
        xr = x.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(module.forward(xr, *constants), xr, grad)
    return g


def _constants(inputs: tuple[torch.Tensor, ...], half: int) -> tuple[torch.Tensor, ...]:
    """A step's constant arguments for one half of the batch (a mask of the token ids has the batch too)."""
    return tuple(c.chunk(2)[half] if c.dim() > 0 and c.shape[0] == inputs[0].shape[0] else c for c in inputs[1:])


class Rescale(Rule):
    name = "rescale"

    def backward(self, module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor,
                 relevance: torch.Tensor, *, nonneg: bool = False) -> Grads:
        (x, x0), (y, y0), (g, _) = _halves(inputs[0]), _halves(output), _halves(relevance)
        plain = _vjp(module, x, _constants(inputs, 0), g)
        dx = x - x0
        m = torch.where(dx.abs() < NEAR, plain, g * (y - y0) / torch.where(dx == 0, torch.ones_like(dx), dx))
        return (torch.cat([m, torch.zeros_like(m)]), *([None] * (len(inputs) - 1)))


class CrossMax(Rule):
    name = "cross_max"

    def backward(self, module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor,
                 relevance: torch.Tensor, *, nonneg: bool = False) -> Grads:
        (x, x0), (y, y0), (g, _) = _halves(inputs[0]), _halves(output), _halves(relevance)
        top = torch.maximum(y, y0)
        moved = (_vjp(module, x, _constants(inputs, 0), g * (top - y0))
                 + _vjp(module, x0, _constants(inputs, 1), g * (y - top)))
        plain = _vjp(module, x, _constants(inputs, 0), g)
        dx = x - x0
        m = torch.where(dx.abs() < NEAR, plain, moved / torch.where(dx == 0, torch.ones_like(dx), dx))
        return (torch.cat([m, torch.zeros_like(m)]), *([None] * (len(inputs) - 1)))


def deeplift_rules(canon: Canonized) -> dict[str, Rule]:
    """Rescale on every elementwise nonlinearity, the two-pass max on every max; linear steps keep gradients."""
    rules: dict[str, Rule] = {}
    for step in canon.steps:
        if step.kind is Kind.ACTIVATION:
            rules[step.target] = Rescale()
        elif step.kind is Kind.MAX:
            rules[step.target] = CrossMax()
    return rules
