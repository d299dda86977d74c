"""How much two maps of the same input agree: rank correlation, the overlap of their top features, SSIM."""

from __future__ import annotations

import numpy as np
from scipy.stats import spearmanr


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation of two maps (0 where either is constant)."""
    x, y = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    if x.size != y.size:
        raise ValueError("maps of different sizes")
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return 0.0
    return float(spearmanr(x, y).statistic)


def top_overlap(a: np.ndarray, b: np.ndarray, percent: float = 10.0) -> float:
    """The share of the top `percent` % features of map a that are in the top `percent` % of map b."""
    x, y = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    k = max(1, int(round(x.size * percent / 100)))
    top_x = set(np.argsort(-x, kind="stable")[:k].tolist())
    top_y = set(np.argsort(-y, kind="stable")[:k].tolist())
    return len(top_x & top_y) / k


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Structural similarity of two 2-D maps, each min-max normalised (1-D maps: as one row)."""
    from skimage.metrics import structural_similarity

    x, y = (np.atleast_2d(np.asarray(m, dtype=np.float64)) for m in (a, b))
    x, y = (_unit(m) for m in (x, y))
    side = min(x.shape)
    window = min(7, side if side % 2 == 1 else side - 1)
    if window < 3:  # too small for a window: compare the values
        return float(1.0 - np.abs(x - y).mean())
    return float(structural_similarity(x, y, data_range=1.0, win_size=window))


def _unit(m: np.ndarray) -> np.ndarray:
    span = float(m.max() - m.min())
    return (m - m.min()) / span if span > 0 else np.zeros_like(m)


def agreement(maps: dict[str, np.ndarray], percent: float = 10.0) -> list[dict[str, object]]:
    """Every pair of maps: their Spearman correlation and top-`percent` % overlap."""
    names = list(maps)
    return [{"methods": [p, q], "spearman": spearman(maps[p], maps[q]),
             "top_overlap": top_overlap(maps[p], maps[q], percent), "top_percent": percent}
            for i, p in enumerate(names) for q in names[i + 1:]]
