"""Image renderers: normalise an attribution map, blend it over the image, encode PNG.

These run on the latency-critical sync path, so they stay in float32 numpy
and encode PNG with fast zlib settings (no ``optimize``, low compression).
"""

from __future__ import annotations

import io
import zlib

import numpy as np
from PIL import Image

from explainers.render import colormaps


def normalize_map(attr: np.ndarray, signed: bool) -> np.ndarray:
    """Scale an attribution map to [0, 1] (float32, same shape).

    Non-finite values (NaN, +-inf) count as 0. Non-negative maps: negatives are
    clipped to 0 and the result scaled from its minimum to its maximum (plain
    max, not a percentile, so the strongest pixel always reaches the top colour;
    a map with a floor, like RISE's, is stretched; a constant map shows at full
    strength). Signed
    maps: divided by the maximum absolute value and mapped by
    ``0.5 + 0.5 * x``, so 0 -> 0.5. An all-zero map gives 0 (unsigned) or
    0.5 (signed) everywhere.
    """
    a = np.asarray(attr, dtype=np.float32)
    if not np.all(np.isfinite(a)):
        a = np.where(np.isfinite(a), a, np.float32(0.0))
    if signed:
        peak = float(np.max(np.abs(a))) if a.size else 0.0
        if peak <= 0.0:
            return np.full(a.shape, 0.5, dtype=np.float32)
        return (a * np.float32(0.5 / peak) + np.float32(0.5)).clip(0.0, 1.0)
    a = np.maximum(a, np.float32(0.0))
    peak = float(a.max()) if a.size else 0.0
    if peak <= 0.0:
        return np.zeros(a.shape, dtype=np.float32)
    floor = float(a.min())
    floor = floor if floor < peak else 0.0
    return ((a - np.float32(floor)) * np.float32(1.0 / (peak - floor))).clip(0.0, 1.0)


def _check_image(image: np.ndarray) -> np.ndarray:
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ValueError(f"image must be uint8 [H,W,3], got {img.dtype} {img.shape}")
    return img


def _check_map(attr: np.ndarray) -> np.ndarray:
    a = np.asarray(attr)
    if a.ndim != 2 or a.size == 0:
        raise ValueError(f"attribution map must be a non-empty [H,W] array, got {a.shape}")
    return a


def _resolve(colormap: str | None, signed: bool) -> str:
    name = colormaps.default_colormap(signed) if colormap is None else colormap
    colormaps.lut(name)  # raises ValueError for an unknown name
    return name


def overlay(
    image: np.ndarray,
    attr: np.ndarray,
    *,
    signed: bool,
    colormap: str | None = None,
    alpha: float = 0.5,
) -> np.ndarray:
    """Blend the coloured map over ``image``: ``out = (1 - a) * image + a * heat``.

    Signed maps use ``a = alpha`` everywhere. Non-negative maps use a per-pixel
    ``a = alpha * v`` where ``v`` is the normalised value, so pixels with no
    attribution keep the original image and the strongest get the full
    ``alpha``. Any colormap may be used with either kind of map.
    """
    img = _check_image(image)
    a = _check_map(attr)
    if a.shape != img.shape[:2]:
        raise ValueError(f"attribution shape {a.shape} does not match image {img.shape[:2]}")
    if not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    name = _resolve(colormap, signed)
    v = normalize_map(a, signed)
    heat = colormaps.apply(v, name)
    # A convex blend of values in [0, 255] plus 0.5 stays in [0, 256), so the
    # truncating cast rounds without a clip; alpha 0 and 1 reproduce the inputs.
    out = heat.astype(np.float32)
    out -= img
    if signed:
        out *= np.float32(alpha)
    else:
        out *= (v * np.float32(alpha))[..., None]
    out += img
    out += np.float32(0.5)
    return out.astype(np.uint8)


def encode_png(rgb: np.ndarray, compress_level: int = 1) -> bytes:
    """PNG bytes for an RGB (``[H,W,3]``) or grey (``[H,W]``) uint8 array.

    Levels 1-3 use zlib's run-length strategy, which on photos and overlays
    measured both faster and smaller than the default strategy at level 1.
    Level 0 stores without compression; 4-9 use the default strategy.
    """
    arr = np.asarray(rgb)
    if arr.dtype != np.uint8 or not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 3)):
        raise ValueError(f"expected uint8 [H,W,3] or [H,W], got {arr.dtype} {arr.shape}")
    if not 0 <= compress_level <= 9:
        raise ValueError(f"compress_level must be in [0, 9], got {compress_level}")
    buf = io.BytesIO()
    strategy = zlib.Z_RLE if 1 <= compress_level <= 3 else zlib.Z_DEFAULT_STRATEGY
    Image.fromarray(np.ascontiguousarray(arr)).save(
        buf, format="PNG", compress_level=compress_level, compress_type=strategy
    )
    return buf.getvalue()


def overlay_png(
    image: np.ndarray,
    attr: np.ndarray,
    *,
    signed: bool,
    colormap: str | None = None,
    alpha: float = 0.5,
) -> bytes:
    """PNG of :func:`overlay`."""
    return encode_png(overlay(image, attr, signed=signed, colormap=colormap, alpha=alpha))


def heatmap_png(attr: np.ndarray, *, signed: bool, colormap: str | None = None) -> bytes:
    """PNG of the coloured map alone, same height and width as ``attr``."""
    a = _check_map(attr)
    name = _resolve(colormap, signed)
    return encode_png(colormaps.apply(normalize_map(a, signed), name))
