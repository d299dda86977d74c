"""The model bundle manifest (`model.json` in a bundle folder).

A bundle is a folder holding `model.json`, a weights file and, depending on the
modality, a vocabulary or a background sample. Dropping such a folder into the
registry folder adds the model. A remote bundle has no weights: its `remote`
section names a model on a model server (Open Inference Protocol), and the
folder keeps only what the explainers need (labels, input spec, vocabulary,
background sample).
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
    def _check(self) -> ImageSpec:
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
    embedding_layer: str | None = Field(
        None, description="module name of the token embedding layer (local models; a remote model has none)")


class FeatureSpec(_Strict):
    name: str
    kind: Literal["continuous", "categorical"] = "continuous"
    values: list[float] | None = Field(None, description="allowed values of a categorical feature")
    labels: list[str] | None = Field(None, description="names of the categorical values, if any")


class TabularSpec(_Strict):
    features: list[FeatureSpec]
    background: str = Field("background.npy", description="file in the bundle: float array [n, n_features]")

    @model_validator(mode="after")
    def _check(self) -> TabularSpec:
        names = [f.name for f in self.features]
        if len(set(names)) != len(names):
            raise ValueError("feature names must be unique")
        for f in self.features:
            if f.kind == "categorical" and not f.values:
                raise ValueError(f"categorical feature {f.name!r} needs its values")
        return self


class TransformerSpec(_Strict):
    """A transformer's tokens: the prefix tokens (a class token) before the patch or word tokens, the patch
    size of an image model (its grid is the input size over it), and its self-attention modules."""

    prefix_tokens: int = Field(1, ge=0, le=16, description="tokens before the patch or word tokens; the first "
                               "is the class token the head reads")
    patch_size: tuple[int, int] | None = Field(None, description="image models: (height, width) of a patch in "
                                               "pixels of the model input")
    attention: list[str] | None = Field(
        None, max_length=256, description="module names of the self-attention modules (nn.MultiheadAttention, "
        "batch first), in forward order; null: every nn.MultiheadAttention of the model")


RemoteDatatype = Literal["FP32", "FP64", "INT64", "INT32"]
RemoteLayout = Literal["NCHW", "NHWC", "features", "tokens"]
LAYOUTS: dict[Modality, tuple[str, ...]] = {
    Modality.IMAGE: ("NCHW", "NHWC"), Modality.TABULAR: ("features",), Modality.TEXT: ("tokens",)}
DATATYPES: dict[Modality, tuple[str, ...]] = {
    Modality.IMAGE: ("FP32", "FP64"), Modality.TABULAR: ("FP32", "FP64"), Modality.TEXT: ("INT64", "INT32")}


class RemoteSpec(_Strict):
    """A model served by a model server speaking the Open Inference Protocol (KServe V2, REST)."""

    url: str = Field(pattern=r"^https?://[^\s/]+(/[^\s]*)?$", max_length=2000,
                     description="base URL of the model server, e.g. http://127.0.0.1:8080")
    model_name: str = Field(min_length=1, max_length=200, pattern=r"^[^/\s]+$")
    model_version: str | None = Field(None, min_length=1, max_length=100, pattern=r"^[^/\s]+$")
    input_name: str = Field(min_length=1, max_length=200, description="name of the input tensor")
    datatype: RemoteDatatype = Field(description="V2 datatype of the input tensor")
    layout: RemoteLayout = Field(description="NCHW or NHWC (images), features [B, F] (tabular), tokens [B, L] "
                                             "(text ids)")
    output_name: str | None = Field(None, min_length=1, max_length=200,
                                    description="the output to read (also requested by name); default: the first")
    output: Literal["logits", "probabilities", "sigmoid"] = Field(
        "logits", description="what the output holds: logits get a softmax; sigmoid: multi-label logits")
    timeout_s: float = Field(10.0, gt=0.0, le=300.0, description="per connect / read / write, seconds")
    max_batch: int = Field(64, ge=1, le=65536, description="most rows in one infer request")
    retries: int = Field(2, ge=0, le=5, description="retries after a timeout, a refused connection or a 5xx")
    backoff_s: float = Field(0.2, ge=0.0, le=5.0, description="wait before the first retry; doubles each time")


class Manifest(_Strict):
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
    modality: Modality
    architecture: str | None = Field(
        None, description="torchvision model name, or 'package.module:factory' (local models)")
    architecture_kwargs: dict[str, Any] = Field(default_factory=dict)
    weights: str | None = Field(
        None, description="weights file in the bundle: .safetensors, or .pt/.pth read with weights_only "
                          "(local models)")
    remote: RemoteSpec | None = Field(None, description="the model is served by a model server (no weights here)")
    labels: list[str] = Field(min_length=1)
    output: Literal["logits", "probabilities", "sigmoid"] = Field(
        "logits", description="what the module returns; explanations use logits unless asked otherwise. "
                              "sigmoid: multi-label logits, each label's probability its own sigmoid (with no "
                              "target, every label over 0.5 is explained)")
    task: Literal["classification", "segmentation"] = Field(
        "classification", description="classification: the module returns scores [B, K]; segmentation (local "
        "image models): per-pixel logits [B, K, H, W], explained as a class's logits summed over a region")
    output_key: str | None = Field(
        None, min_length=1, max_length=100, description="the module returns a dict: read this entry (torchvision's "
        "segmentation models: 'out')")
    description: str = ""
    cam_layer: str | None = Field(None, description="module name of the default CAM layer (image models)")
    samples: str | None = Field(
        None, description="file in the bundle with sample inputs: .npz with 'images' uint8 [N, H, W, 3] (image "
        "models), or a JSON list of texts (text models); tabular models use their background sample")
    transformer: TransformerSpec | None = Field(
        None, description="a transformer (local models): what attention_rollout and transformer_attribution "
        "read, and how a token layer's output becomes a grid for the CAM methods")
    image: ImageSpec | None = None
    text: TextSpec | None = None
    tabular: TabularSpec | None = None

    @model_validator(mode="after")
    def _check(self) -> Manifest:
        spec = {Modality.IMAGE: self.image, Modality.TEXT: self.text, Modality.TABULAR: self.tabular}
        if spec[self.modality] is None:
            raise ValueError(f"a {self.modality.value} model needs its '{self.modality.value}' section")
        self._check_transformer()
        if self.task == "segmentation" and (self.modality is not Modality.IMAGE or self.remote is not None
                                            or self.output != "logits"):
            raise ValueError("a segmentation model is a local image model whose module returns logits")
        if self.remote is None:
            if not self.architecture or not self.weights:
                raise ValueError("a model needs either 'architecture' and 'weights' (local) or a 'remote' section")
            if self.text is not None and not self.text.embedding_layer:
                raise ValueError("a local text model needs text.embedding_layer")
            return self
        return self._check_remote(self.remote)

    def _check_transformer(self) -> None:
        spec = self.transformer
        if spec is None:
            return
        if self.image is not None:
            if spec.patch_size is None:
                raise ValueError("an image transformer needs transformer.patch_size")
            if any(s % p for s, p in zip(self.image.size, spec.patch_size)) or min(spec.patch_size) < 1:
                raise ValueError("transformer.patch_size must divide the image size")
        elif spec.patch_size is not None:
            raise ValueError("transformer.patch_size applies to image models only")

    @property
    def patch_grid(self) -> tuple[int, int] | None:
        """An image transformer's patch grid (rows, columns), else None."""
        if self.transformer is None or self.transformer.patch_size is None or self.image is None:
            return None
        (h, w), (ph, pw) = self.image.size, self.transformer.patch_size
        return h // ph, w // pw

    def _check_remote(self, remote: RemoteSpec) -> Manifest:
        if self.architecture is not None or self.weights is not None or self.architecture_kwargs:
            raise ValueError("a remote model takes no 'architecture', 'architecture_kwargs' or 'weights'")
        if remote.layout not in LAYOUTS[self.modality]:
            raise ValueError(f"remote.layout of a {self.modality.value} model is one of {LAYOUTS[self.modality]}")
        if remote.datatype not in DATATYPES[self.modality]:
            raise ValueError(f"remote.datatype of a {self.modality.value} model is one of "
                             f"{DATATYPES[self.modality]}")
        if "output" in self.model_fields_set and self.output != remote.output:
            raise ValueError("'output' and 'remote.output' disagree; set remote.output only")
        self.output = remote.output  # what the model returns, as the explainers read it
        return self

    @property
    def is_remote(self) -> bool:
        return self.remote is not None


def read_manifest(folder: Path) -> Manifest:
    """Parse and validate `folder/model.json`; raises ValueError with the reason."""
    path = folder / MANIFEST_NAME
    try:
        return Manifest.model_validate(json.loads(path.read_text()))
    except (OSError, json.JSONDecodeError, ValidationError) as exc:
        raise ValueError(f"bad manifest {path}: {exc}") from exc
