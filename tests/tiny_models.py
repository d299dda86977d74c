"""Tiny fixed-weight models for the tests (copied into bundle folders as their own module)."""

from __future__ import annotations

import time

import torch
from torch import nn


class TinyText(nn.Module):
    def __init__(self, vocab_size: int = 12, dim: int = 6, classes: int = 2) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, dim, padding_idx=0)
        self.hidden = nn.Linear(dim, 8)
        self.act = nn.ReLU()
        self.head = nn.Linear(8, classes)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.act(self.hidden(self.embedding(ids))).mean(1))


def build_image(classes: int = 3, channels: int = 3) -> nn.Module:
    return nn.Sequential(
        nn.Sequential(nn.Conv2d(channels, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1, stride=2),
                      nn.ReLU()),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, classes))


def build_text(vocab_size: int = 12) -> nn.Module:
    return TinyText(vocab_size)


def build_tabular(n_features: int = 4, classes: int = 3) -> nn.Module:
    return nn.Sequential(nn.Linear(n_features, 8), nn.ReLU(), nn.Linear(8, classes))


class Slow(nn.Module):
    """A model that sleeps on every call, so that a job runs for seconds on any machine."""

    def __init__(self, inner: nn.Module, delay: float) -> None:
        super().__init__()
        self.inner = inner
        self.delay = delay

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        time.sleep(self.delay)
        return self.inner(x)


def build_slow_image(classes: int = 3, delay: float = 0.005) -> nn.Module:
    return Slow(build_image(classes), delay)


class Gated(nn.Module):
    """A convolution gated by its own sigmoid: a product of two computed tensors, which propagation refuses."""

    def __init__(self, classes: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.head = nn.Linear(4, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv(x)
        return self.head((h * torch.sigmoid(h)).mean((2, 3)))


def build_gated(classes: int = 3) -> nn.Module:
    return Gated(classes)


class RegionMean(nn.Module):
    """Class 0's probability is the mean of channel 0 over a fixed square (rows and columns 4..7), class 1's
    is the rest: a model whose right deletion and insertion curves are known in closed form."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = x[:, 0, 4:8, 4:8].mean(dim=(1, 2)).clamp(0, 1)
        return torch.stack([p, 1 - p], dim=1)


def build_region_mean() -> nn.Module:
    return RegionMean()
