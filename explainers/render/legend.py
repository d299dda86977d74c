"""A figure: the picture above a legend panel (caption, colour bar, value range, sign meaning)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from explainers.render import colormaps
from explainers.render.fonts import MUTED, fit, fmt, font, text_at
from explainers.render.styles import MASK_GREY, Scale

BACKGROUND = (255, 255, 255)
FRAME = (120, 120, 120)
MIN_PANEL_WIDTH = 256

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive ends)


@dataclass(frozen=True)
class Layout:
    """Where the parts of a figure are (for tests and clients that crop)."""

    width: int
    height: int
    picture: Box
    caption: Box | None
    bar: Box | None


def plan(picture_hw: tuple[int, int], *, caption: bool, colorbar: bool) -> tuple[Layout, int]:
    """The figure's layout and its font size, for a picture of (height, width)."""
    height, width = picture_hw
    if not (caption or colorbar):
        return Layout(width, height, (0, 0, width, height), None, None), 0
    full = max(width, MIN_PANEL_WIDTH)
    size = int(np.clip(round(full / 24), 11, 22))
    pad = round(size * 0.7)
    left = (full - width) // 2
    y = height + pad
    caption_box = None
    if caption:
        caption_box = (pad, y, full - pad, y + round(size * 1.5))
        y = caption_box[3] + round(size * 0.3)
    bar_box = None
    if colorbar:
        bar_box = (pad, y, full - pad, y + round(size * 1.1))
        y = bar_box[3] + 3 * size  # the tick labels and the meaning row
    return Layout(full, y + pad, (left, 0, left + width, height), caption_box, bar_box), size


def figure(pic: np.ndarray, scale: Scale | None, *, caption: str | None, label: str,
           colorbar: bool = True) -> tuple[np.ndarray, Layout]:
    """The picture with its caption (None: no caption) and colour bar (when `colorbar` and a scale)."""
    layout, size = plan(pic.shape[:2], caption=caption is not None, colorbar=colorbar and scale is not None)
    if layout.caption is None and layout.bar is None:
        return pic, layout
    canvas = Image.new("RGB", (layout.width, layout.height), BACKGROUND)
    canvas.paste(Image.fromarray(pic), layout.picture[:2])
    draw = ImageDraw.Draw(canvas)
    if layout.caption is not None and caption is not None:
        x0, y0, x1, y1 = layout.caption
        face = font(size + 1)
        text_at(draw, (x0, (y0 + y1) / 2), fit(draw, caption, face, x1 - x0), face)
    if layout.bar is not None and scale is not None:
        _colour_bar(draw, canvas, layout.bar, scale, label, size)
    return np.asarray(canvas), layout


def bar_colours(scale: Scale, n: int) -> np.ndarray:
    """The colours [n, 3] of a colour bar n px long, from `low` to `high`."""
    t = np.linspace(0.0, 1.0, n, dtype=np.float32)
    colours = colormaps.apply(t, scale.colormap)
    if scale.threshold is not None and scale.high > scale.low:
        values = scale.low + t * (scale.high - scale.low)
        colours[values < scale.threshold] = round(MASK_GREY)
    return colours


def _colour_bar(draw: ImageDraw.ImageDraw, canvas: Image.Image, box: Box, scale: Scale, label: str,
                size: int) -> None:
    x0, y0, x1, y1 = box
    strip = np.repeat(bar_colours(scale, x1 - x0)[None], y1 - y0, axis=0)
    canvas.paste(Image.fromarray(strip), (x0, y0))
    draw.rectangle((x0 - 1, y0 - 1, x1, y1), outline=FRAME)
    for level in scale.levels:  # contour levels: a dark tick across the bar
        x = x0 + round(level * (x1 - x0 - 1))
        draw.line((x, y0, x, y1 - 1), fill=(20, 20, 20), width=max(1, size // 8))
    face = font(size)
    ticks = y1 + round(size * 0.9)
    text_at(draw, (x0, ticks), fmt(scale.low), face)
    text_at(draw, (x1, ticks), fmt(scale.high), face, anchor="right")
    if scale.centred:
        text_at(draw, ((x0 + x1) / 2, ticks), "0", face, anchor="centre")
    if scale.threshold is not None and scale.high > scale.low:
        at = (scale.threshold - scale.low) / (scale.high - scale.low)
        x = x0 + round(float(np.clip(at, 0.0, 1.0)) * (x1 - x0 - 1))
        draw.line((x, y0, x, y1 - 1), fill=(20, 20, 20), width=max(1, size // 8))
    meaning = ticks + round(size * 1.35)
    span = x1 - x0
    if scale.mask_percent is not None:
        text = f"kept: the top {scale.mask_percent:g} % of pixels (>= {fmt(scale.threshold or 0.0)})"
    elif scale.centred:
        text_at(draw, (x0, meaning), fit(draw, f"- against {label}", face, span / 2 - 4), face, fill=MUTED)
        text_at(draw, (x1, meaning), fit(draw, f"for {label} +", face, span / 2 - 4), face, anchor="right",
                fill=MUTED)
        return
    elif scale.levels:
        text = "contours at " + "/".join(f"{round(v * 100)}" for v in scale.levels) + " % of the range"
    else:
        text = f"{scale.quantity} for {label}: low to high"
    text_at(draw, ((x0 + x1) / 2, meaning), fit(draw, text, face, span), face, anchor="centre", fill=MUTED)
