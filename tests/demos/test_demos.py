"""The demo data generators, the committed demo bundles and the torchvision bundle maker."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from demos import sentiment, shapes, tabular
from demos.torchvision_bundle import make_bundle
from explainers.models.manifest import Manifest, read_manifest
from explainers.models.tokenizer import WordTokenizer, split_words

MODELS = Path(__file__).resolve().parents[2] / "models"
FRESH_SEED = 4242  # differs from every seed used in training (scripts/train_demos.py)
TARGETS = {"shapes-cnn": 0.95, "shapes-vit": 0.95, "sentiment-cnn": 0.90, "sentiment-transformer": 0.90,
           "breast-cancer-mlp": 0.93}


def _load(model_id: str) -> tuple[Manifest, nn.Module, Path]:
    folder = MODELS / model_id
    manifest = read_manifest(folder)
    module_name, _, factory = manifest.architecture.partition(":")
    model = getattr(importlib.import_module(module_name), factory)(**manifest.architecture_kwargs)
    model.load_state_dict(load_file(str(folder / manifest.weights)), strict=True)
    return manifest, model.eval(), folder


@torch.no_grad()
def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return float((model(x).argmax(1) == y).float().mean())


# -- generators ------------------------------------------------------------------------------


def test_shapes_deterministic_per_seed() -> None:
    a, b, c = shapes.generate(12, seed=5), shapes.generate(12, seed=5), shapes.generate(12, seed=6)
    for field in ("images", "labels", "masks"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert not np.array_equal(a.images, c.images)


def test_shapes_arrays_masks_and_labels() -> None:
    data = shapes.generate(60, seed=3)
    assert data.images.shape == (60, 64, 64, 3) and data.images.dtype == np.uint8
    assert data.labels.shape == (60,) and data.labels.dtype == np.int64
    assert data.masks.shape == (60, 64, 64) and data.masks.dtype == bool
    assert set(data.labels.tolist()) == set(range(len(shapes.LABELS)))
    for img, mask in zip(data.images, data.masks):
        assert mask.sum() >= 50
        assert not (mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any())
        colour = np.median(img[mask].astype(float), axis=0)
        near = np.linalg.norm(img[~mask].astype(float) - colour, axis=1) < 0.15 * 255
        assert near.mean() < 0.25  # the object stands out from most of the background


def test_sentiment_deterministic_and_masks_mark_lexicon() -> None:
    a, b = sentiment.generate(200, seed=8), sentiment.generate(200, seed=8)
    assert a == b
    assert [ex.text for ex in sentiment.generate(200, seed=9)] != [ex.text for ex in a]
    lexicon = set(sentiment.POSITIVE_WORDS) | set(sentiment.NEGATIVE_WORDS)
    assert not set(sentiment.POSITIVE_WORDS) & set(sentiment.NEGATIVE_WORDS)
    assert {ex.label for ex in a} == {0, 1}
    assert any(" not " in ex.text for ex in a)
    for ex in a:
        tokens = split_words(ex.text)
        assert len(ex.sentiment_mask) == len(tokens) <= 64
        assert ex.sentiment_mask == [t in lexicon for t in tokens]
        assert any(ex.sentiment_mask)


def test_sentiment_model_takes_short_inputs() -> None:
    model = sentiment.build_model(vocab_size=20).eval()
    for length in (1, 2, 5):
        assert model(torch.randint(2, 20, (3, length))).shape == (3, 2)


def test_demo_models_use_relu_modules_out_of_place() -> None:
    for model in (shapes.build_model(), sentiment.build_model(10), tabular.build_model()):
        relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
        assert relus and not any(m.inplace for m in relus)


# -- committed bundles -----------------------------------------------------------------------


@pytest.mark.parametrize("model_id", sorted(TARGETS))
def test_bundle_manifest_and_metrics(model_id: str) -> None:
    manifest, _, folder = _load(model_id)
    assert manifest.id == model_id and manifest.description
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["heldout_accuracy"] >= TARGETS[model_id] and metrics["n_heldout"] > 0
    # small enough for the repository: weights, and a sample set of at most 64 inputs (images with masks);
    # the ViT hybrid's weights (a CNN and four attention blocks) are the largest, with half the samples
    assert sum(p.stat().st_size for p in folder.iterdir()) < 1_500_000
    if manifest.samples is not None:
        assert (folder / manifest.samples).stat().st_size < 800_000


def _cam_layer_output(model: nn.Module, name: str, x: torch.Tensor) -> torch.Tensor:
    """What the named layer outputs on x."""
    seen: list[torch.Tensor] = []
    handle = dict(model.named_modules())[name].register_forward_hook(lambda _m, _i, out: seen.append(out))
    try:
        with torch.no_grad():
            model(x)
    finally:
        handle.remove()
    return seen[0]


def test_shapes_bundle_accuracy_and_cam_layer() -> None:
    manifest, model, _ = _load("shapes-cnn")
    assert manifest.labels == shapes.LABELS and manifest.image is not None
    assert tuple(manifest.image.size) == (64, 64)
    assert manifest.image.mean == shapes.MEAN and manifest.image.std == shapes.STD
    data = shapes.generate(400, seed=FRESH_SEED)
    x = shapes.to_tensor(data.images)
    assert _accuracy(model, x, torch.from_numpy(data.labels)) >= TARGETS["shapes-cnn"]
    out = _cam_layer_output(model, manifest.cam_layer or "", x[:2])
    assert out.shape[0] == 2 and out.shape[2:] == (8, 8)


def test_shapes_vit_bundle_accuracy_and_tokens() -> None:
    """The ViT on fresh images: its accuracy, and 8x8 patch tokens after a class token at every block."""
    manifest, model, _ = _load("shapes-vit")
    assert manifest.labels == shapes.LABELS and manifest.transformer is not None
    assert manifest.transformer.prefix_tokens == 1 and manifest.patch_grid == (8, 8)
    data = shapes.generate(400, seed=FRESH_SEED)
    x = shapes.to_tensor(data.images)
    assert _accuracy(model, x, torch.from_numpy(data.labels)) >= TARGETS["shapes-vit"]
    attention = [m for m in model.modules() if isinstance(m, nn.MultiheadAttention)]
    assert len(attention) == 4
    assert tuple(_cam_layer_output(model, manifest.cam_layer or "", x[:2]).shape[:2]) == (2, 1 + 8 * 8)


def test_sentiment_bundle_accuracy_and_vocab() -> None:
    manifest, model, folder = _load("sentiment-cnn")
    assert manifest.text is not None and manifest.labels == sentiment.LABELS
    vocab = json.loads((folder / manifest.text.vocab).read_text())
    assert vocab[0] == "<pad>" and "<unk>" in vocab
    assert len(vocab) == manifest.architecture_kwargs["vocab_size"]
    embedding = dict(model.named_modules())[manifest.text.embedding_layer]
    assert isinstance(embedding, nn.Embedding) and embedding.padding_idx == 0
    tok = WordTokenizer(vocab, max_length=manifest.text.max_length)
    examples = sentiment.generate(400, seed=FRESH_SEED)
    correct = 0
    with torch.no_grad():
        for ex in examples:  # one at a time, as the service feeds it
            ids = torch.tensor([tok.encode(tok.tokenize(ex.text))])
            correct += int(model(ids).argmax(1).item() == ex.label)
    assert correct / len(examples) >= TARGETS["sentiment-cnn"]


def test_tabular_bundle_accuracy_and_background() -> None:
    manifest, model, folder = _load("breast-cancer-mlp")
    _, x_te, _, y_te, names = tabular.load_split()
    assert manifest.tabular is not None and manifest.labels == tabular.LABELS
    assert [f.name for f in manifest.tabular.features] == names
    background = np.load(folder / manifest.tabular.background, allow_pickle=False)
    assert background.shape == (400, 30) and background.dtype == np.float32
    assert _accuracy(model, torch.from_numpy(x_te), torch.from_numpy(y_te)) >= TARGETS["breast-cancer-mlp"]


# -- torchvision bundles ---------------------------------------------------------------------


def test_make_torchvision_bundle(tmp_path: Path) -> None:
    rng_state = torch.random.get_rng_state()
    folder = make_bundle("resnet18", tmp_path / "rn18", size=64, num_classes=10, seed=3)
    assert torch.equal(rng_state, torch.random.get_rng_state())  # the global RNG is left alone
    manifest = read_manifest(folder)
    assert manifest.architecture == "resnet18" and manifest.cam_layer == "layer4" and manifest.id == "rn18"
    assert manifest.labels == [f"class_{i}" for i in range(10)]
    assert manifest.image is not None and tuple(manifest.image.size) == (64, 64)
    import torchvision

    model = torchvision.models.get_model("resnet18", weights=None, **manifest.architecture_kwargs).eval()
    state = load_file(str(folder / manifest.weights))
    model.load_state_dict(state, strict=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        again = torchvision.models.get_model("resnet18", weights=None, num_classes=10)
    assert torch.equal(again.state_dict()["fc.weight"], state["fc.weight"])  # seeded
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 64, 64)).shape == (1, 10)
