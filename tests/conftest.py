"""Shared fixtures: tiny bundles in a registry folder, and a service over them."""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.bundles import make_tiny_bundles

# Apps built by tests without a Redis URL run the embedded Redis in a private folder, with no
# worker processes unless a test asks for them.
os.environ["XAI_STATE_DIR"] = tempfile.mkdtemp(prefix="xai-state-")
os.environ["XAI_EMBEDDED_WORKERS"] = "0"


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("registry")
    make_tiny_bundles(root)
    return root


@pytest.fixture(scope="session")
def tiny_registry(tiny_dir: Path):
    from explainers.models.registry import ModelRegistry

    return ModelRegistry(tiny_dir, device="cpu")


def png_bytes(arr: np.ndarray, fmt: str = "PNG", **kwargs) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt, **kwargs)
    return buf.getvalue()


@pytest.fixture(scope="session")
def rgb_image() -> np.ndarray:
    rng = np.random.default_rng(7)
    return rng.integers(0, 256, size=(24, 30, 3), dtype=np.uint8)
