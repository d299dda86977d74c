"""The checks a bundle passes at load: a dry forward on a sample input of the manifest's shape, whose
output must be one finite score per label. A model that fails them fails loudly at load, not on
every request."""

from __future__ import annotations

import numpy as np
import torch

from explainers.models.handle import LocalModel, RawInput
from explainers.types import Modality


def sample_input(model: LocalModel) -> RawInput:
    """An input of the manifest's kind and shape: a grey image, a known word, a background row."""
    manifest = model.manifest
    if manifest.modality is Modality.IMAGE:
        assert manifest.image is not None
        height, width = manifest.image.size
        return RawInput(image=np.full((height, width, 3), 128, dtype=np.uint8))
    if manifest.modality is Modality.TEXT:
        assert model.tokenizer is not None
        specials = {model.tokenizer.pad_id, model.tokenizer.unk_id}
        words = [t for i, t in enumerate(model.tokenizer.vocab) if i not in specials and t.strip()]
        return RawInput(text=(words[0] if words else "a"))
    features = model.background[0] if model.background is not None and len(model.background) \
        else np.zeros(len(model.feature_names))
    return RawInput(features=np.asarray(features, dtype=np.float64))


def dry_forward(model: LocalModel) -> None:
    """Run the model once on a sample input; raise ValueError saying what does not fit."""
    inputs = model.prepare(sample_input(model))
    shape = list(inputs.native.shape) if inputs.native is not None else list(inputs.x.shape)
    try:
        with torch.inference_mode():
            out = inputs.forward(inputs.x)
    except Exception as exc:
        raise ValueError(f"the module does not take the input the manifest describes ({shape}): "
                         f"{type(exc).__name__}: {exc}") from exc
    if not isinstance(out, torch.Tensor):
        raise ValueError(f"the module returns {type(out).__name__}, not a tensor of scores")
    n_labels = len(model.labels)
    if out.dim() != 2 or out.shape[0] != 1 or out.shape[1] != n_labels:
        raise ValueError(f"the module returns outputs of shape {list(out.shape)} for an input of shape {shape}; "
                         f"the manifest has {n_labels} labels, so [1, {n_labels}] was expected")
    if not bool(torch.isfinite(out).all()):
        raise ValueError("the module returns non-finite scores (inf or NaN) for a plain sample input")
