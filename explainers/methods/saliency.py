"""Saliency maps: the gradient of the score with respect to the input."""

from __future__ import annotations

from pydantic import Field

from explainers.base import Attribution, Context, Explainer
from explainers.methods._gradients import GRADIENT_MODALITIES, reduce, score_gradient
from explainers.params import Params
from explainers.registry import register


class SaliencyParams(Params):
    abs: bool = Field(True, description="take absolute gradients (the classic saliency map)")


@register
class Saliency(Explainer[SaliencyParams]):
    """Gradient saliency (Simonyan et al. 2013). https://arxiv.org/abs/1312.6034"""

    name = "saliency"
    contrastive = True
    modalities = GRADIENT_MODALITIES
    Params = SaliencyParams
    signed = False

    def _attribute(self, ctx: Context, p: SaliencyParams) -> Attribution:
        grad = score_gradient(ctx, ctx.x, observe=True)
        return Attribution(reduce(grad, ctx.model.modality, "abs" if p.abs else "sum"))
