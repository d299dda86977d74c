"""Several targets of one input explained by one method, each exactly its one-target explanation.

The targets run one after another on one `SharedEvaluations`: the model evaluations a black-box method
made for the first target (the same seeded perturbations) and the batched backward pass a gradient method
made for every target serve the others, so the request costs about what one target costs.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from explainers.base import Explainer
from explainers.evaluation.localisation import located
from explainers.models.handle import RawInput
from explainers.models.protocol import Model
from explainers.params import Params
from explainers.result import Explanation
from explainers.serialize import OutputOptions, render, to_payload
from explainers.targets import SharedEvaluations, Target, parse_targets
from explainers.types import Prediction

__all__ = ["explain_targets", "positive_labels", "predictions", "several_targets", "targets_body"]


def predictions(model: Model, raw: RawInput, top_k: int) -> tuple[list[float], list[Prediction]]:
    """Every class's reported probability and the top-k predictions, from one inference forward."""
    with model.lock, torch.inference_mode():
        inputs = model.prepare(raw)
        probs = inputs.reported if inputs.reported is not None else \
            model.probabilities(inputs.forward(inputs.x).float())[0]
    probs = probs.float().cpu()
    top = probs.topk(min(top_k, len(model.labels)))
    return probs.tolist(), [Prediction(int(i), model.labels[int(i)], float(s)) for s, i in zip(top.values, top.indices)]


def positive_labels(probs: list[float]) -> list[Target]:
    """A multi-label model's default targets: every label whose probability is over 0.5, else the top-1."""
    positive = [i for i, p in enumerate(probs) if p > 0.5]
    return [Target(i) for i in (positive or [max(range(len(probs)), key=probs.__getitem__)])]


def explain_targets(method: Explainer[Any], model: Model, raw: RawInput, params: Params, targets: list[Target], *,
                    top_k: int = 5, known: tuple[list[float], list[Prediction]] | None = None,
                    **kw: Any) -> tuple[list[Explanation], SharedEvaluations]:
    """One explanation per target (in order), and what they shared: the evaluations and backward passes
    run for all of them together. `known`: every class's probability and the predictions, if computed."""
    probs, top = known or predictions(model, raw, top_k)
    shared = SharedEvaluations(list(targets))
    out = [method.explain(model, raw, params, target=t.index, top_k=top_k, versus=t.versus, shared=shared,
                          known=(Prediction(t.index, model.labels[t.index], probs[t.index]), top), **kw)
           for t in targets]
    shared.evaluations = sum(int(e.details.get("model_evaluations", 0)) for e in out)
    shared.backward_passes = sum(int(e.details.get("backward_passes", 0)) for e in out)
    return out, shared


def several_targets(model: Model, raw: RawInput, classes: Any, top_k: int,
                    known: tuple[Prediction, list[Prediction]] | None
                    ) -> tuple[list[Target] | None, tuple[list[float], list[Prediction]] | None]:
    """The targets of a request's classes (None: one plain class, as always), and the probabilities and
    predictions where finding the targets needed them: a multi-label model with no target explains every
    positive label."""
    targets = parse_targets(classes, model.labels)
    if targets is None and classes is None and known is None and model.manifest.output == "sigmoid":
        seen = predictions(model, raw, top_k)
        return positive_labels(seen[0]), seen
    return targets, None


def targets_body(expls: list[Explanation], shared: SharedEvaluations, options: OutputOptions,
                 mask: np.ndarray | None, *, t0: float, t1: float) -> dict[str, Any]:
    """The several-targets body (`TargetsExplanation`): one entry per target (its prediction, map, picture
    and details), the predictions, what every target ran together, and the timing once."""
    t2 = time.perf_counter()
    entries = []
    for expl in expls:
        if mask is not None:
            expl.details["localisation"] = located(expl.attribution, mask, options.pointing_tolerance)
        body = to_payload(expl, render(expl, options), options.attribution)
        entries.append({k: body[k] for k in ("target", "attribution", "overlay_png", "details")})
    t3 = time.perf_counter()
    first = expls[0]
    return {"method": first.method, "model_id": first.model_id,
            "predictions": [p.to_dict() for p in first.predictions], "targets": entries,
            "details": {"targets": len(expls), "model_evaluations": shared.evaluations,
                        "backward_passes": shared.backward_passes},
            "timing_ms": {"decode": (t1 - t0) * 1e3, "explain": (t2 - t1) * 1e3, "render": (t3 - t2) * 1e3,
                          "total": (t3 - t0) * 1e3}}
