"""The explainer base class: it owns the loop, a method writes `_attribute`."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from explainers.errors import InvalidInput, InvalidParams, InvalidTarget, MethodNotSupported
from explainers.models.handle import LocalModel, ModelInput, RawInput
from explainers.models.manifest import Manifest
from explainers.models.protocol import Model
from explainers.params import P
from explainers.params import Params as BaseParams
from explainers.result import Explanation
from explainers.sizing import bounded_batch, default_batch_size, shrink
from explainers.types import Execution, Modality, Prediction, Requires


@dataclass
class Attribution:
    """What a method returns: the map (any resolution for images) and extra details.

    `signed` overrides the method's own where a param decides (RISE centred on its offset).
    """

    values: torch.Tensor | np.ndarray
    details: dict[str, Any] = field(default_factory=dict)
    signed: bool | None = None


Progress = Callable[[float], None]


class Context:
    """Per-call state handed to a method: the prepared input, the target, the score.

    `progress(fraction)` is called as work completes; it may raise to cancel the call.
    `batch_size` is the number of model inputs per forward pass: the params' `batch_size`
    where the method has one, else `default_batch_size` of the model. `autocast` is the
    bfloat16 autocast of `predict`, where the params ask for it. A budget (`max_evaluations`,
    `time_budget_s`) makes `predict` raise `BudgetExhausted` before a batch that would pass it;
    a method that can stop early catches it and returns its estimate so far (`stopped`).
    `error` is a method's current error estimate, where it has one.
    """

    def __init__(self, model: Model, inputs: ModelInput, target: int | str | None, params: BaseParams,
                 top_k: int, progress: Progress | None = None, max_batch_elements: int | None = None) -> None:
        self.model = model
        self.requested_batch_size = params.inputs_per_call or default_batch_size(model)
        self.batch_size = bounded_batch(self.requested_batch_size, inputs, max_batch_elements)
        self.progress: Progress = progress or (lambda _fraction: None)
        self.evaluations = 0
        self.autocast = params.bfloat16
        self.inputs = inputs
        self._requested = target
        self.score_kind = "probabilities" if params.score == "probabilities" \
            or model.manifest.output == "probabilities" else "logits"
        self.top_k = top_k
        self._target: int | None = None
        self.predictions: list[Prediction] = []
        self.target_prediction: Prediction | None = None
        budget = params.budget
        self.max_evaluations = budget[0]
        self.deadline = None if budget[1] is None else time.monotonic() + budget[1]
        self.stopped: str | None = None
        self.error: float | None = None

    @property
    def x(self) -> torch.Tensor:
        return self.inputs.x

    @property
    def local(self) -> LocalModel:
        """The local model of a method with `needs_module` (`Explainer.explain` refuses others)."""
        assert isinstance(self.model, LocalModel), "only methods with needs_module read the module"
        return self.model

    @property
    def module(self) -> nn.Module:
        """The torch module of a local model."""
        return self.local.module

    def layer(self, name: str | None) -> tuple[str, nn.Module]:
        """A layer by module name (default: the manifest's `cam_layer`), with its name."""
        name = name or self.model.manifest.cam_layer
        if not name:
            raise InvalidParams("the model has no default cam_layer: pass params.layer")
        return name, self.local.layer(name)

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        return self.inputs.forward(batch)

    def observe(self, outputs: torch.Tensor) -> int:
        """Record predictions from the outputs [1, K] of the unperturbed input; return the target."""
        if self._target is None:
            probs = self.model.probabilities(outputs.detach()[0].float())
            labels = self.model.labels
            if not bool(torch.isfinite(probs).all()):
                raise InvalidInput("the model's output for this input is not finite (inf or NaN): the input is "
                                   "outside the range the model computes in", code="non_finite_output")
            if probs.shape[0] != len(labels):
                raise ValueError(f"the model returned {probs.shape[0]} scores for {len(labels)} labels")
            target = resolve_target(self._requested, labels, int(probs.argmax()))
            top = probs.topk(min(self.top_k, len(labels)))
            self.predictions = [Prediction(int(i), labels[int(i)], float(s)) for s, i in zip(top.values, top.indices)]
            self.target_prediction = Prediction(target, labels[target], float(probs[target]))
            self._target = target
        return self._target

    def target(self) -> int:
        """The target class, running one inference forward if no method pass has observed it yet."""
        if self._target is None:
            with torch.inference_mode():
                self.observe(self.forward(self.x))
        assert self._target is not None
        return self._target

    def room(self, n: int, per: int = 1) -> int:
        """How many of n items, each `per` evaluations, the budget still has room for (n if unbounded)."""
        if self.deadline is not None and time.monotonic() > self.deadline:
            return 0
        if self.max_evaluations is None:
            return n
        return max(0, min(n, (self.max_evaluations - self.evaluations) // max(per, 1)))

    def check_budget(self, more: int) -> None:
        """Raise `BudgetExhausted` if `more` evaluations would pass the budget, or its time is up."""
        if self.max_evaluations is not None and self.evaluations + more > self.max_evaluations:
            raise BudgetExhausted("evaluations")
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise BudgetExhausted("time")

    def predict(self, batch: torch.Tensor, batch_size: int, *, done: float = 0.0, share: float = 1.0,
                kind: str | None = None) -> torch.Tensor:
        """Scores [N, K] of native inputs [N, ...], `batch_size` rows per model call: probabilities, or
        the logits where the request explains logits (`kind` overrides: 'probabilities', 'logits').

        Progress moves from `done` to `done + share` over the batches.
        """
        assert self.inputs.native_forward is not None
        logits = (kind or self.score_kind) == "logits" and self.model.manifest.output == "logits"
        outs = []
        n = batch.shape[0]
        device = self.model.device.type
        with torch.inference_mode(), torch.autocast(device, dtype=torch.bfloat16, enabled=self.autocast):
            for start in range(0, n, batch_size):
                chunk = batch[start:start + batch_size]
                self.check_budget(chunk.shape[0])
                if chunk.dim() == 4:
                    chunk = chunk.contiguous(memory_format=torch.channels_last)
                out = self.inputs.native_forward(chunk).float()
                outs.append(out if logits else self.model.probabilities(out))
                self.evaluations += chunk.shape[0]
                self.progress(min(1.0, done + share * min(n, start + batch_size) / n))
        return torch.cat(outs) if outs else torch.empty(0, len(self.model.labels))

    def target_probabilities(self, batch: torch.Tensor, batch_size: int, *, kind: str | None = None,
                             **kw: float) -> torch.Tensor:
        """The explained class's score (its probability, or its logit: see `predict`) for each native
        input [N, ...] -> [N]."""
        return self.predict(batch, batch_size, kind=kind, **kw)[:, self.target()]

    def score(self, outputs: torch.Tensor) -> torch.Tensor:
        """The explained score of the target for each row of a batch of outputs [B, K] -> [B]."""
        target = self.target()
        if self.score_kind == "probabilities" and self.model.manifest.output == "logits":
            return outputs.softmax(-1)[:, target]
        return outputs[:, target]


def resolve_target(requested: int | str | None, labels: list[str], top1: int) -> int:
    if requested is None:
        return top1
    if isinstance(requested, bool):
        raise InvalidTarget("target must be a class index, a label or null")
    if isinstance(requested, int):
        if not 0 <= requested < len(labels):
            raise InvalidTarget(f"target index {requested} is out of range 0..{len(labels) - 1}")
        return requested
    if isinstance(requested, str):
        if requested not in labels:
            raise InvalidTarget(f"unknown target label {requested!r}", details={"labels": labels[:50]})
        return labels.index(requested)
    raise InvalidTarget("target must be a class index, a label or null")


class BudgetExhausted(Exception):
    """The request's evaluation or time budget ran out (`Context.check_budget`)."""

    def __init__(self, which: str) -> None:
        super().__init__(which)
        self.which = which


class Explainer(Generic[P]):
    """Base of every method. Subclasses set the class attributes and write `_attribute`.

    `needs_module`: the method reads the torch module (gradients, hooks, a layer's
    activations), so it runs only on local models; the one check is `refusal`.
    """

    name: ClassVar[str]
    modalities: ClassVar[frozenset[Modality]]
    execution: ClassVar[Execution] = Execution.SYNC
    requires: ClassVar[Requires] = Requires.GRADIENTS
    needs_module: ClassVar[bool] = True
    Params: type[P]
    signed: ClassVar[bool] = True

    @classmethod
    def summary(cls) -> str:
        return (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""

    @classmethod
    def refusal(cls, manifest: Manifest) -> str | None:
        """Why this method cannot explain the model, or None when it can."""
        if manifest.modality not in cls.modalities:
            return f"method {cls.name!r} does not explain {manifest.modality.value} models"
        if cls.needs_module and manifest.remote is not None:
            return (f"method {cls.name!r} needs the model's gradients or layers; model {manifest.id!r} runs on a "
                    "model server, which gives only predictions")
        return None

    def _attribute(self, ctx: Context, p: P) -> Attribution:
        raise NotImplementedError

    def explain(self, model: Model, raw: RawInput, params: P, *, target: int | str | None = None, top_k: int = 5,
                progress: Progress | None = None, max_map_side: int | None = None,
                max_batch_elements: int | None = None) -> Explanation:
        """Prepare the input, run the method under the model's lock, map back to the input.

        An image whose long side is over `max_map_side` gets its map (and picture) at that long side:
        `details.scale` is the factor, `details.input_size` the image's own [height, width].
        """
        refusal = self.refusal(model.manifest)
        if refusal is not None:
            raise MethodNotSupported(refusal)
        t0 = time.perf_counter()
        with model.lock:
            inputs = model.prepare(raw)
            scale = None
            if inputs.image is not None and max_map_side and max(inputs.image.shape[:2]) > max_map_side:
                scale = max_map_side / max(inputs.image.shape[:2])
                inputs.image, full = shrink(inputs.image, max_map_side), inputs.image.shape[:2]
            ctx = Context(model, inputs, target, params, top_k, progress, max_batch_elements)
            t1 = time.perf_counter()
            try:
                result = self._attribute(ctx, params)
            except BudgetExhausted as exc:  # before the method had an estimate to return
                raise InvalidParams(f"the {exc.which} budget ran out before {self.name} had a first estimate; "
                                    "raise max_evaluations or time_budget_s", code="budget_too_small",
                                    details={"model_evaluations": ctx.evaluations}) from None
            ctx.target()
            t2 = time.perf_counter()
        values = result.values
        if isinstance(values, torch.Tensor):
            values = values.detach()
            if model.modality is Modality.IMAGE and inputs.image is not None:
                values = _resize_map(values, inputs.image.shape[:2])
            values = values.float().cpu().numpy()
        attribution = np.ascontiguousarray(values, dtype=np.float32)
        if not np.isfinite(attribution).all():
            raise InvalidInput("the attribution of this input is not finite (inf or NaN): the input drives the "
                               "model outside the range it computes in", code="non_finite_output")
        assert ctx.target_prediction is not None
        details = {"explained": ctx.score_kind, **result.details}
        if scale is not None:
            details.update({"scale": round(scale, 6), "input_size": [int(full[0]), int(full[1])],
                            "map_size": list(attribution.shape)})
        if ctx.batch_size != ctx.requested_batch_size:
            details["batch_size"] = {"requested": ctx.requested_batch_size, "used": ctx.batch_size}
        if ctx.evaluations:
            details["model_evaluations"] = ctx.evaluations
        if ctx.autocast:
            details["precision"] = "bfloat16"
        if ctx.stopped is not None:
            details["stopped"] = ctx.stopped
        return Explanation(
            method=self.name, model_id=model.id, modality=model.modality, attribution=attribution,
            target=ctx.target_prediction, predictions=ctx.predictions,
            signed=self.signed if result.signed is None else result.signed, details=details,
            timing_ms={"prepare": (t1 - t0) * 1e3, "attribute": (t2 - t1) * 1e3},
            image=inputs.image, tokens=inputs.tokens or None, unknown_tokens=inputs.unknown_tokens or None,
            feature_names=model.feature_names if model.modality is Modality.TABULAR else None,
            feature_values=None if inputs.features is None else [float(v) for v in inputs.features])


def _resize_map(values: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of a 2-D map [h, w] of any resolution (a CAM's, the model input's) to `size`, the
    image as sent: the one place maps are resized."""
    if tuple(values.shape) == tuple(size):
        return values
    return F.interpolate(values[None, None].float(), size=size, mode="bilinear", align_corners=False)[0, 0]
