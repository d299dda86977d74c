"""LIME: a weighted ridge surrogate fitted on perturbations around the input."""

from __future__ import annotations

import numpy as np

from explainers.base import Attribution, Context
from explainers.masking import feature_details
from explainers.methods._neighbourhood import LimeParams, lime_samples, neighbourhood
from explainers.methods._perturbation import ALL_MODALITIES, PerturbationExplainer
from explainers.methods._surrogate import exponential_kernel, weighted_ridge
from explainers.registry import register

__all__ = ["Lime", "LimeParams", "lime_fit", "lime_samples"]


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
    (`explainers.methods._neighbourhood` draws the samples.)
    """

    name = "lime"
    contrastive = True
    modalities = ALL_MODALITIES
    Params = LimeParams

    def _attribute(self, ctx: Context, p: LimeParams) -> Attribution:
        hood = neighbourhood(ctx, p, np.random.default_rng(p.seed))
        width = hood.kernel_width(p.kernel_width)
        coef, intercept, score = lime_fit(hood.data.astype(np.float64), hood.y, hood.distances(), width,
                                          p.ridge_alpha)
        details: dict[str, object] = {
            "intercept": intercept, "score": score, "local_prediction": intercept + float(coef.sum()),
            "n_samples": len(hood.y), "kernel_width": width, "n_evaluations": hood.n_evaluations}
        if hood.conditions is not None:
            details["conditions"] = hood.conditions
        if hood.masker is not None:
            details.update(feature_details(hood.masker))
        details["stability"] = stability(hood.data.astype(np.float64), hood.y, hood.distances(), width,
                                         p.ridge_alpha, coef, np.random.default_rng(p.seed + 1))
        return Attribution(hood.to_map(coef), details)


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

