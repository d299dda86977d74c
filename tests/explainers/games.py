"""Synthetic models whose explanations are known, written as bundles: cooperative games on tabular
features (probabilities polynomial in the features), a text model that answers the AND of two words,
and a tabular model that reads only some of its features."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from explainers.models.registry import ModelRegistry

MODULE = '''
"""Test models with known explanations."""
import torch
from torch import nn


class Game(nn.Module):
    """Probabilities [1 - g, g], g = w.x + b + pair * x0 * x1 + triple * x2 * x3 * x4."""

    def __init__(self, n_features: int = 6, pair: float = 0.0, triple: float = 0.0) -> None:
        super().__init__()
        self.linear = nn.Linear(n_features, 1)
        self.pair, self.triple = pair, triple

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = self.linear(x)[:, 0] + self.pair * x[:, 0] * x[:, 1] + self.triple * x[:, 2] * x[:, 3] * x[:, 4]
        return torch.stack([1 - g, g], 1)


class WordAnd(nn.Module):
    """Probabilities [1 - g, g], g = 0.1 + 0.8 * (word a in the text) * (word b in the text)."""

    def __init__(self, vocab_size: int = 12, a: int = 2, b: int = 4) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, 2)
        self.a, self.b = a, b

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        both = (ids == self.a).any(1) & (ids == self.b).any(1)
        g = 0.1 + 0.8 * both.float() + 0.0 * self.embedding(ids).sum((1, 2))
        return torch.stack([1 - g, g], 1)


class Sparse(nn.Module):
    """Logits [0, 3 x0 - 2 x3 + 1.5 x5]: the other features do not matter."""

    def __init__(self, n_features: int = 8) -> None:
        super().__init__()
        self.head = nn.Linear(n_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([torch.zeros_like(x[:, :1]), self.head(x)], 1)
'''
VOCAB = ["<pad>", "<unk>", "good", "bad", "movie", "the", "was", "great", "awful", "plot", "not", "."]
N_GAME, N_BG = 6, 40
GAME_X = np.array([1.0, -0.8, 1.2, 0.9, -1.1, 0.5])
SPARSE_FEATURES = 8
SPARSE_WEIGHTS = np.array([3.0, 0, 0, -2.0, 0, 1.5, 0, 0])


def _bundle(root: Path, model_id: str, manifest: dict, tensors: dict[str, torch.Tensor]) -> Path:
    folder = root / model_id
    folder.mkdir(parents=True)
    (folder / "test_games.py").write_text(MODULE)
    save_file(tensors, str(folder / "weights.safetensors"))
    (folder / "model.json").write_text(json.dumps({"id": model_id, "weights": "weights.safetensors", **manifest}))
    return folder


def game_weights() -> tuple[np.ndarray, float]:
    return np.linspace(-0.05, 0.06, N_GAME), 0.5


def make_games(root: Path) -> ModelRegistry:
    """Bundles `game-linear`, `game-pair` (one pairwise interaction), `game-triple` (and a three-way one),
    `word-and`, `sparse-tabular` in `root`."""
    rng = np.random.default_rng(3)
    background = rng.normal(size=(N_BG, N_GAME)).astype(np.float32)
    w, b = game_weights()
    tensors = {"linear.weight": torch.tensor(w[None], dtype=torch.float32), "linear.bias": torch.tensor([b])}
    for model_id, pair, triple in (("game-linear", 0.0, 0.0), ("game-pair", 0.05, 0.0), ("game-triple", 0.03, 0.06)):
        folder = _bundle(root, model_id, {
            "modality": "tabular", "architecture": "test_games:Game", "output": "probabilities",
            "architecture_kwargs": {"n_features": N_GAME, "pair": pair, "triple": triple}, "labels": ["no", "yes"],
            "tabular": {"features": [{"name": f"x{i}"} for i in range(N_GAME)]}}, tensors)
        np.save(folder / "background.npy", background)
    folder = _bundle(root, "word-and", {
        "modality": "text", "architecture": "test_games:WordAnd", "output": "probabilities",
        "architecture_kwargs": {"vocab_size": len(VOCAB), "a": VOCAB.index("good"), "b": VOCAB.index("movie")},
        "labels": ["other", "both"], "text": {"embedding_layer": "embedding", "max_length": 32}},
        {"embedding.weight": torch.zeros(len(VOCAB), 2)})
    (folder / "vocab.json").write_text(json.dumps(VOCAB))
    folder = _bundle(root, "sparse-tabular", {
        "modality": "tabular", "architecture": "test_games:Sparse", "labels": ["no", "yes"],
        "architecture_kwargs": {"n_features": SPARSE_FEATURES},
        "tabular": {"features": [{"name": f"f{i}"} for i in range(SPARSE_FEATURES)]}},
        {"head.weight": torch.tensor(SPARSE_WEIGHTS[None], dtype=torch.float32), "head.bias": torch.zeros(1)})
    np.save(folder / "background.npy", rng.normal(size=(60, SPARSE_FEATURES)).astype(np.float32))
    return ModelRegistry(root, device="cpu")


def game_value(model_id: str, background: np.ndarray, x: np.ndarray, coalition: np.ndarray) -> float:
    """v(S) of a game bundle in numpy: g averaged over background rows with the coalition's features from x."""
    w, b = game_weights()
    pair, triple = {"game-linear": (0.0, 0.0), "game-pair": (0.05, 0.0), "game-triple": (0.03, 0.06)}[model_id]
    rows = np.where(coalition[None, :], x[None, :], background.astype(np.float64))
    g = rows @ w + b + pair * rows[:, 0] * rows[:, 1] + triple * rows[:, 2] * rows[:, 3] * rows[:, 4]
    return float(g.mean())


def exact_game_shapley(model_id: str, background: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Shapley values by their definition: marginal contributions averaged over all m! orderings."""
    from itertools import permutations

    m = len(x)
    cache: dict[tuple[bool, ...], float] = {}

    def v(c: np.ndarray) -> float:
        key = tuple(bool(t) for t in c)
        if key not in cache:
            cache[key] = game_value(model_id, background, x, c)
        return cache[key]

    phi = np.zeros(m)
    orders = list(permutations(range(m)))
    for order in orders:
        c = np.zeros(m, dtype=bool)
        for i in order:
            before = v(c)
            c[i] = True
            phi[i] += v(c) - before
    return phi / len(orders)
