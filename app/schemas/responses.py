"""Response bodies of the HTTP contract (no torch here)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from app.schemas.global_methods import GlobalExplanation
from app.schemas.requests import Input


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


class TargetEntry(BaseModel):
    """One target's part of a several-targets explanation."""

    target: Prediction
    attribution: EncodedArray | None
    overlay_png: str | None = Field(None, description="base64 PNG of this target's map")
    details: dict[str, Any] = Field(description="as an Explanation's; `model_evaluations` and `backward_passes`: "
                                                "what this target ran itself (the first runs what they share)")


class TargetsExplanation(BaseModel):
    """Several targets of one input (a list `target`, or a multi-label model's positive labels)."""

    method: str
    model_id: str
    predictions: list[Prediction]
    targets: list[TargetEntry] = Field(description="one entry per target, in the request's order")
    details: dict[str, Any] = Field(description="`targets` (how many), `model_evaluations` and `backward_passes`: "
                                                "what every target ran together")
    timing_ms: dict[str, float]


class ModelInfo(BaseModel):
    id: str = Field(description="the model's id; for a bundle whose manifest does not read, its folder name")
    modality: Literal["image", "text", "tabular"] | None = Field(description="null only for an unreadable bundle")
    labels: list[str]
    input: dict[str, Any]
    methods: list[str] = Field(description="local methods that explain this model's inputs (POST /explain/{method})")
    global_methods: list[str] = Field(
        default_factory=list, description="global methods that explain this model (POST /models/{id}/global/{method})")
    source: Literal["local", "remote"]
    device: str
    loaded: bool
    description: str = ""
    status: Literal["ready", "loading", "not_loaded", "error"] = Field(
        description="`ready` loaded and checked; `loading` at start; `not_loaded` until first use (lazy); "
        "`error`: it cannot serve (see `error`)")
    error: str | None = Field(None, description="why the bundle cannot serve (no absolute paths)")


class ModelList(BaseModel):
    models: list[ModelInfo]


class MethodInfo(BaseModel):
    name: str
    scope: Literal["local", "global"] = Field(
        description="local: explains one input (POST /explain/{method}); global: explains a model "
        "(POST /models/{model_id}/global/{method}, always a job)")
    takes: Literal["input", "samples", "nothing"] = Field(
        description="what a request gives the method: one input, a sample set (the inputs sent, else the "
        "bundle's own), or nothing")
    execution: Literal["sync", "async"]
    modalities: list[str]
    requires: Literal["gradients", "activations", "predictions"] = Field(
        description="what the method reads of the model: its gradients, a layer's activations, or only predictions")
    local_only: bool = Field(description="the method reads the torch module, so it runs only on local models")
    signed: bool
    contrastive: bool = Field(False, description="it explains a score difference: `target: {\"class\": A, "
                              "\"versus\": B}` (see the contract's \"Several targets\")")
    description: str
    params: dict[str, Any] = Field(description="JSON schema of the method's params")
    sanity: dict[str, Literal["passes", "fails"]] = Field(
        default_factory=dict, description="the model randomisation test's verdict on each local model it was run "
        "on, for the model's current weights (shipped with the bundle, or from POST /models/{id}/sanity)")


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


class ModelState(BaseModel):
    status: Literal["ready", "loading", "not_loaded", "error"]
    error: str | None = None


class WorkerState(BaseModel):
    name: str
    state: str | None = Field(description="`idle` or `busy`")
    host: str | None
    device: str | None
    job: str | None = Field(description="the job it runs")
    seen_s_ago: float = Field(description="seconds since its last heartbeat")


class QueueState(BaseModel):
    status: Literal["ok", "unavailable"]
    depth: int | None = Field(None, description="jobs waiting")
    error: str | None = None


class Readiness(BaseModel):
    status: Literal["ready", "not_ready"]
    reasons: dict[str, Any] | None = Field(None, description="why not ready: queue, workers, models")
    queue: QueueState
    workers: list[WorkerState] = Field(description="workers alive (a heartbeat within 15 s)")
    models: dict[str, ModelState] = Field(description="every bundle, by id (or folder name)")


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
    joined: bool = Field(False, description="an identical request of the same key was queued or running: this is "
                         "its job")
    details: dict[str, Any] | None = Field(None, description="with ?wait and no worker alive: `{\"workers\": 0, "
                                           "\"hint\"}`")


class PatternsResult(BaseModel):
    model_id: str
    weights_hash: str = Field(description="SHA-256 of the weights file the patterns belong to")
    n_samples: int
    layers: int = Field(description="layers with weights that got patterns")
    origin: str = Field(description="'request inputs' or 'bundle samples'")
    stored: bool = Field(description="written to the state folder, where every API and worker process finds them")
    seconds: float


class Agreement(BaseModel):
    methods: list[str] = Field(min_length=2, max_length=2, description="the two methods compared")
    spearman: float = Field(description="Spearman rank correlation of their maps (0 where either is constant)")
    top_overlap: float = Field(description="share of the first map's top `top_percent` % features that are in "
                               "the second's")
    top_percent: float


class MultiExplanation(BaseModel):
    model_id: str
    target: Prediction = Field(description="the class every method explains (from one forward pass)")
    predictions: list[Prediction]
    explanations: list[Explanation] = Field(description="one per method, in the order asked")
    agreement: list[Agreement] = Field(description="every pair of methods with a map")
    timing_ms: dict[str, float]


class BatchExplanation(BaseModel):
    """Several inputs explained with one method (`inputs: [...]`)."""

    model_id: str
    method: str
    explanations: list[Explanation] = Field(description="one per input, in the order sent; each what a "
                                            "single-input request gives, with details.batched")
    timing_ms: dict[str, float]


class SanityStage(BaseModel):
    randomised: str = Field(description="the lowest layer randomised at this stage")
    layers_randomised: int = Field(description="weighted layers randomised so far, from the top")
    spearman: float = Field(description="mean rank correlation of the maps with the trained model's")
    spearman_abs: float = Field(description="the same, of the maps' absolute values")
    ssim: float = Field(description="mean structural similarity of the maps with the trained model's")


class SanityMethod(BaseModel):
    method: str
    verdict: Literal["passes", "fails"]
    passes: bool
    why: str
    threshold: float = Field(description="passes when the similarity (`judged_by`) of the maps with the top half "
                             "of the layers randomised to the trained model's is below this")
    judged_by: Literal["ssim", "spearman_abs"] = Field(
        "ssim", description="the similarity judged: SSIM for image maps, the rank correlation of the absolute "
        "values for token and feature maps")
    judged_at: int = Field(description="layers randomised at the stage the verdict reads")
    n_inputs: int
    stages: list[SanityStage]
    weights_hash: str
    cached: bool = Field(description="from the store: the same check ran on these weights before")


class SanityResult(BaseModel):
    model_id: str
    weights_hash: str
    n_inputs: int
    origin: str = Field(description="'request inputs' or 'bundle samples'")
    methods: list[SanityMethod]
    seconds: float


class Figure(BaseModel):
    mean: float
    sem: float | None = Field(description="standard error of the mean (null with one input)")


class EvaluationRow(BaseModel):
    method: str
    n: int = Field(description="inputs explained")
    failures: int = Field(description="inputs the method could not explain (a budget too small)")
    failure: str | None = None
    deletion_auc: Figure | None = None
    insertion_auc: Figure | None = None
    morf_aopc: Figure | None = None
    lerf_aopc: Figure | None = None
    random_deletion_auc: Figure | None = Field(None, description="the same figure for a random map")
    random_insertion_auc: Figure | None = None
    random_morf_aopc: Figure | None = None
    pointing_game: Figure | None = Field(None, description="hit rate, over the inputs with a region")
    energy_share: Figure | None = None
    positive_share: Figure | None = None
    ms_per_explanation: Figure
    evaluations_per_explanation: Figure = Field(description="the method's own model evaluations (the figures' "
                                                "are not counted)")


class EvaluationResult(BaseModel):
    model_id: str
    weights_hash: str | None
    n_inputs: int
    origin: str
    with_regions: int = Field(description="inputs with a region (the localisation figures' inputs)")
    settings: dict[str, Any]
    rows: list[EvaluationRow]
    chart_png: str = Field(description="base64 PNG: the table as a chart")
    seconds: float


JobKind = Literal["explanation", "patterns", "global", "multi", "batch", "sanity", "evaluation"]


class JobState(BaseModel):
    job_id: str
    kind: JobKind = Field(
        "explanation", description="an explanation, the patterns of a model (POST /models/{id}/patterns), a global "
        "method's explanation of a model (POST /models/{id}/global/{method}), several methods on one input "
        "(POST /explain), several inputs with one method (`inputs`: batch), a sanity check or an evaluation "
        "(POST /models/{id}/sanity, /evaluate)")
    owner: str = Field("anonymous", description="the name of the key that made it")
    status: Literal["queued", "started", "finished", "failed", "canceled"]
    progress: float = Field(ge=0, le=1)
    method: str | None
    model_id: str | None
    created_at: str | None
    started_at: str | None
    ended_at: str | None
    attempts: int = Field(description="runs so far, retries after a lost worker included")
    result: (Explanation | TargetsExplanation | MultiExplanation | BatchExplanation | SanityResult
             | EvaluationResult | PatternsResult | GlobalExplanation | None)
    error: ErrorDetail | None
    eta_s: float | None = Field(None, description="while it runs: seconds left, from its progress so far")
    error_estimate: float | None = Field(
        None, description="sampling methods: their current error estimate (RISE: the map's noise over its spread; "
        "KernelSHAP: the largest standard error)")


class JobSummary(BaseModel):
    job_id: str
    kind: JobKind = "explanation"
    owner: str = "anonymous"
    status: Literal["queued", "started", "finished", "failed", "canceled"]
    progress: float = Field(ge=0, le=1)
    method: str | None
    model_id: str | None
    created_at: str | None
    started_at: str | None
    ended_at: str | None


class JobList(BaseModel):
    jobs: list[JobSummary] = Field(description="the caller's jobs, the most recent first")
    next_offset: int | None = Field(None, description="the `offset` of the next page; null on the last")
