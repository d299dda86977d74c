"""The result type of model-level (global) methods: ranked features, generated images, or rules.

A `ModelExplanation` carries whichever of the three its method produces, plus details and timing;
`explainers.global_payload` turns it into the contract's `GlobalExplanation` body, with its chart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from explainers.types import Modality


@dataclass(frozen=True)
class RankedFeature:
    """A feature's global importance. `direction`: the mean signed share (+ for the class, - against);
    `count`: the local explanations it appeared in."""

    name: str
    importance: float
    direction: float
    count: int

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "importance": self.importance, "direction": self.direction, "count": self.count}


@dataclass(frozen=True)
class Ranking:
    """The features of one class (or of all classes: `label` "all"), most important first."""

    label: str
    features: list[RankedFeature]
    n_explanations: int


@dataclass
class GeneratedImage:
    """An image the method made: RGB uint8 [H, W, 3], what it is, and the numbers it reached
    (`objective`: what the optimisation maximised, None for images that are not optimised)."""

    image: np.ndarray
    label: str
    objective: float | None
    values: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Rule:
    """IF all `conditions` THEN `prediction`; measured on held-out samples: the share of them it covers,
    the share of those the model agrees on, and how many it covers."""

    conditions: list[str]
    prediction: str
    coverage: float
    precision: float
    support: int

    def text(self) -> str:
        head = " AND ".join(self.conditions) if self.conditions else "TRUE"
        return (f"IF {head} THEN {self.prediction} "
                f"(coverage {self.coverage:.3f}, precision {self.precision:.3f}, {self.support} samples)")

    def to_dict(self) -> dict[str, Any]:
        return {"conditions": list(self.conditions), "prediction": self.prediction, "coverage": self.coverage,
                "precision": self.precision, "support": self.support, "text": self.text()}


@dataclass
class ModelResult:
    """What a global method's `_explain` returns; the base adds the model, method and timing."""

    rankings: list[Ranking] | None = None
    images: list[GeneratedImage] | None = None
    rules: list[Rule] | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class ModelExplanation:
    method: str
    model_id: str
    modality: Modality
    result: ModelResult
    timing_ms: dict[str, float] = field(default_factory=dict)
