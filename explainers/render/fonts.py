"""Fonts and text helpers shared by the PIL renderers (legends, captions, bar charts).

Pillow ships a scalable font (Aileron) that `ImageFont.load_default(size)` returns when
FreeType is present; without FreeType it falls back to a fixed latin-1 bitmap font. Aileron
has no arrows or minus sign, so the renderers write plain ASCII ("-", "<", ">").
"""

from __future__ import annotations

import math
from functools import lru_cache

from PIL import ImageDraw, ImageFont

Font = ImageFont.ImageFont | ImageFont.FreeTypeFont | ImageFont.TransposedFont
INK = (30, 30, 30)
MUTED = (95, 95, 95)


@lru_cache(maxsize=32)
def font(size: int) -> Font:
    """The default scalable font at `size` px (the bitmap font when FreeType is missing)."""
    return ImageFont.load_default(size=size)


def drawable(text: str, face: Font) -> str:
    """Text the font can encode (the bitmap fallback font is latin-1 only)."""
    if isinstance(face, ImageFont.FreeTypeFont):
        return text
    return text.encode("latin-1", "replace").decode("latin-1")


def fit(draw: ImageDraw.ImageDraw, text: str, face: Font, max_w: float) -> str:
    """`text`, cut with "..." to at most `max_w` pixels wide."""
    text = drawable(text, face)
    if draw.textlength(text, font=face) <= max_w:
        return text
    lo, hi = 0, len(text)
    while lo < hi:  # the longest prefix that fits with the ellipsis
        mid = (lo + hi + 1) // 2
        if draw.textlength(text[:mid] + "...", font=face) <= max_w:
            lo = mid
        else:
            hi = mid - 1
    return text[:lo] + "..."


def text_at(draw: ImageDraw.ImageDraw, xy: tuple[float, float], text: str, face: Font, *,
            anchor: str = "left", fill: tuple[int, int, int] = INK) -> None:
    """Draw `text` vertically centred on `xy[1]`, its left end, centre or right end at `xy[0]`."""
    left, top, right, bottom = draw.textbbox((0, 0), text, font=face)
    width = right - left
    x = {"left": xy[0], "centre": xy[0] - width / 2, "right": xy[0] - width}[anchor]
    draw.text((x - left, xy[1] - (top + bottom) / 2), text, fill=fill, font=face)


def fmt(value: float) -> str:
    """A value for a label: 3 significant digits, no needless exponent."""
    if not math.isfinite(value):
        return str(value)
    if value == 0.0:
        return "0"
    magnitude = abs(value)
    if 1e-3 <= magnitude < 1e5:
        return f"{value:.3g}"
    return f"{value:.2e}"
