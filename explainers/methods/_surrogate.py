"""Shared pieces of the local surrogate methods (LIME, KernelSHAP): coalition sampling,
one model evaluation per distinct coalition, kernels and weighted linear fits.

LIME and KernelSHAP differ only in the distribution of coalition sizes they draw,
the kernel that weights each coalition, and the constraint on the fit.
"""

from __future__ import annotations

import numpy as np

from explainers.context import Context
from explainers.masking import Masker


def draw_coalitions(rng: np.random.Generator, n: int, size_probs: np.ndarray) -> np.ndarray:
    """`n` binary coalitions [n, M]: the number of members drawn from `size_probs` (over 0..M),
    then the members uniformly (a row's uniform draws ranked, the lowest `size` kept)."""
    m = len(size_probs) - 1
    sizes = rng.choice(m + 1, size=n, p=size_probs)
    ranks = rng.random((n, m)).argsort(axis=1).argsort(axis=1)
    return ranks < sizes[:, None]


def distinct(masks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct rows of boolean masks [N, M] -> (unique [U, M], inverse [N], counts [U])."""
    if masks.shape[1] == 0 or len(masks) == 0:
        return masks[:1], np.zeros(len(masks), dtype=np.int64), np.array([len(masks)])
    packed = np.packbits(masks, axis=1)
    keys = np.ascontiguousarray(packed).view(np.dtype((np.void, packed.shape[1]))).ravel()
    _, first, inverse, counts = np.unique(keys, return_index=True, return_inverse=True, return_counts=True)
    return masks[first], inverse.ravel(), counts


def masked_values(ctx: Context, masker: Masker, masks: np.ndarray, batch_size: int, *, partial: bool = False,
                  done: float = 0.0, share: float = 1.0) -> tuple[np.ndarray, int]:
    """The target's score for each mask [N] (one model evaluation per distinct mask) and the number of
    distinct masks evaluated. Progress goes 0 -> 1.

    partial: where the budget runs out, the scores of the longest prefix of masks that was evaluated
    (distinct masks go in the order of their first use).
    """
    unique, inverse, _ = distinct(masks)
    first = np.full(len(unique), len(masks), dtype=np.int64)
    np.minimum.at(first, inverse, np.arange(len(masks)))
    order = np.argsort(first, kind="stable")
    got = masker.value(ctx, unique[order], batch_size, partial=partial, done=done, share=share)
    known = np.full(len(unique), np.nan)
    known[order[:len(got)]] = got
    values = known[inverse]
    done = int(np.argmax(np.isnan(values))) if np.isnan(values).any() else len(values)
    return values[:done], len(got)


def exponential_kernel(distances: np.ndarray, width: float) -> np.ndarray:
    """LIME's kernel: sqrt(exp(-d^2 / width^2))."""
    return np.sqrt(np.exp(-(np.asarray(distances, dtype=np.float64) ** 2) / width ** 2))


def cosine_distance_to_all_ones(masks: np.ndarray) -> np.ndarray:
    """Cosine distance between each binary row [N, M] and the all-ones row: 1 - sqrt(k / M)
    for k members (an empty row is at distance 1, as scikit-learn's cosine distance gives)."""
    return 1.0 - np.sqrt(masks.sum(axis=1) / masks.shape[1])


def weighted_ridge(data: np.ndarray, y: np.ndarray, weights: np.ndarray,
                   alpha: float) -> tuple[np.ndarray, float, float]:
    """scikit-learn Ridge with an intercept fitted with sample weights -> (coef, intercept, weighted R^2)."""
    from sklearn.linear_model import Ridge

    model = Ridge(alpha=alpha, fit_intercept=True)
    model.fit(data, y, sample_weight=weights)
    score = float(model.score(data, y, sample_weight=weights))
    return np.asarray(model.coef_, dtype=np.float64), float(model.intercept_), score


def constrained_least_squares(data: np.ndarray, y: np.ndarray, weights: np.ndarray, total: float) -> np.ndarray:
    """argmin_phi sum_n w_n (y_n - data_n . phi)^2 subject to sum(phi) = total, exactly:
    the last coefficient is eliminated as total - sum(others)."""
    m = data.shape[1]
    if m == 1 or len(data) == 0:
        return np.full(m, total / max(m, 1))
    z = data.astype(np.float64)
    design = z[:, :-1] - z[:, -1:]
    target = np.asarray(y, dtype=np.float64) - z[:, -1] * total
    root = np.sqrt(np.asarray(weights, dtype=np.float64))
    head = np.linalg.lstsq(design * root[:, None], target * root, rcond=None)[0]
    return np.append(head, total - head.sum())
