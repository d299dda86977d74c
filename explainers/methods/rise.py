"""RISE: the target's probability under many random smooth masks, averaged per pixel."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field

from explainers.base import Attribution, BudgetExhausted, Context
from explainers.masking import FILL_HELP, PixelFill, compose_pixels, pixel_fill
from explainers.methods._perturbation import PerturbationExplainer
from explainers.params import BlackBoxParams
from explainers.registry import register
from explainers.types import Modality

BLOCK = 256  # masks per random stream: the masks depend on the seed, not on batch_size
MIN_MASKS = 256  # masks before a tolerance may stop the sampling


def _standard_error(total: torch.Tensor, squares: torch.Tensor, n: int) -> torch.Tensor:
    """Per pixel, the standard error of the mean of s m over n masks (before the 1 / p_keep scaling)."""
    mean = total / n
    variance = (squares / n - mean * mean).clamp(min=0) * n / max(n - 1, 1)
    return (variance / n).sqrt()


def _relative_error(total: torch.Tensor, squares: torch.Tensor, n: int) -> float | None:
    """The map's noise over its signal: the root mean square of the pixels' standard errors over the map's
    standard deviation (None for a flat map). At r, the map's expected correlation with the map of
    infinitely many masks is about 1 / sqrt(1 + r^2): 0.995 at r = 0.1."""
    mean = total / n
    spread = float(mean.std())
    noise = float(_standard_error(total, squares, n).pow(2).mean().sqrt())
    return noise / spread if spread > 0 else None


class RiseParams(BlackBoxParams):
    n_masks: int = Field(2000, ge=1, le=20000, description="random masks evaluated (one model input each)")
    cell_size: int = Field(7, ge=2, le=64, description="the low-resolution mask is cell_size x cell_size cells")
    p_keep: float = Field(0.5, ge=0.05, le=0.95, description="probability that a cell keeps the input")
    fill: PixelFill = Field("zero", description=FILL_HELP + "; zero multiplies the normalised input by the "
                                                 "mask, as the authors' implementation does")
    tolerance: float | None = Field(
        None, gt=0, le=1, description="stop once the map's noise (the root mean square of its pixels' standard "
        "errors) is below this fraction of its standard deviation, checked after each batch from 256 masks on: "
        "0.1 means a correlation of about 0.995 with the map of many more masks; null: evaluate all n_masks")
    center: bool = Field(False, description="subtract the offset every RISE map carries (the mean score over the "
                                            "masks, what an irrelevant pixel gets): a signed map")


def _linear(cells: int, size: int) -> torch.Tensor:
    """Weights [size, cells] of 1-D linear upsampling (half-pixel centres, edges clamped)."""
    eye = torch.eye(cells)[None]  # one channel per cell
    return F.interpolate(eye, size=size, mode="linear", align_corners=False)[0].T.contiguous()


class RandomMasks:
    """Mask i in [0, 1] [H, W]: a random cell grid upsampled bilinearly to (cells + 1) * cell, shifted, cropped.

    Masks are drawn in blocks of `BLOCK`, block k from its own generator seeded by (seed, k), and
    built only for the range asked; bilinear upsampling is separable, so a mask is R @ G @ C^T.
    """

    def __init__(self, seed: int, cells: int, p_keep: float, size: tuple[int, int]) -> None:
        self.seed, self.cells, self.p_keep = seed, cells, p_keep
        self.height, self.width = size
        self.cell = (-(-self.height // cells), -(-self.width // cells))  # ceil(H / cells), ceil(W / cells)
        self.rows = _linear(cells, (cells + 1) * self.cell[0])  # [UH, cells]
        self.cols = _linear(cells, (cells + 1) * self.cell[1])  # [UW, cells]
        self._blocks: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def _block(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        if k not in self._blocks:
            rng = np.random.default_rng([self.seed, k])
            grids = rng.random((BLOCK, self.cells, self.cells)) < self.p_keep
            shifts = rng.integers(0, self.cell, size=(BLOCK, 2))
            self._blocks = {k: (torch.from_numpy(grids).float(), torch.from_numpy(shifts))}  # keep the last one
        return self._blocks[k]

    def __call__(self, start: int, stop: int) -> torch.Tensor:
        """Masks start..stop-1 as [n, H, W]."""
        first, last = start // BLOCK, (stop - 1) // BLOCK
        parts = [self._block(k) for k in range(first, last + 1)]
        lo = start - first * BLOCK
        grids = torch.cat([g for g, _ in parts])[lo:lo + stop - start]
        shifts = torch.cat([s for _, s in parts])[lo:lo + stop - start]
        rows = self.rows[shifts[:, :1] + torch.arange(self.height)]  # [n, H, cells]
        cols = self.cols[shifts[:, 1:] + torch.arange(self.width)]  # [n, W, cells]
        return rows @ grids @ cols.transpose(1, 2)


@register
class Rise(PerturbationExplainer[RiseParams]):
    """RISE (Petsiuk et al. 2018). https://arxiv.org/abs/1806.07421"""

    name = "rise"
    contrastive = True
    modalities = frozenset({Modality.IMAGE})
    Params = RiseParams
    signed = False

    def _attribute(self, ctx: Context, p: RiseParams) -> Attribution:
        x = ctx.x
        masks = RandomMasks(p.seed, p.cell_size, p.p_keep, (x.shape[-2], x.shape[-1]))
        fill = pixel_fill(ctx, p.fill)
        total = torch.zeros(x.shape[-2:], device=x.device, dtype=torch.float64)
        squares = torch.zeros_like(total)  # running sums of s m and (s m)^2: the map and its standard error
        score_sum, used, n = 0.0, 0, p.n_masks
        for a in range(0, n, ctx.batch_size):
            b = a + ctx.room(min(ctx.batch_size, n - a))  # a budget may leave room for part of a batch
            if b == a:
                if not used:
                    raise BudgetExhausted("evaluations")
                ctx.stopped = "budget"
                break
            m = masks(a, b).to(x.device)
            try:
                scores = ctx.target_probabilities(compose_pixels(x, fill, m[:, None]), ctx.batch_size,
                                                  done=a / n, share=(b - a) / n).to(x.device)
            except BudgetExhausted:
                if not used:
                    raise
                ctx.stopped = "budget"
                break
            weighted = scores[:, None, None].double() * m.double()
            total += weighted.sum(0)
            squares += (weighted * weighted).sum(0)
            score_sum += float(scores.double().sum())
            used = b
            ctx.error = _relative_error(total, squares, used)  # the job's state shows it as it falls
            if b < min(n, a + ctx.batch_size):
                ctx.stopped = "budget"
                break
            if (p.tolerance is not None and MIN_MASKS <= used < n and ctx.error is not None
                    and ctx.error <= p.tolerance):
                ctx.stopped = "converged"
                break
        saliency = total / (used * p.p_keep)  # ctx.error is that of these `used` masks (set in the loop)
        offset = score_sum / used
        details = {"n_masks": used, "p_keep": p.p_keep, "cell_size": p.cell_size, "fill": p.fill,
                   "offset": offset, "relative_error": ctx.error, "centered": p.center,
                   "standard_error_max": float(_standard_error(total, squares, used).max() / p.p_keep)}
        return Attribution((saliency - offset if p.center else saliency).float(), details, signed=p.center or None)
