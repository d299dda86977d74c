"""Guided backpropagation and DeconvNet: gradients with a modified ReLU backward pass."""

from __future__ import annotations

from typing import ClassVar

from explainers.base import Attribution, Context, Explainer
from explainers.methods._gradients import ReluRule, reduce, relu_backward_rule, score_gradient
from explainers.params import Params as BaseParams
from explainers.registry import register
from explainers.types import Modality


@register
class GuidedBackprop(Explainer[BaseParams]):
    """Guided backpropagation (Springenberg et al. 2014). https://arxiv.org/abs/1412.6806"""

    contrastive = True
    name = "guided_backprop"
    modalities = frozenset({Modality.IMAGE})
    Params = BaseParams
    rule: ClassVar[ReluRule] = "guided"

    def _attribute(self, ctx: Context, p: BaseParams) -> Attribution:
        with relu_backward_rule(ctx.module, self.rule):
            grad = score_gradient(ctx, ctx.x, observe=True)
        return Attribution(reduce(grad, ctx.model.modality, "sum"))
