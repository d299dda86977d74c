"""Shared by the propagation methods: the canonized graph, the rule knobs, a relevance map with its gap."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import torch
from pydantic import Field

from explainers.base import Attribution, Context, Explainer
from explainers.completeness import completeness
from explainers.methods._gradients import GRADIENT_MODALITIES, reduce
from explainers.params import P, Params
from explainers.propagation.composites import RuleSettings
from explainers.propagation.engine import Recorder, one_hot, propagate
from explainers.propagation.graph import Canonized, canonize
from explainers.propagation.rules import Rule
from explainers.types import Modality

STABILIZER_HELP = "added to each denominator with its sign, so that no division is by 0"


class PropagationParams(Params):
    score: Literal["logits"] = Field(  # type: ignore[assignment]
        "logits", description="propagation methods distribute the target's logit")
    stabilizer: float = Field(1e-6, ge=1e-12, le=1.0, description=STABILIZER_HELP)


class PropagationExplainer(Explainer[P]):
    """A method that passes relevance back through the canonized network with a rule per layer."""

    modalities = GRADIENT_MODALITIES
    signed = True


def canonized(ctx: Context) -> Canonized:
    """The served model's explainable equivalent (built once per model; the model itself is unchanged)."""
    text = ctx.model.modality is Modality.TEXT
    return canonize(ctx.module, ctx.local.embedding_layer if text else None)


def input_bounds(ctx: Context) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The normalised images of pixel values 0 and 255 [1, C, 1, 1] (the z-box bounds); None off images."""
    spec = ctx.model.manifest.image
    if spec is None:
        return None
    shape = (1, spec.channels, 1, 1)
    device = ctx.x.device
    return (ctx.model.normalize(torch.zeros(shape, device=device)),
            ctx.model.normalize(torch.ones(shape, device=device)))


def settings(ctx: Context, **knobs: float) -> RuleSettings:
    return RuleSettings(bounds=input_bounds(ctx), modality=ctx.model.modality.value, **knobs)


def relevance(ctx: Context, canon: Canonized, rules: Mapping[str, Rule], *, seed: Literal["output", "one"],
              recorder: Recorder | None = None) -> tuple[torch.Tensor, float]:
    """Relevance at the input [1, ...] of the target, started at its logit (or at 1), and that start."""
    started: list[float] = []

    def start(outputs: torch.Tensor) -> torch.Tensor:
        target = ctx.observe(outputs[:1])
        value = outputs[:, target] if seed == "output" else 1.0
        started.append(float(outputs[0, target]) if seed == "output" else 1.0)
        return one_hot(outputs, target, value)

    native = ctx.inputs.native if canon.text else None
    r, _ = propagate(canon, rules, ctx.x, start, native=native, recorder=recorder)
    return r, started[0]


def relevance_map(ctx: Context, r: torch.Tensor, explained: float, details: dict[str, Any]) -> Attribution:
    """The map of a relevance at the input (summed over channels / the embedding) with its completeness gap."""
    return Attribution(reduce(r, ctx.model.modality, "sum"),
                       {**completeness(float(r.double().sum()), explained), **details})
