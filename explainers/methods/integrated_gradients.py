"""Integrated gradients, with its completeness gap reported."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Literal

import numpy as np
import torch
from pydantic import Field, model_validator

from explainers.base import Attribution, Context, Explainer
from explainers.batching import Stack, image_key
from explainers.completeness import completeness
from explainers.methods._gradients import GRADIENT_MODALITIES, batched_gradients, reduce
from explainers.params import BASELINE_HELP, Baseline, GradientBatchParams
from explainers.registry import register

Rule = Literal["gausslegendre", "riemann_trapezoid", "riemann_middle", "riemann_left", "riemann_right"]


class IntegratedGradientsParams(GradientBatchParams):
    n_steps: int = Field(50, ge=1, le=1024, description="points on the path from baseline to input")
    method: Rule = Field("gausslegendre", description="quadrature rule along the path")
    baseline: Baseline = Field("default", description="path start, the " + BASELINE_HELP)
    batch_size: int = Field(16, ge=1, le=512, description="path points per forward/backward pass")

    @model_validator(mode="after")
    def _check(self) -> IntegratedGradientsParams:
        if self.method == "riemann_trapezoid" and self.n_steps < 2:
            raise ValueError("the riemann_trapezoid rule needs n_steps >= 2")
        return self


def path_points(rule: Rule, n_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions alpha in [0, 1] and quadrature weights for the path integral."""
    if rule == "gausslegendre":
        nodes, weights = np.polynomial.legendre.leggauss(n_steps)
        return (nodes + 1) / 2, weights / 2
    if rule == "riemann_trapezoid":
        if n_steps < 2:
            raise ValueError("the trapezoid rule needs n_steps >= 2")
        alphas = np.linspace(0, 1, n_steps)
        weights = np.full(n_steps, 1.0 / (n_steps - 1))
        weights[[0, -1]] /= 2
        return alphas, weights
    offset = {"riemann_left": 0.0, "riemann_right": 1.0, "riemann_middle": 0.5}[rule]
    return (np.arange(n_steps) + offset) / n_steps, np.full(n_steps, 1.0 / n_steps)


def integrated_gradients(ctx: Context, x: torch.Tensor, baseline: torch.Tensor, rule: Rule, n_steps: int,
                         batch_size: int) -> torch.Tensor:
    """(x - baseline) * integral of the score gradient along the straight path: shape of x."""
    alphas, weights = path_points(rule, n_steps)
    a = torch.tensor(alphas, dtype=x.dtype, device=x.device).view(-1, *[1] * (x.dim() - 1))
    w = torch.tensor(weights, dtype=x.dtype, device=x.device).view(-1, *[1] * (x.dim() - 1))
    ctx.target()
    total = torch.zeros_like(x)
    for a_chunk, w_chunk in zip(a.split(batch_size), w.split(batch_size)):
        points = baseline + a_chunk * (x - baseline)
        total += (batched_gradients(ctx, points, batch_size) * w_chunk).sum(0, keepdim=True)
    return (x - baseline) * total


@register
class IntegratedGradients(Explainer[IntegratedGradientsParams]):
    """Integrated gradients (Sundararajan et al. 2017). https://arxiv.org/abs/1703.01365"""

    contrastive = True
    name = "integrated_gradients"
    modalities = GRADIENT_MODALITIES
    Params = IntegratedGradientsParams

    def _attribute(self, ctx: Context, p: IntegratedGradientsParams) -> Attribution:
        baseline = ctx.inputs.baseline(p.baseline)
        with torch.inference_mode():
            ends = ctx.forward(torch.cat([ctx.x, baseline]))
        ctx.observe(ends[:1])
        scores = ctx.score(ends)
        attr = integrated_gradients(ctx, ctx.x, baseline, p.method, p.n_steps, ctx.batch_size)
        return self._result(ctx, attr, float(scores[0]), float(scores[1]), p)

    @staticmethod
    def _result(ctx: Context, attr: torch.Tensor, score: float, score_baseline: float,
                p: IntegratedGradientsParams) -> Attribution:
        details = {**completeness(float(attr.sum()), score, score_baseline),
                   "score_input": score, "score_baseline": score_baseline, "baseline": p.baseline,
                   "n_steps": p.n_steps}
        return Attribution(reduce(attr, ctx.model.modality, "sum"), details)

    def batch_key(self, ctx: Context, p: IntegratedGradientsParams) -> Hashable | None:
        return image_key(ctx)

    def _attribute_batch(self, ctxs: Sequence[Context], p: IntegratedGradientsParams) -> list[Attribution]:
        """Every input's path points in the same passes (built a batch at a time)."""
        stack = Stack(ctxs)
        x = stack.x
        baselines = torch.cat([c.inputs.baseline(p.baseline) for c in ctxs])
        n, steps = len(stack), p.n_steps
        with torch.inference_mode():
            ends = stack.forward(torch.cat([x, baselines]), torch.cat([stack.every(1), stack.every(1)]))
        stack.observe(ends[:n])
        scores = stack.score(ends, torch.cat([stack.every(1), stack.every(1)]))
        alphas, weights = path_points(p.method, steps)
        shape = [-1, *[1] * (x.dim() - 1)]
        a = torch.tensor(alphas, dtype=x.dtype, device=x.device)
        w = torch.tensor(weights, dtype=x.dtype, device=x.device)
        owners_all = stack.every(steps)

        def make(lo: int, hi: int) -> tuple[torch.Tensor, torch.Tensor]:
            owners, step = owners_all[lo:hi], torch.arange(lo, hi, device=x.device) % steps
            start = baselines[owners]
            return start + a[step].view(shape) * (x[owners] - start), owners

        total = torch.zeros_like(x)

        def add(grad: torch.Tensor, owners: torch.Tensor, lo: int, hi: int) -> None:
            step = torch.arange(lo, hi, device=x.device) % steps
            total.index_add_(0, owners, grad * w[step].view(shape))

        stack.gradients(n * steps, make, stack.first.batch_size, reduce=add)
        attr = (x - baselines) * total
        return [self._result(ctx, attr[i:i + 1], float(scores[i]), float(scores[n + i]), p)
                for i, ctx in enumerate(ctxs)]
