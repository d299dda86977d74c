"""SmoothGrad: saliency averaged over noisy copies of the input."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Literal

import torch
from pydantic import Field

from explainers.base import Attribution, Context, Explainer
from explainers.batching import Stack, image_key
from explainers.methods._gradients import GRADIENT_MODALITIES, batched_gradients, reduce
from explainers.noise import draw_noise
from explainers.params import GradientBatchParams, SeededParams
from explainers.registry import register


class SmoothGradParams(SeededParams, GradientBatchParams):
    n_samples: int = Field(25, ge=1, le=500, description="noisy copies averaged")
    noise_level: float = Field(0.15, ge=0.0, le=1.0,
                               description="noise standard deviation as a fraction of the input's value range")
    nt_type: Literal["smoothgrad", "smoothgrad_sq", "vargrad"] = Field(
        "smoothgrad", description="mean of |gradient|, mean of its square, or its variance")
    batch_size: int = Field(16, ge=1, le=512, description="noisy copies per forward/backward pass")


def smooth(grads: torch.Tensor, nt_type: str) -> torch.Tensor:
    """Combine per-sample absolute gradients [n, ...] into one [1, ...]."""
    g = grads.abs()
    return combine(g.mean(0, keepdim=True), (g * g).mean(0, keepdim=True), nt_type)


def combine(mean_abs: torch.Tensor, mean_sq: torch.Tensor, nt_type: str) -> torch.Tensor:
    """The map from the mean |gradient| and the mean squared gradient over the noisy copies."""
    if nt_type == "smoothgrad":
        return mean_abs
    if nt_type == "smoothgrad_sq":
        return mean_sq
    return mean_sq - mean_abs ** 2


@register
class SmoothGrad(Explainer[SmoothGradParams]):
    """SmoothGrad (Smilkov et al. 2017). https://arxiv.org/abs/1706.03825"""

    contrastive = True
    name = "smoothgrad"
    modalities = GRADIENT_MODALITIES
    Params = SmoothGradParams
    signed = False

    def _attribute(self, ctx: Context, p: SmoothGradParams) -> Attribution:
        x = ctx.x
        sigma = p.noise_level * float(x.max() - x.min())
        noise = draw_noise(x, p.n_samples, sigma, p.seed)
        grads = batched_gradients(ctx, x + noise, ctx.batch_size)
        combined = smooth(grads, p.nt_type)
        return Attribution(reduce(combined, ctx.model.modality, "abs"),
                           {"sigma": sigma, "n_samples": p.n_samples, "nt_type": p.nt_type})

    def batch_key(self, ctx: Context, p: SmoothGradParams) -> Hashable | None:
        return image_key(ctx)

    def _attribute_batch(self, ctxs: Sequence[Context], p: SmoothGradParams) -> list[Attribution]:
        """Every input's noisy copies in the same passes; each input's noise drawn as it alone would be."""
        stack = Stack(ctxs)
        stack.resolve()
        x, n = stack.x, p.n_samples
        sigmas = [p.noise_level * float(xi.max() - xi.min()) for xi in x]
        noises: dict[int, torch.Tensor] = {}

        def noise(owner: int) -> torch.Tensor:
            if owner not in noises:
                noises.clear()  # rows come in order: one input's noise held at a time
                noises[owner] = draw_noise(x[owner:owner + 1], n, sigmas[owner], p.seed)
            return noises[owner]

        def make(a: int, b: int) -> tuple[torch.Tensor, torch.Tensor]:
            owners = stack.every(n)[a:b]
            rows = torch.stack([x[int(o)] + noise(int(o))[k % n] for o, k in zip(owners.tolist(), range(a, b))])
            return rows, owners

        sum_abs, sum_sq = torch.zeros_like(x), torch.zeros_like(x)

        def add(grad: torch.Tensor, owners: torch.Tensor, _a: int, _b: int) -> None:
            sum_abs.index_add_(0, owners, grad.abs())
            sum_sq.index_add_(0, owners, grad * grad)

        stack.gradients(len(stack) * n, make, stack.first.batch_size, reduce=add)
        modality = stack.first.model.modality
        return [Attribution(reduce(combine(sum_abs[i:i + 1] / n, sum_sq[i:i + 1] / n, p.nt_type), modality, "abs"),
                            {"sigma": sigmas[i], "n_samples": n, "nt_type": p.nt_type}) for i in range(len(stack))]
