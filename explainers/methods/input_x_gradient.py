"""Input times gradient."""

from __future__ import annotations

from collections.abc import Hashable, Sequence

from explainers.base import Attribution, Context, Explainer
from explainers.batching import Stack, image_key
from explainers.methods._gradients import GRADIENT_MODALITIES, reduce, score_gradient
from explainers.params import Params as BaseParams
from explainers.registry import register


@register
class InputXGradient(Explainer[BaseParams]):
    """Input x gradient (Shrikumar et al. 2016). https://arxiv.org/abs/1605.01713"""

    contrastive = True
    name = "input_x_gradient"
    modalities = GRADIENT_MODALITIES
    Params = BaseParams

    def _attribute(self, ctx: Context, p: BaseParams) -> Attribution:
        grad = score_gradient(ctx, ctx.x, observe=True)
        return Attribution(reduce(ctx.x * grad, ctx.model.modality, "sum"))

    def batch_key(self, ctx: Context, p: BaseParams) -> Hashable | None:
        return image_key(ctx)

    def _attribute_batch(self, ctxs: Sequence[Context], p: BaseParams) -> list[Attribution]:
        stack = Stack(ctxs)
        attr = stack.x * stack.gradient(stack.x, stack.every(1), observe=True)
        return [Attribution(reduce(attr[i:i + 1], stack.first.model.modality, "sum")) for i in range(len(stack))]
