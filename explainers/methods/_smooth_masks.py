"""Smooth masks for extremal perturbation (Fong et al. 2019): a parameter grid turned into a mask by a
smooth max-convolution, the ranking-based area loss, and random smooth masks of a given area.

A mask is at most 1 and has bounded slope: each parameter cell spreads its value to the cells around
it through a Gaussian kernel, and each cell takes a smooth (softmax-weighted) maximum of what reaches
it, so a single cell at 1 makes a round blob of radius about `sigma` cells, still reaching 1 at its
centre. The grid is then upsampled bilinearly to the image.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

SMAX_TEMPERATURE = 0.05  # the softmax temperature of the smooth max (mask values are in [0, 1])


class SmoothMask:
    """Parameters [n, 1, h, w] in [0, 1] -> masks [n, 1, H, W] in [0, 1].

    The parameters are not clamped here (a clamp has no gradient at 0 and 1, where they would stick):
    the optimiser projects them back into [0, 1] after each step.
    """

    def __init__(self, size: tuple[int, int], step: int, sigma: float, device: torch.device) -> None:
        self.size = size
        self.grid = (max(1, math.ceil(size[0] / step)), max(1, math.ceil(size[1] / step)))
        radius = max(1, math.ceil(2 * sigma))
        offsets = torch.arange(-radius, radius + 1, device=device, dtype=torch.float32)
        d2 = offsets[:, None] ** 2 + offsets[None, :] ** 2
        self.kernel = torch.exp(-d2 / (2 * sigma ** 2)).flatten()  # [k*k], 1 at the centre
        self.radius = radius

    def __call__(self, params: torch.Tensor) -> torch.Tensor:
        n = params.shape[0]
        k = 2 * self.radius + 1
        cells = F.unfold(params, k, padding=self.radius)  # [n, k*k, h*w]
        spread = cells * self.kernel[None, :, None]
        smax = (spread * torch.softmax(spread / SMAX_TEMPERATURE, dim=1)).sum(1)  # [n, h*w]
        low = smax.view(n, 1, *self.grid)
        return F.interpolate(low, size=self.size, mode="bilinear", align_corners=False)


def area_template(area: float, n_pixels: int, device: torch.device) -> torch.Tensor:
    """The sorted values [n_pixels] of an ideal mask of `area`: zeros, then round(area * n) ones."""
    ones = int(round(area * n_pixels))
    return torch.cat([torch.zeros(n_pixels - ones, device=device), torch.ones(ones, device=device)])


def area_loss(masks: torch.Tensor, templates: torch.Tensor) -> torch.Tensor:
    """The ranking-based area constraint per mask [n]: mean squared distance between the mask's sorted
    values and its area's template [n, H*W] (zero exactly when a fraction `area` is 1 and the rest 0)."""
    values = masks.flatten(1).sort(dim=1).values
    return ((values - templates) ** 2).mean(1)


def random_smooth_mask(generator: torch.Generator, area: float, size: tuple[int, int], cells: int = 6) -> torch.Tensor:
    """A random smooth binary mask [H, W] covering `area` of the image: a random cell grid upsampled
    bicubically, its top `area` fraction kept (a baseline the optimised masks must beat)."""
    noise = torch.rand(1, 1, cells, cells, generator=generator)
    field = F.interpolate(noise, size=size, mode="bicubic", align_corners=False)[0, 0]
    threshold = field.flatten().kthvalue(max(1, field.numel() - int(round(area * field.numel())))).values
    return (field > threshold).float()
