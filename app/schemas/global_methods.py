"""Response bodies of the global (model-level) methods: rankings, generated images, rules (no torch here)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class RankedFeature(BaseModel):
    name: str = Field(description="a tabular feature, a word of the vocabulary, or an image's superpixel class")
    importance: float = Field(description="NormLIME: mean |normalised LIME weight| over the explanations keeping it")
    direction: float = Field(description="mean signed normalised weight: + for the class, - against it")
    count: int = Field(description="local explanations that kept the feature")


class Ranking(BaseModel):
    label: str = Field(description="a class, or 'all' (every explanation)")
    n_explanations: int
    features: list[RankedFeature] = Field(description="most important first")


class GeneratedImageOut(BaseModel):
    label: str
    objective: float | None = Field(description="what the optimisation reached (activation maximisation: the "
                                    "class score or channel mean; feature inversion: the relative error)")
    values: dict[str, float]
    png: str = Field(description="base64 PNG of the image at the model's input size")


class RuleOut(BaseModel):
    conditions: list[str] = Field(description="all must hold; at most the tree's depth")
    prediction: str
    coverage: float = Field(description="share of the held-out samples the rule covers")
    precision: float = Field(description="share of the covered held-out samples the model puts in `prediction`")
    support: int = Field(description="held-out samples covered")
    text: str


class GlobalExplanation(BaseModel):
    method: str
    model_id: str
    scope: Literal["global"]
    modality: Literal["image", "text", "tabular"]
    rankings: list[Ranking] | None = Field(description="normlime: per class, and 'all'")
    images: list[GeneratedImageOut] | None = Field(
        description="activation_maximisation, feature_inversion; normlime on images: examples of each concept")
    rules: list[RuleOut] | None = Field(description="rule_extraction, by coverage")
    text: str | None = Field(description="rankings or rules as plain text, one line each")
    chart_png: str | None = Field(description="base64 PNG: the ranking's bars, the images' grid or the rules")
    details: dict[str, Any]
    timing_ms: dict[str, float]
