"""KernelSHAP's coalitions and fits: which coalitions to evaluate for a budget, and how to turn their
values into Shapley values.

The design: coalition sizes come in complementary pairs (s, M - s). Going from the outside in (the
sizes the Shapley kernel weighs most), a size pair is enumerated completely when the budget left
covers all its coalitions and the kernel's share of that pair would draw at least as many; the sizes
left are sampled in complementary pairs without replacement, sizes by the kernel, members uniformly,
each distinct pair evaluated once and weighted by how often it was drawn (shap's KernelExplainer
enumerates sizes by the same rule). Enumerated coalitions carry their exact kernel weight, so only the
sampled sizes add variance.

The fit: the kernel-weighted least squares of the values on the coalitions under efficiency (the full
coalition's value is reached exactly). `additive` is KernelSHAP's linear surrogate, whose Shapley values
are its coefficients; with paired sampling it equals the second-order polynomial fit (Fumagalli, Witter
& Musco 2026, "PolySHAP", arXiv 2601.18608). With interactions the surrogate also has every pair and
triple of a set of features (PolySHAP of order three, with a small ridge on the interaction terms for
designs not much larger than the surrogate: the set is all features when few, else those the additive
fit ranks highest, as many as the design supports) and gives each interaction's coefficient to its
members in equal parts.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from math import comb

import numpy as np

from explainers.methods._surrogate import constrained_least_squares, distinct

RIDGE = 2e-4  # on the interaction coefficients, relative to kernel weights that sum to 1
MAX_INTERACTION_TERMS = 1400  # pairs + triples (20 features); beyond, the fit costs more than it saves


def size_weights(m: int) -> np.ndarray:
    """Total Shapley-kernel weight of all coalitions of each size 0..m: (m-1) / (s (m-s)), 0 at the ends."""
    s = np.arange(1, m)
    return np.concatenate([[0.0], (m - 1) / (s * (m - s)), [0.0]]) if m > 1 else np.zeros(m + 1)


@dataclass
class Design:
    masks: np.ndarray          # [N, M] bool: enumerated coalitions first, then sampled pairs (rows 2k, 2k + 1)
    weights: np.ndarray        # [N] kernel weights, summing to 1
    enumerated: int            # rows of the enumerated sizes (the first ones)
    enumerated_sizes: list[int]
    draws: np.ndarray          # [pairs] how often each sampled pair was drawn

    @property
    def pairs(self) -> int:
        return (len(self.masks) - self.enumerated) // 2

    def prefix(self, rows: int) -> Design:
        """The design cut to its first `rows` rows (what a time budget let evaluate): whole sampled pairs,
        whose weights are scaled up to the sampled sizes' whole weight."""
        if rows >= len(self.masks):
            return self
        if rows <= self.enumerated:
            return Design(self.masks[:rows], self.weights[:rows], rows, self.enumerated_sizes, np.zeros(0))
        pairs = (rows - self.enumerated) // 2
        end = self.enumerated + 2 * pairs
        weights = self.weights[:end].copy()
        weights[self.enumerated:] *= self.weights[self.enumerated:].sum() / weights[self.enumerated:].sum()
        return Design(self.masks[:end], weights, self.enumerated, self.enumerated_sizes, self.draws[:pairs])


def _pair_weight(w: np.ndarray, m: int, s: int) -> float:
    return float(w[s] + (w[m - s] if 2 * s != m else 0.0))


def _pair_count(m: int, s: int) -> int:
    return comb(m, s) * (1 if 2 * s == m else 2)


def _enumerate(m: int, s: int, per: float) -> tuple[list[np.ndarray], list[float]]:
    rows, weights = [], []
    for members in itertools.combinations(range(m), s):
        z = np.zeros(m, dtype=bool)
        z[list(members)] = True
        rows.append(z)
        weights.append(per)
        if 2 * s != m:
            rows.append(~z)
            weights.append(per)
    return rows, weights


def coalition_design(rng: np.random.Generator, m: int, n: int) -> Design:
    """At most `n` coalitions (besides the empty and the full one) for `m` features."""
    w = size_weights(m)
    open_sizes = list(range(1, m // 2 + 1))
    rows: list[np.ndarray] = []
    weights: list[float] = []
    left, sizes = n, []
    while open_sizes:
        s = open_sizes[0]
        count = _pair_count(m, s)
        share = _pair_weight(w, m, s) / sum(_pair_weight(w, m, t) for t in open_sizes)
        if count > left or left * share < count:
            break
        more, per = _enumerate(m, s, w[s] / comb(m, s))
        rows += more
        weights += per
        left -= count
        sizes += [s] if 2 * s == m else [s, m - s]
        open_sizes.pop(0)
    enumerated = len(rows)
    draws = np.zeros(0)
    if open_sizes and left >= 2:
        half, draws = _sample_pairs(rng, m, open_sizes, w, left // 2)
        rest = sum(_pair_weight(w, m, t) for t in open_sizes)
        each = draws / draws.sum() * rest / 2  # a pair's two coalitions have the same kernel weight
        rows += [r for z in half for r in (z, ~z)]
        weights += [float(x) for x in np.repeat(each, 2)]
    masks = np.array(rows, dtype=bool).reshape(-1, m)
    total = float(np.sum(weights)) if weights else 1.0
    return Design(masks, np.asarray(weights, dtype=np.float64) / total, enumerated, sorted(sizes), draws)


def _sample_pairs(rng: np.random.Generator, m: int, sizes: list[int], w: np.ndarray,
                  pairs: int) -> tuple[np.ndarray, np.ndarray]:
    """Up to `pairs` distinct complementary pairs from the sizes left (each pair as the half without
    feature 0), and how often each was drawn."""
    available = sum(comb(m, s) if 2 * s != m else comb(m, s) // 2 for s in sizes)
    pairs = min(pairs, available)
    probs = np.array([_pair_weight(w, m, s) for s in sizes])
    probs /= probs.sum()
    index: dict[bytes, int] = {}  # a pair's key -> its place in `kept` and `counts`
    kept: list[np.ndarray] = []
    counts: list[int] = []
    for _ in range(64):  # rounds of draws; each round draws what is still missing, twice over
        want = pairs - len(kept)
        if want <= 0:
            break
        k = 2 * want + 8
        chosen = np.asarray(sizes)[rng.choice(len(sizes), size=k, p=probs)]
        ranks = rng.random((k, m)).argsort(axis=1).argsort(axis=1)
        half = ranks < chosen[:, None]
        half[half[:, 0]] = ~half[half[:, 0]]  # the half without feature 0 names the pair
        for row in half:  # draws count until the last new pair: a with-replacement sample, stopped there
            if len(kept) == pairs:
                break
            key = np.packbits(row).tobytes()
            if key in index:
                counts[index[key]] += 1
            else:
                index[key] = len(kept)
                kept.append(row)
                counts.append(1)
    return np.array(kept, dtype=bool).reshape(-1, m), np.array(counts, dtype=np.float64)


def interaction_terms(features: Sequence[int]) -> list[tuple[int, ...]]:
    return [*itertools.combinations(features, 2), *itertools.combinations(features, 3)]


def interaction_count(k: int) -> int:
    """The pairs and triples of k features."""
    return comb(k, 2) + comb(k, 3)


def interaction_features(m: int, rows: int, additive: np.ndarray) -> list[int]:
    """`auto`'s interaction frontier: every feature where the surrogate's terms are few enough
    (`MAX_INTERACTION_TERMS`) and the design at least half as large as the surrogate; else the largest k
    whose pairs and triples number at most an eighth of the design, among the k features the additive fit
    ranks highest (none below three)."""
    if interaction_count(m) <= MAX_INTERACTION_TERMS and rows >= (m + interaction_count(m)) // 2:
        return list(range(m))
    k = 0
    while k < min(m, 20) and interaction_count(k + 1) <= rows / 8:
        k += 1
    if k < 3:
        return []
    return sorted(np.argsort(-np.abs(additive), kind="stable")[:k].tolist())


class Surrogate:
    """The kernel-weighted least squares of coalition values under efficiency (the values sum to `total`),
    built once for a set of coalitions and solved for any weights of them (the bootstrap's refits)."""

    def __init__(self, masks: np.ndarray, total: float, features: Sequence[int] = ()) -> None:
        self.m = masks.shape[1]
        self.total = total
        self.unique, self.inverse, _ = distinct(masks)  # a coalition sampled twice: one row, both weights
        self.rows = len(self.unique)
        self.terms = interaction_terms(features)  # the pairs and triples of these features (none: additive)
        if self.terms:
            z = np.concatenate([self.unique.astype(np.float64),
                                np.stack([self.unique[:, list(t)].all(axis=1) for t in self.terms], axis=1)], axis=1)
            self.design = z[:, :-1] - z[:, -1:]  # efficiency: the last coefficient is total - sum(others)
            self.last = z[:, -1]

    def solve(self, y: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Shapley values of the surrogate fitted to values y (minus the empty coalition's), one per mask."""
        m = self.m
        w = np.zeros(self.rows)
        np.add.at(w, self.inverse, weights)
        values = np.zeros(self.rows)
        values[self.inverse] = y
        if not self.terms:
            return constrained_least_squares(self.unique, values, w, self.total)
        target = values - self.last * self.total
        # normal equations with a ridge on the interaction coefficients (not on the eliminated one)
        gram = (self.design * w[:, None]).T @ self.design
        ridge = np.zeros(self.design.shape[1])
        ridge[m:] = RIDGE * w.sum()
        gram[np.diag_indices_from(gram)] += ridge
        rhs = self.design.T @ (w * target)
        try:
            head = np.linalg.solve(gram, rhs)
        except np.linalg.LinAlgError:  # a feature constant over the design: the least-norm solution
            head = np.linalg.lstsq(gram, rhs, rcond=None)[0]
        coef = np.append(head, self.total - head.sum())
        phi = coef[:m].copy()
        for term, c in zip(self.terms, coef[m:]):
            phi[list(term)] += c / len(term)
        return phi


def bootstrap_errors(design: Design, surrogate: Surrogate, y: np.ndarray, rng: np.random.Generator,
                     refits: int = 16) -> np.ndarray:
    """Standard errors from refits on the sampled pairs drawn again with replacement (the enumerated sizes
    fixed: they add no variance); NaN with fewer than 4 sampled pairs, 0 with none."""
    m, pairs = design.masks.shape[1], design.pairs
    if pairs == 0:
        return np.zeros(m)
    if pairs < 4:
        return np.full(m, np.nan)
    head = design.enumerated
    fits = []
    for _ in range(refits):
        counts = np.bincount(rng.integers(0, pairs, size=pairs), minlength=pairs).astype(np.float64)
        fits.append(surrogate.solve(y, design.weights * np.concatenate([np.ones(head), np.repeat(counts, 2)])))
    return np.std(fits, axis=0, ddof=1)
