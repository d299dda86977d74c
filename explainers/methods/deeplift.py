"""DeepLIFT with the rescale rule, its completeness gap reported."""

from __future__ import annotations

import torch
from pydantic import Field

from explainers.base import Attribution, Context
from explainers.completeness import completeness
from explainers.methods._gradients import reduce
from explainers.methods._propagation import PropagationExplainer, PropagationParams, canonized
from explainers.params import BASELINE_HELP, Baseline
from explainers.propagation.deeplift import deeplift_rules
from explainers.propagation.engine import propagate
from explainers.registry import register


class DeepLiftParams(PropagationParams):
    baseline: Baseline = Field("default", description="the reference input, the " + BASELINE_HELP)


@register
class DeepLift(PropagationExplainer[DeepLiftParams]):
    """DeepLIFT, rescale rule (Shrikumar et al. 2017). https://arxiv.org/abs/1704.02685"""

    name = "deeplift"
    Params = DeepLiftParams

    def _attribute(self, ctx: Context, p: DeepLiftParams) -> Attribution:
        canon = canonized(ctx)
        reference = ctx.inputs.baseline(p.baseline)
        scores: list[float] = []

        def start(outputs: torch.Tensor) -> torch.Tensor:
            target = ctx.observe(outputs[:1])
            scores.extend([float(outputs[0, target]), float(outputs[1, target])])
            seed = torch.zeros_like(outputs)
            seed[0, target] = 1.0
            return seed

        native = ctx.inputs.native if canon.text else None
        grads, _ = propagate(canon, deeplift_rules(canon), torch.cat([ctx.x, reference]), start, native=native)
        attr = (ctx.x - reference) * grads[:1]
        details = {**completeness(float(attr.double().sum()), *scores), "baseline": p.baseline,
                   "score_input": scores[0], "score_baseline": scores[1]}
        return Attribution(reduce(attr, ctx.model.modality, "sum"), details)
