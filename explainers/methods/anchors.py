"""Anchors: the smallest rule that holds the prediction in place with high precision."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch
from pydantic import Field

from explainers.base import Attribution, BudgetExhausted, Context
from explainers.discretize import Discretizer
from explainers.masking import FeatureMaskParams, Masker, TabularFeatures, feature_masker
from explainers.methods._anchor_search import Anchor, AnchorResult, AnchorSearch, Sampled, SearchConfig
from explainers.methods._perturbation import ALL_MODALITIES, PerturbationExplainer
from explainers.registry import register
from explainers.types import Modality


class AnchorsParams(FeatureMaskParams):
    threshold: float = Field(0.95, ge=0.5, le=0.999, description="precision an anchor must reach (tau)")
    delta: float = Field(0.1, ge=1e-4, le=0.5, description="an anchor is certified with confidence 1 - delta")
    epsilon: float = Field(0.15, ge=0.001, le=0.5,
                           description="KL-LUCB tolerance: the beam holds the most precise anchors up to this")
    beam_size: int = Field(2, ge=1, le=10, description="anchors kept per size in the beam search")
    max_anchor_size: int | None = Field(None, ge=1, le=10_000,
                                        description="most predicates in an anchor (null: no limit)")
    samples_per_round: int = Field(50, ge=1, le=10_000, description="perturbations per anchor per sampling round")
    max_evaluations: int = Field(50_000, ge=100, le=1_000_000,  # type: ignore[assignment]
                                 description="model evaluations budget; the best anchor found is returned when spent")
    coverage_samples: int = Field(10_000, ge=100, le=1_000_000,
                                  description="no longer used: coverage is computed exactly (the share of background "
                                              "rows an anchor holds for; 2^-k for k kept tokens or superpixels)")
    n_background: int = Field(1000, ge=1, le=1000,
                              description="tabular: background rows (a seeded subsample) perturbations start from")
    @property
    def budget(self) -> tuple[int | None, float | None]:
        return None, self.time_budget_s  # the search keeps to max_evaluations itself (the target's forward aside)

    tabular_sampling: Literal["conditional", "replace"] = Field(
        "conditional", description="tabular: draw background rows satisfying the anchor (conditional), or any "
                                   "row with its anchored values moved into x's bins (replace)")


class MaskSpace:
    """Text tokens or image superpixels: each is kept with probability 1/2, anchored ones always."""

    def __init__(self, masker: Masker, names: list[str], rng: np.random.Generator) -> None:
        self.masker, self.names, self.rng = masker, names, rng

    def coverage(self, anchor: Anchor) -> float:
        """Exact: a perturbation keeps each of the anchor's k features with probability 1/2."""
        return 0.5 ** len(set(anchor))

    def draw(self, anchor: Anchor, n: int) -> np.ndarray:
        return self.sample(anchor, n)[0]

    def sample(self, anchor: Anchor, n: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Masks [n, M] (True = kept) and the predicates each satisfies: the masks themselves."""
        masks = self.rng.random((n, self.masker.n_features)) >= 0.5
        masks[:, list(anchor)] = True
        return masks, masks

    def native(self, draws: np.ndarray) -> torch.Tensor:
        return self.masker.compose(draws)


class TabularSpace:
    """Background rows conditioned on the anchor: the data's own conditional distribution.

    A sample is a background row drawn uniformly among the rows whose values lie in x's
    quartile bins for every anchored feature, so unanchored features keep their
    correlations with the anchored ones (the paper samples the training data conditioned
    on the anchor). With `tabular_sampling="replace"`, or when no background row satisfies
    the whole anchor, a row is drawn from all rows and each anchored value outside x's bin
    is replaced by a background value of x's bin drawn uniformly (x's own value if the bin
    holds none): this breaks the correlations, and anchors grow longer.
    """

    def __init__(self, ctx: Context, p: AnchorsParams, rng: np.random.Generator) -> None:
        assert ctx.model.background is not None and ctx.model.manifest.tabular is not None
        self.rng, self.conditional = rng, p.tabular_sampling == "conditional"
        self.disc = Discretizer.fit(ctx.model.background, ctx.model.manifest.tabular.features)
        masker = feature_masker(ctx, p)
        assert isinstance(masker, TabularFeatures)
        self.rows = masker.background.cpu().numpy().astype(np.float64)
        self.device = ctx.x.device
        x = ctx.x[0].cpu().numpy().astype(np.float64)
        self.x_bins = self.disc.bins(x)[0]
        self.in_bin = self.disc.bins(self.rows) == self.x_bins  # [n, F]
        empty = self.disc.count[np.arange(len(x)), np.minimum(self.x_bins, self.disc.count.shape[1] - 1)] == 0
        self.own = empty | (self.x_bins >= self.disc.count.shape[1])  # x's bin holds no background value
        self.x = x
        self.names = self.disc.conditions(x)

    def draw(self, anchor: Anchor, n: int) -> np.ndarray:
        return self.sample(anchor, n)[0]

    def sample(self, anchor: Anchor, n: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Rows [n, F] and, for rows drawn from the data conditioned on the anchor (where reusing
        them for a larger anchor is exact), the predicates [n, F] each satisfies."""
        cols = np.array(anchor, dtype=np.int64)
        rows = np.flatnonzero(self.in_bin[:, cols].all(1)) if self.conditional else np.zeros(0, np.int64)
        if len(rows):
            idx = rows[self.rng.integers(0, len(rows), size=n)]
            return self.rows[idx], self.in_bin[idx]
        idx = self.rng.integers(0, len(self.rows), size=n)
        out = self.rows[idx]
        values = self.disc.sample_values(self.rng, np.broadcast_to(self.x_bins, out.shape))[:, cols]
        values = np.where(self.own[cols], self.x[cols], values)
        out[:, cols] = np.where(self.in_bin[idx][:, cols], out[:, cols], values)
        return out, None

    def native(self, draws: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(draws.astype(np.float32)).to(self.device)

    def coverage(self, anchor: Anchor) -> float:
        """Exact on the background sample: the share of its rows in x's bin of every anchored feature."""
        return float(self.in_bin[:, list(anchor)].all(1).mean())


Space = MaskSpace | TabularSpace


def make_space(ctx: Context, p: AnchorsParams, rng: np.random.Generator) -> Space:
    """The perturbation distribution of the request's modality (its predicates and sampler)."""
    if ctx.model.modality is Modality.TABULAR:
        return TabularSpace(ctx, p, rng)
    masker = feature_masker(ctx, p)
    if ctx.model.modality is Modality.TEXT:
        names = [f"token '{t}' present (position {i})" for i, t in enumerate(ctx.inputs.tokens)]
    else:
        names = list(masker.names)
    return MaskSpace(masker, names, rng)


def keeps_class(ctx: Context, space: Space, draws: np.ndarray, batch_size: int, budget: int) -> np.ndarray:
    """Whether the model's top class is the target for each perturbation; images composed per batch."""
    target = ctx.target()
    chunk = batch_size if ctx.model.modality is Modality.IMAGE else max(len(draws), 1)
    out = []
    for start in range(0, len(draws), chunk):
        part = draws[start:start + chunk]
        probs = ctx.predict(space.native(part), batch_size, done=ctx.evaluations / budget, share=len(part) / budget)
        out.append((probs.argmax(1) == target).cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0, dtype=bool)


@register
class Anchors(PerturbationExplainer[AnchorsParams]):
    """Anchors (Ribeiro et al. 2018). https://homes.cs.washington.edu/~marcotcr/aaai18.pdf

    Predicates: x's quartile bin of a feature, a token kept at its position, a superpixel
    kept. The attribution is 0 outside the anchor; inside, predicates are ranked in the
    order the beam search added them: the i-th of k (from 0) gets 1 - i / k, so the first
    gets 1 (`details.precision_gains` holds what each added to the precision). `valid` is
    false when no anchor reached the threshold (budget spent or no predicate left): the
    anchor is then the one with the best precision lower bound.
    """

    name = "anchors"
    modalities = ALL_MODALITIES
    Params = AnchorsParams
    signed = False
    contrastive = False  # its precision is agreement with the predicted class, not a score

    def _attribute(self, ctx: Context, p: AnchorsParams) -> Attribution:
        rng = np.random.default_rng(p.seed)
        space = make_space(ctx, p, rng)
        ctx.target()

        def sample(anchors: Sequence[Anchor], counts: Sequence[int]) -> list[Sampled]:
            draws, satisfied = zip(*(space.sample(a, n) for a, n in zip(anchors, counts)))
            try:
                hits = keeps_class(ctx, space, np.concatenate(draws), ctx.batch_size, p.max_evaluations)
            except BudgetExhausted:  # the time budget: the search stops with what it has
                search.exhausted = True
                return [(np.zeros(0, dtype=bool), None if s is None else s[:0]) for s in satisfied]
            return list(zip(np.split(hits, np.cumsum(counts)[:-1]), satisfied))

        config = SearchConfig(threshold=p.threshold, delta=p.delta, epsilon=p.epsilon, beam_size=p.beam_size,
                              max_size=p.max_anchor_size, samples_per_round=p.samples_per_round,
                              budget=p.max_evaluations)
        search = AnchorSearch(len(space.names), sample, space.coverage, config)
        result = search.run()
        if result.budget_exhausted:
            ctx.stopped = "budget"
        ctx.progress(1.0)
        values = np.zeros(len(space.names), dtype=np.float32)
        for i, pred in enumerate(result.anchor):
            values[pred] = 1 - i / len(result.anchor)
        return Attribution(_to_map(space, values), _details(ctx, space, result))


def _to_map(space: Space, values: np.ndarray) -> np.ndarray | torch.Tensor:
    return space.masker.to_map(values) if isinstance(space, MaskSpace) else values


def _details(ctx: Context, space: Space, result: AnchorResult) -> dict[str, object]:
    ids = [int(i) for i in result.anchor]
    key = {Modality.IMAGE: "superpixels", Modality.TEXT: "positions", Modality.TABULAR: "features"}
    gains = np.diff(result.prefix_precisions).tolist()
    return {"anchor": [space.names[i] for i in ids], key[ctx.model.modality]: ids,
            "precision": result.precision, "coverage": result.coverage, "valid": result.valid,
            "precision_gains": gains, "n_evaluations": result.evaluations,
            "budget_exhausted": result.budget_exhausted}
