"""Text renderer: tokens shaded by their attribution, each with its value, and a legend.

`tokens_html` gives a fragment with inline styles only (it can go into any page without its
styles leaking); `text_page` wraps a fragment into a standalone HTML document.
"""

from __future__ import annotations

import html
import math
from collections.abc import Collection

import numpy as np

POSITIVE_RGB = (220, 38, 38)
NEGATIVE_RGB = (37, 99, 235)
UNSIGNED_RGB = (234, 88, 12)

_ROOT_STYLE = "font-family:system-ui,-apple-system,'Segoe UI',sans-serif;line-height:1.4;color:#1e1e1e"
_TOKENS_STYLE = "display:flex;flex-wrap:wrap;gap:.45em .3em;align-items:flex-end"
_SPAN_STYLE = ("display:inline-flex;flex-direction:column;align-items:center;padding:.15em .35em;"
               "border-radius:4px;background-color:rgba({r},{g},{b},{a:.3f})")
_UNKNOWN_STYLE = ";outline:2px dashed #6b7280;outline-offset:-2px"
_VALUE_STYLE = "font-size:.72em;color:#4b5563;font-variant-numeric:tabular-nums"
_LEGEND_STYLE = "margin-top:.9em;font-size:.82em;color:#4b5563;display:flex;flex-wrap:wrap;gap:.6em 1.4em"
_SWATCH_STYLE = "display:inline-block;width:7em;height:.85em;border:1px solid #bbb;vertical-align:middle;" \
                "margin:0 .4em;background:linear-gradient(to right,{stops})"
UNKNOWN_TITLE = "not in the model's vocabulary: the model sees {unk} here, not this word"


def _rgba(rgb: tuple[int, int, int], a: float) -> str:
    return f"rgba({rgb[0]},{rgb[1]},{rgb[2]},{a:g})"


def tokens_html(
    tokens: list[str],
    scores: np.ndarray | list[float],
    *,
    signed: bool = True,
    unknown: Collection[int] = (),
    caption: str | None = None,
    label: str | None = None,
    unk_token: str = "<unk>",
) -> str:
    """A self-contained ``<div class="xai-text">``: one ``xai-token`` span per token, then a legend.

    Background hue shows sign (red positive, blue negative; one orange hue when ``signed``
    is False, where negatives count as 0) and its alpha is ``|score| / max|score|``. Each
    token shows its value under the word (and in its ``title``). Tokens at the indices in
    ``unknown`` (outside the vocabulary) get a dashed outline, ``data-unknown="true"`` and a
    legend entry. Text is HTML-escaped. Non-finite scores count as 0.
    """
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(tokens) != s.size:
        raise ValueError(f"{len(tokens)} tokens but {s.size} scores")
    s = np.where(np.isfinite(s), s, 0.0)
    if not signed:
        s = np.maximum(s, 0.0)
    peak = float(np.max(np.abs(s))) if s.size else 0.0
    unknown_set = set(unknown)
    spans = []
    for i, (token, score) in enumerate(zip(tokens, s.tolist())):
        strength = abs(score) / peak if peak > 0.0 else 0.0
        rgb = UNSIGNED_RGB if not signed else NEGATIVE_RGB if score < 0.0 else POSITIVE_RGB
        style = _SPAN_STYLE.format(r=rgb[0], g=rgb[1], b=rgb[2], a=strength)
        value_style = _VALUE_STYLE
        if strength > 0.6:  # light text on a strong background
            style += ";color:#fff"
            value_style = value_style.replace("color:#4b5563", "color:#f3f4f6")
        value = _fmt(score, signed)
        extra = ""
        title = value
        if i in unknown_set:
            style += _UNKNOWN_STYLE
            extra = ' data-unknown="true"'
            title = f"{value}; " + UNKNOWN_TITLE.format(unk=unk_token)
        spans.append(
            f'<span class="xai-token{" xai-unknown" if i in unknown_set else ""}" style="{style}" '
            f'title="{html.escape(title, quote=True)}" data-score="{value}"{extra}>'
            f'<span class="xai-word">{html.escape(str(token), quote=True)}</span>'
            f'<span class="xai-value" style="{value_style}">{value}</span></span>')
    head = f'<div class="xai-caption" style="font-weight:600;margin-bottom:.6em">{html.escape(caption)}</div>' \
        if caption else ""
    body = f'<div class="xai-tokens" style="{_TOKENS_STYLE}">' + " ".join(spans) + "</div>"
    legend = _legend(signed, peak, len(unknown_set & set(range(len(tokens)))), label, unk_token) if tokens else ""
    return f'<div class="xai-text" style="{_ROOT_STYLE}">{head}{body}{legend}</div>'


def _legend(signed: bool, peak: float, n_unknown: int, label: str | None, unk_token: str) -> str:
    target = html.escape(label) if label else "the class"
    if signed:
        stops = f"{_rgba(NEGATIVE_RGB, 1)},{_rgba(NEGATIVE_RGB, 0)} 50%,{_rgba(POSITIVE_RGB, 0)} 50%," \
                f"{_rgba(POSITIVE_RGB, 1)}"
        scale = f"- against {target}<span style=\"{_SWATCH_STYLE.format(stops=stops)}\"></span>for {target} +"
    else:
        stops = f"{_rgba(UNSIGNED_RGB, 0)},{_rgba(UNSIGNED_RGB, 1)}"
        scale = f"0<span style=\"{_SWATCH_STYLE.format(stops=stops)}\"></span>most relevant for {target}"
    items = [f'<span class="xai-scale">{scale}</span>',
             f'<span class="xai-peak">numbers: each token\'s attribution (max |value| {_fmt(peak, False)})</span>']
    if n_unknown:
        word = "word" if n_unknown == 1 else "words"
        items.append(f'<span class="xai-unknown-note"><span style="outline:2px dashed #6b7280;padding:0 .3em">'
                     f'{n_unknown} {word}</span> outside the vocabulary: the model sees '
                     f'{html.escape(unk_token)} there</span>')
    return f'<div class="xai-legend" style="{_LEGEND_STYLE}">' + "".join(items) + "</div>"


def text_page(fragment: str, *, title: str) -> str:
    """A standalone HTML page around a fragment of `tokens_html`."""
    return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
            f"<title>{html.escape(title)}</title></head>"
            "<body style=\"max-width:60em;margin:2em auto;padding:0 1em;background:#fff\">"
            f"{fragment}</body></html>\n")


def _fmt(score: float, signed: bool) -> str:
    if score == 0.0 or not math.isfinite(score):
        return "0"
    text = f"{score:.3g}" if 1e-3 <= abs(score) < 1e5 else f"{score:.2e}"
    return f"+{text}" if signed and score > 0 else text
