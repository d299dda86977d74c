"""Size bounds of a request: batches split to fit a memory budget, large images shrunk for their maps."""

from __future__ import annotations

import numpy as np

from explainers.models.handle import ModelInput
from explainers.models.protocol import Model
from explainers.types import Modality


def bounded_batch(requested: int, inputs: ModelInput, max_elements: int | None) -> int:
    """The batch size, lowered so that batch x input size stays within `max_elements` (batches get split)."""
    if not max_elements:
        return requested
    per_input = max(int(inputs.x[0].numel()), int(inputs.native[0].numel()) if inputs.native is not None else 0)
    return max(1, min(requested, max_elements // max(1, per_input)))


def shrink(rgb: np.ndarray, long_side: int) -> np.ndarray:
    """An RGB image scaled (area-averaged) so that its long side is `long_side`."""
    from PIL import Image

    height, width = rgb.shape[:2]
    factor = long_side / max(height, width)
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    return np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BOX))


def default_batch_size(model: Model) -> int:
    """Model inputs per call when a request does not say: small images batches on a CPU, big rows batches."""
    if model.modality is Modality.IMAGE:
        return 256 if model.device.type == "cuda" else 32
    return 512 if model.modality is Modality.TEXT else 8192
