"""Regions a caller knows hold the object: a box, a PNG mask, or a run-length-encoded mask (COCO's order)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from explainers.errors import InvalidInput, InvalidTarget
from explainers.evaluation.localisation import box_mask
from explainers.inputs import b64decode, decode_image


def decode_region(region: Mapping[str, Any], shape: tuple[int, int], *, max_pixels: int) -> np.ndarray:
    """The region as a boolean mask [H, W] of the image as sent; a coded 4xx when it does not fit the image."""
    height, width = shape
    if region.get("box") is not None:
        x0, y0, x1, y1 = (float(v) for v in region["box"])
        if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
            raise InvalidInput(f"the box {[x0, y0, x1, y1]} is not inside the {width} x {height} image "
                               "(x0 < x1 <= width, y0 < y1 <= height)", code="invalid_region")
        mask = box_mask((x0, y0, x1, y1), shape)
    else:
        given = region.get("mask")
        mask = _png(given, max_pixels) if isinstance(given, str) else _rle(given)
        if mask.shape != (height, width):
            raise InvalidInput(f"the mask is {mask.shape[1]} x {mask.shape[0]}; the image is {width} x {height}",
                               code="invalid_region")
    if not mask.any():
        raise InvalidInput("the region is empty", code="invalid_region")
    return mask


def _png(data: str, max_pixels: int) -> np.ndarray:
    """A mask image: every pixel that is not black is inside."""
    rgb = decode_image(b64decode(data, what="mask"), max_pixels=max_pixels)
    return rgb.max(axis=2) > 0


def _rle(data: Any) -> np.ndarray:
    """{"size": [height, width], "counts": [n0, n1, ...]}: alternating runs of outside and inside pixels,
    starting outside, in column-major order (as COCO's uncompressed RLE)."""
    if not isinstance(data, Mapping) or "size" not in data or "counts" not in data:
        raise InvalidInput("an RLE mask is {\"size\": [height, width], \"counts\": [...]}", code="invalid_region")
    height, width = (int(v) for v in data["size"])
    counts = np.asarray(data["counts"], dtype=np.int64)
    if height <= 0 or width <= 0 or (counts < 0).any() or int(counts.sum()) != height * width:
        raise InvalidInput("the RLE counts must be non-negative and sum to height * width", code="invalid_region")
    values = np.repeat(np.arange(len(counts)) % 2 == 1, counts)
    return values.reshape(width, height).T


TARGET_KEYS = ("class", "versus", "box", "mask")


def split_target(target: Any) -> tuple[Any, dict[str, Any] | None]:
    """A request's target -> (its classes, its region as `{"box": ...}` or `{"mask": ...}`, or None).

    The classes are the target itself, or the object's class (with its `versus`: `{"class", "versus"}`,
    see `explainers.targets`); the object's `box` or `mask` is a segmentation model's region."""
    if not isinstance(target, Mapping):
        return target, None
    unknown = sorted(set(target) - set(TARGET_KEYS))
    if unknown:
        raise InvalidTarget(f"target keys {unknown} are not supported here; a target object takes "
                            f"{list(TARGET_KEYS)}", details={"unknown": unknown})
    if target.get("class") is None:
        raise InvalidTarget("a target object needs its 'class' (an index or a label)")
    region = {k: target[k] for k in ("box", "mask") if target.get(k) is not None}
    if len(region) > 1:
        raise InvalidTarget("a target has at most one of 'box' and 'mask'")
    classes = target["class"] if target.get("versus") is None else {"class": target["class"],
                                                                    "versus": target["versus"]}
    return classes, region or None
