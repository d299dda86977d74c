"""Layer-wise relevance propagation with a composite of rules."""

from __future__ import annotations

from pydantic import Field, model_validator

from explainers.base import Attribution, Context
from explainers.methods._propagation import (
    PropagationExplainer,
    PropagationParams,
    canonized,
    relevance,
    relevance_map,
    settings,
)
from explainers.propagation.composites import (
    COMPOSITE_HELP,
    Composite,
    CompositeName,
    LayerType,
    RuleName,
    composite_rules,
)
from explainers.registry import register


class LrpParams(PropagationParams):
    composite: CompositeName = Field("epsilon_plus_flat", description=COMPOSITE_HELP)
    rules: dict[LayerType, RuleName] | None = Field(
        None, description="rules by layer type over the composite's: first (the first layer with weights), "
        "conv, linear -> epsilon, gamma, alpha_beta, z_plus, flat, w_square or z_box (images only)")
    epsilon: float = Field(1e-6, ge=1e-12, le=100.0, description="epsilon of the epsilon rule")
    gamma: float = Field(0.25, ge=0.0, le=100.0, description="gamma of the gamma rule (weight of positive weights)")
    alpha: float | None = Field(None, ge=1.0, le=100.0, description="alpha of the alpha-beta rule (weight of "
                                "positive contributions); alpha - beta = 1, so give either: default alpha 2, beta 1")
    beta: float | None = Field(None, ge=0.0, le=99.0, description="beta of the alpha-beta rule (weight of negative "
                               "contributions); default alpha - 1")

    @model_validator(mode="after")
    def _conserving(self) -> LrpParams:
        if self.alpha is not None and self.beta is not None and abs(self.alpha - self.beta - 1.0) > 1e-9:
            raise ValueError("alpha - beta must be 1 (alpha 1, beta 0 is z-plus; alpha 2, beta 1 the common choice)")
        return self

    @property
    def alpha_beta(self) -> tuple[float, float]:
        if self.alpha is not None:
            return self.alpha, self.alpha - 1.0
        if self.beta is not None:
            return self.beta + 1.0, self.beta
        return 2.0, 1.0


@register
class Lrp(PropagationExplainer[LrpParams]):
    """Layer-wise relevance propagation (Bach et al. 2015; Montavon et al. 2019). https://doi.org/10.1371/journal.pone.0130140"""

    name = "lrp"
    Params = LrpParams

    def _attribute(self, ctx: Context, p: LrpParams) -> Attribution:
        canon = canonized(ctx)
        names = composite_rules(p.composite, p.rules)
        alpha, beta = p.alpha_beta
        knobs = settings(ctx, epsilon=p.epsilon, gamma=p.gamma, alpha=alpha, beta=beta, stabilizer=p.stabilizer)
        rules = Composite.named(names, knobs).assign(canon)
        r, explained = relevance(ctx, canon, rules, seed="output")
        return relevance_map(ctx, r, explained, {"composite": p.composite, "rules": names,
                                                 "canonized": canon.summary()})
