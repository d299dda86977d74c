"""Tiny fixed-weight models for the tests (copied into bundle folders as their own module)."""

from __future__ import annotations

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
