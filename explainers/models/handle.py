"""A loaded local model and the inputs it prepares for explainers."""

from __future__ import annotations

import functools
import hashlib
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from explainers.attention import folded_attention_inputs
from explainers.errors import InvalidInput, InvalidParams
from explainers.hooks import replaced_output
from explainers.models.manifest import Manifest
from explainers.models.preprocess import image_baselines, image_pixels
from explainers.models.segmentation import segmentation_parts
from explainers.models.tokenizer import WordTokenizer
from explainers.types import Modality

Forward = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class RawInput:
    """One decoded request input: an RGB image, a text, or raw feature values; `region`: a segmentation
    target's region, a boolean mask of the image as sent."""

    image: np.ndarray | None = None
    text: str | None = None
    features: np.ndarray | None = None
    region: np.ndarray | None = None


@dataclass
class ModelInput:
    """An input prepared for a model, in the space where attributions are taken.

    `x` is [1, ...] (normalised image, token embeddings, or features); `forward`
    maps a batch [B, ...] of such points to the model's outputs [B, n_classes].
    `native` is what the model itself takes (the same as `x`, but token ids for
    text), with `native_forward`: perturbation methods work there. A segmentation model's input reports
    `reported` [K] as its predictions (not the softmax of its outputs), and `region_pixels` [K], the pixels
    each class's score sums over (`explainers.models.segmentation`).
    """

    def __post_init__(self) -> None:
        if self.native is None:
            self.native, self.native_forward = self.x, self.forward

    x: torch.Tensor
    forward: Forward
    baselines: dict[str, Callable[[], torch.Tensor]]
    default_baseline: str
    native: torch.Tensor | None = None
    native_forward: Forward | None = None
    image: np.ndarray | None = None
    tokens: list[str] = field(default_factory=list)
    unknown_tokens: list[int] = field(default_factory=list)  # positions in `tokens` the vocabulary lacks
    features: np.ndarray | None = None
    reported: torch.Tensor | None = None
    region_pixels: torch.Tensor | None = None

    def baseline(self, name: str) -> torch.Tensor:
        key = self.default_baseline if name == "default" else name
        if key not in self.baselines:
            raise InvalidParams(f"baseline {name!r} does not apply here; use one of {sorted(self.baselines)}",
                                details={"allowed": ["default", *sorted(self.baselines)]})
        return self.baselines[key]()


class BundleModel:
    """What a bundle gives every model, local or remote: manifest, tokenizer, background, preprocessing.

    Subclasses say how outputs are computed (`run`: native inputs [B, ...] -> outputs [B, K]) and
    how text is prepared; one explanation at a time runs per model (`lock`).
    """

    source = "bundle"

    def __init__(self, manifest: Manifest, folder: Path, device: torch.device) -> None:
        self.manifest = manifest
        self.folder = folder
        self.device = device
        self.lock = threading.RLock()
        self.tokenizer: WordTokenizer | None = None
        self.background: np.ndarray | None = None
        if manifest.text is not None:
            vocab = json.loads((folder / manifest.text.vocab).read_text())
            self.tokenizer = WordTokenizer(vocab, pad_token=manifest.text.pad_token,
                                           unk_token=manifest.text.unk_token, max_length=manifest.text.max_length)
        if manifest.tabular is not None:
            bg = np.load(folder / manifest.tabular.background, allow_pickle=False)
            if bg.ndim != 2 or bg.shape[1] != len(manifest.tabular.features):
                raise ValueError(f"background sample has shape {bg.shape}; expected [n, n_features]")
            self.background = bg.astype(np.float32)
        if manifest.image is not None:
            self._mean = torch.tensor(manifest.image.mean, device=device).view(1, -1, 1, 1)
            self._std = torch.tensor(manifest.image.std, device=device).view(1, -1, 1, 1)

    def explaining(self) -> AbstractContextManager[Any]:
        """Held while an explanation runs: the model's lock (one explanation at a time)."""
        return self.lock

    def run(self, batch: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @property
    def id(self) -> str:
        return self.manifest.id

    @property
    def modality(self) -> Modality:
        return self.manifest.modality

    @property
    def labels(self) -> list[str]:
        return self.manifest.labels

    @property
    def feature_names(self) -> list[str]:
        assert self.manifest.tabular is not None
        return [f.name for f in self.manifest.tabular.features]

    def probabilities(self, outputs: torch.Tensor) -> torch.Tensor:
        if self.manifest.output == "sigmoid":  # multi-label: each label's own probability
            return outputs.sigmoid()
        return outputs.softmax(-1) if self.manifest.output == "logits" else outputs

    # -- preparing inputs ---------------------------------------------------------------------
    def prepare(self, raw: RawInput) -> ModelInput:
        if self.modality is Modality.IMAGE and raw.image is not None:
            if self.manifest.task == "segmentation":
                return self._prepare_segmentation(raw.image, raw.region)
            return self._prepare_image(raw.image)
        if self.modality is Modality.TEXT and raw.text is not None:
            inputs = self._prepare_text(raw.text)
            if self.tokenizer is not None:
                inputs.unknown_tokens = self.tokenizer.unknown(inputs.tokens)
            return inputs
        if self.modality is Modality.TABULAR and raw.features is not None:
            return self._prepare_tabular(raw.features)
        raise InvalidInput(f"model {self.id!r} takes {self.modality.value} input", code="wrong_input_kind")

    def image_tensor(self, rgb: np.ndarray) -> torch.Tensor:
        """RGB uint8 [H, W, 3] of any size -> normalised model input [1, C, h, w]."""
        assert self.manifest.image is not None
        return self.normalize(image_pixels(rgb, self.manifest.image).to(self.device))

    def normalize(self, pixels01: torch.Tensor) -> torch.Tensor:
        return (pixels01 - self._mean) / self._std

    def _prepare_image(self, rgb: np.ndarray) -> ModelInput:
        x = self.image_tensor(rgb)
        return ModelInput(x=x, forward=self.run, image=rgb, default_baseline="black",
                          baselines=image_baselines(x, self.normalize))

    def _prepare_text(self, text: str) -> ModelInput:
        raise NotImplementedError

    def _prepare_segmentation(self, rgb: np.ndarray, region: np.ndarray | None) -> ModelInput:
        x = self.image_tensor(rgb)
        forward, reported, pixels = segmentation_parts(self.run, x, len(self.labels), region)
        return ModelInput(x=x, forward=forward, image=rgb, default_baseline="black", reported=reported,
                          region_pixels=pixels, baselines=image_baselines(x, self.normalize))

    def tokens(self, text: str) -> list[str]:
        assert self.tokenizer is not None
        tokens = self.tokenizer.tokenize(text)
        if not tokens:
            raise InvalidInput("the text has no tokens", code="empty_text")
        return tokens

    def _prepare_tabular(self, values: np.ndarray) -> ModelInput:
        assert self.background is not None
        x = torch.tensor(values, dtype=torch.float32, device=self.device)[None]
        bg = torch.from_numpy(self.background).to(self.device)
        return ModelInput(
            x=x, forward=self.run, features=values, default_baseline="mean",
            baselines={"mean": lambda: bg.mean(0, keepdim=True), "median": lambda: bg.median(0, keepdim=True).values,
                       "zero": lambda: torch.zeros_like(x)})

    # -- description --------------------------------------------------------------------------
    def input_info(self) -> dict[str, Any]:
        m = self.manifest
        if m.image is not None:
            return {"kind": "image", "size": list(m.image.size), "channels": m.image.channels,
                    "channel_order": m.image.channel_order, "mean": m.image.mean, "std": m.image.std}
        if m.text is not None and self.tokenizer is not None:
            return {"kind": "text", "tokenizer": m.text.tokenizer, "max_length": m.text.max_length,
                    "vocab_size": len(self.tokenizer.vocab)}
        assert m.tabular is not None
        return {"kind": "tabular", "features": [f.model_dump(exclude_none=True) for f in m.tabular.features],
                "background_size": 0 if self.background is None else len(self.background)}


class LocalModel(BundleModel):
    """A frozen torch module with its manifest."""

    source = "local"

    def __init__(self, manifest: Manifest, folder: Path, module: nn.Module, device: torch.device, *,
                 state_dir: Path | None = None) -> None:
        super().__init__(manifest, folder, device)
        self.module = module
        self.state_dir = state_dir
        if manifest.text is not None:
            self.layer(self.embedding_layer)

    @functools.cached_property
    def weights_hash(self) -> str:
        """SHA-256 of the weights file: what is computed from the weights is stored under it."""
        assert self.manifest.weights is not None
        digest = hashlib.sha256()
        with open(self.folder / self.manifest.weights, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()

    @functools.cached_property
    def attention_modules(self) -> list[nn.MultiheadAttention]:
        """Every `nn.MultiheadAttention` of the module (none for most models)."""
        return [m for m in self.module.modules() if isinstance(m, nn.MultiheadAttention)]

    @contextmanager
    def explaining(self) -> Iterator[None]:
        """The model's lock, and its attention modules taking differentiated batches in their fast layout
        (`explainers.attention.folded_attention_inputs`; nothing to do for a model without attention)."""
        with self.lock, folded_attention_inputs(self.attention_modules):
            yield

    def run(self, batch: torch.Tensor) -> torch.Tensor:
        out = self.module(batch)
        return out[self.manifest.output_key] if self.manifest.output_key is not None else out

    @property
    def embedding_layer(self) -> str:
        """Module name of the token embedding: a local text model's manifest must name it."""
        text = self.manifest.text
        if text is None or text.embedding_layer is None:
            raise ValueError(f"model {self.id!r} is not a text model with text.embedding_layer")
        return text.embedding_layer

    def layer(self, name: str) -> nn.Module:
        """The submodule called `name`, or an `invalid_params` error listing some names."""
        modules = dict(self.module.named_modules())
        if name not in modules or name == "":
            some = [n for n in modules if n][-20:]
            raise InvalidParams(f"the model has no layer {name!r}", details={"some_layers": some})
        return modules[name]

    def _prepare_text(self, text: str) -> ModelInput:
        assert self.tokenizer is not None
        tokens = self.tokens(text)
        ids = torch.tensor([self.tokenizer.encode(tokens)], device=self.device)
        embedding = self.layer(self.embedding_layer)
        with torch.no_grad():
            x = embedding(ids)

        def forward(emb: torch.Tensor) -> torch.Tensor:
            with replaced_output(embedding, emb):
                return self.module(ids.expand(emb.shape[0], -1))

        def filled(token_id: int) -> Callable[[], torch.Tensor]:
            return lambda: embedding(torch.full_like(ids, token_id)).detach()

        return ModelInput(
            x=x, forward=forward, tokens=tokens, default_baseline="pad", native=ids, native_forward=self.module,
            baselines={"pad": filled(self.tokenizer.pad_id), "unk": filled(self.tokenizer.unk_id),
                       "zero": lambda: torch.zeros_like(x)})

    def input_info(self) -> dict[str, Any]:
        info = super().input_info()
        if self.manifest.image is not None:
            info["cam_layer"] = self.manifest.cam_layer
        if self.manifest.text is not None:
            info["embedding_layer"] = self.manifest.text.embedding_layer
        return info
