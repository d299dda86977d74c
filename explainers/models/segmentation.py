"""Segmentation models explained as classifiers: a class's per-pixel logits summed over a region.

The prepared input's `forward` maps a batch to scores [B, K], score_k being the sum of class k's logits over
the region's pixels (Seg-Grad-CAM, Vinogradova et al. 2020, https://arxiv.org/abs/2002.11434). With a region
(a mask at the image-as-sent size) every class sums over it; without one, each class sums over the pixels the
model assigns to it on the unperturbed input (Seg-Grad-CAM's choice), or over the whole image when it assigns
it none. Every gradient, CAM and black-box
method then explains `target = class` unchanged. The predictions reported are each class's share of the
region's pixels (the whole image without a region), as the model labels them.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from explainers.errors import InvalidInput, InvalidParams
from explainers.models.manifest import Manifest
from explainers.params import P, Params

Forward = Callable[[torch.Tensor], torch.Tensor]


def region_at(region: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    """A boolean mask of the image as sent -> the model's output resolution: the cells at least half inside,
    or, for a region smaller than a cell, every cell it touches."""
    cover = F.interpolate(torch.from_numpy(region.astype(np.float32))[None, None], size=size, mode="area")[0, 0]
    inside = cover >= 0.5
    if not bool(inside.any()):
        inside = cover > 0
    if not bool(inside.any()):
        raise InvalidInput("the region is empty at the model's resolution", code="invalid_region")
    return inside


def segmentation_parts(run: Forward, x: torch.Tensor, n_labels: int,
                       region: np.ndarray | None) -> tuple[Forward, torch.Tensor, torch.Tensor]:
    """(forward to summed region logits [B, K], the predictions reported [K], pixels each class sums over [K])."""
    with torch.no_grad():
        logits = run(x)
    if logits.dim() != 4 or logits.shape[:2] != (1, n_labels):
        raise ValueError(f"a segmentation model returns logits [B, {n_labels}, H, W]; this one returned "
                         f"{list(logits.shape)}")
    size = (int(logits.shape[2]), int(logits.shape[3]))
    labelled = logits[0].argmax(0)  # [H, W]
    if region is not None:
        inside = region_at(region, size).to(logits.device)
        weights = inside.float().expand(n_labels, *size)
    else:
        inside = torch.ones(size, dtype=torch.bool, device=logits.device)
        weights = F.one_hot(labelled, n_labels).permute(2, 0, 1).float()  # [K, H, W]: the pixels of each class
        weights[weights.flatten(1).sum(1) == 0] = 1.0  # a class labelled nowhere: the whole image
    shares = F.one_hot(labelled[inside], n_labels).float().mean(0)
    weights = weights.contiguous()

    def forward(batch: torch.Tensor) -> torch.Tensor:
        return torch.einsum("bkhw,khw->bk", run(batch).float(), weights)

    return forward, shares, weights.flatten(1).sum(1)


def scored_params(manifest: Manifest, params: P) -> P:
    """`check_score`, and a segmentation model's params with the score it explains (logits) set: what a
    job stores has every default filled in, and a default `probabilities` must not read as asked for."""
    check_score(manifest, params)
    if manifest.task == "segmentation" and "score" in type(params).model_fields:
        return params.model_copy(update={"score": "logits"})
    return params


def check_score(manifest: Manifest, params: Params) -> None:
    """A segmentation model explains summed logits: a softmax over sums of logits means nothing, so asking
    for `score: probabilities` is a 422; the black-box methods' default (probabilities) becomes logits."""
    if manifest.task == "segmentation" and "score" in params.model_fields_set and params.score == "probabilities":
        raise InvalidParams("a segmentation model explains a class's logits summed over the region; "
                            "score 'probabilities' does not apply: use 'logits' or leave it out",
                            details={"param": "score", "allowed": ["logits"]})
