"""Deep Taylor decomposition: z-plus in the hidden layers, a rule for the input domain at the first."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from explainers.base import Attribution, Context
from explainers.methods._propagation import (
    PropagationExplainer,
    PropagationParams,
    canonized,
    relevance,
    relevance_map,
    settings,
)
from explainers.propagation.composites import Composite, LayerType, RuleName
from explainers.registry import register
from explainers.types import Modality


class DeepTaylorParams(PropagationParams):
    input_rule: Literal["auto", "z_box", "w_square", "flat"] = Field(
        "auto", description="rule of the first layer: z_box for pixels bounded by 0 and 255 (images), w_square "
        "for unbounded inputs (text embeddings, tabular features); auto picks by modality")


@register
class DeepTaylor(PropagationExplainer[DeepTaylorParams]):
    """Deep Taylor decomposition (Montavon et al. 2017). https://doi.org/10.1016/j.patcog.2016.11.008"""

    name = "deep_taylor"
    Params = DeepTaylorParams

    def _attribute(self, ctx: Context, p: DeepTaylorParams) -> Attribution:
        first: RuleName = p.input_rule if p.input_rule != "auto" else (
            "z_box" if ctx.model.modality is Modality.IMAGE else "w_square")
        names: dict[LayerType, RuleName] = {"conv": "z_plus", "linear": "z_plus", "first": first}
        canon = canonized(ctx)
        rules = Composite.named(names, settings(ctx, stabilizer=p.stabilizer)).assign(canon)
        r, explained = relevance(ctx, canon, rules, seed="output")
        return relevance_map(ctx, r, explained, {"rules": names, "canonized": canon.summary()})
