"""The explainer base class: it owns the loop, a method writes `_attribute`."""

from __future__ import annotations

import time
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from explainers.context import BudgetExhausted, Context, Progress, resolve_target
from explainers.errors import InvalidInput, InvalidParams, InvalidTarget, MethodNotSupported
from explainers.evaluation.faithfulness import FaithfulnessOptions, faithfulness, model_sized
from explainers.method import Method
from explainers.models.handle import RawInput
from explainers.models.protocol import Model
from explainers.params import P
from explainers.result import Explanation
from explainers.sizing import shrink
from explainers.targets import SharedEvaluations
from explainers.types import Modality, Prediction

__all__ = ["Attribution", "BudgetExhausted", "Call", "Context", "Explainer", "Progress", "resolve_target"]


@dataclass
class Attribution:
    """What a method returns: the map (any resolution for images) and extra details.

    `signed` overrides the method's own where a param decides (RISE centred on its offset).
    """

    values: torch.Tensor | np.ndarray
    details: dict[str, Any] = field(default_factory=dict)
    signed: bool | None = None


class Explainer(Method[P]):
    """Base of every local method (one input explained). Subclasses set the class attributes
    (see `explainers.method.Method`) and write `_attribute`."""

    def _attribute(self, ctx: Context, p: P) -> Attribution:
        raise NotImplementedError

    def batch_key(self, ctx: Context, p: P) -> Hashable | None:
        """What inputs must share to be attributed together by `_attribute_batch` (their inputs stack), or
        None when this input runs alone. A method that can attribute a batch overrides both."""
        return None

    def _attribute_batch(self, ctxs: Sequence[Context], p: P) -> list[Attribution]:
        """The attributions of several inputs of one `batch_key`, in shared batches (see `explainers.batching`)."""
        return [self._attribute(ctx, p) for ctx in ctxs]

    def explain(self, model: Model, raw: RawInput, params: P, *, target: int | str | None = None, top_k: int = 5,
                progress: Progress | None = None, max_map_side: int | None = None,
                max_batch_elements: int | None = None, known: tuple[Prediction, list[Prediction]] | None = None,
                quality: FaithfulnessOptions | None = None, versus: int | None = None,
                shared: SharedEvaluations | None = None) -> Explanation:
        """Prepare the input, run the method under the model's lock, map back to the input.

        An image whose long side is over `max_map_side` gets its map (and picture) at that long side:
        `details.scale` is the factor, `details.input_size` the image's own [height, width]. `known`: the
        target and predictions, when already computed. `quality`: the faithfulness figures of the map,
        from the model's own resolution, in `details.quality` (their evaluations count too). `versus`: a
        contrastive class (score_target - score_versus is explained); `shared`: the evaluations the targets
        of one request share (`explainers.several_targets`).
        """
        self.check_model(model)
        if versus is not None and not self.contrastive:
            raise InvalidTarget(f"method {self.name!r} does not explain a contrastive (versus) target",
                                details={"versus": versus})
        with model.explaining():
            call = self.open(model, raw, params, target=target, top_k=top_k, progress=progress,
                             max_map_side=max_map_side, max_batch_elements=max_batch_elements, known=known,
                             versus=versus, shared=shared)
            t1 = time.perf_counter()
            result = self.attribute(call.ctx, params)
            return self.close(call, result, quality, attribute_ms=(time.perf_counter() - t1) * 1e3)

    def check_model(self, model: Model) -> None:
        refusal = self.refusal(model.manifest)
        if refusal is not None:
            raise MethodNotSupported(refusal)

    def open(self, model: Model, raw: RawInput, params: P, *, target: int | str | None, top_k: int,
             progress: Progress | None, max_map_side: int | None, max_batch_elements: int | None,
             known: tuple[Prediction, list[Prediction]] | None = None, versus: int | None = None,
             shared: SharedEvaluations | None = None) -> Call:
        """One input prepared (shrunk past `max_map_side`) with its context; under the model's lock."""
        t0 = time.perf_counter()
        inputs = model.prepare(raw)
        scale, full = None, None
        if inputs.image is not None and max_map_side and max(inputs.image.shape[:2]) > max_map_side:
            scale = max_map_side / max(inputs.image.shape[:2])
            inputs.image, full = shrink(inputs.image, max_map_side), inputs.image.shape[:2]
        ctx = Context(model, inputs, target, params, top_k, progress, max_batch_elements, known=known,
                      versus=versus, shared=shared)
        return Call(ctx, scale, full, (time.perf_counter() - t0) * 1e3)

    def attribute(self, ctx: Context, params: P) -> Attribution:
        """`_attribute`, with a budget that ran out before a first estimate a `budget_too_small` error."""
        try:
            return self._attribute(ctx, params)
        except BudgetExhausted as exc:
            raise self.budget_too_small(exc, ctx.evaluations) from None

    def budget_too_small(self, exc: BudgetExhausted, evaluations: int) -> InvalidParams:
        return InvalidParams(f"the {exc.which} budget ran out before {self.name} had a first estimate; "
                             "raise max_evaluations or time_budget_s", code="budget_too_small",
                             details={"model_evaluations": evaluations})

    def close(self, call: Call, result: Attribution, quality: FaithfulnessOptions | None, *,
              attribute_ms: float) -> Explanation:
        """The explanation of an attributed input: its target, quality figures, the map at the input's size."""
        ctx, model, inputs = call.ctx, call.ctx.model, call.ctx.inputs
        ctx.target()
        if ctx.error is not None:  # the final error estimate, for a job's state
            ctx.progress(1.0)
        t2, spent = time.perf_counter(), ctx.evaluations
        figures = None if quality is None else faithfulness(ctx, model_sized(ctx, result.values), quality)
        if figures is not None:
            figures["model_evaluations"] = ctx.evaluations - spent
        t3 = time.perf_counter()
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
        if figures is not None:
            details["quality"] = figures
        if call.scale is not None and call.full is not None:
            details.update({"scale": round(call.scale, 6), "input_size": [int(call.full[0]), int(call.full[1])],
                            "map_size": list(attribution.shape)})
        if ctx.batch_size != ctx.requested_batch_size:
            details["batch_size"] = {"requested": ctx.requested_batch_size, "used": ctx.batch_size}
        if ctx.evaluations or ctx.shared is not None:
            details["model_evaluations"] = ctx.evaluations
        if ctx.backward_passes:
            details["backward_passes"] = ctx.backward_passes
        if ctx.versus is not None:
            details["versus"] = _versus(ctx, ctx.versus).to_dict()
        if ctx.autocast:
            details["precision"] = "bfloat16"
        if ctx.stopped is not None:
            details["stopped"] = ctx.stopped
        return Explanation(
            method=self.name, model_id=model.id, modality=model.modality, attribution=attribution,
            target=ctx.target_prediction, predictions=ctx.predictions,
            signed=self.signed if result.signed is None else result.signed, details=details,
            timing_ms={"prepare": call.prepare_ms, "attribute": attribute_ms,
                       **({"quality": (t3 - t2) * 1e3} if figures is not None else {})},
            image=inputs.image, tokens=inputs.tokens or None, unknown_tokens=inputs.unknown_tokens or None,
            feature_names=model.feature_names if model.modality is Modality.TABULAR else None,
            feature_values=None if inputs.features is None else [float(v) for v in inputs.features])


def _versus(ctx: Context, index: int) -> Prediction:
    """The versus class with its reported probability (from the predictions, else one forward)."""
    known = next((p for p in ctx.predictions if p.index == index), None)
    if known is not None:
        return known
    with torch.inference_mode():
        probs = ctx.model.probabilities(ctx.inputs.forward(ctx.x).float()) if ctx.inputs.reported is None \
            else ctx.inputs.reported[None]
    return Prediction(index, ctx.model.labels[index], float(probs[0, index]))


@dataclass
class Call:
    """One input of a call, prepared: its context, and the factor its image was shrunk by (if it was)."""

    ctx: Context
    scale: float | None
    full: tuple[int, ...] | None
    prepare_ms: float


def _resize_map(values: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of a 2-D map [h, w] of any resolution (a CAM's, the model input's) to `size`, the
    image as sent: the one place maps are resized."""
    if tuple(values.shape) == tuple(size):
        return values
    return F.interpolate(values[None, None].float(), size=size, mode="bilinear", align_corners=False)[0, 0]
