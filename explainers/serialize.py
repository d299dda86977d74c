"""Explanation -> rendered output -> JSON payload; the sync route and the worker share it."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from explainers.result import Explanation
from explainers.types import Modality

Encoding = Literal["base64", "list", "none"]


@dataclass(frozen=True)
class OutputOptions:
    overlay: bool = True
    colormap: str | None = None
    alpha: float = 0.5
    attribution: Encoding = "base64"


@dataclass
class Rendered:
    png: bytes | None = None
    html: str | None = None


def render(expl: Explanation, options: OutputOptions) -> Rendered:
    """The picture a person looks at: overlay, bar chart, or highlighted text (and its HTML)."""
    from explainers.render.image import overlay_png
    from explainers.render.tabular import bar_chart_png
    from explainers.render.text import tokens_html

    out = Rendered()
    if expl.modality is Modality.TEXT and expl.tokens is not None:
        out.html = tokens_html(expl.tokens, expl.attribution, signed=expl.signed)
    if not options.overlay:
        return out
    if expl.modality is Modality.IMAGE and expl.image is not None:
        out.png = overlay_png(expl.image, expl.attribution, signed=expl.signed,
                              colormap=options.colormap, alpha=options.alpha)
    elif expl.modality is Modality.TABULAR and expl.feature_names is not None:
        out.png = bar_chart_png(expl.feature_names, expl.attribution, expl.feature_values,
                                title=f"{expl.method}: {expl.target.label}")
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
        details["html"] = rendered.html
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
