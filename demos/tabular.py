"""Breast-cancer MLP: raw sklearn features in, standardised inside the module, logits out."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split
from torch import nn

LABELS: list[str] = ["malignant", "benign"]
SPLIT_SEED = 0
TEST_SIZE = 0.25


class StandardisedMLP(nn.Module):
    """`(x - mean) / std` with buffers (saved in the weights), then Linear-ReLU-Linear-ReLU-Linear."""

    mean: torch.Tensor  # buffers, registered in __init__
    std: torch.Tensor

    def __init__(self, n_features: int = 30, hidden: int = 32, num_classes: int = 2) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("std", torch.ones(n_features))
        self.net = nn.Sequential(
            nn.Linear(n_features, hidden), nn.ReLU(inplace=False),
            nn.Linear(hidden, hidden), nn.ReLU(inplace=False),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.mean) / self.std)

    def set_scaling(self, x: torch.Tensor) -> None:
        """Store the per-feature mean and std of training data `x` [n, n_features]."""
        self.mean.copy_(x.mean(dim=0))
        self.std.copy_(x.std(dim=0).clamp_min(1e-6))


def build_model(n_features: int = 30, hidden: int = 32, num_classes: int = 2) -> StandardisedMLP:
    """The breast-cancer classifier: raw float32 features [B, n_features] to logits [B, num_classes]."""
    return StandardisedMLP(n_features, hidden, num_classes)


def load_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """(x_train, x_test, y_train, y_test, feature_names): a fixed stratified split of sklearn's data set."""
    data = load_breast_cancer()
    x = data.data.astype(np.float32)
    y = data.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=TEST_SIZE, stratify=y, random_state=SPLIT_SEED)
    return x_tr, x_te, y_tr, y_te, [str(name) for name in data.feature_names]
