"""RISE: the target's probability under many random smooth masks, averaged per pixel."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field

from explainers.base import Attribution, Context
from explainers.masking import FILL_HELP, PixelFill, compose_pixels, pixel_fill
from explainers.methods._perturbation import PerturbationExplainer
from explainers.params import BlackBoxParams
from explainers.registry import register
from explainers.types import Modality

BLOCK = 256  # masks per random stream: the masks depend on the seed, not on batch_size


class RiseParams(BlackBoxParams):
    n_masks: int = Field(2000, ge=1, le=20000, description="random masks evaluated (one model input each)")
    cell_size: int = Field(7, ge=2, le=64, description="the low-resolution mask is cell_size x cell_size cells")
    p_keep: float = Field(0.5, ge=0.05, le=0.95, description="probability that a cell keeps the input")
    fill: PixelFill = Field("zero", description=FILL_HELP + "; zero multiplies the normalised input by the "
                                                 "mask, as the authors' implementation does")


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
    modalities = frozenset({Modality.IMAGE})
    Params = RiseParams
    signed = False

    def _attribute(self, ctx: Context, p: RiseParams) -> Attribution:
        x = ctx.x
        masks = RandomMasks(p.seed, p.cell_size, p.p_keep, (x.shape[-2], x.shape[-1]))
        fill = pixel_fill(ctx, p.fill)
        total = torch.zeros(x.shape[-2:], device=x.device)
        n = p.n_masks
        for a in range(0, n, ctx.batch_size):
            b = min(n, a + ctx.batch_size)
            m = masks(a, b).to(x.device)
            probs = ctx.target_probabilities(compose_pixels(x, fill, m[:, None]), ctx.batch_size,
                                              done=a / n, share=(b - a) / n)
            total += torch.tensordot(probs.to(x.device), m, dims=1)
        saliency = total / (n * p.p_keep)
        return Attribution(saliency, {"n_masks": n, "p_keep": p.p_keep, "cell_size": p.cell_size,
                                              "fill": p.fill})
