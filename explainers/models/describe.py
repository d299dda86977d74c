"""What a model takes, from its bundle alone (manifest, vocabulary length, background shape): no weights
are loaded, so `GET /models/{id}` is complete while models load in the background. Reasons a bundle
failed are told without absolute paths."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from explainers.models.manifest import Manifest


def input_info(manifest: Manifest, folder: Path) -> dict[str, Any]:
    m = manifest
    if m.image is not None:
        info: dict[str, Any] = {"kind": "image", "size": list(m.image.size), "channels": m.image.channels,
                                "channel_order": m.image.channel_order, "mean": m.image.mean, "std": m.image.std}
        if m.remote is None:
            info["cam_layer"] = m.cam_layer
    elif m.text is not None:
        info = {"kind": "text", "tokenizer": m.text.tokenizer, "max_length": m.text.max_length,
                "vocab_size": _vocab_size(folder / m.text.vocab)}
        if m.remote is None:
            info["embedding_layer"] = m.text.embedding_layer
    else:
        assert m.tabular is not None
        info = {"kind": "tabular", "features": [f.model_dump(exclude_none=True) for f in m.tabular.features],
                "background_size": _rows(folder / m.tabular.background)}
    if m.remote is not None:
        info["server"] = {"protocol": "v2", "model_name": m.remote.model_name,
                          "model_version": m.remote.model_version, "max_batch": m.remote.max_batch}
    return info


def _vocab_size(path: Path) -> int:
    try:
        return len(json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return 0


def _rows(path: Path) -> int:
    try:
        return int(np.load(path, mmap_mode="r", allow_pickle=False).shape[0])
    except (OSError, ValueError, IndexError):
        return 0


def without_paths(reason: str, *folders: Path) -> str:
    """A failure reason with the registry's and the bundle's absolute paths cut down to bundle names."""
    for folder in sorted({str(f) for f in folders}, key=len, reverse=True):
        reason = reason.replace(folder + "/", "").replace(folder, ".")
    return reason[:1000]
