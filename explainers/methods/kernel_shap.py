"""KernelSHAP: Shapley values as the Shapley-kernel weighted linear fit over coalitions."""

from __future__ import annotations

from math import comb
from typing import Literal

import numpy as np
from pydantic import Field

from explainers.base import Attribution, BudgetExhausted, Context
from explainers.errors import InvalidParams
from explainers.masking import FeatureMaskParams, feature_details, feature_masker
from explainers.methods._perturbation import ALL_MODALITIES, PerturbationExplainer
from explainers.methods._shapley_design import (
    MAX_INTERACTION_TERMS,
    Surrogate,
    bootstrap_errors,
    coalition_design,
    interaction_count,
    interaction_features,
    size_weights,
)
from explainers.methods._surrogate import constrained_least_squares
from explainers.registry import register


class KernelShapParams(FeatureMaskParams):
    n_samples: int = Field(2048, ge=16, le=100000,
                           description="coalitions drawn (in complementary pairs) when not enumerating them all")
    max_exact_features: int = Field(12, ge=0, le=16,
                                    description="enumerate all 2^M coalitions when there are at most this many "
                                                "features (also whenever 2^M - 2 <= n_samples)")
    surrogate: Literal["auto", "additive", "interactions"] = Field(
        "auto", description="additive: KernelSHAP's linear fit; interactions: every pair and triple of features "
        "in the fit too (PolySHAP of order 3, at most 20 features), their coefficients shared by their members; "
        "auto: those of every feature where the coalitions are enough, else of the features the additive fit "
        "ranks highest, as many as the coalitions support (details.interaction_features)")


def all_coalitions(m: int) -> tuple[np.ndarray, np.ndarray]:
    """Every coalition but the empty and the full one [2^m - 2, m], with its Shapley-kernel weight."""
    codes = np.arange(1, 2 ** m - 1, dtype=np.int64)
    masks = ((codes[:, None] >> np.arange(m)) & 1).astype(bool)
    per_size = size_weights(m) / np.array([comb(m, s) for s in range(m + 1)], dtype=np.float64)
    return masks, per_size[masks.sum(axis=1)]


@register
class KernelShap(PerturbationExplainer[KernelShapParams]):
    """KernelSHAP (Lundberg & Lee 2017). https://arxiv.org/abs/1705.07874

    Hidden features come from the shared masker (tabular: the model averaged over
    background rows, the interventional value function of shap's KernelExplainer).
    The fit enforces efficiency exactly: base_value + sum(values) = score. The coalitions and
    the fit: see `_shapley_design` (complete sizes enumerated, the rest sampled in pairs without
    replacement; an additive or an order-three surrogate); standard errors by a bootstrap of the
    sampled pairs.
    """

    name = "kernel_shap"
    contrastive = True
    modalities = ALL_MODALITIES
    Params = KernelShapParams

    def _attribute(self, ctx: Context, p: KernelShapParams) -> Attribution:
        masker = feature_masker(ctx, p)
        m = masker.n_features
        if p.surrogate == "interactions" and interaction_count(m) > MAX_INTERACTION_TERMS:
            raise InvalidParams(f"surrogate 'interactions' takes at most 20 features, not {m}: ask for fewer "
                                "superpixels, or surrogate 'auto'", code="invalid_params", details={"features": m})
        budget = p.max_evaluations // masker.rows_per_mask if p.max_evaluations else None
        exact = (m <= p.max_exact_features or 2 ** m - 2 <= p.n_samples) and (budget is None or 2 ** m <= budget)
        ends = np.stack([np.zeros(m, dtype=bool), np.ones(m, dtype=bool)])
        n = p.n_samples if budget is None else min(p.n_samples, budget - 2)
        if exact:
            masks, weights = all_coalitions(m)
        elif n < 2:
            raise BudgetExhausted("evaluations")
        else:
            design = coalition_design(np.random.default_rng(p.seed), m, n)
            masks = design.masks
            if n < p.n_samples:
                ctx.stopped = "budget"  # the evaluation budget sized the design
        first = 2 / (2 + len(masks))  # about the share of progress of the two ends
        y_ends = masker.value(ctx, ends, ctx.batch_size, share=first)
        base, score = float(y_ends[0]), float(y_ends[1])
        details: dict[str, object] = {}
        if exact:
            y = masker.value(ctx, masks, ctx.batch_size, done=first, share=1 - first)
            values = constrained_least_squares(masks, y - base, weights, score - base)
            errors = np.zeros(m)
            evaluated = 2 + len(masks)
        else:  # a time budget keeps the evaluated prefix: the enumerated sizes, then whole sampled pairs
            y = masker.value(ctx, masks, ctx.batch_size, partial=True, done=first, share=1 - first)
            evaluated = 2 + len(y)
            design = design.prefix(len(y))
            if not len(design.masks):
                raise BudgetExhausted("evaluations")
            y = y[:len(design.masks)] - base
            additive = Surrogate(design.masks, score - base)
            values = additive.solve(y, design.weights)
            features = {"auto": interaction_features(m, len(design.masks), values), "additive": [],
                        "interactions": list(range(m))}[p.surrogate]
            surrogate = Surrogate(design.masks, score - base, features) if features else additive
            if features:
                values = surrogate.solve(y, design.weights)
            errors = bootstrap_errors(design, surrogate, y, np.random.default_rng([p.seed, 1]))
            details = {"n_pairs": design.pairs, "enumerated_sizes": design.enumerated_sizes,
                       "surrogate": "interactions" if features else "additive",
                       "interaction_features": [masker.names[i] for i in features]}
        ctx.error = float(np.nanmax(errors)) if np.isfinite(errors).any() else None
        details = {"base_value": base, "score": score, "exact": exact, "n_evaluations": evaluated,
                   "efficiency_gap": score - base - float(values.sum()),
                   "standard_errors": [None if not np.isfinite(e) else float(e) for e in errors],
                   **details, **feature_details(masker)}
        return Attribution(masker.to_map(values), details)
