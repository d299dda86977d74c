"""Excitation backprop: marginal winning probabilities down the excitatory connections."""

from __future__ import annotations

from pydantic import Field
from torch import nn

from explainers.base import Attribution, Context
from explainers.methods._gradients import reduce
from explainers.methods._propagation import PropagationExplainer, PropagationParams, canonized, relevance
from explainers.propagation.errors import UnsupportedModel
from explainers.propagation.graph import Canonized
from explainers.propagation.nodes import WEIGHTED, Kind
from explainers.propagation.rules import Norm, Pass, Rule, ZPlus
from explainers.registry import register


class ExcitationBackpropParams(PropagationParams):
    contrastive: bool = Field(False, description="contrastive MWP: the target's winning probabilities minus "
                                                 "those of its dual unit (the output layer's weights negated)")


def excitation_rules(canon: Canonized, stabilizer: float, *, dual: bool = False) -> dict[str, Rule]:
    """P(a_j | a_i) = a_j w_ji+ / sum_j' a_j' w_j'i+ at every weighted layer (biases are no evidence);
    sums and average poolings split by positive contributions; the dual flips the output layer."""
    rules: dict[str, Rule] = {}
    for step in canon.steps:
        if step.kind in WEIGHTED:
            rules.setdefault(step.target, ZPlus(stabilizer, ignore_bias=True,
                                                negate=dual and step is canon.last))
        elif step.kind in (Kind.SUM, Kind.AVERAGE):
            rules.setdefault(step.target, Norm(stabilizer, positive=True))
        elif step.kind in (Kind.ACTIVATION, Kind.AFFINE, Kind.BATCHNORM) and type(step.module) is not nn.ReLU:
            rules.setdefault(step.target, Pass())  # (a ReLU's gradient is its Pass here: see Composite.assign)
    return rules


@register
class ExcitationBackprop(PropagationExplainer[ExcitationBackpropParams]):
    """Excitation backprop (Zhang et al. 2016). https://arxiv.org/abs/1608.00507"""

    name = "excitation_backprop"
    Params = ExcitationBackpropParams

    def _attribute(self, ctx: Context, p: ExcitationBackpropParams) -> Attribution:
        canon = canonized(ctx)
        mwp, _ = relevance(ctx, canon, excitation_rules(canon, p.stabilizer), seed="one")
        details: dict[str, object] = {"contrastive": p.contrastive, "total_probability": float(mwp.double().sum())}
        if p.contrastive:
            if canon.last is None:
                raise UnsupportedModel("contrastive excitation backprop needs one output layer with weights")
            dual, _ = relevance(ctx, canon, excitation_rules(canon, p.stabilizer, dual=True), seed="one")
            mwp = mwp - dual
            details["dual_total_probability"] = float(dual.double().sum())
        return Attribution(reduce(mwp, ctx.model.modality, "sum"), details)
