"""Write tiny model bundles into a folder, as a user would drop them into the registry."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from tests import tiny_models

VOCAB = ["<pad>", "<unk>", "good", "bad", "movie", "the", "was", "great", "awful", "plot", "not", "."]


def _write(folder: Path, manifest: dict, module: torch.nn.Module) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(tiny_models.__file__, folder / "tiny_models.py")
    save_file({k: v.contiguous() for k, v in module.state_dict().items()}, str(folder / "weights.safetensors"))
    (folder / "model.json").write_text(json.dumps(manifest, indent=1))
    return folder


def make_tiny_bundles(root: Path) -> dict[str, Path]:
    gen = torch.Generator().manual_seed(1234)

    def seeded(module: torch.nn.Module) -> torch.nn.Module:
        with torch.no_grad():
            for p in module.parameters():
                p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
        return module

    out = {}
    samples = np.random.default_rng(1)
    folder = _write(root / "tiny-image", {
        "id": "tiny-image", "modality": "image", "architecture": "tiny_models:build_image",
        "architecture_kwargs": {"classes": 3}, "weights": "weights.safetensors", "labels": ["red", "green", "blue"],
        "image": {"size": [16, 16], "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}, "cam_layer": "0.3",
        "samples": "samples.npz",
    }, seeded(tiny_models.build_image()))
    np.savez(folder / "samples.npz", images=samples.integers(0, 256, size=(24, 16, 16, 3), dtype=np.uint8))
    out["tiny-image"] = folder
    folder = _write(root / "tiny-text", {
        "id": "tiny-text", "modality": "text", "architecture": "tiny_models:build_text",
        "architecture_kwargs": {"vocab_size": len(VOCAB)}, "weights": "weights.safetensors",
        "labels": ["negative", "positive"], "text": {"embedding_layer": "embedding", "max_length": 16},
        "samples": "samples.json",
    }, seeded(tiny_models.build_text(len(VOCAB))))
    (folder / "vocab.json").write_text(json.dumps(VOCAB))
    words = VOCAB[2:]
    (folder / "samples.json").write_text(json.dumps([" ".join(samples.choice(words, size=int(samples.integers(2, 9))))
                                                     for _ in range(24)]))
    out["tiny-text"] = folder
    folder = _write(root / "tiny-tabular", {
        "id": "tiny-tabular", "modality": "tabular", "architecture": "tiny_models:build_tabular",
        "weights": "weights.safetensors", "labels": ["a", "b", "c"],
        "tabular": {"features": [{"name": "f0"}, {"name": "f1"}, {"name": "f2"},
                                 {"name": "kind", "kind": "categorical", "values": [0, 1, 2]}]},
    }, seeded(tiny_models.build_tabular()))
    rng = np.random.default_rng(0)
    bg = np.column_stack([rng.normal(size=(32, 3)), rng.integers(0, 3, size=32)]).astype(np.float32)
    np.save(folder / "background.npy", bg)
    out["tiny-tabular"] = folder
    return out


def make_slow_bundle(root: Path, delay: float = 0.005) -> Path:
    """`slow-image`: tiny-image behind a sleep of `delay` s per model call (for queue tests)."""
    module = tiny_models.build_slow_image(delay=delay)
    return _write(root / "slow-image", {
        "id": "slow-image", "modality": "image", "architecture": "tiny_models:build_slow_image",
        "architecture_kwargs": {"delay": delay}, "weights": "weights.safetensors", "labels": ["red", "green", "blue"],
        "image": {"size": [16, 16], "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}, "cam_layer": "inner.0.3",
    }, module)


def make_propagation_bundles(root: Path, tiny_dir: Path) -> None:
    """`tiny-gated` (a layer propagation cannot pass) and `tiny-image-bare` (tiny-image without samples)."""
    gen = torch.Generator().manual_seed(99)
    module = tiny_models.build_gated()
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
    _write(root / "tiny-gated", {
        "id": "tiny-gated", "modality": "image", "architecture": "tiny_models:build_gated",
        "weights": "weights.safetensors", "labels": ["red", "green", "blue"],
        "image": {"size": [16, 16], "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}, "cam_layer": "conv",
    }, module)
    bare = root / "tiny-image-bare"
    shutil.copytree(tiny_dir / "tiny-image", bare)
    (bare / "samples.npz").unlink()
    manifest = json.loads((bare / "model.json").read_text())
    manifest.pop("samples")
    (bare / "model.json").write_text(json.dumps({**manifest, "id": "tiny-image-bare"}, indent=1))


def make_transformer_bundles(root: Path) -> dict[str, Path]:
    """`tiny-vit` (torchvision's VisionTransformer, 32 px, patch 8, two layers) and `tiny-text-transformer`
    (demos.text_transformer over VOCAB), with seeded weights large enough for peaked attention."""
    from demos import text_transformer, vit

    gen = torch.Generator().manual_seed(99)

    def seeded(module: torch.nn.Module, scale: float) -> torch.nn.Module:
        with torch.no_grad():
            for p in module.parameters():
                p.copy_(torch.randn(p.shape, generator=gen) * scale)
        return module

    kwargs = {"num_classes": 3, "num_layers": 2, "num_heads": 2, "hidden_dim": 16, "mlp_dim": 32, "image_size": 32}
    image = _write(root / "tiny-vit", {
        "id": "tiny-vit", "modality": "image", "architecture": "demos.vit:build_model", "architecture_kwargs": kwargs,
        "weights": "weights.safetensors", "labels": ["red", "green", "blue"],
        "image": {"size": [32, 32], "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]},
        "cam_layer": vit.cam_layer(2), "transformer": {"prefix_tokens": 1, "patch_size": [8, 8]},
    }, seeded(vit.build_model(**kwargs), 0.4))
    text_kwargs = {"vocab_size": len(VOCAB), "embed_dim": 16, "num_layers": 2, "num_heads": 2, "mlp_dim": 32,
                   "max_length": 16}
    text = _write(root / "tiny-text-transformer", {
        "id": "tiny-text-transformer", "modality": "text", "architecture": "demos.text_transformer:build_model",
        "architecture_kwargs": text_kwargs, "weights": "weights.safetensors", "labels": ["negative", "positive"],
        "text": {"embedding_layer": "embedding", "max_length": 16}, "transformer": {"prefix_tokens": 1},
    }, seeded(text_transformer.build_model(**text_kwargs), 0.4))
    (text / "vocab.json").write_text(json.dumps(VOCAB))
    return {"tiny-vit": image, "tiny-text-transformer": text}


def random_tabular_bundle(folder: Path, labels: list[str], n_features: int, *, seed: int, background_rows: int,
                          background_seed: int = 0, **manifest: object) -> Path:
    """A tabular MLP with standard-normal weights (`seed`), features f0.., a normal background sample."""
    gen = torch.Generator().manual_seed(seed)
    module = tiny_models.build_tabular(n_features=n_features, classes=len(labels))
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen))
    _write(folder, {
        "id": folder.name, "modality": "tabular", "architecture": "tiny_models:build_tabular",
        "architecture_kwargs": {"n_features": n_features, "classes": len(labels)}, "weights": "weights.safetensors",
        "labels": labels, "tabular": {"features": [{"name": f"f{i}"} for i in range(n_features)]}, **manifest,
    }, module)
    background = np.random.default_rng(background_seed).normal(size=(background_rows, n_features))
    np.save(folder / "background.npy", background.astype(np.float32))
    return folder


def make_multilabel_bundle(root: Path) -> Path:
    """A tiny multi-label tabular model (`output: "sigmoid"`): four labels, each its own probability."""
    return random_tabular_bundle(root / "tiny-multilabel", ["w", "x", "y", "z"], 3, seed=99, background_rows=16,
                                 background_seed=3, output="sigmoid")
