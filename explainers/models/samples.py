"""Sample sets of a model: the inputs its bundle ships, or inputs sent with a request, as model batches."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence

import numpy as np
import torch

from explainers.models.handle import BundleModel, LocalModel, RawInput
from explainers.types import Modality


def bundle_samples(model: BundleModel) -> list[RawInput] | None:
    """The bundle's own sample inputs (`samples` in the manifest; a tabular model's background), or None."""
    manifest = model.manifest
    if manifest.modality is Modality.TABULAR and model.background is not None:
        return [RawInput(features=row.astype(np.float64)) for row in model.background]
    if manifest.samples is None:
        return None
    path = model.folder / manifest.samples
    if manifest.modality is Modality.IMAGE:
        with np.load(path, allow_pickle=False) as data:
            images = np.asarray(data["images"], dtype=np.uint8)
        if images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"{manifest.samples}: 'images' must be uint8 [N, H, W, 3], not {images.shape}")
        return [RawInput(image=img) for img in images]
    texts = json.loads(path.read_text())
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise ValueError(f"{manifest.samples}: a text model's samples are a JSON list of strings")
    return [RawInput(text=t) for t in texts]


def attribution_batches(model: LocalModel, raws: Sequence[RawInput],
                        batch_size: int = 64) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
    """(points of the attribution space [B, ...], native inputs or None): texts one by one (lengths differ)."""
    if model.modality is Modality.TEXT:
        for raw in raws:
            inputs = model.prepare(raw)
            yield inputs.x, inputs.native
        return
    for start in range(0, len(raws), batch_size):
        yield torch.cat([model.prepare(raw).x for raw in raws[start:start + batch_size]]), None


def bundle_regions(model: BundleModel) -> list[np.ndarray] | None:
    """Where the object is in each of the bundle's sample images (`masks` [N, H, W] in its samples file)."""
    manifest = model.manifest
    if manifest.modality is not Modality.IMAGE or manifest.samples is None:
        return None
    with np.load(model.folder / manifest.samples, allow_pickle=False) as data:
        if "masks" not in data:
            return None
        masks = np.asarray(data["masks"], dtype=bool)
    return list(masks)
