"""What PatternNet and PatternAttribution share: the patterns of the model, found or computed once."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from explainers.base import Attribution, Context
from explainers.methods._gradients import reduce
from explainers.methods._propagation import PropagationExplainer, PropagationParams, canonized, relevance
from explainers.pattern_store import patterns_for
from explainers.propagation.nodes import WEIGHTED
from explainers.propagation.patterns import Estimator


class PatternParams(PropagationParams):
    estimator: Estimator = Field(
        "two_component", description="signal estimator: linear (one pattern per layer, from cov[x, y]) or "
        "two_component (one for positive and one for non-positive layer outputs; the paper's choice for ReLU "
        "networks)")


class PatternExplainer(PropagationExplainer[PatternParams]):
    """The gradient with every weighted layer's weights replaced by its patterns (or patterns x weights)."""

    Params = PatternParams
    attribution: ClassVar[bool]

    def _attribute(self, ctx: Context, p: PatternParams) -> Attribution:
        canon = canonized(ctx)  # first: a model the engine cannot handle is refused as such
        patterns = patterns_for(ctx.local)
        rules = {s.target: patterns.rule(s.target, p.estimator, attribution=self.attribution,
                                         project=not self.attribution)
                 for s in canon.steps if s.kind in WEIGHTED and s.target in patterns.layers}
        r, _ = relevance(ctx, canon, rules, seed="output")
        details: dict[str, Any] = {"estimator": p.estimator, "patterns_from": patterns.meta.get("origin"),
                                   "pattern_samples": patterns.n_samples}
        return Attribution(reduce(r, ctx.model.modality, "sum"), details)
