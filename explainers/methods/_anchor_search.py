"""Anchor search (Ribeiro et al. 2018): KL-LUCB arm selection inside a beam search.

Independent of modality. An anchor is a tuple of predicate ids in the order they
were added. `sample(anchors, counts)` draws `counts[i]` perturbations conditioned
on `anchors[i]`, evaluates them all in one model call, and returns per anchor the
hits [n] (did the model keep the explained class?) and, where the sampler allows
reuse, which predicates each sample satisfies [n, P]. Reuse is exact when a sample
of D(.|A) that satisfies p is a sample of D(.|A + p) (independent token/superpixel
masks; rows drawn from the data conditioned on A): a new candidate A + p then
starts with its parent's samples that satisfy p. `coverage(anchor)` is the
fraction of unconditioned perturbations that satisfy the anchor.

Validity follows the paper: an anchor is valid when the KL lower confidence bound
of its precision at level `delta` (exploration rate log(1/delta)) reaches the
threshold (not valid when its upper bound falls below). Anchors whose interval
still straddles the threshold are sampled further until it does not, or until
the whole interval lies within min(NEAR, (1 - threshold) / 2) of the threshold:
such an anchor counts as not valid (too close to the threshold to certify).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

Anchor = tuple[int, ...]
Sampled = tuple[np.ndarray, np.ndarray | None]  # hits [n] bool, satisfied predicates [n, P] bool or None
SampleFn = Callable[[Sequence[Anchor], Sequence[int]], list[Sampled]]
CoverageFn = Callable[[Anchor], float]

K1, ALPHA = 405.5, 1.1  # exploration rate constants of KL-LUCB (Kaufmann & Kalyanakrishnan 2013)
_EPS = 1e-12
NEAR = 0.01  # an undecided anchor whose interval lies within min(NEAR, (1 - tau) / 2) of tau stops


def kl_bernoulli(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """KL divergence between Bernoulli(p) and Bernoulli(q), elementwise."""
    p = np.minimum(np.maximum(p, _EPS), 1 - _EPS)
    q = np.minimum(np.maximum(q, _EPS), 1 - _EPS)
    return p * np.log(p / q) + (1 - p) * np.log((1 - p) / (1 - q))


def kl_bounds(hits: np.ndarray, n: np.ndarray, beta: float, iters: int = 17) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper KL confidence bounds of the means: the ends of {q : n kl(mean, q) <= beta}.

    Bisection, rounded outwards (the lower bound down, the upper bound up).
    """
    mean = hits / np.maximum(n, 1)
    p = np.minimum(np.maximum(mean, _EPS), 1 - _EPS)
    level = beta / np.maximum(n, 1) - p * np.log(p) - (1 - p) * np.log(1 - p)
    lo = np.stack([np.zeros_like(mean), mean])  # row 0 brackets the lower bound, row 1 the upper
    hi = np.stack([mean, np.ones_like(mean)])
    upper = np.array([[False], [True]])
    for _ in range(iters):
        mid = (lo + hi) * 0.5
        q = np.minimum(np.maximum(mid, _EPS), 1 - _EPS)
        inside = -p * np.log(q) - (1 - p) * np.log(1 - q) <= level  # n kl(p, q) <= beta
        to_hi = inside != upper  # lower bound: inside -> search lower; upper bound: outside -> lower
        hi = np.where(to_hi, mid, hi)
        lo = np.where(to_hi, lo, mid)
    return np.where(n > 0, lo[0], 0.0), np.where(n > 0, hi[1], 1.0)


@dataclass(frozen=True)
class SearchConfig:
    threshold: float = 0.95
    delta: float = 0.1
    epsilon: float = 0.15
    beam_size: int = 2
    max_size: int | None = None
    samples_per_round: int = 50
    budget: int = 50_000


@dataclass
class AnchorResult:
    anchor: Anchor
    precision: float
    coverage: float
    valid: bool
    evaluations: int
    budget_exhausted: bool
    prefix_precisions: list[float] = field(default_factory=list)  # of (), anchor[:1], anchor[:2], ...


class AnchorSearch:
    """Beam search over anchors of growing size; KL-LUCB keeps the `beam_size` most precise."""

    def __init__(self, n_predicates: int, sample: SampleFn, coverage: CoverageFn, config: SearchConfig) -> None:
        self.n_predicates = n_predicates
        self._sample = sample
        self._coverage_fn = coverage
        self.cfg = config
        self.used = 0
        self.exhausted = False
        self._stats: dict[frozenset[int], list[int]] = {}  # set -> [n, hits]
        self._samples: dict[frozenset[int], list[Sampled]] = {}  # set -> its samples, kept for reuse
        self._ordered: dict[frozenset[int], Anchor] = {}
        self._coverage: dict[frozenset[int], float] = {}

    # -- bookkeeping --------------------------------------------------------------------------
    def coverage(self, anchor: Anchor) -> float:
        key = frozenset(anchor)
        if key not in self._coverage:
            self._coverage[key] = float(self._coverage_fn(anchor))
        return self._coverage[key]

    def _counts(self, anchors: Sequence[Anchor]) -> tuple[np.ndarray, np.ndarray]:
        stats = np.array([self._stats.get(frozenset(a), [0, 0]) for a in anchors], dtype=np.float64)
        return stats[:, 1], stats[:, 0]

    def _draw(self, anchors: Sequence[Anchor], counts: Sequence[int]) -> None:
        """Sample the anchors (one call), within the budget; truncate and flag when it runs out."""
        left = self.cfg.budget - self.used
        granted: list[int] = []
        for c in counts:
            granted.append(max(0, min(c, left - sum(granted))))
        if sum(granted) < sum(counts):
            self.exhausted = True
        pairs = [(a, g) for a, g in zip(anchors, granted) if g > 0]
        if not pairs:
            return
        results = self._sample([a for a, _ in pairs], [g for _, g in pairs])
        for (anchor, _), (hits, satisfied) in zip(pairs, results):
            self._record(anchor, hits, satisfied)
        self.used += sum(g for _, g in pairs)

    def _record(self, anchor: Anchor, hits: np.ndarray, satisfied: np.ndarray | None) -> None:
        key = frozenset(anchor)
        self._ordered.setdefault(key, anchor)
        stat = self._stats.setdefault(key, [0, 0])
        stat[0] += len(hits)
        stat[1] += int(np.count_nonzero(hits))
        if satisfied is not None:
            self._samples.setdefault(key, []).append((hits, satisfied))

    def _inherit(self, parent: Anchor, child: Anchor) -> None:
        """Start a new candidate with its parent's samples that satisfy the added predicate."""
        samples = self._samples.get(frozenset(parent), [])
        if samples and frozenset(child) not in self._stats:
            if len(samples) > 1:  # concatenate once per parent
                samples[:] = [(np.concatenate([h for h, _ in samples]), np.concatenate([s for _, s in samples]))]
            hits, satisfied = samples[0]
            assert satisfied is not None
            keep = satisfied[:, child[-1]]
            self._record(child, hits[keep], satisfied[keep])

    # -- the two steps of the paper -----------------------------------------------------------
    def best_arms(self, cands: list[Anchor]) -> list[Anchor]:
        """KL-LUCB: the `beam_size` candidates of highest precision, up to epsilon, w.p. 1 - delta."""
        batch, beam = self.cfg.samples_per_round, self.cfg.beam_size
        _, n = self._counts(cands)
        short = [(a, batch - int(k)) for a, k in zip(cands, n) if k < batch]
        self._draw([a for a, _ in short], [k for _, k in short])
        if len(cands) <= beam:
            return list(cands)
        t = 1
        while True:
            hits, n = self._counts(cands)
            means = hits / np.maximum(n, 1)
            order = np.argsort(-means, kind="stable")
            top, rest = order[:beam], order[beam:]
            if self.exhausted:
                break
            beta = float(np.log(K1 * len(cands) * t ** ALPHA / self.cfg.delta))
            lb, ub = kl_bounds(hits, n, beta, iters=12)
            u = rest[np.argmax(ub[rest])]
            low = top[np.argmin(lb[top])]
            if ub[u] - lb[low] <= self.cfg.epsilon:
                break
            self._draw([cands[low], cands[u]], [batch, batch])
            t += 1
        return [cands[i] for i in top]

    def validate(self, anchors: list[Anchor]) -> list[bool]:
        """Sample until each anchor's lower bound reaches the threshold or its upper bound falls below."""
        beta, tau = float(np.log(1 / self.cfg.delta)), self.cfg.threshold
        near = min(NEAR, (1 - tau) / 2)
        while True:
            lb, ub = kl_bounds(*self._counts(anchors), beta)
            open_ = (lb < tau) & (ub >= tau) & ((ub >= tau + near) | (lb <= tau - near))
            if not open_.any() or self.exhausted:
                return [bool(v) for v in lb >= tau]
            undecided = [a for a, o in zip(anchors, open_) if o]
            self._draw(undecided, [self.cfg.samples_per_round] * len(undecided))

    def candidates(self, beam: list[Anchor]) -> list[Anchor]:
        """Each beam anchor extended by one predicate, duplicates dropped.

        The paper keeps only candidates covering more than the best valid anchor so far;
        the search stops at the first size with a valid anchor, so none is dropped here.
        """
        seen: set[frozenset[int]] = set()
        out: list[Anchor] = []
        for anchor in beam:
            for p in range(self.n_predicates):
                key = frozenset((*anchor, p))
                if p in anchor or key in seen:
                    continue
                seen.add(key)
                out.append((*anchor, p))
                self._inherit(anchor, out[-1])
        return out

    def run(self) -> AnchorResult:
        """Return the most covering valid anchor of the smallest size, or the best one found."""
        self._draw([()], [self.cfg.samples_per_round])
        if self.validate([()])[0]:
            return self._result((), True)
        beam: list[Anchor] = [()]
        max_size = min(self.cfg.max_size or self.n_predicates, self.n_predicates)
        for _ in range(max_size):
            cands = self.candidates(beam)
            if not cands:
                break
            beam = self.best_arms(cands)
            valid = [a for a, ok in zip(beam, self.validate(beam)) if ok]
            if valid:
                return self._result(max(valid, key=self.coverage), True)
            if self.exhausted:
                break
        return self._result(self._fallback(), False)

    def _fallback(self) -> Anchor:
        """The evaluated non-empty anchor with the highest precision lower bound (then coverage)."""
        keys = [k for k in self._stats if k] or list(self._stats)
        lb, _ = kl_bounds(*self._counts([self._ordered[k] for k in keys]), float(np.log(1 / self.cfg.delta)))
        best = max(range(len(keys)), key=lambda i: (lb[i], self.coverage(self._ordered[keys[i]])))
        return self._ordered[keys[best]]

    def _result(self, anchor: Anchor, valid: bool) -> AnchorResult:
        hits, n = self._counts([anchor[:i] for i in range(len(anchor) + 1)])
        prec = (hits / np.maximum(n, 1)).tolist()
        return AnchorResult(anchor, prec[-1], self.coverage(anchor), valid, self.used, self.exhausted, prec)
