"""KernelSHAP: Shapley values as the Shapley-kernel weighted linear fit over coalitions."""

from __future__ import annotations

from math import comb

import numpy as np
from pydantic import Field

from explainers.base import Attribution, BudgetExhausted, Context
from explainers.masking import FeatureMaskParams, feature_details, feature_masker
from explainers.methods._perturbation import ALL_MODALITIES, PerturbationExplainer
from explainers.methods._surrogate import constrained_least_squares, distinct, draw_coalitions, masked_values
from explainers.registry import register


class KernelShapParams(FeatureMaskParams):
    n_samples: int = Field(2048, ge=16, le=100000,
                           description="coalitions drawn (in complementary pairs) when not enumerating them all")
    max_exact_features: int = Field(12, ge=0, le=16,
                                    description="enumerate all 2^M coalitions when there are at most this many "
                                                "features (also whenever 2^M - 2 <= n_samples)")


def size_weights(m: int) -> np.ndarray:
    """Total Shapley-kernel weight of all coalitions of each size 0..m: (m-1) / (s (m-s)), 0 at the ends."""
    s = np.arange(1, m)
    return np.concatenate([[0.0], (m - 1) / (s * (m - s)), [0.0]]) if m > 1 else np.zeros(m + 1)


def all_coalitions(m: int) -> tuple[np.ndarray, np.ndarray]:
    """Every coalition but the empty and the full one [2^m - 2, m], with its Shapley-kernel weight."""
    codes = np.arange(1, 2 ** m - 1, dtype=np.int64)
    masks = ((codes[:, None] >> np.arange(m)) & 1).astype(bool)
    per_size = size_weights(m) / np.array([comb(m, s) for s in range(m + 1)], dtype=np.float64)
    return masks, per_size[masks.sum(axis=1)]


def paired_coalitions(rng: np.random.Generator, n: int, m: int) -> np.ndarray:
    """`n // 2` coalitions, sizes drawn from the Shapley kernel's size distribution and members uniformly,
    each followed by its complement: [2 * (n // 2), m], pair k in rows 2k and 2k + 1."""
    probs = size_weights(m)
    half = draw_coalitions(rng, max(1, n // 2), probs / probs.sum())
    return np.stack([half, ~half], axis=1).reshape(-1, m)


GROUPS = 16  # batch means: the standard errors come from the spread of fits on 16 disjoint groups of pairs


def fit(masks: np.ndarray, values: np.ndarray, base: float, score: float) -> np.ndarray:
    """The efficiency-constrained fit on sampled coalitions (each weighted by how often it was drawn)."""
    unique, inverse, counts = distinct(masks)
    y = np.zeros(len(unique))
    y[inverse] = values
    return constrained_least_squares(unique, y - base, counts.astype(np.float64), score - base)


def standard_errors(masks: np.ndarray, values: np.ndarray, base: float, score: float) -> np.ndarray:
    """Per feature, the standard error of the fit (Covert & Lee 2021's paired sampling, estimated by batch
    means: groups of pairs are fitted apart, and the spread of their fits shrinks as 1 / sqrt(groups))."""
    pairs = len(masks) // 2
    groups = min(GROUPS, pairs // 4)
    if groups < 2:
        return np.full(masks.shape[1], np.nan)
    edges = np.linspace(0, pairs, groups + 1).astype(int) * 2
    fits = np.stack([fit(masks[a:b], values[a:b], base, score) for a, b in zip(edges[:-1], edges[1:])])
    return fits.std(axis=0, ddof=1) / np.sqrt(groups)


@register
class KernelShap(PerturbationExplainer[KernelShapParams]):
    """KernelSHAP (Lundberg & Lee 2017). https://arxiv.org/abs/1705.07874

    Hidden features come from the shared masker (tabular: the model averaged over
    background rows, the interventional value function of shap's KernelExplainer).
    The fit enforces efficiency exactly: base_value + sum(values) = score.
    """

    name = "kernel_shap"
    modalities = ALL_MODALITIES
    Params = KernelShapParams

    def _attribute(self, ctx: Context, p: KernelShapParams) -> Attribution:
        masker = feature_masker(ctx, p)
        m = masker.n_features
        budget = p.max_evaluations // masker.rows_per_mask if p.max_evaluations else None
        exact = (m <= p.max_exact_features or 2 ** m - 2 <= p.n_samples) and (budget is None or 2 ** m <= budget)
        ends = np.stack([np.zeros(m, dtype=bool), np.ones(m, dtype=bool)])
        if exact:
            masks, weights = all_coalitions(m)
        else:
            masks = paired_coalitions(np.random.default_rng(p.seed), p.n_samples, m)
        first = 2 / (2 + len(masks))  # about the share of progress of the two ends
        y_ends = masker.value(ctx, ends, ctx.batch_size, share=first)
        base, score = float(y_ends[0]), float(y_ends[1])
        if exact:
            y = masker.value(ctx, masks, ctx.batch_size, done=first, share=1 - first)
            values = constrained_least_squares(masks, y - base, weights, score - base)
            errors = np.zeros(m)
            evaluated = 2 + len(masks)
        else:  # distinct coalitions are evaluated once, in draw order: a budget keeps a prefix of whole pairs
            drawn, distinct_evaluated = masked_values(ctx, masker, masks, ctx.batch_size, partial=True, done=first,
                                                      share=1 - first)
            evaluated = 2 + distinct_evaluated
            pairs = len(drawn) // 2
            if pairs == 0:
                raise BudgetExhausted("evaluations")
            masks, drawn = masks[:2 * pairs], drawn[:2 * pairs]
            values = fit(masks, drawn, base, score)
            errors = standard_errors(masks, drawn, base, score)
        ctx.error = float(np.nanmax(errors)) if np.isfinite(errors).any() else None
        details = {"base_value": base, "score": score, "exact": exact, "n_evaluations": evaluated,
                   "efficiency_gap": score - base - float(values.sum()),
                   "standard_errors": [None if not np.isfinite(e) else float(e) for e in errors],
                   **feature_details(masker)}
        if not exact:
            details["n_pairs"] = len(masks) // 2
        return Attribution(masker.to_map(values), details)

