"""Per-method parameter models: bounded, documented, unknown keys rejected."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from explainers.errors import InvalidParams


class Params(BaseModel):
    """Base of every method's parameters; the fields here apply to all methods."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    score: Literal["logits", "probabilities"] = Field(
        "logits", description="explain the target's logit or its softmax probability")


class SeededParams(Params):
    seed: int = Field(0, ge=0, le=2**31 - 1, description="seed of the method's random numbers")


def parse_params(model: type[Params], raw: dict[str, Any] | None) -> Params:
    """Validate raw params against a method's model, as an `invalid_params` error on failure."""
    if raw is not None and not isinstance(raw, dict):
        raise InvalidParams("params must be a JSON object")
    try:
        return model.model_validate(raw or {})
    except ValidationError as exc:
        errors = [{"param": ".".join(str(p) for p in e["loc"]), "message": e["msg"]}
                  for e in exc.errors(include_url=False)]
        raise InvalidParams("invalid params: " + "; ".join(f"{e['param']}: {e['message']}" for e in errors),
                            details=errors) from None


class BlackBoxParams(SeededParams):
    """Perturbation methods see only the model's probabilities."""

    score: Literal["probabilities"] = Field(  # type: ignore[assignment]
        "probabilities", description="black-box methods explain the target's probability")
    batch_size: int | None = Field(
        None, ge=1, le=65536, description="model inputs per call; default: 32 images (256 on a GPU), "
        "512 texts, 8192 tabular rows")
    precision: Literal["float32", "bfloat16"] = Field(
        "float32", description="bfloat16 autocast for the model calls: about 3x faster on CPUs with AMX and on "
        "GPUs, at the cost of slightly different numbers (bench/perturbation_throughput.py measures both)")
