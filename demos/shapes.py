"""Synthetic shapes: one geometric object on a cluttered background, and a small CNN.

Each image holds exactly one object of a kind in `LABELS` at a random position,
size, rotation and colour; the background is a colour gradient with noise,
random strokes and tiny blobs (none of which is a shape kind). `masks` marks the
object's visible pixels, which makes the set usable as localisation ground truth.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from skimage import draw
from torch import nn

LABELS: list[str] = ["circle", "square", "triangle", "cross", "star"]
MEAN: list[float] = [0.5, 0.5, 0.5]
STD: list[float] = [0.25, 0.25, 0.25]
MIN_CONTRAST = 0.45  # least RGB distance (in [0, 1] units) between object and local background


@dataclass
class ShapesData:
    """Images uint8 [n, size, size, 3] (RGB), labels int64 [n], object masks bool [n, size, size]."""

    images: np.ndarray
    labels: np.ndarray
    masks: np.ndarray


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Float RGB [size, size, 3] in [0, 1]: a two-colour linear gradient plus noise."""
    c0, c1 = rng.uniform(0.0, 1.0, size=(2, 3))
    angle = rng.uniform(0.0, 2 * np.pi)
    yy, xx = np.mgrid[0:size, 0:size] / max(size - 1, 1)
    t = np.cos(angle) * xx + np.sin(angle) * yy
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    img = c0 + (c1 - c0) * t[..., None]
    img += rng.normal(0.0, rng.uniform(0.02, 0.08), size=img.shape)
    return img


def _clutter(rng: np.random.Generator, img: np.ndarray) -> None:
    """Draw random strokes and tiny blobs (in place); none resembles a shape kind."""
    size = img.shape[0]
    for _ in range(int(rng.integers(2, 6))):
        r0, c0, r1, c1 = rng.integers(0, size, size=4)
        rr, cc, val = draw.line_aa(int(r0), int(c0), int(r1), int(c1))
        keep = (rr >= 0) & (rr < size) & (cc >= 0) & (cc < size)
        rr, cc, val = rr[keep], cc[keep], val[keep][:, None]
        img[rr, cc] = img[rr, cc] * (1 - val) + rng.uniform(0, 1, 3) * val
    for _ in range(int(rng.integers(2, 7))):
        rr, cc = draw.disk((rng.uniform(0, size), rng.uniform(0, size)), rng.uniform(1.0, 2.5),
                           shape=(size, size))
        img[rr, cc] = rng.uniform(0, 1, 3)


def _star(n_points: int, inner: float) -> np.ndarray:
    angles = np.arange(2 * n_points) * np.pi / n_points
    radii = np.where(np.arange(2 * n_points) % 2 == 0, 1.0, inner)
    return np.stack([np.cos(angles) * radii, np.sin(angles) * radii], axis=1)


def _outline(kind: str) -> list[np.ndarray]:
    """Unit-size polygons (x, y) of a shape kind, centred at 0; a cross is two bars."""
    if kind == "square":
        return [np.array([[-0.7, -0.7], [0.7, -0.7], [0.7, 0.7], [-0.7, 0.7]])]
    if kind == "triangle":
        a = np.pi / 2 + np.arange(3) * 2 * np.pi / 3
        return [np.stack([np.cos(a), np.sin(a)], axis=1)]
    if kind == "cross":
        w = 0.3
        return [np.array([[-1, -w], [1, -w], [1, w], [-1, w]]), np.array([[-w, -1], [w, -1], [w, 1], [-w, 1]])]
    if kind == "star":
        return [_star(5, 0.42)]
    raise ValueError(f"no outline for {kind!r}")


def _shape_mask(rng: np.random.Generator, kind: str, size: int) -> np.ndarray:
    """Boolean mask of one object at a random position, radius and rotation."""
    radius = rng.uniform(0.14, 0.26) * size
    margin = 1.1 * radius + 1  # every outline lies within 1.05 radius of the centre
    cy, cx = rng.uniform(margin, size - margin, size=2)
    mask = np.zeros((size, size), dtype=bool)
    if kind == "circle":
        rr, cc = draw.disk((cy, cx), radius * 0.85, shape=(size, size))
        mask[rr, cc] = True
        return mask
    theta = rng.uniform(0, 2 * np.pi)
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    for poly in _outline(kind):
        pts = poly @ rot.T * radius
        rr, cc = draw.polygon(pts[:, 1] + cy, pts[:, 0] + cx, shape=(size, size))
        mask[rr, cc] = True
    return mask


def _contrasting_colour(rng: np.random.Generator, local: np.ndarray) -> np.ndarray:
    """A random colour at least MIN_CONTRAST away from the mean local background colour."""
    for _ in range(50):
        colour = rng.uniform(0, 1, 3)
        if np.linalg.norm(colour - local) >= MIN_CONTRAST:
            return colour
    return np.where(local > 0.5, 0.0, 1.0)


def generate(n: int, seed: int, size: int = 64) -> ShapesData:
    """`n` images with one object each; labels cycle through every kind before shuffling."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % len(LABELS)).astype(np.int64)
    images = np.empty((n, size, size, 3), dtype=np.uint8)
    masks = np.empty((n, size, size), dtype=bool)
    for i, label in enumerate(labels):
        img = _background(rng, size)
        _clutter(rng, img)
        mask = _shape_mask(rng, LABELS[int(label)], size)
        colour = _contrasting_colour(rng, img[mask].mean(axis=0))
        img[mask] = colour + rng.normal(0.0, 0.02, size=(int(mask.sum()), 3))
        images[i] = np.round(np.clip(img, 0.0, 1.0) * 255).astype(np.uint8)
        masks[i] = mask
    return ShapesData(images=images, labels=labels, masks=masks)


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 [n, h, w, 3] RGB to the normalised float input [n, 3, h, w] of `build_model`."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255.0
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    return (x - mean) / std


def _block(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=False)]


class ShapesCNN(nn.Module):
    """Four conv blocks (64 -> 32 -> 16 -> 8 px), global max pooling and a linear head.

    Max rather than average pooling: the object covers a small part of the image,
    and averaging dilutes its evidence with clutter (it trains several times slower).
    """

    def __init__(self, num_classes: int = len(LABELS), widths: tuple[int, ...] = (16, 32, 64, 128)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 3
        for i, c_out in enumerate(widths):
            layers += _block(c_in, c_out)
            if i < len(widths) - 1:
                layers.append(nn.MaxPool2d(2))
            c_in = c_out
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveMaxPool2d(1)
        self.head = nn.Linear(c_in, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.pool(self.features(x)), 1))


CAM_LAYER = "features.14"  # the ReLU output of the last conv block, 8x8 for a 64x64 input


def build_model(num_classes: int = len(LABELS)) -> nn.Module:
    """The shapes classifier; input [B, 3, 64, 64] normalised with MEAN/STD, output logits."""
    return ShapesCNN(num_classes)
