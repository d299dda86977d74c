"""Text renderer: tokens as HTML spans shaded by their attribution."""

from __future__ import annotations

import html
import math

import numpy as np

POSITIVE_RGB = (220, 38, 38)
NEGATIVE_RGB = (37, 99, 235)
UNSIGNED_RGB = (234, 88, 12)

_SPAN_STYLE = "padding:0 2px;border-radius:3px;background-color:rgba({r},{g},{b},{a:.3f})"


def tokens_html(
    tokens: list[str],
    scores: np.ndarray | list[float],
    *,
    signed: bool = True,
) -> str:
    """A self-contained ``<div class="xai-text">`` of one ``<span>`` per token.

    Background hue shows sign (red positive, blue negative; one orange hue
    when ``signed`` is False, where negatives count as 0) and its alpha is
    ``|score| / max|score|``. Each span's ``title`` holds the score. Tokens are
    HTML-escaped and joined by single spaces. Non-finite scores count as 0.
    """
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(tokens) != s.size:
        raise ValueError(f"{len(tokens)} tokens but {s.size} scores")
    s = np.where(np.isfinite(s), s, 0.0)
    if not signed:
        s = np.maximum(s, 0.0)
    peak = float(np.max(np.abs(s))) if s.size else 0.0
    spans = []
    for token, score in zip(tokens, s.tolist()):
        strength = abs(score) / peak if peak > 0.0 else 0.0
        if not signed:
            rgb = UNSIGNED_RGB
        elif score < 0.0:
            rgb = NEGATIVE_RGB
        else:
            rgb = POSITIVE_RGB
        style = _SPAN_STYLE.format(r=rgb[0], g=rgb[1], b=rgb[2], a=strength)
        title = html.escape(_fmt(score), quote=True)
        text = html.escape(str(token), quote=True)
        spans.append(f'<span class="xai-token" style="{style}" title="{title}">{text}</span>')
    return '<div class="xai-text">' + " ".join(spans) + "</div>"


def _fmt(score: float) -> str:
    if score == 0.0 or not math.isfinite(score):
        return "0"
    return f"{score:.4g}"
