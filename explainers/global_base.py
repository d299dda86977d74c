"""The base of model-level (global) methods: they explain the model, not one input.

A global method declares what a request gives it (`takes`: a sample set, one input, or nothing)
and writes `_explain`; the base checks the model, holds its lock, times the run and wraps the
`ModelResult` into a `ModelExplanation`. Global methods always run as jobs.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

import torch

from explainers.base import Progress, resolve_target
from explainers.context import ModelAccess
from explainers.errors import InvalidInput, MethodNotSupported
from explainers.global_result import ModelExplanation, ModelResult
from explainers.method import Method
from explainers.models.handle import Forward, RawInput
from explainers.models.protocol import Model
from explainers.params import P
from explainers.types import Execution, Scope, Takes


class GlobalContext(ModelAccess):
    """Per-call state of a global method: the model, what the request gave, progress, evaluations.

    `samples` is the sample set (methods that take one), `raw` the one input (methods that take one),
    `target` the requested class (index, label or None). `progress(fraction)` may raise to cancel.
    """

    def __init__(self, model: Model, *, samples: list[RawInput] | None = None, raw: RawInput | None = None,
                 target: int | str | None = None, progress: Progress | None = None) -> None:
        self.model = model
        self.samples = samples
        self.raw = raw
        self.requested_target = target
        self.progress: Progress = progress or (lambda _fraction: None)
        self.evaluations = 0

    @property
    def device(self) -> torch.device:
        return self.model.device

    def target(self) -> int | None:
        """The requested class as an index, or None when the request named none."""
        if self.requested_target is None:
            return None
        return resolve_target(self.requested_target, self.model.labels, 0)

    def probabilities(self, forward: Forward, batch: torch.Tensor, batch_size: int, *, done: float = 0.0,
                      share: float = 1.0) -> torch.Tensor:
        """Probabilities [N, K] of native inputs [N, ...] through `forward` (a prepared input's
        `native_forward`), `batch_size` rows per call; progress moves from `done` to `done + share`."""
        outs = []
        n = batch.shape[0]
        with torch.inference_mode():
            for start in range(0, n, batch_size):
                chunk = batch[start:start + batch_size]
                outs.append(self.model.probabilities(forward(chunk).float()))
                self.evaluations += chunk.shape[0]
                self.progress(min(1.0, done + share * min(n, start + batch_size) / n))
        return torch.cat(outs) if outs else torch.empty(0, len(self.model.labels))

    def sample_set(self) -> list[RawInput]:
        assert self.samples is not None, "only methods that take samples read them"
        return self.samples

    def input(self) -> RawInput:
        assert self.raw is not None, "only methods that take an input read it"
        return self.raw


class GlobalExplainer(Method[P]):
    """Base of every global method. Subclasses set the class attributes and write `_explain`.

    `check` runs when a request is accepted (before it is queued): what it raises is a 4xx at once
    rather than a failed job (a layer the model lacks, a channel past the layer's).
    """

    scope = Scope.GLOBAL
    execution = Execution.ASYNC
    takes: ClassVar[Takes] = Takes.NOTHING
    signed = False

    @classmethod
    def check(cls, model: Model, params: P, target: int | str | None) -> None:
        """Cheap checks of a request against the model; raises a `ServiceError`."""
        if target is not None:
            resolve_target(target, model.labels, 0)

    def _explain(self, ctx: GlobalContext, p: P) -> ModelResult:
        raise NotImplementedError

    def explain_model(self, model: Model, params: P, *, samples: list[RawInput] | None = None,
                      raw: RawInput | None = None, target: int | str | None = None,
                      progress: Progress | None = None) -> ModelExplanation:
        """Check the request, run the method under the model's lock, report what it reached."""
        refusal = self.refusal(model.manifest)
        if refusal is not None:
            raise MethodNotSupported(refusal)
        if self.takes is Takes.SAMPLES and not samples:
            raise InvalidInput(f"method {self.name!r} needs a non-empty sample set", code="empty_samples")
        if self.takes is Takes.INPUT and raw is None:
            raise InvalidInput(f"method {self.name!r} needs an input", code="input_required")
        self.check(model, params, target)
        t0 = time.perf_counter()
        with model.explaining():
            ctx = GlobalContext(model, samples=samples, raw=raw, target=target, progress=progress)
            result = self._explain(ctx, params)
        details: dict[str, Any] = dict(result.details)
        if ctx.evaluations:
            details["model_evaluations"] = ctx.evaluations
        result.details = details
        return ModelExplanation(method=self.name, model_id=model.id, modality=model.modality, result=result,
                                timing_ms={"explain": (time.perf_counter() - t0) * 1e3})
