"""The model bundle manifest (`model.json` in a bundle folder).

A bundle is a folder holding `model.json`, a weights file and, depending on the
modality, a vocabulary or a background sample. Dropping such a folder into the
registry folder adds the model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from explainers.types import Modality

MANIFEST_NAME = "model.json"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ImageSpec(_Strict):
    """How a decoded RGB image becomes the model's input tensor."""

    size: tuple[int, int] = Field(description="model input (height, width) in pixels")
    mean: list[float] = Field(default_factory=lambda: [0.0, 0.0, 0.0])
    std: list[float] = Field(default_factory=lambda: [1.0, 1.0, 1.0])
    channel_order: Literal["RGB", "BGR", "L"] = "RGB"
    resize: Literal["stretch"] = "stretch"

    @model_validator(mode="after")
    def _check(self) -> "ImageSpec":
        n = 1 if self.channel_order == "L" else 3
        if len(self.mean) != n or len(self.std) != n:
            raise ValueError(f"mean and std need {n} values for channel_order {self.channel_order}")
        if any(s <= 0 for s in self.std):
            raise ValueError("std values must be positive")
        if min(self.size) < 8 or max(self.size) > 2048:
            raise ValueError("image size must be within 8..2048")
        return self

    @property
    def channels(self) -> int:
        return 1 if self.channel_order == "L" else 3


class TextSpec(_Strict):
    """Tokenizer and embedding layer of a text model."""

    tokenizer: Literal["words"] = Field("words", description="lower-cased word and punctuation tokens")
    vocab: str = Field("vocab.json", description="file in the bundle: JSON list of tokens, index = id")
    max_length: int = Field(128, ge=1, le=4096)
    pad_token: str = "<pad>"
    unk_token: str = "<unk>"
    embedding_layer: str = Field(description="module name of the token embedding layer")


class FeatureSpec(_Strict):
    name: str
    kind: Literal["continuous", "categorical"] = "continuous"
    values: list[float] | None = Field(None, description="allowed values of a categorical feature")
    labels: list[str] | None = Field(None, description="names of the categorical values, if any")


class TabularSpec(_Strict):
    features: list[FeatureSpec]
    background: str = Field("background.npy", description="file in the bundle: float array [n, n_features]")

    @model_validator(mode="after")
    def _check(self) -> "TabularSpec":
        names = [f.name for f in self.features]
        if len(set(names)) != len(names):
            raise ValueError("feature names must be unique")
        for f in self.features:
            if f.kind == "categorical" and not f.values:
                raise ValueError(f"categorical feature {f.name!r} needs its values")
        return self


class Manifest(_Strict):
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
    modality: Modality
    architecture: str = Field(description="torchvision model name, or 'package.module:factory'")
    architecture_kwargs: dict[str, Any] = Field(default_factory=dict)
    weights: str = Field(description="weights file in the bundle: .safetensors, or .pt/.pth read with weights_only")
    labels: list[str] = Field(min_length=1)
    output: Literal["logits", "probabilities"] = Field(
        "logits", description="what the module returns; explanations use logits unless asked otherwise")
    description: str = ""
    cam_layer: str | None = Field(None, description="module name of the default CAM layer (image models)")
    image: ImageSpec | None = None
    text: TextSpec | None = None
    tabular: TabularSpec | None = None

    @model_validator(mode="after")
    def _check(self) -> "Manifest":
        spec = {Modality.IMAGE: self.image, Modality.TEXT: self.text, Modality.TABULAR: self.tabular}
        if spec[self.modality] is None:
            raise ValueError(f"a {self.modality.value} model needs its '{self.modality.value}' section")
        return self


def read_manifest(folder: Path) -> Manifest:
    """Parse and validate `folder/model.json`; raises ValueError with the reason."""
    path = folder / MANIFEST_NAME
    try:
        return Manifest.model_validate(json.loads(path.read_text()))
    except (OSError, json.JSONDecodeError, ValidationError) as exc:
        raise ValueError(f"bad manifest {path}: {exc}") from exc
