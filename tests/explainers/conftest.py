"""Models for method tests: the tiny bundles, a random ResNet-18, and the shipped demos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from explainers.models.handle import LocalModel, RawInput
from explainers.models.registry import ModelRegistry

REPO_MODELS = Path(__file__).resolve().parents[2] / "models"


@pytest.fixture(scope="session")
def resnet_registry(tmp_path_factory: pytest.TempPathFactory) -> ModelRegistry:
    from demos.torchvision_bundle import make_bundle

    root = tmp_path_factory.mktemp("resnet")
    make_bundle("resnet18", root / "resnet18", size=64, num_classes=10, seed=0)
    return ModelRegistry(root, device="cpu")


@pytest.fixture(scope="session")
def demo_registry() -> ModelRegistry:
    return ModelRegistry(REPO_MODELS, device="cpu")


def raw_for(model: LocalModel, seed: int = 0) -> RawInput:
    """An input of the model's own size (so maps need no resizing), seeded."""
    rng = np.random.default_rng(seed)
    if model.manifest.image is not None:
        h, w = model.manifest.image.size
        return RawInput(image=rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8))
    if model.tokenizer is not None:
        words = [t for t in model.tokenizer.vocab[2:] if t.isalpha()]
        return RawInput(text=" ".join(rng.choice(words, size=7)))
    assert model.background is not None
    return RawInput(features=model.background[seed % len(model.background)].astype(np.float64) * 1.1)


@pytest.fixture(scope="session")
def transformer_registry(tmp_path_factory: pytest.TempPathFactory) -> ModelRegistry:
    """`tiny-vit` and `tiny-text-transformer` (tests/bundles.py)."""
    from tests.bundles import make_transformer_bundles

    root = tmp_path_factory.mktemp("transformers")
    make_transformer_bundles(root)
    return ModelRegistry(root, device="cpu")
