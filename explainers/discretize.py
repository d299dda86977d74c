"""Quartile bins of tabular features, learnt from the model's background sample.

A continuous feature gets the bins `<= q1`, `q1 < . <= q2`, `q2 < . <= q3`,
`> q3`, where the thresholds are quartiles of the background column taken as
background values themselves (`method="lower"`, so every bin holds at least one
background value; repeated quartiles merge bins). A categorical feature gets one
bin per background value. Values are sampled inside bins uniformly among the
background values of the bin (not from a truncated normal as the lime package
does): a sample never leaves the data's support. Shared by LIME and Anchors.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from explainers.models.manifest import FeatureSpec

QUANTILES = (25.0, 50.0, 75.0)


def _fmt(value: float) -> str:
    return f"{value:.4g}" if abs(value) < 1e4 else f"{value:.0f}"


@dataclass
class Discretizer:
    """Bins per feature; `bins`, `sample_bins`, `sample_values` and `condition` are vectorised."""

    names: list[str]
    categorical: np.ndarray      # [F] bool
    cuts: list[np.ndarray]       # per feature: sorted thresholds (continuous) or bin values (categorical)
    sorted_bg: np.ndarray        # [n, F] each background column sorted, so a bin is a contiguous run
    start: np.ndarray            # [F, B] first row of each bin in sorted_bg
    count: np.ndarray            # [F, B] background values per bin (0 pads features with fewer bins)
    labels: list[dict[float, str]]

    @classmethod
    def fit(cls, background: np.ndarray, features: list[FeatureSpec]) -> Discretizer:
        """Quartile bins (continuous) or value bins (categorical) of each background column."""
        bg = np.asarray(background, dtype=np.float64)
        sorted_bg = np.sort(bg, axis=0)
        cuts: list[np.ndarray] = []
        counts: list[np.ndarray] = []
        for f, spec in enumerate(features):
            col = sorted_bg[:, f]
            if spec.kind == "categorical":
                values, n = np.unique(col, return_counts=True)
                cuts.append(values)
                counts.append(n)
            else:
                q = np.unique(np.percentile(col, QUANTILES, method="lower"))
                q = q[q < col[-1]]  # a threshold at the maximum would leave the last bin empty
                cuts.append(q)
                counts.append(np.diff(np.searchsorted(col, q, side="right"), prepend=0, append=len(col)))
        width = max(len(c) for c in counts)
        count = np.zeros((len(features), width), dtype=np.int64)
        for f, n in enumerate(counts):
            count[f, :len(n)] = n
        start = np.cumsum(count, axis=1) - count
        labels = [dict(zip(s.values or [], s.labels or [])) for s in features]
        return cls([s.name for s in features], np.array([s.kind == "categorical" for s in features]),
                   cuts, sorted_bg, start, count, labels)

    @property
    def n_features(self) -> int:
        return len(self.names)

    def bins(self, rows: np.ndarray) -> np.ndarray:
        """Bin index of each value [N, F] -> [N, F]; an unseen categorical value gets a bin of its own."""
        rows = np.atleast_2d(np.asarray(rows, dtype=np.float64))
        out = np.empty(rows.shape, dtype=np.int64)
        for f, cut in enumerate(self.cuts):
            col = rows[:, f]
            if self.categorical[f]:
                i = np.minimum(np.searchsorted(cut, col), len(cut) - 1)
                out[:, f] = np.where(cut[i] == col, i, self.count.shape[1])
            else:
                out[:, f] = np.searchsorted(cut, col, side="left")
        return out

    def sample_bins(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """`n` rows of bins [n, F], each feature's bin drawn with the background's bin frequencies."""
        rows = rng.integers(0, len(self.sorted_bg), size=(n, self.n_features))
        return self._bin_of_sorted_row(rows)

    def sample_values(self, rng: np.random.Generator, bins: np.ndarray) -> np.ndarray:
        """A value per bin [N, F] -> [N, F], uniform among the background values of that bin."""
        cols = np.arange(self.n_features)
        bins = np.minimum(bins, self.count.shape[1] - 1)
        count = np.maximum(self.count[cols, bins], 1)
        rows = self.start[cols, bins] + np.floor(rng.random(bins.shape) * count).astype(np.int64)
        return self.sorted_bg[np.minimum(rows, len(self.sorted_bg) - 1), cols]

    def condition(self, feature: int, b: int) -> str:
        """A readable condition for bin `b` of a feature, e.g. `13.4 < mean radius <= 15.8`."""
        name, cut = self.names[feature], self.cuts[feature]
        if self.categorical[feature]:
            return f"{name} = {self._category(feature, float(cut[b]))}"
        if len(cut) == 0:
            return f"{name} is any value"
        if b == 0:
            return f"{name} <= {_fmt(cut[0])}"
        if b >= len(cut):
            return f"{name} > {_fmt(cut[-1])}"
        return f"{_fmt(cut[b - 1])} < {name} <= {_fmt(cut[b])}"

    def conditions(self, row: np.ndarray) -> list[str]:
        """The condition of the bin each value of one row falls in."""
        values = np.ravel(np.asarray(row, dtype=np.float64))
        bins = self.bins(values)[0]
        return [f"{self.names[f]} = {self._category(f, float(values[f]))}" if self.categorical[f]
                else self.condition(f, int(b)) for f, b in enumerate(bins)]

    def _category(self, feature: int, value: float) -> str:
        return self.labels[feature].get(value, _fmt(value))

    def _bin_of_sorted_row(self, rows: np.ndarray) -> np.ndarray:
        """Bin of sorted background rows [N, F] -> [N, F] (bins are contiguous runs of sorted rows)."""
        ends = np.cumsum(self.count, axis=1)  # [F, B]
        out = np.empty(rows.shape, dtype=np.int64)
        for f in range(self.n_features):
            out[:, f] = np.searchsorted(ends[f], rows[:, f], side="right")
        return out
