"""Shapley value sampling: marginal contributions averaged over random feature orderings."""

from __future__ import annotations

from math import factorial

import numpy as np
from pydantic import Field, model_validator

from explainers.base import Attribution, Context
from explainers.masking import FeatureMaskParams, Masker, feature_masker
from explainers.methods._perturbation import ALL_MODALITIES, PerturbationExplainer
from explainers.methods._surrogate import masked_values
from explainers.registry import register


class ShapleySamplingParams(FeatureMaskParams):
    n_permutations: int = Field(50, ge=2, le=20000, description="feature orderings walked; with `antithetic` they "
                                "come in pairs (an ordering and its reverse), so the number must be even")
    antithetic: bool = Field(True, description="pair each random ordering with its reverse (exact after one pair "
                             "for games without interactions of three or more features)")
    max_exact_features: int = Field(8, ge=0, le=14, description="with at most this many features, enumerate all "
                                    "2^M coalitions and return the exact Shapley values")

    @model_validator(mode="after")
    def _pairs(self) -> ShapleySamplingParams:
        if self.antithetic and self.n_permutations % 2:
            raise ValueError("n_permutations must be even when antithetic is true (orderings come in pairs)")
        return self


def draw_permutations(rng: np.random.Generator, n: int, m: int, antithetic: bool) -> np.ndarray:
    """Orderings [n, m] of the features; antithetic: rows 2k and 2k+1 are an ordering and its reverse."""
    if not antithetic:
        return np.argsort(rng.random((n, m)), axis=1)
    half = np.argsort(rng.random((n // 2, m)), axis=1)
    return np.stack([half, half[:, ::-1]], axis=1).reshape(-1, m)


def path_masks(perms: np.ndarray) -> np.ndarray:
    """Coalitions along each ordering [n, m + 1, m]: step k keeps the first k features of the ordering."""
    n, m = perms.shape
    position = np.argsort(perms, axis=1)  # where each feature comes in its ordering
    return position[:, None, :] < np.arange(m + 1)[None, :, None]


def sample_marginals(ctx: Context, masker: Masker, perms: np.ndarray,
                     batch_size: int) -> tuple[np.ndarray, float, float, int]:
    """Each feature's marginal contribution in each ordering [n, m], v(empty), v(all), model evaluations.

    Along an ordering the contributions telescope: each row sums to v(all) - v(empty).
    """
    n, m = perms.shape
    masks = path_masks(perms)
    values, evaluated = masked_values(ctx, masker, masks.reshape(n * (m + 1), m), batch_size)
    values = values.reshape(n, m + 1)
    steps = np.diff(values, axis=1)  # step k adds feature perms[:, k]
    marginals = np.empty((n, m))
    np.put_along_axis(marginals, perms, steps, axis=1)
    return marginals, float(values[0, 0]), float(values[0, -1]), evaluated


def exact_shapley(ctx: Context, masker: Masker, batch_size: int) -> tuple[np.ndarray, float, float, int]:
    """Exact Shapley values from all 2^m coalitions: sum over S of |S|! (m - |S| - 1)! / m! (v(S + i) - v(S))."""
    m = masker.n_features
    codes = np.arange(2 ** m, dtype=np.int64)
    masks = ((codes[:, None] >> np.arange(m)) & 1).astype(bool)
    values = masker.value(ctx, masks, batch_size)
    sizes = masks.sum(axis=1)
    weight = np.array([factorial(s) * factorial(m - s - 1) / factorial(m) for s in range(m)] + [0.0])
    phi = np.empty(m)
    for i in range(m):
        without = codes[~masks[:, i]]
        phi[i] = float(np.sum(weight[sizes[without]] * (values[without | (1 << i)] - values[without])))
    return phi, float(values[0]), float(values[-1]), len(masks)


def standard_errors(marginals: np.ndarray, antithetic: bool) -> list[float] | None:
    """Standard error of each feature's mean contribution: over orderings, or over antithetic pairs
    (the independent draws then); None with a single draw."""
    units = marginals.reshape(-1, 2, marginals.shape[1]).mean(axis=1) if antithetic else marginals
    if len(units) < 2:
        return None
    return (units.std(axis=0, ddof=1) / np.sqrt(len(units))).tolist()


@register
class ShapleySampling(PerturbationExplainer[ShapleySamplingParams]):
    """Shapley value sampling (Castro et al. 2009; Strumbelj & Kononenko 2010). https://doi.org/10.1016/j.cor.2008.04.004

    Features are hidden through the shared masker (tabular: the model averaged over background
    rows). Each ordering adds the features one at a time from the empty coalition; a feature's
    value is its mean marginal contribution, so base_value + sum(values) = score exactly.
    `details.standard_errors` has one standard error per feature; with at most
    `max_exact_features` features the values are exact (all coalitions enumerated).
    """

    name = "shapley_sampling"
    contrastive = True
    modalities = ALL_MODALITIES
    Params = ShapleySamplingParams

    def _attribute(self, ctx: Context, p: ShapleySamplingParams) -> Attribution:
        masker = feature_masker(ctx, p)
        m = masker.n_features
        exact = m <= p.max_exact_features
        errors: list[float] | None
        if exact:
            values, base, score, evaluated = exact_shapley(ctx, masker, ctx.batch_size)
            errors = [0.0] * m
        else:
            perms = draw_permutations(np.random.default_rng(p.seed), p.n_permutations, m, p.antithetic)
            marginals, base, score, evaluated = sample_marginals(ctx, masker, perms, ctx.batch_size)
            values = marginals.mean(axis=0)
            errors = standard_errors(marginals, p.antithetic)
        details = {"base_value": base, "score": score, "exact": exact, "n_features": m,
                   "n_permutations": 0 if exact else p.n_permutations, "antithetic": p.antithetic and not exact,
                   "n_evaluations": evaluated, "standard_errors": errors,
                   "max_standard_error": None if errors is None else max(errors, default=0.0),
                   "efficiency_gap": score - base - float(values.sum())}
        return Attribution(masker.to_map(values), details)
