"""KernelSHAP: Shapley values as the Shapley-kernel weighted linear fit over coalitions."""

from __future__ import annotations

from math import comb

import numpy as np
from pydantic import Field

from explainers.base import Attribution, Context
from explainers.masking import FeatureMaskParams, feature_masker
from explainers.methods._perturbation import ALL_MODALITIES, PerturbationExplainer
from explainers.methods._surrogate import constrained_least_squares, distinct, draw_coalitions
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


def sampled_coalitions(rng: np.random.Generator, n: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    """`n` coalitions, sizes drawn from the Shapley kernel's size distribution and members uniformly,
    each with its complement; distinct ones with their counts as weights."""
    probs = size_weights(m)
    half = draw_coalitions(rng, max(1, n // 2), probs / probs.sum())
    unique, _, counts = distinct(np.vstack([half, ~half]))
    return unique, counts.astype(np.float64)


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
        exact = m <= p.max_exact_features or 2 ** m - 2 <= p.n_samples
        if exact:
            masks, weights = all_coalitions(m)
        else:
            masks, weights = sampled_coalitions(np.random.default_rng(p.seed), p.n_samples, m)
        ends = np.stack([np.zeros(m, dtype=bool), np.ones(m, dtype=bool)])
        y = masker.value(ctx, np.vstack([ends, masks]), ctx.batch_size)
        base, score = float(y[0]), float(y[1])
        values = constrained_least_squares(masks, y[2:] - base, weights, score - base)
        details = {"base_value": base, "score": score, "exact": exact, "n_evaluations": len(y),
                   "efficiency_gap": score - base - float(values.sum())}
        return Attribution(masker.to_map(values), details)
