"""Request and response bodies of the HTTP contract (no torch here)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, StrictInt, StrictStr, model_validator

from explainers.render.colormaps import COLORMAPS

# the colormap field's `enum`, built as a list of JSON values: `json_schema_extra` takes those (list is invariant)
COLORMAP_ENUM: list[JsonValue] = [*sorted(COLORMAPS)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Input(_Body):
    """Exactly one of image (base64 PNG/JPEG/WebP bytes), text, or features."""

    image: str | None = Field(None, description="base64-encoded image bytes")
    text: str | None = None
    features: dict[str, Any] | list[Any] | None = Field(
        None, description="feature values by name, or a list in the model's feature order")

    @model_validator(mode="after")
    def _exactly_one(self) -> Input:
        given = [k for k in ("image", "text", "features") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("input needs exactly one of 'image', 'text' or 'features'")
        return self


class OutputSpec(_Body):
    """How the explanation is drawn: the picture's style and size, its caption and colour bar."""

    overlay: bool = Field(True, description="render the picture (image models) or bar chart (tabular models)")
    style: Literal["overlay", "heatmap", "graymap", "diverging", "mask", "contour"] = Field(
        "overlay", description="image models: `overlay` the heatmap blended over the image; `heatmap` the map "
        "alone; `graymap` |attribution| in grey; `diverging` the signed map alone, centred at 0; `mask` the top "
        "`mask_percent` % of pixels kept, the rest greyed; `contour` iso-lines over the image")
    colormap: str | None = Field(None, description="colormap name; default: jet for non-negative maps, "
                                 "bwr for signed maps", json_schema_extra={"enum": COLORMAP_ENUM})
    alpha: float = Field(0.5, ge=0.0, le=1.0, description="heatmap opacity in the overlay")
    mask_percent: float = Field(20.0, gt=0.0, le=100.0, description="style `mask`: percent of pixels kept")
    size: int | None = Field(None, ge=1, le=2048, description="long side of the picture in px (the map's "
                             "cells nearest-neighbour, the photo bilinear); null: the image as sent, enlarged "
                             "by a whole factor to at least 256 px")
    caption: bool = Field(True, description="a caption with the method, the class and its probability")
    colorbar: bool = Field(True, description="image models: a colour bar with the value range (and for signed "
                           "maps what each sign means)")
    attribution: Literal["base64", "list", "none"] = "base64"

    @model_validator(mode="after")
    def _known_colormap(self) -> OutputSpec:
        if self.colormap is not None and self.colormap not in COLORMAPS:
            raise ValueError(f"unknown colormap {self.colormap!r}; use one of {sorted(COLORMAPS)}")
        return self


class ExplainRequest(_Body):
    model_id: str = Field(min_length=1, max_length=200)
    input: Input
    target: StrictInt | StrictStr | None = Field(None, description="null: top-1 class; else a class index or a label")
    params: dict[str, Any] = Field(default_factory=dict, description="the method's parameters (see /methods)")
    output: OutputSpec = Field(default_factory=OutputSpec)
    top_k: int = Field(5, ge=1, le=100, description="predictions reported")


class PredictRequest(_Body):
    input: Input
    top_k: int = Field(5, ge=1, le=1000)


class Prediction(BaseModel):
    index: int
    label: str
    score: float


class PredictResponse(BaseModel):
    model_id: str
    predictions: list[Prediction]


class EncodedArray(BaseModel):
    shape: list[int]
    dtype: Literal["float32"]
    encoding: Literal["base64", "list"]
    data: str | list[Any]


class Explanation(BaseModel):
    method: str
    model_id: str
    target: Prediction
    predictions: list[Prediction]
    attribution: EncodedArray | None
    overlay_png: str | None = Field(None, description="base64 PNG: overlay, or bar chart for tabular models")
    details: dict[str, Any]
    timing_ms: dict[str, float]


class ModelInfo(BaseModel):
    id: str
    modality: Literal["image", "text", "tabular"]
    labels: list[str]
    input: dict[str, Any]
    methods: list[str]
    source: Literal["local", "remote"]
    device: str
    loaded: bool
    description: str = ""


class ModelList(BaseModel):
    models: list[ModelInfo]


class MethodInfo(BaseModel):
    name: str
    execution: Literal["sync", "async"]
    modalities: list[str]
    requires: Literal["gradients", "activations", "predictions"] = Field(
        description="what the method reads of the model: its gradients, a layer's activations, or only predictions")
    local_only: bool = Field(description="the method reads the torch module, so it runs only on local models")
    signed: bool
    description: str
    params: dict[str, Any] = Field(description="JSON schema of the method's params")


class MethodList(BaseModel):
    methods: list[MethodInfo]


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: Any = None


class ErrorBody(BaseModel):
    error: ErrorDetail


class Status(BaseModel):
    status: str
    reasons: dict[str, Any] | None = None


_ERROR_TEXT = {400: "bad input (not JSON, an undecodable image)", 404: "unknown model, method, job or file",
               409: "the job has not finished", 413: "payload too large", 415: "unsupported media type",
               422: "invalid params, target, input or query", 503: "backend unavailable (queue, model server)"}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The error responses a route can give, each with the contract's error body."""
    return {code: {"model": ErrorBody, "description": _ERROR_TEXT[code]} for code in codes}


ERROR_RESPONSES = error_responses(400, 404, 413, 415, 422, 503)  # what POST /explain can answer


class Sample(BaseModel):
    """A row of a tabular model's background sample, as an input ready to send."""

    model_id: str
    index: int
    count: int = Field(description="rows in the background sample")
    input: Input


class ExampleInfo(BaseModel):
    name: str
    kind: Literal["image", "text", "json"]
    media_type: str
    url: str
    bytes: int


class ExampleList(BaseModel):
    examples: list[ExampleInfo]


class JobLinks(BaseModel):
    self: str


class JobAccepted(BaseModel):
    job_id: str
    status: Literal["queued", "started", "finished", "failed", "canceled"]
    links: JobLinks


class PatternsRequest(_Body):
    inputs: list[Input] | None = Field(
        None, max_length=4096, description="sample inputs of the model's modality; default: the bundle's own "
        "sample set (`samples` in its manifest; a tabular model's background)")


class PatternsResult(BaseModel):
    model_id: str
    weights_hash: str = Field(description="SHA-256 of the weights file the patterns belong to")
    n_samples: int
    layers: int = Field(description="layers with weights that got patterns")
    origin: str = Field(description="'request inputs' or 'bundle samples'")
    stored: bool = Field(description="written to the state folder, where every API and worker process finds them")
    seconds: float


class JobState(BaseModel):
    job_id: str
    kind: Literal["explanation", "patterns"] = Field(
        "explanation", description="an explanation, or the patterns of a model (POST /models/{id}/patterns)")
    status: Literal["queued", "started", "finished", "failed", "canceled"]
    progress: float = Field(ge=0, le=1)
    method: str | None
    model_id: str | None
    created_at: str | None
    started_at: str | None
    ended_at: str | None
    attempts: int = Field(description="runs so far, retries after a lost worker included")
    result: Explanation | PatternsResult | None
    error: ErrorDetail | None


class JobSummary(BaseModel):
    job_id: str
    status: Literal["queued", "started", "finished", "failed", "canceled"]
    progress: float = Field(ge=0, le=1)
    method: str | None
    model_id: str | None
    created_at: str | None
    started_at: str | None
    ended_at: str | None


class JobList(BaseModel):
    jobs: list[JobSummary] = Field(description="the most recent jobs first")
