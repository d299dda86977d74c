"""Input preparation shared by local and remote models: image pixels and baselines."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from PIL import Image

from explainers.models.manifest import ImageSpec

Baselines = dict[str, Callable[[], torch.Tensor]]


def image_pixels(rgb: np.ndarray, spec: ImageSpec) -> torch.Tensor:
    """RGB uint8 [H, W, 3] of any size -> pixels in [0, 1], [1, C, h, w], in the model's size and channel order."""
    height, width = spec.size
    img = Image.fromarray(rgb)
    if spec.channel_order == "L":
        img = img.convert("L")
    if img.size != (width, height):
        img = img.resize((width, height), Image.Resampling.BILINEAR)
    arr = np.asarray(img, dtype=np.float32) / 255.0
    arr = arr[..., None] if arr.ndim == 2 else arr
    if spec.channel_order == "BGR":
        arr = arr[..., ::-1]
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))[None]


def image_baselines(x: torch.Tensor, normalize: Callable[[torch.Tensor], torch.Tensor]) -> Baselines:
    """The reference images of a normalised input x: black, white, zero (the mean colour), blurred."""
    def blur() -> torch.Tensor:
        from torchvision.transforms.functional import gaussian_blur

        sigma = max(x.shape[-2:]) / 16
        k = int(2 * round(3 * sigma) + 1)
        return gaussian_blur(x, [k, k], [sigma, sigma])

    return {"black": lambda: normalize(torch.zeros_like(x)), "white": lambda: normalize(torch.ones_like(x)),
            "zero": lambda: torch.zeros_like(x), "blur": blur}
