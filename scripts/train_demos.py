"""Train the shipped demo models and write their bundles.

    python scripts/train_demos.py [--out models] [--only shapes-cnn,shapes-seg,shapes-vit,sentiment-cnn,...]

Seeded, with deterministic algorithms on 2 threads (float rounding can still differ between CPUs,
so a rerun elsewhere may not give byte-identical weights); about ten
minutes on a 2-core machine, most of it for the shapes CNN and the shapes ViT (which starts from the CNN).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from demos import sentiment, shapes, shapes_seg, tabular, text_transformer, vit
from demos.train import accuracy, fit, save_bundle

ROOT = Path(__file__).resolve().parents[1]
SEED = 0
SHAPES_TRAIN, SHAPES_HELDOUT = (6000, 1), (1000, 2)  # (n, generator seed)
TEXT_TRAIN, TEXT_HELDOUT = (3000, 11), (1000, 12)
TEXT_MAX_LENGTH = 64
TEXT_TRANSFORMER = {"embed_dim": 32, "num_layers": 2, "num_heads": 4, "mlp_dim": 64, "max_length": TEXT_MAX_LENGTH}
# The bundles' sample sets (images with their labels and object masks; review texts): PatternNet's
# patterns are computed from them, and they are inputs a user can try. Seeds apart from training and held-out.
SHAPES_SAMPLES, TEXT_SAMPLES = (64, 3), (64, 13)
VIT_SAMPLES = (32, 3)  # half as many as the CNN's: its weights are larger
SEG_TRAIN, SEG_HELDOUT, SEG_SAMPLES = (2000, 21), (500, 22), (32, 23)
BACKGROUND_SIZE = 400  # nearly the whole training split (426 rows): anchors and LIME read their statistics here

Result = tuple[float, int]  # (held-out accuracy, held-out size)


def _metrics(acc: float, n: int) -> dict[str, float | int]:
    return {"heldout_accuracy": round(acc, 4), "n_heldout": n, "seed": SEED}


def _shapes_bundle(folder: Path, model: torch.nn.Module, manifest: dict[str, Any], metrics: dict[str, Any],
                   samples: tuple[int, int]) -> None:
    """Write a bundle of a model of the 64x64 shapes images: its sample set (images, labels, object masks)
    and the image section they share."""
    folder.mkdir(parents=True, exist_ok=True)
    drawn = shapes.generate(*samples)
    np.savez_compressed(folder / "samples.npz", images=drawn.images, labels=drawn.labels, masks=drawn.masks)
    image = {"size": [64, 64], "mean": shapes.MEAN, "std": shapes.STD, "channel_order": "RGB"}
    save_bundle(folder, {"id": folder.name, "modality": "image", **manifest, "samples": "samples.npz",
                         "image": image}, model, metrics)


def train_shapes(folder: Path) -> Result:
    torch.manual_seed(SEED)
    train, held = shapes.generate(*SHAPES_TRAIN), shapes.generate(*SHAPES_HELDOUT)
    x = shapes.to_tensor(train.images).contiguous(memory_format=torch.channels_last)
    model = shapes.build_model(len(shapes.LABELS)).to(memory_format=torch.channels_last)
    fit(model, x, torch.from_numpy(train.labels), epochs=7, batch_size=32, lr=3e-3, seed=SEED, name="shapes-cnn")
    model = model.to(memory_format=torch.contiguous_format)
    acc = accuracy(model, shapes.to_tensor(held.images), torch.from_numpy(held.labels))
    assert shapes.CAM_LAYER in dict(model.named_modules())
    _shapes_bundle(folder, model, {
        "architecture": "demos.shapes:build_model", "architecture_kwargs": {"num_classes": len(shapes.LABELS)},
        "labels": shapes.LABELS, "cam_layer": shapes.CAM_LAYER,
        "description": "Small CNN on synthetic 64x64 images of one geometric shape on a cluttered background "
                       "(demos/shapes.py generates images with ground-truth object masks).",
    }, _metrics(acc, len(held.labels)), SHAPES_SAMPLES)
    return acc, len(held.labels)


def train_shapes_vit(folder: Path) -> Result:
    """The shapes ViT, a hybrid (`demos.vit`): its CNN patch embedding starts from the trained shapes CNN
    (the one in the output folder, else the shipped one) and is fine-tuned at a fifth of the learning rate."""
    torch.manual_seed(SEED)
    train, held = shapes.generate(*SHAPES_TRAIN), shapes.generate(*SHAPES_HELDOUT)
    cnn_folder = next(f for f in (folder.parent / "shapes-cnn", ROOT / "models" / "shapes-cnn")
                      if (f / "weights.safetensors").exists())
    cnn = shapes.build_model(len(shapes.LABELS))
    cnn.load_state_dict(load_file(str(cnn_folder / "weights.safetensors")))
    model = vit.build_model(len(shapes.LABELS), hybrid=True)
    model.get_submodule(vit.BACKBONE).load_state_dict(cnn.get_submodule("features").state_dict())
    fit(model, shapes.to_tensor(train.images), torch.from_numpy(train.labels), epochs=3, batch_size=64, lr=1e-3,
        seed=SEED, weight_decay=0.05, name="shapes-vit", lr_scale={vit.BACKBONE: 0.2})
    acc = accuracy(model, shapes.to_tensor(held.images), torch.from_numpy(held.labels))
    _shapes_bundle(folder, model, {
        "architecture": "demos.vit:build_model", "architecture_kwargs": {"num_classes": len(shapes.LABELS),
                                                                         "hybrid": True},
        "labels": shapes.LABELS, "cam_layer": vit.cam_layer(),
        "transformer": {"prefix_tokens": 1, "patch_size": [vit.PATCH, vit.PATCH]},
        "description": "Small hybrid vision transformer (four pre-norm attention blocks over an 8x8 grid of "
                       "patch tokens and a class token; the patch embedding is the shapes CNN's feature "
                       "extractor) on the synthetic shapes images of demos/shapes.py.",
    }, _metrics(acc, len(held.labels)), VIT_SAMPLES)
    return acc, len(held.labels)


def train_shapes_seg(folder: Path) -> Result:
    """The shapes segmenter: per-pixel background or shape kind; its result is the held-out pixel accuracy
    (metrics.json has the mean IoU too)."""
    torch.manual_seed(SEED)
    train, held = shapes.generate(*SEG_TRAIN), shapes.generate(*SEG_HELDOUT)
    x = shapes.to_tensor(train.images).contiguous(memory_format=torch.channels_last)
    y = torch.from_numpy(shapes_seg.pixel_labels(train.labels, train.masks))
    model = shapes_seg.build_model().to(memory_format=torch.channels_last)
    fit(model, x, y, epochs=24, batch_size=32, lr=4e-3, seed=SEED, name="shapes-seg")
    model = model.to(memory_format=torch.contiguous_format)
    held_y = torch.from_numpy(shapes_seg.pixel_labels(held.labels, held.masks))
    acc, iou = shapes_seg.pixel_scores(model, shapes.to_tensor(held.images), held_y, len(shapes_seg.LABELS))
    assert shapes_seg.CAM_LAYER in dict(model.named_modules())
    _shapes_bundle(folder, model, {
        "task": "segmentation", "architecture": "demos.shapes_seg:build_model", "labels": shapes_seg.LABELS,
        "cam_layer": shapes_seg.CAM_LAYER,
        "description": "Tiny encoder-decoder segmenting the synthetic 64x64 shapes images (demos/shapes.py) into "
                       "background and the five shape kinds, per pixel.",
    }, {"heldout_pixel_accuracy": round(acc, 4), "heldout_mean_iou": round(iou, 4), "n_heldout": len(held.labels),
        "seed": SEED}, SEG_SAMPLES)
    return acc, len(held.labels)


def _train_reviews(folder: Path, architecture: str, build: Callable[..., torch.nn.Module], kwargs: dict[str, Any],
                   description: str, *, epochs: int, lr: float, weight_decay: float = 1e-4,
                   extra: dict[str, Any] | None = None) -> Result:
    """Train a text classifier on the review corpus and write its bundle (vocabulary, samples, manifest)."""
    torch.manual_seed(SEED)
    train, held = sentiment.generate(*TEXT_TRAIN), sentiment.generate(*TEXT_HELDOUT)
    vocab = sentiment.build_vocab(train)
    x = sentiment.encode(train, vocab, TEXT_MAX_LENGTH)
    y = torch.tensor([ex.label for ex in train])
    kwargs = {"vocab_size": len(vocab), **kwargs}
    model = build(**kwargs)
    fit(model, x, y, epochs=epochs, batch_size=32, lr=lr, seed=SEED, weight_decay=weight_decay, name=folder.name)
    acc = accuracy(model, sentiment.encode(held, vocab, TEXT_MAX_LENGTH), torch.tensor([ex.label for ex in held]))
    manifest = {
        "id": folder.name, "modality": "text", "architecture": architecture, "architecture_kwargs": kwargs,
        "labels": sentiment.LABELS, "description": description,
        "text": {"tokenizer": "words", "vocab": "vocab.json", "max_length": TEXT_MAX_LENGTH,
                 "embedding_layer": "embedding"},
        **(extra or {}),
        "samples": "samples.json",
    }
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab) + "\n")
    samples = [ex.text for ex in sentiment.generate(*TEXT_SAMPLES)]
    (folder / "samples.json").write_text(json.dumps(samples, indent=0) + "\n")
    save_bundle(folder, manifest, model, _metrics(acc, len(held)))
    return acc, len(held)


def train_sentiment(folder: Path) -> Result:
    return _train_reviews(folder, "demos.sentiment:build_model", sentiment.build_model, {"embed_dim": 32},
                          "1-D CNN over word embeddings, trained on synthetic product and movie reviews "
                          "(demos/sentiment.py marks the sentiment words of each review).", epochs=5, lr=3e-3)


def train_sentiment_transformer(folder: Path) -> Result:
    return _train_reviews(folder, "demos.text_transformer:build_model", text_transformer.build_model,
                          TEXT_TRANSFORMER, "Small transformer encoder (a class token, two pre-norm attention "
                          "blocks) over word embeddings, trained on the synthetic reviews of demos/sentiment.py.",
                          epochs=8, lr=2e-3, weight_decay=1e-2, extra={"transformer": {"prefix_tokens": 1}})


def train_tabular(folder: Path) -> Result:
    torch.manual_seed(SEED)
    x_tr, x_te, y_tr, y_te, names = tabular.load_split()
    model = tabular.build_model(n_features=len(names), hidden=32)
    model.set_scaling(torch.from_numpy(x_tr))
    fit(model, torch.from_numpy(x_tr), torch.from_numpy(y_tr), epochs=60, batch_size=32, lr=3e-3, seed=SEED,
        weight_decay=1e-3, name="breast-cancer-mlp")
    acc = accuracy(model, torch.from_numpy(x_te), torch.from_numpy(y_te))
    rng = np.random.default_rng(SEED)
    background = x_tr[rng.choice(len(x_tr), size=BACKGROUND_SIZE, replace=False)].astype(np.float32)
    manifest = {
        "id": folder.name, "modality": "tabular", "architecture": "demos.tabular:build_model",
        "architecture_kwargs": {"n_features": len(names), "hidden": 32}, "labels": tabular.LABELS,
        "description": "MLP on the Wisconsin breast-cancer data set (sklearn); takes raw feature values "
                       "and standardises them inside the model.",
        "tabular": {"features": [{"name": n, "kind": "continuous"} for n in names], "background": "background.npy"},
    }
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "background.npy", background, allow_pickle=False)
    save_bundle(folder, manifest, model, _metrics(acc, len(y_te)))
    return acc, len(y_te)


TRAINERS: dict[str, Callable[[Path], Result]] = {
    "shapes-cnn": train_shapes,
    "shapes-seg": train_shapes_seg,
    "shapes-vit": train_shapes_vit,
    "sentiment-cnn": train_sentiment,
    "breast-cancer-mlp": train_tabular,
    "sentiment-transformer": train_sentiment_transformer,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("models"), help="registry folder to write bundles into")
    parser.add_argument("--only", default="", help="comma-separated bundle ids (default: all)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every epoch")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    chosen = [s.strip() for s in args.only.split(",") if s.strip()] or list(TRAINERS)
    unknown = sorted(set(chosen) - set(TRAINERS))
    if unknown:
        parser.error(f"unknown bundle ids {unknown}; choose from {sorted(TRAINERS)}")
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    total = time.perf_counter()
    for name in chosen:
        start = time.perf_counter()
        acc, n = TRAINERS[name](args.out / name)
        print(f"{name}: held-out accuracy {acc:.4f} on {n} examples ({time.perf_counter() - start:.1f}s)")
    print(f"total {time.perf_counter() - total:.1f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
