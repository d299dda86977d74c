"""Tabular renderer: a horizontal bar chart of feature attributions, drawn with PIL.

One row per feature, by |score|: its name, its value, a bar right (red, positive) or left
(blue, negative) of the zero axis, and the score at the bar's end; under the rows an axis
with its range and a label saying what the bars mean.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from explainers.render.fonts import INK, MUTED, Font, fit, fmt, font, text_at

WIDTH = 800
PAD = 12
LABEL_W = 230  # feature names, right-aligned at PAD + LABEL_W
VALUE_W = 84  # feature values, right-aligned after the names
TEXT_MARGIN = 64  # room for the score text on either side of the bar area
ROW_H = 26
BAR_H = 16
TITLE_H = 30
HEADER_H = 22
AXIS_H = 44
FONT_SIZE = 13

VALUE_RIGHT = PAD + LABEL_W + 12 + VALUE_W
BAR_LEFT = VALUE_RIGHT + TEXT_MARGIN
BAR_RIGHT = WIDTH - PAD - TEXT_MARGIN

BACKGROUND = (255, 255, 255)
STRIPE = (246, 247, 249)
POSITIVE = (215, 48, 39)
NEGATIVE = (33, 102, 172)
AXIS = (64, 64, 64)


@dataclass(frozen=True)
class _Row:
    name: str
    value: str
    score: float


def _rows(names: list[str], scores: np.ndarray, values: list[float] | None, max_features: int) -> list[_Row]:
    order = np.argsort(-np.abs(scores), kind="stable")
    rows = [_Row(str(names[i]), "" if values is None else _value(float(values[i])), float(scores[i]))
            for i in order[:max_features].tolist()]
    rest = order[max_features:]
    if rest.size:
        noun = "feature" if rest.size == 1 else "features"
        rows.append(_Row(f"{rest.size} other {noun}", "", float(scores[rest].sum())))
    return rows


def _value(x: float) -> str:
    """A feature's value with up to 4 significant digits (17.99, 1001, 0.1184)."""
    return f"{x:.4g}" if x == 0.0 or 1e-3 <= abs(x) < 1e6 else f"{x:.3e}"


def chart_height(n_rows: int, *, title: bool) -> int:
    return PAD + (TITLE_H if title else 0) + HEADER_H + max(n_rows, 1) * ROW_H + AXIS_H + PAD


def bar_chart_png(
    names: list[str],
    scores: np.ndarray,
    values: list[float] | None = None,
    *,
    title: str = "",
    xlabel: str = "attribution (- against the class, + for it)",
    max_features: int = 20,
) -> bytes:
    """PNG of the chart, `WIDTH` px wide; the top `max_features` rows, the rest summed in one.

    Non-finite scores count as 0. Names too long for their column end in "...".
    """
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(names) != s.size:
        raise ValueError(f"{len(names)} names but {s.size} scores")
    if values is not None and len(values) != s.size:
        raise ValueError(f"{len(values)} values but {s.size} scores")
    if max_features < 1:
        raise ValueError(f"max_features must be >= 1, got {max_features}")
    s = np.where(np.isfinite(s), s, 0.0)
    rows = _rows(names, s, values, max_features)

    face, small, bold = font(FONT_SIZE), font(FONT_SIZE - 1), font(FONT_SIZE + 2)
    top = PAD + (TITLE_H if title else 0)
    img = Image.new("RGB", (WIDTH, chart_height(len(rows), title=bool(title))), BACKGROUND)
    draw = ImageDraw.Draw(img)
    if title:
        text_at(draw, (PAD, PAD + TITLE_H / 2), fit(draw, title, bold, WIDTH - 2 * PAD), bold)
    header = top + HEADER_H / 2
    text_at(draw, (PAD + LABEL_W, header), "feature", small, anchor="right", fill=MUTED)
    if values is not None:
        text_at(draw, (VALUE_RIGHT, header), "value", small, anchor="right", fill=MUTED)
    top += HEADER_H
    if not rows:
        text_at(draw, (PAD, top + ROW_H / 2), "no features", face)
        return _png(img)

    pos = max(0.0, max(r.score for r in rows))
    neg = max(0.0, -min(r.score for r in rows))
    span = BAR_RIGHT - BAR_LEFT
    if pos + neg > 0.0:
        axis_x = BAR_LEFT + round(span * neg / (pos + neg))
        scale = (span - 1) / (pos + neg)
    else:
        axis_x, scale = BAR_LEFT + span // 2, 0.0

    for k, row in enumerate(rows):
        y_top = top + k * ROW_H
        if k % 2:
            draw.rectangle((PAD, y_top, WIDTH - PAD, y_top + ROW_H - 1), fill=STRIPE)
        mid = y_top + ROW_H / 2
        y0, y1 = round(mid - BAR_H / 2), round(mid + BAR_H / 2) - 1
        text_at(draw, (PAD + LABEL_W, mid), fit(draw, row.name, face, LABEL_W), face, anchor="right")
        text_at(draw, (VALUE_RIGHT, mid), fit(draw, row.value, face, VALUE_W), face, anchor="right", fill=MUTED)
        width = max(1, round(abs(row.score) * scale)) if row.score != 0.0 else 0
        if row.score < 0.0:
            draw.rectangle((axis_x - width, y0, axis_x - 1, y1), fill=NEGATIVE)
            text_at(draw, (axis_x - width - 4, mid), fmt(row.score), small, anchor="right")
        else:
            if width:
                draw.rectangle((axis_x + 1, y0, axis_x + width, y1), fill=POSITIVE)
            text_at(draw, (axis_x + width + 4, mid), fmt(row.score), small)
    bottom = top + len(rows) * ROW_H
    draw.line((axis_x, top, axis_x, bottom - 1), fill=AXIS, width=1)
    _axis(draw, bottom, axis_x, scale, neg, pos, xlabel, small)
    return _png(img)


def _axis(draw: ImageDraw.ImageDraw, y: int, axis_x: int, scale: float, neg: float, pos: float,
          xlabel: str, face: Font) -> None:
    """The horizontal axis under the bars: ticks at 0 and at the range's ends, and the label."""
    draw.line((BAR_LEFT, y + 2, BAR_RIGHT - 1, y + 2), fill=AXIS, width=1)
    ticks = [(axis_x, 0.0)]
    if scale > 0.0:
        ticks += [(axis_x - round(neg * scale), -neg)] if neg > 0 else []
        ticks += [(axis_x + round(pos * scale), pos)] if pos > 0 else []
    labelled: list[int] = []
    for x, value in ticks:
        draw.line((x, y + 2, x, y + 6), fill=AXIS, width=1)
        if all(abs(x - other) > 48 for other in labelled):  # no label over another
            text_at(draw, (x, y + 14), fmt(value), face, anchor="centre", fill=MUTED)
            labelled.append(x)
    label = fit(draw, xlabel, face, WIDTH - 2 * PAD)
    text_at(draw, ((BAR_LEFT + BAR_RIGHT) / 2, y + 32), label, face, anchor="centre", fill=INK)


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=6)
    return buf.getvalue()
