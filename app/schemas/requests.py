"""Request bodies of the HTTP contract, checked strictly: unknown keys, nulls, text UTF-8 cannot carry (no torch)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    StrictBool,
    StrictInt,
    StrictStr,
    StringConstraints,
    model_validator,
)
from pydantic_core import PydanticCustomError

from explainers.render.colormaps import COLORMAPS

# the colormap field's `enum`, built as a list of JSON values: `json_schema_extra` takes those (list is invariant)
COLORMAP_ENUM: list[JsonValue] = [*sorted(COLORMAPS)]



def _lone_surrogate(value: Any, where: str) -> str | None:
    """Where a string (key or value) holds a lone surrogate, which UTF-8 cannot carry; None if nowhere."""
    if isinstance(value, str):
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return where
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            found = _lone_surrogate(key, where) or _lone_surrogate(item, f"{where}.{key}" if where else str(key))
            if found:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found = _lone_surrogate(item, f"{where}[{i}]")
            if found:
                return found
    return None


def check_unicode(data: Any) -> None:
    """Raise pydantic's `invalid_unicode` error if any string of a request body is not valid Unicode."""
    where = _lone_surrogate(data, "")
    if where is not None:
        raise PydanticCustomError("invalid_unicode", "text at {where} is not valid Unicode (a lone surrogate)",
                                  {"where": where or "body"})


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _valid_unicode(cls, data: Any) -> Any:
        check_unicode(data)
        return data


def _one_of_schema(schema: dict[str, Any]) -> None:
    """The JSON schema of Input: each kind non-null, exactly one of them present."""
    props = schema["properties"]
    for name in props:
        variants = [v for v in props[name].pop("anyOf", []) if v.get("type") != "null"]
        if len(variants) == 1:
            props[name].update(variants[0])
        elif variants:
            props[name]["anyOf"] = variants
        props[name].pop("default", None)
    props["text"]["pattern"] = r"\S"  # not blank
    # With no other property allowed, one property at least and at most is "exactly one of image, text,
    # features" (as a plain object, which generated clients read as one class; a oneOf would be a union).
    schema["minProperties"] = schema["maxProperties"] = 1


class Input(_Body):
    """Exactly one of image (base64 PNG/JPEG/WebP bytes), text, or features."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_one_of_schema)

    image: str | None = Field(None, description="base64-encoded image bytes")
    text: str | None = Field(None, description="the text (not blank)")
    features: dict[str, Any] | list[Any] | None = Field(
        None, description="feature values by name, or a list in the model's feature order")

    @model_validator(mode="before")
    @classmethod
    def _no_nulls(cls, data: Any) -> Any:
        if isinstance(data, dict) and any(v is None for v in data.values()):
            raise ValueError("input values may not be null: send exactly one of 'image', 'text' or 'features'")
        return data

    @model_validator(mode="after")
    def _exactly_one(self) -> Input:
        given = [k for k in ("image", "text", "features") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("input needs exactly one of 'image', 'text' or 'features'")
        return self


def _explain_input_schema(schema: dict[str, Any]) -> None:
    """ExplainInput's schema: Input's, with `box` or `mask` allowed beside the one input."""
    _one_of_schema(schema)
    schema["maxProperties"] = 2


BOX_HELP = "[x0, y0, x1, y1] in pixels of the image as sent, right and bottom edges excluded"
MASK_HELP = ("a base64 PNG the image's size (not black = inside), or an uncompressed RLE {\"size\": [height, "
             "width], \"counts\": [...]}: runs of outside and inside pixels, starting outside, column-major "
             "(COCO's order)")


class Region(_Body):
    """A region of the image as sent: at most one of `box` and `mask`."""

    box: list[float] | None = Field(None, min_length=4, max_length=4, description=BOX_HELP)
    mask: str | dict[str, Any] | None = Field(None, description=MASK_HELP)

    @model_validator(mode="after")
    def _one_region(self) -> Region:
        if self.box is not None and self.mask is not None:
            raise ValueError(f"{type(self).__name__} has at most one of 'box' and 'mask'")
        return self

    def region(self) -> dict[str, Any] | None:
        """The region as `{"box": ...}` or `{"mask": ...}`, or None."""
        if self.box is not None:
            return {"box": self.box}
        return {"mask": self.mask} if self.mask is not None else None


class ExplainInput(Input, Region):
    """The input to explain: exactly one of image, text or features, and for an image at most one of `box`
    and `mask`, where the object is (adds details.localisation: the pointing game, the shares of positive
    mass and of energy inside it)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_explain_input_schema)

    def payload(self) -> dict[str, Any]:
        """The input itself, without its region."""
        return self.model_dump(exclude_none=True, exclude={"box", "mask"})


Metric = Literal["deletion", "insertion", "morf", "lerf"]
Fill = Literal["zero", "black", "white", "blur", "mean"]
ALL_METRICS: tuple[Metric, ...] = ("deletion", "insertion", "morf", "lerf")


class QualitySpec(_Body):
    """The faithfulness figures, with their options."""

    metrics: list[Metric] = Field(default_factory=lambda: list(ALL_METRICS), min_length=1, max_length=4,
                                  description="which figures")
    steps: int = Field(16, ge=2, le=256, description="features are removed (inserted) in this many equal steps")
    fill: Fill = Field("zero", description="images: what a deleted pixel shows")
    insertion_start: Fill = Field("blur", description="images: what insertion starts from")
    random_reference: bool = Field(True, description="the same figures for a random map, as the reference point")
    seed: int = Field(0, ge=0, le=2**31 - 1, description="seed of the random map and the background subsample")
    n_background: int = Field(50, ge=1, le=1000, description="tabular: background rows a removed feature takes")


class OutputSpec(_Body):
    """How the explanation is drawn: the picture's style and size, its caption and colour bar."""

    overlay: bool = Field(True, description="render the picture (image models) or bar chart (tabular models)")
    style: Literal["overlay", "heatmap", "graymap", "diverging", "mask", "contour"] = Field(
        "overlay", description="image models: `overlay` the heatmap blended over the image; `heatmap` the map "
        "alone; `graymap` |attribution| in grey; `diverging` the signed map alone, centred at 0; `mask` the top "
        "`mask_percent` % of pixels kept, the rest greyed; `contour` iso-lines over the image")
    colormap: str | None = Field(None, description="colormap name; default: jet for non-negative maps, "
                                 "bwr for signed maps", json_schema_extra={"enum": COLORMAP_ENUM})
    alpha: float = Field(0.5, ge=0.0, le=1.0, description="heatmap opacity in the overlay")
    mask_percent: float = Field(20.0, gt=0.0, le=100.0, description="style `mask`: percent of pixels kept")
    size: int | None = Field(None, ge=1, le=2048, description="long side of the picture in px (the map's "
                             "cells nearest-neighbour, the photo bilinear); null: the image as sent, enlarged "
                             "by a whole factor to at least 256 px")
    caption: bool = Field(True, description="a caption with the method, the class and its probability")
    colorbar: bool = Field(True, description="image models: a colour bar with the value range (and for signed "
                           "maps what each sign means)")
    attribution: Literal["base64", "list", "none"] = "base64"
    quality: StrictBool | list[Metric] | QualitySpec = Field(
        False, description="add details.quality: deletion and insertion AUC (Petsiuk et al. 2018), MoRF and LeRF "
        "AOPC (Samek et al. 2016) and the same for a random map; true for all, a list of names, or the options")
    pointing_tolerance: int = Field(15, ge=0, le=1000, description="with a region: px the map's maximum may lie "
                                    "outside it and still hit (the pointing game)")

    @model_validator(mode="after")
    def _known_colormap(self) -> OutputSpec:
        if self.colormap is not None and self.colormap not in COLORMAPS:
            raise ValueError(f"unknown colormap {self.colormap!r}; use one of {sorted(COLORMAPS)}")
        return self


MAX_INPUTS = 32  # explainers.service.Limits.max_inputs


MAX_TARGETS = 16  # explainers.targets.MAX_TARGETS


class TargetObject(Region):
    """A target given as an object: a class, and the class it is contrasted with (`versus`) or, for a
    segmentation model, where its logits are summed (`box` or `mask`; neither: the pixels the model labels
    with the class), or both."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    class_: StrictInt | StrictStr = Field(alias="class", description="the class: an index or a label")
    versus: StrictInt | StrictStr | None = Field(
        None, description="contrastive: explain score(class) - score(versus), another class (methods whose "
        "`contrastive` is true)")


TargetList = Annotated[list[StrictInt | StrictStr], Field(json_schema_extra={"minItems": 1, "maxItems": MAX_TARGETS})]
TARGET_HELP = ("null: the top-1 class (a multi-label model: every label over 0.5); a class index or a label; a list "
               f"of 1 to {MAX_TARGETS} distinct classes (a TargetsExplanation: one map per class, sharing the model "
               "evaluations; `too_many_targets` past the bound); {\"class\": A, \"versus\": B}: score A - score B; "
               "a segmentation model also takes {\"class\", \"box\" | \"mask\"}: the class's logits summed over "
               "that region")
ONE_TARGET_HELP = ("null: top-1 class; else a class index or a label; a segmentation model also takes "
                   "{\"class\", \"box\" | \"mask\"}: the class's logits summed over that region")
AnyTarget = StrictInt | StrictStr | TargetList | TargetObject | None


def target_value(target: AnyTarget) -> int | str | list[int | str] | dict[str, Any] | None:
    """The target as the service takes it: a class, a list of classes, or the object as a plain dict."""
    if isinstance(target, TargetObject):
        return target.model_dump(by_alias=True, exclude_none=True)
    return target


def _not_nullable(*names: str) -> Any:
    """A schema hook: the named optional properties without their `null` variant (absent, not null, is how
    a body leaves one out; generated clients then type them as the object itself)."""
    def hook(schema: dict[str, Any]) -> None:
        for name in names:
            prop = schema["properties"][name]
            variants = [v for v in prop.pop("anyOf", []) if v.get("type") != "null"]
            if len(variants) == 1:
                prop.update(variants[0])
            prop.pop("default", None)
    return hook


class ExplainRequest(_Body):
    """One input (`input`) or several (`inputs`), exactly one of the two."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_not_nullable("input", "inputs"))

    model_id: str = Field(min_length=1, max_length=200)
    input: ExplainInput | None = Field(None, description="the input to explain (or send `inputs`)")
    inputs: list[ExplainInput] | None = Field(
        None, description=f"several inputs, 1 to {MAX_INPUTS}, explained with the method in shared batches: the "
        "answer is a BatchExplanation (JSON bodies only; `invalid_request` without exactly one of input and "
        "inputs, `empty_inputs`, `too_many_inputs` otherwise)",
        json_schema_extra={"minItems": 1, "maxItems": MAX_INPUTS})
    target: AnyTarget = Field(None, description=TARGET_HELP)
    params: dict[str, Any] = Field(default_factory=dict, description="the method's parameters (see /methods)")
    output: OutputSpec = Field(default_factory=OutputSpec)
    top_k: int = Field(5, ge=1, le=100, description="predictions reported")


MethodName = Annotated[str, StringConstraints(min_length=1, max_length=64)]
MethodParams = dict[MethodName, dict[str, Any]]


class MultiExplainRequest(_Body):
    model_id: str = Field(min_length=1, max_length=200)
    input: ExplainInput
    methods: list[MethodName] = Field(min_length=2, max_length=8, description="the methods, distinct")
    params: MethodParams = Field(default_factory=dict, description="each method's params, by name")
    target: StrictInt | StrictStr | TargetObject | None = Field(None, description=ONE_TARGET_HELP)
    output: OutputSpec = Field(default_factory=OutputSpec)
    top_k: int = Field(5, ge=1, le=100, description="predictions reported")
    top_percent: float = Field(10.0, gt=0, le=100, description="the agreement's top-k: this percent of features")


class SanityRequest(_Body):
    methods: list[MethodName] | None = Field(None, min_length=1, max_length=8, description="default: those of "
                                             "gradcam, saliency, guided_backprop, integrated_gradients the model takes")
    params: MethodParams = Field(default_factory=dict, description="each method's params, by name")
    inputs: list[Input] | None = Field(None, min_length=1, max_length=16, description="default: the first "
                                       "`n_inputs` of the bundle's sample set")
    n_inputs: int = Field(4, ge=1, le=16, description="bundle samples used when no inputs are sent")
    stages: int = Field(8, ge=2, le=32, description="at most this many randomisation stages (layers grouped)")
    seed: int = Field(0, ge=0, le=2**31 - 1, description="seed of the random weights")


class EvaluateRequest(_Body):
    methods: list[MethodName] | None = Field(None, min_length=1, max_length=8, description="default: those of "
                                             "gradcam, saliency, integrated_gradients, occlusion, attention_rollout, "
                                             "transformer_attribution the model takes")
    params: MethodParams = Field(default_factory=dict, description="each method's params, by name")
    inputs: list[ExplainInput] | None = Field(None, min_length=1, max_length=256, description="default: the first "
                                              "`n_inputs` of the bundle's sample set (with its object masks)")
    n_inputs: int = Field(16, ge=1, le=256, description="bundle samples used when no inputs are sent")
    quality: QualitySpec = Field(default_factory=QualitySpec, description="the faithfulness figures' options")
    pointing_tolerance: int = Field(15, ge=0, le=1000, description="px the map's maximum may lie outside a region")


class GlobalRequest(_Body):
    """A model-level request: what each global method takes is in its MethodInfo (`takes`)."""

    inputs: list[Input] | None = Field(
        None, description="methods that take samples: the sample set, 1 to 4096 inputs of the model's modality "
        "(an empty list is a 422 `empty_samples`, more a 422 `too_many_samples`); default: the bundle's own "
        "(`samples` in its manifest; a tabular model's background)")
    input: Input | None = Field(None, description="methods that take an input (feature_inversion): the input")
    target: StrictInt | StrictStr | None = Field(
        None, description="activation_maximisation: the class (index or label); null: every class")
    params: dict[str, Any] = Field(default_factory=dict, description="the method's parameters (see /methods)")


class PredictRequest(_Body):
    input: Input
    top_k: int = Field(5, ge=1, le=1000)


class PatternsRequest(_Body):
    inputs: list[Input] | None = Field(
        None, max_length=4096, description="sample inputs of the model's modality; default: the bundle's own "
        "sample set (`samples` in its manifest; a tabular model's background)")
