"""Localisation against a region the caller knows holds the object (a mask or a box).

- pointing game (Zhang et al. 2018): a hit when the map's maximum lies in the region, grown by a
  tolerance of `tolerance` pixels;
- positive share: the fraction of the map's positive mass inside the region;
- energy-based pointing game (Wang et al. 2020, Score-CAM): the fraction of the min-max normalised
  map's energy inside the region (a map with a constant offset, such as RISE's, scores lower here
  than in the positive share).
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import binary_dilation


def box_mask(box: tuple[float, float, float, float], shape: tuple[int, int]) -> np.ndarray:
    """A box (x0, y0, x1, y1) in pixels, right and bottom edges excluded, as a mask [H, W]."""
    height, width = shape
    x0, y0, x1, y1 = box
    mask = np.zeros(shape, dtype=bool)
    mask[max(0, int(np.floor(y0))):min(height, int(np.ceil(y1))),
         max(0, int(np.floor(x0))):min(width, int(np.ceil(x1)))] = True
    return mask


def located(attribution: np.ndarray, region: np.ndarray, tolerance: int = 15) -> dict[str, float | bool]:
    """The figures of a map against a region of the image as sent: where the map is smaller (an image over
    the map size limit), the region is brought to its size (a map pixel is inside when any image pixel it
    covers is) and the tolerance scaled with it."""
    if region.shape != attribution.shape:
        ys, xs = np.nonzero(region)
        small = np.zeros(attribution.shape, dtype=bool)
        small[(ys * attribution.shape[0] // region.shape[0]), (xs * attribution.shape[1] // region.shape[1])] = True
        tolerance = int(round(tolerance * attribution.shape[0] / region.shape[0]))
        region = small
    return localisation(attribution, region, tolerance)


def localisation(attribution: np.ndarray, region: np.ndarray, tolerance: int = 15) -> dict[str, float | bool]:
    """The three figures of a map [H, W] against a region mask of the same shape."""
    a = np.asarray(attribution, dtype=np.float64)
    region = np.asarray(region, dtype=bool)
    if a.shape != region.shape:
        raise ValueError(f"a map of shape {a.shape} and a region of shape {region.shape}")
    if not region.any():
        raise ValueError("the region is empty")
    grown = binary_dilation(region, iterations=tolerance) if tolerance > 0 else region
    peak = np.unravel_index(int(np.argmax(a)), a.shape)
    positive = np.maximum(a, 0)
    span = float(a.max() - a.min())
    energy = (a - a.min()) / span if span > 0 else np.zeros_like(a)
    total_pos, total_energy = float(positive.sum()), float(energy.sum())
    return {"pointing_hit": bool(grown[peak]), "tolerance_px": tolerance,
            "positive_share": float(positive[region].sum()) / total_pos if total_pos > 0 else 0.0,
            "energy_share": float(energy[region].sum()) / total_energy if total_energy > 0 else 0.0,
            "region_share": float(region.mean())}
