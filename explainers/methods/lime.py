"""LIME: a weighted ridge surrogate fitted on perturbations around the input."""

from __future__ import annotations

import numpy as np
import torch
from pydantic import Field

from explainers.base import Attribution, BudgetExhausted, Context
from explainers.discretize import Discretizer
from explainers.masking import FeatureMaskParams, feature_details, feature_masker
from explainers.methods._perturbation import ALL_MODALITIES, PerturbationExplainer
from explainers.methods._surrogate import (
    cosine_distance_to_all_ones,
    draw_coalitions,
    exponential_kernel,
    masked_values,
    weighted_ridge,
)
from explainers.registry import register
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


def lime_fit(data: np.ndarray, y: np.ndarray, distances: np.ndarray, kernel_width: float,
             alpha: float) -> tuple[np.ndarray, float, float]:
    """The surrogate: ridge on the interpretable samples weighted by the exponential kernel
    -> (coefficients, intercept, weighted R^2), as `lime_base.LimeBase` with `feature_selection='none'`."""
    return weighted_ridge(data, y, exponential_kernel(distances, kernel_width), alpha)


@register
class Lime(PerturbationExplainer[LimeParams]):
    """LIME (Ribeiro et al. 2016). https://arxiv.org/abs/1602.04938

    Image and text: superpixels or tokens are hidden through the shared masker;
    the distance is the cosine distance to the all-ones sample with kernel width
    0.25. The lime package scales the text distance by 100 and uses width 25 (the
    same weights) and leaves it unscaled with width 0.25 for images; its image
    sampler flips each superpixel with probability 1/2, where ours (like its text
    sampler) draws the number of hidden features uniformly. Each distinct sample
    is evaluated once. Tabular: see `explainers.discretize` for the quartile bins
    and the sampling within bins (the whole background sample is used); the
    interpretable feature is 1 where a sample lies in the input's bin.
    """

    name = "lime"
    modalities = ALL_MODALITIES
    Params = LimeParams

    def _attribute(self, ctx: Context, p: LimeParams) -> Attribution:
        rng = np.random.default_rng(p.seed)
        if ctx.model.modality is Modality.TABULAR:
            return self._tabular(ctx, p, rng)
        masker = feature_masker(ctx, p)
        data = lime_samples(rng, p.n_samples, masker.n_features)
        y, evaluated = masked_values(ctx, masker, data, ctx.batch_size, partial=True)
        data = data[:len(y)]  # a budget keeps the samples drawn first
        if len(y) < 2:
            raise BudgetExhausted("evaluations")
        width = p.kernel_width or MASK_KERNEL_WIDTH
        distances = cosine_distance_to_all_ones(data)
        coef, intercept, score = lime_fit(data, y, distances, width, p.ridge_alpha)
        details = self._details(intercept, score, coef, p, width, evaluated, len(y))
        details.update(feature_details(masker))
        details["stability"] = stability(data, y, distances, width, p.ridge_alpha, coef, rng)
        return Attribution(masker.to_map(coef), details)

    def _tabular(self, ctx: Context, p: LimeParams, rng: np.random.Generator) -> Attribution:
        tabular = ctx.model.manifest.tabular
        assert tabular is not None and ctx.model.background is not None and ctx.inputs.features is not None
        disc = Discretizer.fit(ctx.model.background, tabular.features)
        x = np.asarray(ctx.inputs.features, dtype=np.float64)
        bins = disc.sample_bins(rng, p.n_samples)
        rows = disc.sample_values(rng, bins)
        x_bins = disc.bins(x)[0]
        rows[0], bins[0] = x, x_bins
        data = bins == x_bins
        batch = torch.from_numpy(rows.astype(np.float32)).to(ctx.x.device)
        y = partial_scores(ctx, batch)
        data = data[:len(y)]
        width = p.kernel_width or TABULAR_KERNEL_SCALE * float(np.sqrt(disc.n_features))
        distances = np.sqrt((~data).sum(axis=1))
        coef, intercept, score = lime_fit(data.astype(np.float64), y, distances, width, p.ridge_alpha)
        details = self._details(intercept, score, coef, p, width, len(y), len(y))
        details["conditions"] = disc.conditions(x)
        details["stability"] = stability(data.astype(np.float64), y, distances, width, p.ridge_alpha, coef, rng)
        return Attribution(coef.astype(np.float32), details)

    @staticmethod
    def _details(intercept: float, score: float, coef: np.ndarray, p: LimeParams, width: float,
                 evaluated: int, used: int) -> dict[str, object]:
        return {"intercept": intercept, "score": score, "local_prediction": intercept + float(coef.sum()),
                "n_samples": used, "kernel_width": width, "n_evaluations": evaluated}


BOOTSTRAP = 20


def stability(data: np.ndarray, y: np.ndarray, distances: np.ndarray, width: float, alpha: float,
              coef: np.ndarray, rng: np.random.Generator) -> dict[str, object]:
    """How much the fit depends on the draw: 20 bootstrap refits of the same samples (no new model calls).

    The coefficients' standard errors, and the mean rank correlation of the refits with the fit.
    """
    from explainers.evaluation.agreement import spearman, top_overlap

    fits = []
    for _ in range(BOOTSTRAP):
        pick = rng.integers(0, len(y), size=len(y))
        fits.append(lime_fit(data[pick], y[pick], distances[pick], width, alpha)[0])
    stack = np.stack(fits)
    return {"coefficient_standard_errors": stack.std(axis=0, ddof=1).tolist(),
            "rank_correlation": float(np.mean([spearman(f, coef) for f in fits])),
            "top_overlap": float(np.mean([top_overlap(f, coef, 20) for f in fits])), "bootstrap_fits": BOOTSTRAP}


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
