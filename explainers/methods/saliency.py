"""Saliency maps: the gradient of the score with respect to the input."""

from __future__ import annotations

from collections.abc import Hashable, Sequence

from pydantic import Field

from explainers.base import Attribution, Context, Explainer
from explainers.batching import Stack, image_key
from explainers.methods._gradients import GRADIENT_MODALITIES, reduce, score_gradient
from explainers.params import Params
from explainers.registry import register


class SaliencyParams(Params):
    abs: bool = Field(True, description="take absolute gradients (the classic saliency map)")


@register
class Saliency(Explainer[SaliencyParams]):
    """Gradient saliency (Simonyan et al. 2013). https://arxiv.org/abs/1312.6034"""

    contrastive = True
    name = "saliency"
    modalities = GRADIENT_MODALITIES
    Params = SaliencyParams
    signed = False

    def _attribute(self, ctx: Context, p: SaliencyParams) -> Attribution:
        grad = score_gradient(ctx, ctx.x, observe=True)
        return Attribution(reduce(grad, ctx.model.modality, "abs" if p.abs else "sum"))

    def batch_key(self, ctx: Context, p: SaliencyParams) -> Hashable | None:
        return image_key(ctx)

    def _attribute_batch(self, ctxs: Sequence[Context], p: SaliencyParams) -> list[Attribution]:
        stack = Stack(ctxs)
        grad = stack.gradient(stack.x, stack.every(1), observe=True)
        return [Attribution(reduce(grad[i:i + 1], stack.first.model.modality, "abs" if p.abs else "sum"))
                for i in range(len(stack))]
