"""Input times gradient."""

from __future__ import annotations

from explainers.base import Attribution, Context, Explainer
from explainers.methods._gradients import GRADIENT_MODALITIES, reduce, score_gradient
from explainers.params import Params as BaseParams
from explainers.registry import register


@register
class InputXGradient(Explainer[BaseParams]):
    """Input x gradient (Shrikumar et al. 2016). https://arxiv.org/abs/1605.01713"""

    name = "input_x_gradient"
    contrastive = True
    modalities = GRADIENT_MODALITIES
    Params = BaseParams

    def _attribute(self, ctx: Context, p: BaseParams) -> Attribution:
        grad = score_gradient(ctx, ctx.x, observe=True)
        return Attribution(reduce(ctx.x * grad, ctx.model.modality, "sum"))
