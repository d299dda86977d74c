"""Faithfulness of a map: what happens to the model's score as the features it ranks first are removed.

- deletion / insertion (Petsiuk et al. 2018, RISE): features are removed from the input (deletion) or
  added to an uninformative start (insertion) in the map's order, in `steps` equal steps; the area
  under the target's probability curve, over the fraction of features, is the figure (deletion: low
  is good; insertion: high is good);
- MoRF / LeRF AOPC (Samek et al. 2016): the average drop of the probability from the input's as the most
  (MoRF, high is good) or the least (LeRF, low is good) relevant features go first;
- the same figures for a random map of the same input, as the reference point.

Features are pixels of the model-sized image, tokens, or tabular features; they are hidden as the
perturbation methods hide them (`explainers.masking`), in batches through `ctx.predict`, so the
evaluations count in `details.model_evaluations`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from explainers.context import Context
from explainers.masking import Masker, PixelFill, TabularFeatures, Tokens, compose_pixels, pixel_fill
from explainers.types import Modality

Metric = Literal["deletion", "insertion", "morf", "lerf"]
METRICS: tuple[Metric, ...] = ("deletion", "insertion", "morf", "lerf")


@dataclass(frozen=True)
class FaithfulnessOptions:
    metrics: tuple[Metric, ...] = METRICS
    steps: int = 16
    fill: PixelFill = "zero"  # what a deleted pixel shows
    insertion_start: PixelFill = "blur"  # what insertion starts from
    random_reference: bool = True
    seed: int = 0
    n_background: int = 50  # tabular: background rows a removed feature takes


    @classmethod
    def from_request(cls, value: Any) -> FaithfulnessOptions | None:
        """`output.quality` as sent: false/null (none), true (every figure), a list of metric names, or an
        object with `metrics`, `steps`, `fill`, `insertion_start`, `random_reference`, `seed`, `n_background`."""
        if value is None or value is False:
            return None
        if value is True:
            return cls()
        if isinstance(value, (list, tuple)):
            return cls(metrics=tuple(value))
        data = dict(value)
        if "metrics" in data:
            data["metrics"] = tuple(data["metrics"])
        return cls(**data)


class Pixels(Masker):
    """Every pixel of the model-sized image is a feature; a hidden pixel shows the fill."""

    def __init__(self, ctx: Context, fill: PixelFill) -> None:
        self.x = ctx.x
        self.fill = pixel_fill(ctx, fill)
        self.height, self.width = ctx.x.shape[-2:]
        self.n_features = self.height * self.width
        self.names = []

    def compose(self, masks: np.ndarray) -> torch.Tensor:
        keep = torch.from_numpy(np.asarray(masks, dtype=np.float32)).to(self.x.device)
        return compose_pixels(self.x, self.fill, keep.view(-1, 1, self.height, self.width))


def masker_for(ctx: Context, fill: PixelFill, options: FaithfulnessOptions) -> Masker:
    if ctx.model.modality is Modality.IMAGE:
        return Pixels(ctx, fill)
    if ctx.model.modality is Modality.TEXT:
        return Tokens(ctx, "pad")
    return TabularFeatures(ctx, options.n_background, options.seed)


def order_of(attribution: np.ndarray, masker: Masker) -> np.ndarray:
    """Feature indices from the most to the least relevant (ties keep their position)."""
    flat = np.asarray(attribution, dtype=np.float64).ravel()
    if flat.size != masker.n_features:
        raise ValueError(f"a map of {flat.size} values for {masker.n_features} features")
    return np.argsort(-flat, kind="stable")


def step_masks(order: np.ndarray, steps: int, *, insert: bool) -> np.ndarray:
    """Masks [steps + 1, M] (True = the input's value): step k has removed (or inserted) k / steps of them."""
    m = len(order)
    counts = np.round(np.linspace(0, m, steps + 1)).astype(int)
    ranks = np.empty(m, dtype=np.int64)
    ranks[order] = np.arange(m)  # rank of each feature in the order
    shown = ranks[None, :] < counts[:, None]  # the first counts[k] features of the order
    return shown if insert else ~shown


def auc(curve: np.ndarray) -> float:
    """Area under a curve sampled at equal steps over [0, 1] (trapezoids)."""
    y = np.asarray(curve, dtype=np.float64)
    return float(((y[1:] + y[:-1]) / 2).mean()) if len(y) > 1 else float(y[0])


def aopc(curve: np.ndarray) -> float:
    """Samek et al.'s AOPC: the mean over steps 0..L of f(x) - f(x after k steps)."""
    y = np.asarray(curve, dtype=np.float64)
    return float((y[0] - y).mean())


def curves_needed(options: FaithfulnessOptions) -> int:
    """How many probability curves the figures take: deletion (shared with MoRF), LeRF and insertion for
    the map; deletion and insertion for the random map."""
    metrics = set(options.metrics)
    own = bool(metrics & {"deletion", "morf"}) + ("lerf" in metrics) + ("insertion" in metrics)
    random = bool(metrics & {"deletion", "morf"}) + ("insertion" in metrics)
    return own + (random if options.random_reference else 0)


def evaluations_needed(n_features: int, options: FaithfulnessOptions, rows_per_mask: int = 1) -> int:
    """Model inputs the figures cost: (steps + 1) masks per curve, each one input (tabular: one per
    background row it averages over)."""
    steps = min(options.steps, max(n_features, 1))
    return (steps + 1) * curves_needed(options) * rows_per_mask


def model_sized(ctx: Context, values: torch.Tensor | np.ndarray) -> np.ndarray:
    """A method's map at the model input's resolution (a CAM's low resolution resized), as numpy."""
    if ctx.model.modality is Modality.IMAGE:
        t = torch.as_tensor(np.asarray(values) if isinstance(values, np.ndarray) else values.detach()).float()
        size = tuple(ctx.x.shape[-2:])
        if tuple(t.shape) != size:
            t = torch.nn.functional.interpolate(t[None, None], size=size, mode="bilinear", align_corners=False)[0, 0]
        return t.cpu().numpy()
    return np.asarray(values.detach().float().cpu() if isinstance(values, torch.Tensor) else values)


def faithfulness(ctx: Context, attribution: np.ndarray, options: FaithfulnessOptions) -> dict[str, object]:
    """The requested figures of a map given at the model's input resolution, and of a random map."""
    ctx.max_evaluations, ctx.deadline = None, None  # the method's budget is not the figures'
    deleting = masker_for(ctx, options.fill, options)
    inserting = masker_for(ctx, options.insertion_start, options) if "insertion" in options.metrics else None
    steps = min(options.steps, deleting.n_features)
    orders = {"map": order_of(attribution, deleting)}
    if options.random_reference:
        orders["random"] = np.random.default_rng(options.seed).permutation(deleting.n_features)
    out: dict[str, object] = {"steps": steps, "scored": "probability of the target"}
    for which, order in orders.items():
        figures: dict[str, float] = {}
        if {"deletion", "morf"} & set(options.metrics):
            curve = deleting.value(ctx, step_masks(order, steps, insert=False), ctx.batch_size, kind="probabilities")
            if "deletion" in options.metrics:
                figures["deletion_auc"] = auc(curve)
            if "morf" in options.metrics:
                figures["morf_aopc"] = aopc(curve)
        if "lerf" in options.metrics and which == "map":  # a random order has no least-relevant end
            figures["lerf_aopc"] = aopc(deleting.value(ctx, step_masks(order[::-1], steps, insert=False),
                                                       ctx.batch_size, kind="probabilities"))
        if inserting is not None:
            figures["insertion_auc"] = auc(inserting.value(ctx, step_masks(order, steps, insert=True),
                                                           ctx.batch_size, kind="probabilities"))
        out[which] = figures
    return out
