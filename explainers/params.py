"""Per-method parameter models: bounded, documented, unknown keys rejected.

Shared knobs live here as small bases a method's `Params` inherits from: a method that
batches model inputs declares `batch_size` (`BatchParams`), one that offers bfloat16
autocast declares `precision` (`PrecisionParams`). The explainer base reads them through
`inputs_per_call` and `bfloat16`, which every params model answers.
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from explainers.errors import InvalidParams

# Reference inputs of path and difference methods (integrated gradients, DeepLIFT), per modality.
Baseline = Literal["default", "black", "white", "zero", "blur", "pad", "unk", "mean", "median"]
BASELINE_HELP = ("reference input: images black|white|zero|blur (default black), text pad|unk|zero embeddings "
                 "(default pad), tabular mean|median|zero of the background (default mean)")


class Params(BaseModel):
    """Base of every method's parameters; the fields here apply to all methods."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    score: Literal["logits", "probabilities"] = Field(
        "logits", description="explain the target's logit or its softmax probability")

    @property
    def inputs_per_call(self) -> int | None:
        """Model inputs per forward pass this request asks for; None: the model's default."""
        return None

    @property
    def bfloat16(self) -> bool:
        """Whether the method's model calls run under bfloat16 autocast."""
        return False

    @property
    def budget(self) -> tuple[int | None, float | None]:
        """(most model evaluations, most seconds) of the method's sampling, None: unbounded."""
        return None, None


P = TypeVar("P", bound=Params)


class SeededParams(Params):
    seed: int = Field(0, ge=0, le=2**31 - 1, description="seed of the method's random numbers")


class BatchParams(Params):
    """A method that sends batches of inputs to the model."""

    batch_size: int | None = Field(
        None, ge=1, le=65536, description="model inputs per call; default: 32 images (256 on a GPU), "
        "512 texts, 8192 tabular rows")

    @property
    def inputs_per_call(self) -> int | None:
        return self.batch_size


class GradientBatchParams(BatchParams):
    """A gradient method over many points (noisy copies, path points): forward/backward passes in batches."""

    batch_size: int = Field(16, ge=1, le=512, description="points per forward/backward pass")  # type: ignore[assignment]


class PrecisionParams(Params):
    precision: Literal["float32", "bfloat16"] = Field(
        "float32", description="bfloat16 autocast for the model calls: about 3x faster on CPUs with AMX and on "
        "GPUs, at the cost of slightly different numbers (bench/perturbation_throughput.py measures both)")

    @property
    def bfloat16(self) -> bool:
        return self.precision == "bfloat16"


class BudgetParams(Params):
    """A sampling method that can stop early with its estimate so far (`details.stopped: budget`)."""

    max_evaluations: int | None = Field(
        None, ge=1, le=100_000_000, description="most model evaluations; when spent, the estimate so far is returned "
        "with details.stopped = 'budget' (null: the method's own count)")
    time_budget_s: float | None = Field(
        None, gt=0, le=86_400, description="most seconds of model evaluations; then as for max_evaluations")

    @property
    def budget(self) -> tuple[int | None, float | None]:
        return self.max_evaluations, self.time_budget_s


class BlackBoxParams(SeededParams, BatchParams, PrecisionParams, BudgetParams):
    """Perturbation methods see only the model's outputs: its probabilities, or its logits on request."""

    score: Literal["probabilities", "logits"] = Field(  # type: ignore[assignment]
        "probabilities", description="explain the target's probability (default) or its logit (models that "
        "return logits; a model that returns probabilities is explained in probabilities)")


def parse_params(model: type[P], raw: dict[str, Any] | None) -> P:
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
