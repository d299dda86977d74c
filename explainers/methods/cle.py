"""CLE: LIME's surrogate with conjunctions of features, so that it can express their interactions."""

from __future__ import annotations

from itertools import combinations

import numpy as np
from pydantic import Field

from explainers.base import Attribution, Context
from explainers.methods._neighbourhood import LimeParams, neighbourhood
from explainers.methods._perturbation import ALL_MODALITIES, PerturbationExplainer
from explainers.methods.lime import lime_fit
from explainers.registry import register

MAX_REPORTED = 10


class CleParams(LimeParams):
    max_span: int = Field(2, ge=1, le=3, description="largest conjunction in the surrogate: 2 adds every pair of "
                          "context features, 3 also every triple; 1 adds none (the surrogate is LIME's)")
    context_features: int = Field(8, ge=2, le=32, description="features whose conjunctions enter the surrogate: "
                                  "the strongest of a first LIME fit on the same samples")
    include_single: bool = Field(True, description="keep each feature's own term next to the conjunctions")


def conjunctions(data: np.ndarray, context: list[int], max_span: int) -> tuple[np.ndarray, list[tuple[int, ...]]]:
    """One column per conjunction of 2..max_span context features: 1 where all its members are 1."""
    terms = [c for span in range(2, max_span + 1) for c in combinations(sorted(context), span)]
    binary = data.astype(bool)
    columns = [binary[:, list(t)].all(axis=1) for t in terms]
    return (np.column_stack(columns) if columns else np.zeros((len(data), 0), dtype=bool)), terms


def spread(coef: np.ndarray, terms: list[tuple[int, ...]], m: int, singles: bool) -> np.ndarray:
    """Per-feature values [m]: a feature's own weight plus an equal share of each conjunction it is in,
    so that the values sum to the surrogate's prediction at the input minus its intercept."""
    values = coef[:m].copy() if singles else np.zeros(m)
    for weight, term in zip(coef[m if singles else 0:], terms):
        values[list(term)] += weight / len(term)
    return values


@register
class Cle(PerturbationExplainer[CleParams]):
    """CLE, contextual local explanation (Zhang et al. 2019). https://arxiv.org/abs/1910.00768

    The samples, kernel and ridge are LIME's (`explainers.methods._neighbourhood`). The surrogate's
    interpretable representation gets one binary column per conjunction of up to `max_span` context
    features (1 where all its members are kept), and the kernel's distance is taken in that representation.
    With `max_span` 1 it is LIME. The map gives each feature its own weight plus an equal share of its
    conjunctions' weights; `details.interactions` lists the strongest conjunctions.
    """

    name = "cle"
    modalities = ALL_MODALITIES
    Params = CleParams

    def _attribute(self, ctx: Context, p: CleParams) -> Attribution:
        hood = neighbourhood(ctx, p, np.random.default_rng(p.seed))
        m = hood.data.shape[1]
        width = hood.kernel_width(p.kernel_width)
        single = hood.data.astype(np.float64)
        lime_coef, _, lime_score = lime_fit(single, hood.y, hood.distances(), width, p.ridge_alpha)
        context = np.argsort(-np.abs(lime_coef), kind="stable")[:min(p.context_features, m)].tolist()
        extra, terms = conjunctions(hood.data, context, p.max_span if m > 1 else 1)
        singles = p.include_single or not terms
        design = np.hstack([single, extra]) if singles else extra.astype(np.float64)
        coef, intercept, score = lime_fit(design, hood.y, hood.distances(design), width, p.ridge_alpha)
        values = spread(coef, terms, m, singles)
        weights = coef[m if singles else 0:]
        strongest = np.argsort(-np.abs(weights), kind="stable")[:MAX_REPORTED]
        details = {
            "intercept": intercept, "score": score, "lime_score": lime_score,
            "local_prediction": intercept + float(coef.sum()), "kernel_width": width, "n_samples": p.n_samples,
            "n_evaluations": hood.n_evaluations, "n_terms": int(design.shape[1]),
            "context": [hood.names[i] for i in context],
            "interactions": [{"features": [hood.names[i] for i in terms[k]], "indices": list(terms[k]),
                              "weight": float(weights[k])} for k in strongest.tolist()],
        }
        if hood.conditions is not None:
            details["conditions"] = hood.conditions
        return Attribution(hood.to_map(values), details)
