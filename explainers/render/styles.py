"""Picture styles for image attributions (after iNNvestigate's visualisations), and resizing.

Each style turns an RGB image [H, W, 3] and its map [H, W] into a picture plus the `Scale`
its colour bar shows:

- `overlay`: the heatmap blended over the image;
- `heatmap`: the heatmap alone;
- `graymap`: |attribution| in grey, black for none, white for the most;
- `diverging`: the signed map alone, a diverging colormap centred at 0;
- `mask`: the image where the top `mask_percent` % of pixels are, grey elsewhere;
- `contour`: iso-lines of the map over a paled image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import Image

from explainers.render import colormaps
from explainers.render.image import normalize_map, overlay

Style = Literal["overlay", "heatmap", "graymap", "diverging", "mask", "contour"]
STYLES: tuple[str, ...] = ("overlay", "heatmap", "graymap", "diverging", "mask", "contour")
MIN_AUTO_SIDE = 256  # `size=None` enlarges smaller images by a whole factor up to this long side
MASK_GREY = 200.0
_LEVELS = {False: (0.2, 0.4, 0.6, 0.8), True: (0.125, 0.25, 0.375, 0.625, 0.75, 0.875)}


@dataclass(frozen=True)
class Scale:
    """What a colour bar shows: `colormap` from `low` to `high` (in attribution units).

    `centred`: a signed scale with 0 in the middle. `threshold`: values below it are greyed
    (mask). `levels`: positions in [0, 1] of the contour lines.
    """

    colormap: str
    low: float
    high: float
    centred: bool
    quantity: str = "attribution"
    threshold: float | None = None
    levels: tuple[float, ...] = ()
    mask_percent: float | None = None


def target_size(height: int, width: int, size: int | None) -> tuple[int, int]:
    """(height, width) of the picture: long side `size`, or the input enlarged to >= 256 px."""
    long_side = max(height, width)
    if size is None:
        factor = 1 if long_side >= MIN_AUTO_SIDE else math.ceil(MIN_AUTO_SIDE / long_side)
        return height * factor, width * factor
    ratio = size / long_side
    return max(1, round(height * ratio)), max(1, round(width * ratio))


def resize(image: np.ndarray, attr: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The photo bilinear, the map nearest-neighbour when enlarged (its cells stay cells), box when shrunk."""
    height, width = shape
    if image.shape[:2] == shape:
        return image, np.asarray(attr, dtype=np.float32)
    photo = np.asarray(Image.fromarray(image).resize((width, height), Image.Resampling.BILINEAR))
    grows = height * width >= attr.shape[0] * attr.shape[1]
    mode = Image.Resampling.NEAREST if grows else Image.Resampling.BOX
    a = np.where(np.isfinite(attr), attr, 0.0).astype(np.float32)
    return photo, np.asarray(Image.fromarray(a, mode="F").resize((width, height), mode), dtype=np.float32)


def _finite(attr: np.ndarray) -> np.ndarray:
    a = np.asarray(attr, dtype=np.float32)
    return np.where(np.isfinite(a), a, np.float32(0.0))


def value_range(attr: np.ndarray, signed: bool) -> tuple[float, float]:
    """The values at the ends of `normalize_map`'s scale: +-peak (signed) or floor..peak."""
    a = _finite(attr)
    if signed:
        peak = float(np.abs(a).max()) if a.size else 0.0
        return -peak, peak
    a = np.maximum(a, 0.0)
    peak = float(a.max()) if a.size else 0.0
    floor = float(a.min()) if a.size else 0.0
    return (floor if floor < peak else 0.0), peak


def _luminance(image: np.ndarray) -> np.ndarray:
    return image.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _colormap(colormap: str | None, default: str) -> str:
    name = colormap or default
    colormaps.lut(name)  # raises ValueError for an unknown name
    return name


def picture(image: np.ndarray, attr: np.ndarray, style: Style, *, signed: bool, colormap: str | None = None,
            alpha: float = 0.5, mask_percent: float = 20.0) -> tuple[np.ndarray, Scale]:
    """The picture [H, W, 3] uint8 of one style, and the scale of its colour bar."""
    a = _finite(attr)
    if style == "overlay":
        name = _colormap(colormap, colormaps.default_colormap(signed))
        low, high = value_range(a, signed)
        return overlay(image, a, signed=signed, colormap=name, alpha=alpha), Scale(name, low, high, signed)
    if style == "heatmap":
        name = _colormap(colormap, colormaps.default_colormap(signed))
        low, high = value_range(a, signed)
        return colormaps.apply(normalize_map(a, signed), name), Scale(name, low, high, signed)
    if style == "graymap":
        peak = float(np.abs(a).max()) if a.size else 0.0
        v = np.abs(a) / np.float32(peak) if peak > 0 else np.zeros_like(a)
        return colormaps.apply(v, "gray"), Scale("gray", 0.0, peak, False, quantity="|attribution|")
    if style == "diverging":
        name = _colormap(colormap, "bwr")
        low, high = value_range(a, True)
        return colormaps.apply(normalize_map(a, True), name), Scale(name, low, high, True)
    if style == "mask":
        return _mask(image, a, signed, colormap, mask_percent)
    if style == "contour":
        return _contour(image, a, signed, colormap)
    raise ValueError(f"unknown style {style!r}; use one of {list(STYLES)}")


def _mask(image: np.ndarray, a: np.ndarray, signed: bool, colormap: str | None,
          percent: float) -> tuple[np.ndarray, Scale]:
    if not 0.0 < percent <= 100.0:
        raise ValueError(f"mask_percent must be in (0, 100], got {percent}")
    relevance = a if signed else np.maximum(a, 0.0)
    threshold = float(np.percentile(relevance, 100.0 - percent)) if a.size else 0.0
    keep = relevance >= threshold
    grey = _luminance(image) * np.float32(0.25) + np.float32(0.75 * MASK_GREY)
    out = np.where(keep[..., None], image.astype(np.float32), grey[..., None])
    name = _colormap(colormap, colormaps.default_colormap(signed))
    low, high = value_range(a, signed)
    scale = Scale(name, low, high, signed, threshold=threshold, mask_percent=percent)
    return (out + 0.5).astype(np.uint8), scale


def _contour(image: np.ndarray, a: np.ndarray, signed: bool, colormap: str | None) -> tuple[np.ndarray, Scale]:
    name = _colormap(colormap, colormaps.default_colormap(signed))
    levels = _LEVELS[signed]
    v = normalize_map(a, signed)
    band = np.digitize(v, levels).astype(np.int16)
    level = np.zeros(v.shape, dtype=np.int16)  # on a line: the upper band's index (>= 1); else 0
    vertical = np.where(band[:-1, :] != band[1:, :], np.maximum(band[:-1, :], band[1:, :]), 0)
    horizontal = np.where(band[:, :-1] != band[:, 1:], np.maximum(band[:, :-1], band[:, 1:]), 0)
    level[:-1, :] = vertical
    level[:, :-1] = np.maximum(level[:, :-1], horizontal)
    for _ in range(max(1, round(max(v.shape) / 128)) - 1):  # thicker lines on large pictures
        grown = level.copy()
        grown[1:, :] = np.maximum(grown[1:, :], level[:-1, :])
        grown[:, 1:] = np.maximum(grown[:, 1:], level[:, :-1])
        level = grown
    lines = level > 0
    positions = np.array(levels, dtype=np.float32)[np.clip(level - 1, 0, len(levels) - 1)]
    pale = image.astype(np.float32) * np.float32(0.55) + np.float32(0.45 * 235)
    out = np.where(lines[..., None], colormaps.apply(positions, name).astype(np.float32), pale)
    low, high = value_range(a, signed)
    return (out + 0.5).astype(np.uint8), Scale(name, low, high, signed, levels=levels)
