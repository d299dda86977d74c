"""The one result type that flows from explainer to renderer to response."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from explainers.types import Modality, Prediction


@dataclass
class Explanation:
    """An attribution and everything needed to render and report it.

    `attribution` is float32: [H, W] at the size of the image as sent, [n_tokens]
    for text, [n_features] for tabular. `signed` says whether negative values
    carry meaning (it picks the colormap). `unknown_tokens`: for text, the positions of the
    tokens the model could not see (outside its vocabulary).
    """

    method: str
    model_id: str
    modality: Modality
    attribution: np.ndarray
    target: Prediction
    predictions: list[Prediction]
    signed: bool
    details: dict[str, Any] = field(default_factory=dict)
    timing_ms: dict[str, float] = field(default_factory=dict)
    # What the renderer draws on: an RGB uint8 image, the tokens, or the feature values.
    image: np.ndarray | None = None
    tokens: list[str] | None = None
    unknown_tokens: list[int] | None = None  # indices of `tokens` outside the vocabulary (the model saw <unk>)
    feature_names: list[str] | None = None
    feature_values: list[float] | None = None
