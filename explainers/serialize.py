"""Explanation -> rendered output -> JSON payload; the sync route and the worker share it."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Literal

import numpy as np

from explainers.evaluation.faithfulness import FaithfulnessOptions
from explainers.render.figure import FigureOptions
from explainers.render.styles import Style
from explainers.result import Explanation
from explainers.types import Modality

Encoding = Literal["base64", "list", "none"]


@dataclass(frozen=True)
class OutputOptions:
    """What to render: see `OutputSpec` in the HTTP schemas for each field's meaning."""

    overlay: bool = True
    colormap: str | None = None
    alpha: float = 0.5
    attribution: Encoding = "base64"
    style: Style = "overlay"
    mask_percent: float = 20.0
    size: int | None = None
    caption: bool = True
    colorbar: bool = True
    quality: FaithfulnessOptions | None = None
    pointing_tolerance: int = 15

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], **overrides: Any) -> OutputOptions:
        """From the request's `output` object (already validated), unknown keys ignored."""
        names = {f.name for f in fields(cls)}
        given = {k: v for k, v in data.items() if k in names}
        if "quality" in given:
            given["quality"] = FaithfulnessOptions.from_request(given["quality"])
        return cls(**{**given, **overrides})

    def figure(self) -> FigureOptions:
        return FigureOptions(style=self.style, colormap=self.colormap, alpha=self.alpha,
                             mask_percent=self.mask_percent, size=self.size, caption=self.caption,
                             colorbar=self.colorbar)


@dataclass
class Rendered:
    png: bytes | None = None
    html: str | None = None
    page: str | None = None  # text: the standalone HTML page


def render(expl: Explanation, options: OutputOptions) -> Rendered:
    """The picture a person looks at: overlay, bar chart, or highlighted text (and its HTML)."""
    from explainers.render.figure import caption_text, image_figure_png
    from explainers.render.tabular import bar_chart_png
    from explainers.render.text import text_page, tokens_html

    out = Rendered()
    label = expl.target.label
    caption = caption_text(expl.method, label, expl.target.score)
    if expl.modality is Modality.TEXT and expl.tokens is not None:
        out.html = tokens_html(expl.tokens, expl.attribution, signed=expl.signed, unknown=expl.unknown_tokens or (),
                               caption=caption if options.caption else None, label=label)
        out.page = text_page(out.html, title=caption)
    if not options.overlay:
        return out
    if expl.modality is Modality.IMAGE and expl.image is not None:
        out.png = image_figure_png(expl.image, expl.attribution, signed=expl.signed, options=options.figure(),
                                   caption=caption, label=label)
    elif expl.modality is Modality.TABULAR and expl.feature_names is not None:
        xlabel = f"attribution to {label} (- against, + for)" if expl.signed else f"attribution to {label}"
        out.png = bar_chart_png(expl.feature_names, expl.attribution, expl.feature_values,
                                title=caption if options.caption else "", xlabel=xlabel)
    return out


def encode_array(arr: np.ndarray, encoding: Encoding) -> dict[str, Any] | None:
    if encoding == "none":
        return None
    arr = np.ascontiguousarray(arr, dtype="<f4")
    head: dict[str, Any] = {"shape": list(arr.shape), "dtype": "float32", "encoding": encoding}
    if encoding == "list":
        head["data"] = arr.tolist()
    else:
        head["data"] = base64.b64encode(arr.tobytes()).decode("ascii")
    return head


def decode_array(encoded: dict[str, Any]) -> np.ndarray:
    """Inverse of `encode_array` (clients and tests use it)."""
    if encoded["encoding"] == "list":
        return np.asarray(encoded["data"], dtype=np.float32)
    raw = base64.b64decode(encoded["data"])
    return np.frombuffer(raw, dtype="<f4").reshape(encoded["shape"])


def to_payload(expl: Explanation, rendered: Rendered, encoding: Encoding) -> dict[str, Any]:
    """The contract's `Explanation` body."""
    details = dict(expl.details)
    if expl.modality is Modality.TEXT and expl.tokens is not None:
        details["tokens"] = expl.tokens
        details["unknown_tokens"] = [{"index": i, "token": expl.tokens[i]} for i in expl.unknown_tokens or ()]
        details["html"] = rendered.html
        details["html_page"] = rendered.page
    if expl.modality is Modality.TABULAR and expl.feature_names is not None:
        values = expl.feature_values or [float("nan")] * len(expl.feature_names)
        rows = [{"name": n, "value": v, "score": float(s)}
                for n, v, s in zip(expl.feature_names, values, expl.attribution)]
        details["features"] = sorted(rows, key=lambda r: -abs(r["score"]))
    details["signed"] = expl.signed
    return {
        "method": expl.method, "model_id": expl.model_id,
        "target": expl.target.to_dict(), "predictions": [p.to_dict() for p in expl.predictions],
        "attribution": encode_array(expl.attribution, encoding),
        "overlay_png": base64.b64encode(rendered.png).decode("ascii") if rendered.png else None,
        "details": details, "timing_ms": dict(expl.timing_ms),
    }
