"""A tiny segmentation net for the shapes images: per-pixel logits of background and each shape kind.

A small encoder-decoder (a strided stem to 32 px, then 16 and 8 px and back to 32 px with skips, the logits
upsampled bilinearly to the input's size) plus a global branch: the max-pooled
bottleneck picks the image's shape kind and is added back to every bottleneck cell, so that the decoder
only has to say where the object is. Trained by `scripts/train_demos.py` on `demos/shapes.py` data, the
per-pixel label being the object's class inside its mask and background elsewhere.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from demos.shapes import LABELS as SHAPE_LABELS

LABELS: list[str] = ["background", *SHAPE_LABELS]
CAM_LAYER = "bottleneck"  # the 8x8 feature map (global context added), as Seg-Grad-CAM uses the bottleneck


def pixel_labels(labels: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Per-pixel class [n, h, w] int64: 1 + the shape's label inside its mask, 0 (background) elsewhere."""
    return (masks * (labels[:, None, None] + 1)).astype(np.int64)


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU())


class ShapesSegNet(nn.Module):
    """Encoder-decoder with skips and a global branch; input [B, 3, H, W] (H, W divisible by 8), output
    logits [B, K, H, W]."""

    def __init__(self, num_classes: int = len(LABELS), widths: tuple[int, int, int] = (16, 32, 48)) -> None:
        super().__init__()
        w1, w2, w3 = widths
        self.stem = nn.Sequential(nn.Conv2d(3, w1, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(w1),
                                  nn.ReLU())
        self.enc1, self.enc2, self.enc3 = _block(w1, w1), _block(w1, w2), _block(w2, w3)
        self.context = nn.Linear(w3, w3)
        self.bottleneck = nn.ReLU()
        self.dec2, self.dec1 = _block(w3 + w2, w2), _block(w2 + w1, w1)
        self.head = nn.Conv2d(w1, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e1 = self.enc1(self.stem(x))  # 1/2 of the input's size
        e2 = self.enc2(F.max_pool2d(e1, 2))  # 1/4
        e3 = self.enc3(F.max_pool2d(e2, 2))  # 1/8
        glob = self.context(torch.flatten(F.adaptive_max_pool2d(e3, 1), 1))
        b = self.bottleneck(e3 + glob[:, :, None, None])
        d2 = self.dec2(torch.cat([F.interpolate(b, scale_factor=2.0, mode="nearest"), e2], 1))
        d1 = self.dec1(torch.cat([F.interpolate(d2, scale_factor=2.0, mode="nearest"), e1], 1))
        return F.interpolate(self.head(d1), size=x.shape[2:], mode="bilinear", align_corners=False)


def build_model(num_classes: int = len(LABELS)) -> nn.Module:
    """The shapes segmenter; input [B, 3, 64, 64] normalised with the shapes MEAN/STD, output logits
    [B, num_classes, 64, 64]."""
    return ShapesSegNet(num_classes)


@torch.no_grad()
def pixel_scores(model: nn.Module, x: torch.Tensor, y: torch.Tensor, num_classes: int,
                 batch_size: int = 128) -> tuple[float, float]:
    """(pixel accuracy, mean IoU over the classes) of `model` in eval mode on inputs x and labels y [n, h, w]."""
    model.eval()
    inter, union = torch.zeros(num_classes), torch.zeros(num_classes)
    correct = 0
    for i in range(0, len(x), batch_size):
        pred, true = model(x[i:i + batch_size]).argmax(1), y[i:i + batch_size]
        correct += int((pred == true).sum())
        for k in range(num_classes):
            inter[k] += float(((pred == k) & (true == k)).sum())
            union[k] += float(((pred == k) | (true == k)).sum())
    seen = union > 0
    return correct / max(y.numel(), 1), float((inter[seen] / union[seen]).mean())
