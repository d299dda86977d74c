"""What the explainers and the service use of a model: `LocalModel` and `RemoteModel` both provide it.

The torch module and its layers are not part of it: only a local model has them (`Context.local`
narrows to it for the methods with `needs_module`, which `Explainer.refusal` keeps off remote models).
"""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager
from typing import Any, Protocol

import numpy as np
import torch

from explainers.models.handle import ModelInput, RawInput
from explainers.models.manifest import Manifest
from explainers.models.tokenizer import WordTokenizer
from explainers.types import Modality


class Model(Protocol):
    """A loaded model with its manifest; one explanation at a time (`lock`)."""

    @property
    def manifest(self) -> Manifest: ...

    @property
    def device(self) -> torch.device:
        """Where inputs are prepared (and, for a local model, where it runs)."""

    @property
    def lock(self) -> threading.RLock: ...

    def explaining(self) -> AbstractContextManager[Any]:
        """Held while an explanation runs: the lock, and what the model's explanations run with."""

    @property
    def tokenizer(self) -> WordTokenizer | None: ...

    @property
    def background(self) -> np.ndarray | None: ...

    @property
    def id(self) -> str: ...

    @property
    def modality(self) -> Modality: ...

    @property
    def labels(self) -> list[str]: ...

    @property
    def feature_names(self) -> list[str]: ...

    def probabilities(self, outputs: torch.Tensor) -> torch.Tensor: ...

    def prepare(self, raw: RawInput) -> ModelInput: ...

    def image_tensor(self, rgb: np.ndarray) -> torch.Tensor: ...

    def normalize(self, pixels01: torch.Tensor) -> torch.Tensor: ...

    def input_info(self) -> dict[str, Any]: ...
