"""What the client returns: explanations with numpy arrays and PIL images, jobs, predictions, errors."""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image


class XaiError(Exception):
    """An error answer of the service: its HTTP status and the contract's `{code, message, details}`."""

    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(f"{code}: {message}")
        self.status, self.code, self.message, self.details = status, code, message, details


@dataclass(frozen=True)
class Prediction:
    index: int
    label: str
    score: float

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Prediction:
        return cls(int(data["index"]), str(data["label"]), float(data["score"]))


def decode_array(encoded: dict[str, Any] | None) -> np.ndarray | None:
    """The contract's encoded float32 array (base64 or list) as numpy."""
    if encoded is None:
        return None
    if encoded["encoding"] == "list":
        return np.asarray(encoded["data"], dtype=np.float32).reshape(encoded["shape"])
    raw = base64.b64decode(encoded["data"])
    return np.frombuffer(raw, dtype="<f4").reshape(encoded["shape"]).astype(np.float32)


@dataclass
class Explanation:
    """An explanation: `attribution` as numpy, `overlay` as a PIL image (image and tabular models)."""

    method: str
    model_id: str
    target: Prediction
    predictions: list[Prediction]
    attribution: np.ndarray | None
    overlay: Image.Image | None
    details: dict[str, Any]
    timing_ms: dict[str, float]
    job_id: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, data: dict[str, Any], job_id: str | None = None) -> Explanation:
        overlay = None
        if data.get("overlay_png"):
            overlay = Image.open(io.BytesIO(base64.b64decode(data["overlay_png"])), formats=["PNG"])
            overlay.load()
        return cls(method=data["method"], model_id=data["model_id"], target=Prediction.from_json(data["target"]),
                   predictions=[Prediction.from_json(p) for p in data["predictions"]],
                   attribution=decode_array(data.get("attribution")), overlay=overlay,
                   details=dict(data.get("details") or {}), timing_ms=dict(data.get("timing_ms") or {}),
                   job_id=job_id, raw=data)

    @property
    def html(self) -> str | None:
        """Text models: the highlighted text as an HTML fragment."""
        return self.details.get("html")

    @property
    def unknown_tokens(self) -> list[str]:
        """Text models: the words the model could not see (outside its vocabulary)."""
        return [t["token"] for t in self.details.get("unknown_tokens") or []]

    def save_overlay(self, path: str | Path) -> Path:
        """Write the picture: PNG for image and tabular models, the standalone HTML page for text."""
        path = Path(path)
        if self.overlay is not None:
            self.overlay.save(path, format="PNG")
        elif self.details.get("html_page"):
            path.write_text(self.details["html_page"], encoding="utf-8")
        else:
            raise ValueError("this explanation has no picture (output.overlay was false)")
        return path

    def save_attribution(self, path: str | Path) -> Path:
        if self.attribution is None:
            raise ValueError("this explanation has no attribution (output.attribution was 'none')")
        path = Path(path)
        np.save(path, self.attribution, allow_pickle=False)
        return path


@dataclass(frozen=True)
class Job:
    """The state of an async method's job."""

    job_id: str
    status: str
    progress: float
    method: str | None = None
    model_id: str | None = None
    created_at: str | None = None
    started_at: str | None = None
    ended_at: str | None = None
    error: dict[str, Any] | None = None
    result: dict[str, Any] | None = field(default=None, repr=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Job:
        return cls(job_id=data["job_id"], status=data["status"], progress=float(data.get("progress", 0.0)),
                   method=data.get("method"), model_id=data.get("model_id"), created_at=data.get("created_at"),
                   started_at=data.get("started_at"), ended_at=data.get("ended_at"), error=data.get("error"),
                   result=data.get("result"))

    @property
    def done(self) -> bool:
        return self.status in ("finished", "failed", "canceled")


def _png(data: str) -> Image.Image:
    img = Image.open(io.BytesIO(base64.b64decode(data)), formats=["PNG"])
    img.load()
    return img


@dataclass
class ModelExplanation:
    """A global method's explanation of a model: rankings (normlime), images (activation maximisation,
    feature inversion) or rules (rule extraction), their text and chart (a PIL image)."""

    method: str
    model_id: str
    rankings: list[dict[str, Any]] | None
    images: list[tuple[str, float | None, Image.Image]] | None  # (label, objective, image)
    rules: list[dict[str, Any]] | None
    text: str | None
    chart: Image.Image | None
    details: dict[str, Any]
    timing_ms: dict[str, float]
    job_id: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, data: dict[str, Any], job_id: str | None = None) -> ModelExplanation:
        images = None
        if data.get("images") is not None:
            images = [(g["label"], g.get("objective"), _png(g["png"])) for g in data["images"]]
        return cls(method=data["method"], model_id=data["model_id"], rankings=data.get("rankings"), images=images,
                   rules=data.get("rules"), text=data.get("text"),
                   chart=_png(data["chart_png"]) if data.get("chart_png") else None,
                   details=dict(data.get("details") or {}), timing_ms=dict(data.get("timing_ms") or {}),
                   job_id=job_id, raw=data)

    def save_chart(self, path: str | Path) -> Path:
        if self.chart is None:
            raise ValueError("this explanation has no chart")
        path = Path(path)
        self.chart.save(path, format="PNG")
        return path

