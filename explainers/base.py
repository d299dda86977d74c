"""The explainer base class: it owns the loop, a method writes `_attribute`."""

from __future__ import annotations

import time
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
from explainers.targets import SharedEvaluations, Target
from explainers.types import Modality, Prediction

__all__ = ["Attribution", "BudgetExhausted", "Context", "Explainer", "Progress", "resolve_target"]


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

    def explain(self, model: Model, raw: RawInput, params: P, *, target: int | str | None = None, top_k: int = 5,
                progress: Progress | None = None, max_map_side: int | None = None,
                max_batch_elements: int | None = None, known: tuple[Prediction, list[Prediction]] | None = None,
                quality: FaithfulnessOptions | None = None, versus: int | None = None,
                shared: SharedEvaluations | None = None) -> Explanation:
        """Prepare the input, run the method under the model's lock, map back to the input.

        An image whose long side is over `max_map_side` gets its map (and picture) at that long side:
        `details.scale` is the factor, `details.input_size` the image's own [height, width]. `known`: the
        target and predictions, when already computed. `quality`: the faithfulness figures of the map,
        from the model's own resolution, in `details.quality` (their evaluations count too). `versus`: the
        contrastive class (score_target - score_versus explained); `shared`: the evaluations several targets
        share (see `explain_targets`).
        """
        if versus is not None and not self.contrastive:
            raise InvalidTarget(f"method {self.name!r} does not explain a contrastive (versus) target",
                                details={"versus": versus})
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
            ctx = Context(model, inputs, target, params, top_k, progress, max_batch_elements, known=known,
                          versus=versus, shared=shared)
            t1 = time.perf_counter()
            try:
                result = self._attribute(ctx, params)
            except BudgetExhausted as exc:  # before the method had an estimate to return
                raise InvalidParams(f"the {exc.which} budget ran out before {self.name} had a first estimate; "
                                    "raise max_evaluations or time_budget_s", code="budget_too_small",
                                    details={"model_evaluations": ctx.evaluations}) from None
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
        if scale is not None:
            details.update({"scale": round(scale, 6), "input_size": [int(full[0]), int(full[1])],
                            "map_size": list(attribution.shape)})
        if ctx.batch_size != ctx.requested_batch_size:
            details["batch_size"] = {"requested": ctx.requested_batch_size, "used": ctx.batch_size}
        if ctx.evaluations or shared is not None:
            details["model_evaluations"] = ctx.evaluations
        if shared is not None:
            details["backward_passes"] = ctx.backward_passes
        if versus is not None:
            details["versus"] = Prediction(versus, model.labels[versus], _probability(ctx, versus)).to_dict()
        if ctx.autocast:
            details["precision"] = "bfloat16"
        if ctx.stopped is not None:
            details["stopped"] = ctx.stopped
        return Explanation(
            method=self.name, model_id=model.id, modality=model.modality, attribution=attribution,
            target=ctx.target_prediction, predictions=ctx.predictions,
            signed=self.signed if result.signed is None else result.signed, details=details,
            timing_ms={"prepare": (t1 - t0) * 1e3, "attribute": (t2 - t1) * 1e3,
                       **({"quality": (t3 - t2) * 1e3} if figures is not None else {})},
            image=inputs.image, tokens=inputs.tokens or None, unknown_tokens=inputs.unknown_tokens or None,
            feature_names=model.feature_names if model.modality is Modality.TABULAR else None,
            feature_values=None if inputs.features is None else [float(v) for v in inputs.features])

    def explain_targets(self, model: Model, raw: RawInput, params: P, targets: list[Target],
                        **kw: Any) -> tuple[list[Explanation], SharedEvaluations]:
        """One explanation per target, each exactly the one-target explanation, made on one
        `SharedEvaluations`: the model evaluations and backward passes one target made serve the others."""
        shared = SharedEvaluations(list(targets))
        known = kw.pop("known", None) or _known(model, raw, int(kw.get("top_k", 5)))
        out = []
        for t in targets:
            prob = next((p.score for p in known[1] if p.index == t.index), None)
            if prob is None:
                with model.lock, torch.inference_mode():
                    inputs = model.prepare(raw)
                    prob = float(model.probabilities(inputs.forward(inputs.x))[0, t.index])
            mine = (Prediction(t.index, model.labels[t.index], prob), known[1])
            out.append(self.explain(model, raw, params, target=t.index, known=mine, versus=t.versus, shared=shared,
                                    **kw))
        shared.evaluations = sum(int(e.details.get("model_evaluations", 0)) for e in out)
        shared.backward_passes = sum(int(e.details.get("backward_passes", 0)) for e in out)
        return out, shared


def _known(model: Model, raw: RawInput, top_k: int) -> tuple[Prediction, list[Prediction]]:
    """The top-1 and top predictions of an input from one inference forward (not counted)."""
    from explainers.params import Params

    with model.lock:
        ctx = Context(model, model.prepare(raw), None, Params(), top_k)
        ctx.target()
    assert ctx.target_prediction is not None
    return ctx.target_prediction, ctx.predictions


def _probability(ctx: Context, index: int) -> float:
    """The reported probability of a class of the input (from the predictions, else one forward)."""
    for p in ctx.predictions:
        if p.index == index:
            return p.score
    with torch.inference_mode():
        return float(ctx.model.probabilities(ctx.inputs.forward(ctx.x))[0, index])


def _resize_map(values: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of a 2-D map [h, w] of any resolution (a CAM's, the model input's) to `size`, the
    image as sent: the one place maps are resized."""
    if tuple(values.shape) == tuple(size):
        return values
    return F.interpolate(values[None, None].float(), size=size, mode="bilinear", align_corners=False)[0, 0]
