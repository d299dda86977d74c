"""The job contract: what a job carries, typed. The API builds it once and the worker consumes it.

A payload travels as the one JSON argument of an RQ job (`JSONSerializer`: no pickle). Its `kind`
picks the task that runs it (`TASKS`); nothing else decides what a worker runs.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

TASKS: dict[str, str] = {
    "explanation": "workers.tasks.explain_job",
    "patterns": "workers.tasks.patterns_job",
    "global": "workers.tasks.global_job",
    "multi": "workers.tasks.multi_job",
    "batch": "workers.tasks.batch_job",
    "sanity": "workers.tasks.sanity_job",
    "evaluation": "workers.tasks.evaluation_job",
}


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class JobInput(_Frozen):
    """One input, checked by the API: base64 image bytes, a text, or feature values in the model's order."""

    image: str | None = None
    text: str | None = None
    features: list[float] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> JobInput:
        if sum(v is not None for v in (self.image, self.text, self.features)) != 1:
            raise ValueError("a job input has exactly one of image, text, features")
        return self

    def as_request(self) -> dict[str, Any]:
        """The input as the explanation service takes it."""
        return self.model_dump(exclude_none=True)


class ExplanationJob(_Frozen):
    kind: Literal["explanation"] = "explanation"
    method: str
    model_id: str
    input: JobInput
    target: int | str | list[int | str] | dict[str, Any] | None = Field(
        None, description="a class, a list of classes, or {class, versus | box | mask}")
    params: dict[str, Any] = Field(description="the method's params as parsed (every default filled in)")
    output: dict[str, Any] = Field(description="the output options (`explainers.serialize.OutputOptions`)")
    top_k: int = 5
    region: dict[str, Any] | None = Field(None, description="where the object is (localisation figures)")
    owner: str = "anonymous"
    cache_key: str | None = Field(None, description="where the worker stores the result in the cache")

    @property
    def label(self) -> str:
        return self.method


class PatternsJob(_Frozen):
    kind: Literal["patterns"] = "patterns"
    model_id: str
    inputs: list[dict[str, Any]] | None = None
    owner: str = "anonymous"

    @property
    def label(self) -> str:
        return "patterns"


class GlobalJob(_Frozen):
    """A global method's explanation of a model."""

    kind: Literal["global"] = "global"
    method: str
    model_id: str
    inputs: list[dict[str, Any]] | None = None
    input: dict[str, Any] | None = None
    target: int | str | None = None
    params: dict[str, Any] = Field(description="the method's params as parsed")
    owner: str = "anonymous"

    @property
    def label(self) -> str:
        return self.method


class MultiExplanationJob(_Frozen):
    """Several methods on one input, with their agreement."""

    kind: Literal["multi"] = "multi"
    methods: list[str]
    model_id: str
    input: JobInput
    target: int | str | dict[str, Any] | None = Field(None, description="a class, or {class, box | mask}")
    params: dict[str, dict[str, Any]] = Field(description="each method's params as parsed")
    output: dict[str, Any]
    top_k: int = 5
    top_percent: float = 10.0
    region: dict[str, Any] | None = None
    owner: str = "anonymous"

    @property
    def label(self) -> str:
        return "+".join(self.methods)


class BatchExplanationJob(_Frozen):
    """Several inputs explained with one method in shared batches."""

    kind: Literal["batch"] = "batch"
    method: str
    model_id: str
    inputs: list[JobInput] = Field(min_length=1)
    target: int | str | None = None
    params: dict[str, Any] = Field(description="the method's params as parsed (every default filled in)")
    output: dict[str, Any]
    top_k: int = 5
    regions: list[dict[str, Any] | None] | None = Field(None, description="each input's region, where it has one")
    owner: str = "anonymous"
    cache_keys: list[str] | None = Field(None, description="where the worker stores each input's explanation")

    @property
    def label(self) -> str:
        return self.method


class SanityJob(_Frozen):
    """The cascading randomisation test of methods on a model."""

    kind: Literal["sanity"] = "sanity"
    model_id: str
    methods: list[str]
    params: dict[str, dict[str, Any]]
    inputs: list[dict[str, Any]] | None = None
    n_inputs: int = 4
    stages: int = 8
    seed: int = 0
    owner: str = "anonymous"

    @property
    def label(self) -> str:
        return "sanity"


class EvaluationJob(_Frozen):
    """The faithfulness and localisation table of methods over a sample set."""

    kind: Literal["evaluation"] = "evaluation"
    model_id: str
    methods: list[str]
    params: dict[str, dict[str, Any]]
    inputs: list[dict[str, Any]] | None = None
    n_inputs: int = 16
    quality: dict[str, Any] = Field(default_factory=dict)
    pointing_tolerance: int = 15
    owner: str = "anonymous"

    @property
    def label(self) -> str:
        return "evaluation"


Payload = (ExplanationJob | PatternsJob | GlobalJob | MultiExplanationJob | BatchExplanationJob | SanityJob
           | EvaluationJob)
JobPayload = Annotated[Payload, Field(discriminator="kind")]
_PAYLOAD: TypeAdapter[Payload] = TypeAdapter(JobPayload)


def parse_payload(data: Any) -> Payload:
    return _PAYLOAD.validate_python(data)


def job_meta(payload: Payload) -> dict[str, Any]:
    """What the job keeps in `job.meta` from the start: enough to list and filter it without its payload."""
    meta: dict[str, Any] = {"progress": 0.0, "kind": payload.kind, "method": payload.label,
                            "model_id": payload.model_id, "owner": payload.owner}
    if isinstance(payload, ExplanationJob):
        meta["cache_key"] = payload.cache_key
    return meta
