"""Tabular renderer: a horizontal bar chart of feature attributions, drawn with PIL."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

WIDTH = 720
PAD = 10
LABEL_W = 250  # label column, right-aligned at PAD + LABEL_W
TEXT_MARGIN = 60  # room for score text on either side of the bar area
ROW_H = 22
BAR_H = 14
TITLE_H = 24

BAR_LEFT = PAD + LABEL_W + TEXT_MARGIN
BAR_RIGHT = WIDTH - PAD - TEXT_MARGIN

BACKGROUND = (255, 255, 255)
POSITIVE = (215, 48, 39)
NEGATIVE = (33, 102, 172)
AXIS = (64, 64, 64)
INK = (30, 30, 30)

Font = ImageFont.ImageFont | ImageFont.FreeTypeFont | ImageFont.TransposedFont


@dataclass(frozen=True)
class _Row:
    label: str
    score: float


@lru_cache(maxsize=1)
def _font() -> Font:
    return ImageFont.load_default()


def _fmt(x: object) -> str:
    try:
        f = float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return str(x)
    return f"{f:.4g}" if math.isfinite(f) else str(f)


def _drawable(text: str, font: Font) -> str:
    """Text the font can encode (the bitmap fallback font is latin-1 only)."""
    if isinstance(font, ImageFont.FreeTypeFont):
        return text
    return text.encode("latin-1", "replace").decode("latin-1")


def _fit(draw: ImageDraw.ImageDraw, text: str, font: Font, max_w: int) -> str:
    """``text``, truncated with ``...`` to at most ``max_w`` pixels wide."""
    if draw.textlength(text, font=font) <= max_w:
        return text
    lo, hi = 0, len(text)
    while lo < hi:  # longest prefix that fits with the ellipsis
        mid = (lo + hi + 1) // 2
        if draw.textlength(text[:mid] + "...", font=font) <= max_w:
            lo = mid
        else:
            hi = mid - 1
    return text[:lo] + "..."


def _rows(
    names: list[str], scores: np.ndarray, values: list[float] | None, max_features: int
) -> list[_Row]:
    order = np.argsort(-np.abs(scores), kind="stable")
    rows = []
    for i in order[:max_features].tolist():
        label = str(names[i]) if values is None else f"{names[i]} = {_fmt(values[i])}"
        rows.append(_Row(label, float(scores[i])))
    rest = order[max_features:]
    if rest.size:
        noun = "feature" if rest.size == 1 else "features"
        rows.append(_Row(f"{rest.size} other {noun}", float(scores[rest].sum())))
    return rows


def _text_mid(
    draw: ImageDraw.ImageDraw, xy: tuple[float, float], text: str, font: Font, right: bool = False
) -> None:
    """Draw ``text`` vertically centred on ``xy[1]``; ``right`` aligns its end at ``xy[0]``."""
    left, top, rgt, bottom = draw.textbbox((0, 0), text, font=font)
    x = xy[0] - (rgt - left) if right else xy[0]
    draw.text((x - left, xy[1] - (top + bottom) / 2), text, fill=INK, font=font)


def bar_chart_png(
    names: list[str],
    scores: np.ndarray,
    values: list[float] | None = None,
    *,
    title: str = "",
    max_features: int = 20,
) -> bytes:
    """PNG of a horizontal bar chart, one row per feature by ``|score|`` descending.

    The top ``max_features`` rows are drawn; the rest are summed into an
    ``"N other features"`` row at the bottom. Positive bars are red and extend
    right of the vertical zero axis, negative bars blue and extend left. Each
    row is labelled ``"name = value"`` (just the name without ``values``) and
    its score is printed at the end of the bar. Non-finite scores count as 0.
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

    font = _font()
    top = PAD + (TITLE_H if title else 0)
    height = top + max(len(rows), 1) * ROW_H + PAD
    img = Image.new("RGB", (WIDTH, height), BACKGROUND)
    draw = ImageDraw.Draw(img)
    if title:
        text = _fit(draw, _drawable(title, font), font, WIDTH - 2 * PAD)
        _text_mid(draw, (PAD, PAD + TITLE_H / 2), text, font)
    if not rows:
        _text_mid(draw, (PAD, top + ROW_H / 2), "no features", font)
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
        mid = top + k * ROW_H + ROW_H / 2
        y0, y1 = round(mid - BAR_H / 2), round(mid + BAR_H / 2) - 1
        label = _fit(draw, _drawable(row.label, font), font, LABEL_W)
        _text_mid(draw, (PAD + LABEL_W, mid), label, font, right=True)
        width = max(1, round(abs(row.score) * scale)) if row.score != 0.0 else 0
        score_text = _fmt(row.score)
        if row.score < 0.0:
            draw.rectangle((axis_x - width, y0, axis_x - 1, y1), fill=NEGATIVE)
            _text_mid(draw, (axis_x - width - 4, mid), score_text, font, right=True)
        else:
            if width:
                draw.rectangle((axis_x + 1, y0, axis_x + width, y1), fill=POSITIVE)
            _text_mid(draw, (axis_x + width + 4, mid), score_text, font)
    draw.line((axis_x, top, axis_x, top + len(rows) * ROW_H - 1), fill=AXIS, width=1)
    return _png(img)


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=6)
    return buf.getvalue()
