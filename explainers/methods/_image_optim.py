"""Shared pieces of the methods that optimise an image (activation maximisation, feature inversion):
the image's parametrisation (pixels, or a decorrelated Fourier basis), random transformations, total
variation, a layer's output, and the conversion to RGB bytes."""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from explainers.errors import InvalidParams
from explainers.hooks import capture_output, last_output
from explainers.models.handle import LocalModel
from explainers.models.samples import bundle_samples

Parametrisation = Literal["fourier", "pixel"]
INIT_SCALE = 0.01


def colour_matrix(model: LocalModel) -> torch.Tensor:
    """A square root [C, C] of the colour covariance of the bundle's sample images (scaled to a largest
    column norm of 1), which the Fourier parametrisation mixes channels with; the identity without samples."""
    channels = model.manifest.image.channels if model.manifest.image is not None else 3
    samples = bundle_samples(model) or []
    images = [s.image for s in samples[:64] if s.image is not None]
    if not images or channels != 3:
        return torch.eye(channels, device=model.device)
    pixels = np.concatenate([img.reshape(-1, 3) for img in images]).astype(np.float64) / 255.0
    values, vectors = np.linalg.eigh(np.cov(pixels.T))
    root = vectors @ np.diag(np.sqrt(np.clip(values, 0.0, None))) @ vectors.T
    root /= max(float(np.linalg.norm(root, axis=0).max()), 1e-12)
    return torch.from_numpy(root.astype(np.float32)).to(model.device)


class ImageParams:
    """`n` images [n, C, H, W] in [0, 1], from pixels (a sigmoid of free values) or from a Fourier spectrum
    scaled by 1 / frequency (decorrelated: every frequency learns at a similar rate), with channels mixed
    by `colours`. The parameters start from small noise drawn from `generator`."""

    def __init__(self, kind: Parametrisation, n: int, channels: int, size: tuple[int, int],
                 generator: torch.Generator, device: torch.device, colours: torch.Tensor | None = None) -> None:
        self.kind, self.size = kind, size
        height, width = size
        self.colours = colours if colours is not None else torch.eye(channels, device=device)
        if kind == "pixel":
            shape: tuple[int, ...] = (n, channels, height, width)
        else:
            fy = torch.fft.fftfreq(height)[:, None]
            fx = torch.fft.rfftfreq(width)[None, :]
            freq = torch.sqrt(fx ** 2 + fy ** 2).clamp(min=1.0 / max(height, width))
            self.scale = (1.0 / freq).to(device)[None, None] / math.sqrt(height * width)
            shape = (n, channels, height, width // 2 + 1, 2)
        self.value = (torch.randn(shape, generator=generator) * INIT_SCALE).to(device).requires_grad_(True)

    def parameters(self) -> list[torch.Tensor]:
        return [self.value]

    def __call__(self) -> torch.Tensor:
        if self.kind == "pixel":
            return torch.sigmoid(self.value)
        spectrum = torch.view_as_complex(self.value) * self.scale
        image = torch.fft.irfft2(spectrum, s=self.size, norm="ortho") * 4.0
        mixed = torch.einsum("dc,nchw->ndhw", self.colours, image)
        return torch.sigmoid(mixed)


def random_transform(images: torch.Tensor, generator: torch.Generator, *, jitter: int, scale: float,
                     rotation: float) -> torch.Tensor:
    """Each image shifted by up to `jitter` px, scaled by a factor in [1 - scale, 1 + scale] and rotated by
    up to `rotation` degrees (one affine resampling, edges reflected): the robustness of Olah et al. 2017."""
    n, _, height, width = images.shape
    if not (jitter or scale or rotation):
        return images
    u = torch.rand(n, 4, generator=generator).to(images.device) * 2 - 1
    angle = u[:, 0] * math.radians(rotation)
    factor = 1 + u[:, 1] * scale
    shift_x, shift_y = u[:, 2] * 2 * jitter / width, u[:, 3] * 2 * jitter / height
    cos, sin = torch.cos(angle) / factor, torch.sin(angle) / factor
    theta = torch.stack([torch.stack([cos, -sin, shift_x], 1), torch.stack([sin, cos, shift_y], 1)], 1)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def total_variation(images: torch.Tensor, beta: float = 2.0) -> torch.Tensor:
    """Mean over pixels of (dx^2 + dy^2)^(beta / 2) per image [n] (Mahendran & Vedaldi's TV^beta)."""
    dx = images[..., :-1, 1:] - images[..., :-1, :-1]
    dy = images[..., 1:, :-1] - images[..., :-1, :-1]
    return ((dx ** 2 + dy ** 2 + 1e-8) ** (beta / 2)).mean(dim=(1, 2, 3))


def layer_output(model: LocalModel, layer: str, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(the model's outputs, `layer`'s output) for normalised images (gradients kept)."""
    with capture_output(model.layer(layer)) as seen:
        outputs = model.module(images)
    return outputs, last_output(seen, layer)


def layer_channels(model: LocalModel, layer: str) -> int:
    """The channels of `layer`'s output (dimension 1), from one forward pass of a blank image."""
    spec = model.manifest.image
    assert spec is not None
    blank = torch.zeros(1, spec.channels, *spec.size, device=model.device)
    with model.lock, torch.inference_mode():
        _, out = layer_output(model, layer, blank)
    if out.dim() < 2:
        raise InvalidParams(f"layer {layer!r} outputs a tensor of shape {list(out.shape)}: no channels")
    return int(out.shape[1])


def to_rgb(model: LocalModel, images01: torch.Tensor) -> list[np.ndarray]:
    """Images in [0, 1] in the model's channel order -> RGB uint8 arrays [H, W, 3]."""
    spec = model.manifest.image
    assert spec is not None
    arr = (images01.detach().clamp(0, 1).cpu().numpy() * 255).round().astype(np.uint8).transpose(0, 2, 3, 1)
    if spec.channel_order == "BGR":
        arr = arr[..., ::-1]
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    return [np.ascontiguousarray(a) for a in arr]
