"""Small shared vocabulary: modalities, execution kinds, predictions."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

# A request's target: a class (index or label; None: the top one), a list of classes (`explainers.targets`),
# or an object {"class", "versus" | "box" | "mask"} (a contrastive class; a segmentation model's class over a
# region: `explainers.regions.split_target`)
Target = int | str | list[int | str] | dict[str, Any] | None


class Modality(str, Enum):
    IMAGE = "image"
    TEXT = "text"
    TABULAR = "tabular"


class Execution(str, Enum):
    SYNC = "sync"
    ASYNC = "async"


class Scope(str, Enum):
    LOCAL = "local"  # explains one input: POST /explain/{method}
    GLOBAL = "global"  # explains the model: POST /models/{id}/global/{method}


class Takes(str, Enum):
    """What a request gives a method besides the model and params."""

    INPUT = "input"  # one input (every local method; feature inversion)
    SAMPLES = "samples"  # a sample set: the inputs sent, else the bundle's own
    NOTHING = "nothing"  # nothing (activation maximisation starts from noise)


class Requires(str, Enum):
    GRADIENTS = "gradients"  # the module's (possibly modified) gradients
    ACTIVATIONS = "activations"  # a layer's activations, and predictions
    PREDICTIONS = "predictions"  # the model's predictions only


@dataclass(frozen=True)
class Prediction:
    index: int
    label: str
    score: float

    def to_dict(self) -> dict[str, object]:
        return {"index": self.index, "label": self.label, "score": self.score}
