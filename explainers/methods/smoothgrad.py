"""SmoothGrad: saliency averaged over noisy copies of the input."""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field

from explainers.base import Attribution, Context, Explainer
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
    if nt_type == "smoothgrad":
        return g.mean(0, keepdim=True)
    if nt_type == "smoothgrad_sq":
        return (g * g).mean(0, keepdim=True)
    return (g * g).mean(0, keepdim=True) - g.mean(0, keepdim=True) ** 2


@register
class SmoothGrad(Explainer[SmoothGradParams]):
    """SmoothGrad (Smilkov et al. 2017). https://arxiv.org/abs/1706.03825"""

    name = "smoothgrad"
    contrastive = True
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
