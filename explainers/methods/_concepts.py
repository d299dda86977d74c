"""Superpixel classes ("concepts") for global image explanations: each superpixel described by the mean
of a layer's activations over it, the descriptors of a whole sample set clustered by k-means."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from explainers.errors import InvalidParams
from explainers.global_result import GeneratedImage
from explainers.hooks import capture_output, last_output
from explainers.models.handle import LocalModel

TILE = 32
EXAMPLES = 6
GREY = 128


def concept_layer(model: LocalModel, layer: str | None) -> str:
    """The layer name (default: the bundle's cam_layer), checked to exist."""
    name = layer or model.manifest.cam_layer
    if not name:
        raise InvalidParams("the model has no default cam_layer: pass params.layer")
    model.layer(name)
    return name


class Concepts:
    """Collects superpixel descriptors image by image, then clusters them."""

    def __init__(self, model: LocalModel, layer: str | None, n_concepts: int, seed: int) -> None:
        self.model = model
        self.layer = concept_layer(model, layer)
        self.n_concepts, self.seed = n_concepts, seed
        self.descriptors: list[np.ndarray] = []
        self.segments: list[np.ndarray] = []
        self.pictures: list[np.ndarray] = []
        self.assigned: list[np.ndarray] = []

    def add(self, x: torch.Tensor, labels: torch.Tensor, rgb: np.ndarray | None) -> None:
        """Describe the superpixels `labels` [H, W] (0..n-1) of the model input `x` [1, C, H, W]."""
        with torch.inference_mode(), capture_output(self.model.layer(self.layer), feature_map=True) as seen:
            self.model.module(x)
        act = F.interpolate(last_output(seen, self.layer).float(), size=labels.shape, mode="bilinear",
                            align_corners=False)[0].flatten(1)  # [C, H*W]
        n = int(labels.max()) + 1
        flat = labels.flatten().to(act.device)
        sums = torch.zeros(act.shape[0], n, device=act.device).index_add_(1, flat, act)
        counts = torch.bincount(flat, minlength=n).clamp(min=1)
        self.descriptors.append((sums / counts).T.cpu().numpy())
        self.segments.append(labels.cpu().numpy())
        height, width = labels.shape
        picture = np.full((height, width, 3), GREY, dtype=np.uint8) if rgb is None else \
            np.asarray(Image.fromarray(rgb).convert("RGB").resize((width, height), Image.Resampling.BILINEAR))
        self.pictures.append(picture)

    def fit(self) -> list[np.ndarray]:
        """k-means on the L2-normalised descriptors; the concept of each superpixel, image by image."""
        from sklearn.cluster import KMeans

        data = np.vstack(self.descriptors)
        data = data / np.maximum(np.linalg.norm(data, axis=1, keepdims=True), 1e-12)
        k = min(self.n_concepts, len(data))
        labels = KMeans(n_clusters=k, n_init=4, random_state=self.seed).fit_predict(data)
        bounds = np.cumsum([0] + [len(d) for d in self.descriptors])
        self.assigned = [labels[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
        return self.assigned

    def examples(self, rng: np.random.Generator) -> list[GeneratedImage]:
        """Per concept, a strip of up to `EXAMPLES` of its superpixels (cropped, the rest of the crop grey)."""
        members: dict[int, list[tuple[int, int]]] = {}
        for i, concept_of in enumerate(self.assigned):
            for sp, concept in enumerate(concept_of.tolist()):
                members.setdefault(int(concept), []).append((i, sp))
        out = []
        for concept in sorted(members):
            found = members[concept]
            picked = [found[j] for j in rng.permutation(len(found))[:EXAMPLES]]
            strip = np.full((TILE, EXAMPLES * (TILE + 2), 3), 255, dtype=np.uint8)
            for k, (i, sp) in enumerate(picked):
                strip[:, k * (TILE + 2):k * (TILE + 2) + TILE] = self._tile(i, sp)
            out.append(GeneratedImage(strip, f"concept {concept}", None, {"superpixels": float(len(found))}))
        return out

    def _tile(self, image: int, superpixel: int) -> np.ndarray:
        inside = self.segments[image] == superpixel
        rows, cols = np.nonzero(inside)
        crop = np.where(inside[..., None], self.pictures[image], GREY).astype(np.uint8)
        crop = crop[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
        return np.asarray(Image.fromarray(crop).resize((TILE, TILE), Image.Resampling.NEAREST))
