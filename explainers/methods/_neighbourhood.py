"""LIME's neighbourhood of an input, shared by LIME, CLE and NormLIME: binary interpretable samples
around the input, the model's probability of the explained class at each, and their distances.
A budget (`max_evaluations`, `time_budget_s`) keeps the samples drawn first (two at least).

Image and text: superpixels or tokens hidden through the shared masker, the number hidden uniform
(lime's text sampler); distance: cosine to the all-ones sample. Tabular: quartile bins of the
background (`explainers.discretize`), values drawn within bins; a sample's interpretable feature is 1
where it lies in the input's bin; distance: Euclidean on that binary representation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from pydantic import Field

from explainers.base import BudgetExhausted, Context
from explainers.discretize import Discretizer
from explainers.masking import FeatureMaskParams, Masker, feature_masker
from explainers.methods._surrogate import cosine_distance_to_all_ones, draw_coalitions, masked_values
from explainers.types import Modality

MASK_KERNEL_WIDTH = 0.25
TABULAR_KERNEL_SCALE = 0.75


class LimeParams(FeatureMaskParams):
    n_samples: int = Field(1000, ge=10, le=20000, description="perturbed samples (the first is the input itself)")
    kernel_width: float | None = Field(
        None, gt=0.0, le=1000.0,
        description="width of the exponential kernel on the distance to the input; null: 0.25 on the cosine "
                    "distance (image, text), 0.75 * sqrt(n_features) on the Euclidean distance (tabular)")
    ridge_alpha: float = Field(1.0, ge=0.0, le=1e6, description="L2 penalty of the ridge surrogate")


def lime_samples(rng: np.random.Generator, n: int, m: int) -> np.ndarray:
    """Binary samples [n, m] as lime draws them for text: the first row all ones; in the others the
    number of removed features uniform in 1..m, the removed ones uniform."""
    keep = draw_coalitions(rng, n - 1, np.append(np.full(m, 1.0 / m), 0.0))  # kept: uniform in 0..m-1
    return np.vstack([np.ones((1, m), dtype=bool), keep])


@dataclass
class Neighbourhood:
    """Samples [N, M] (row 0: the input), the explained probability at each [N], and how they were made."""

    data: np.ndarray
    y: np.ndarray
    tabular: bool
    n_evaluations: int
    names: list[str]
    masker: Masker | None = None  # image and text: maps per-feature values back to the input
    conditions: list[str] | None = None  # tabular: the input's bin of each feature

    def distances(self, data: np.ndarray | None = None) -> np.ndarray:
        """Distance of each row of `data` (default: the samples; any binary representation) to the input."""
        rows = self.data if data is None else data
        if self.tabular:
            return np.sqrt((~rows.astype(bool)).sum(axis=1).astype(np.float64))
        return cosine_distance_to_all_ones(rows.astype(bool))

    def kernel_width(self, requested: float | None) -> float:
        """The requested width, else LIME's default for the representation (on M original features)."""
        if requested is not None:
            return requested
        return TABULAR_KERNEL_SCALE * float(np.sqrt(self.data.shape[1])) if self.tabular else MASK_KERNEL_WIDTH

    def to_map(self, values: np.ndarray) -> np.ndarray | torch.Tensor:
        return self.masker.to_map(values) if self.masker is not None else values.astype(np.float32)


def neighbourhood(ctx: Context, p: LimeParams, rng: np.random.Generator) -> Neighbourhood:
    """The samples around `ctx`'s input and the model's target probability at each. Progress 0 -> 1."""
    if ctx.model.modality is Modality.TABULAR:
        return _tabular(ctx, p, rng)
    masker = feature_masker(ctx, p)
    data = lime_samples(rng, p.n_samples, masker.n_features)
    y, evaluated = masked_values(ctx, masker, data, ctx.batch_size, partial=True)
    if len(y) < 2:
        raise BudgetExhausted("evaluations")
    return Neighbourhood(data[:len(y)], y, tabular=False, n_evaluations=evaluated, names=masker.names,
                         masker=masker)


def _tabular(ctx: Context, p: LimeParams, rng: np.random.Generator) -> Neighbourhood:
    tabular = ctx.model.manifest.tabular
    assert tabular is not None and ctx.model.background is not None and ctx.inputs.features is not None
    disc = Discretizer.fit(ctx.model.background, tabular.features)
    x = np.asarray(ctx.inputs.features, dtype=np.float64)
    bins = disc.sample_bins(rng, p.n_samples)
    rows = disc.sample_values(rng, bins)
    x_bins = disc.bins(x)[0]
    rows[0], bins[0] = x, x_bins
    batch = torch.from_numpy(rows.astype(np.float32)).to(ctx.x.device)
    y = partial_scores(ctx, batch)
    return Neighbourhood((bins == x_bins)[:len(y)], y, tabular=True, n_evaluations=len(y),
                         names=list(ctx.model.feature_names), conditions=disc.conditions(x))


def partial_scores(ctx: Context, batch: torch.Tensor) -> np.ndarray:
    """The target's scores of the rows, in batches, as far as the budget goes (at least two)."""
    out = []
    for start in range(0, len(batch), ctx.batch_size):
        size = ctx.room(min(ctx.batch_size, len(batch) - start))
        try:
            if not size:
                raise BudgetExhausted("evaluations")
            out.append(ctx.target_probabilities(batch[start:start + size], ctx.batch_size,
                                                done=start / len(batch), share=size / len(batch)))
        except BudgetExhausted:
            if sum(len(o) for o in out) < 2:
                raise
            ctx.stopped = "budget"
            break
        if size < min(ctx.batch_size, len(batch) - start):
            ctx.stopped = "budget"
            break
    return torch.cat(out).double().cpu().numpy()
