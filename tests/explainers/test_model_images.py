"""Activation maximisation and feature inversion on the shapes model."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
import torch
from PIL import Image

from demos.shapes import to_tensor
from explainers.methods._image_optim import layer_output
from explainers.models.handle import LocalModel
from explainers.models.registry import ModelRegistry
from explainers.service import ExplanationService

AM_FAST = {"n_steps": 64}  # the default learning rate converges within these on the 64 px model
INVERSION_BOUND = 0.25  # stated bound on ||phi(x) - phi(x0)|| / ||phi(x0)|| after 150 steps (it starts near 1)


@pytest.fixture(scope="module")
def service(demo_registry: ModelRegistry) -> ExplanationService:
    return ExplanationService(demo_registry)


@pytest.fixture(scope="module")
def shapes(demo_registry: ModelRegistry) -> tuple[LocalModel, np.ndarray, np.ndarray]:
    model = demo_registry.get("shapes-cnn")
    with np.load(model.folder / "samples.npz") as data:
        return model, data["images"], data["labels"]


def png(data: str) -> np.ndarray:
    return np.array(Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB"))  # a writable copy


@pytest.fixture(scope="module")
def every_class(service: ExplanationService) -> dict:
    return service.explain_model("activation_maximisation", "shapes-cnn", {"params": {**AM_FAST, "seed": 3}})


def test_optimised_images_beat_every_real_image_of_their_class(every_class: dict, shapes) -> None:
    model, images, labels = shapes
    with torch.no_grad():
        logits = model.module(to_tensor(images))
    assert [g["label"] for g in every_class["images"]] == model.labels
    for k, generated in enumerate(every_class["images"]):
        real = float(logits[labels == k, k].max())
        assert generated["objective"] > real, (model.labels[k], generated["objective"], real)
        # the PNG is the optimised image: the model scores it as reported (8-bit rounding aside)
        with torch.no_grad():
            again = float(model.module(to_tensor(png(generated["png"])[None]))[0, k])
        assert again == pytest.approx(generated["objective"], rel=0.1)


def test_activation_maximisation_is_deterministic_under_a_seed(service: ExplanationService) -> None:
    body = {"target": "star", "params": {"n_steps": 16, "seed": 3}}
    first = service.explain_model("activation_maximisation", "shapes-cnn", body)
    again = service.explain_model("activation_maximisation", "shapes-cnn", body)
    other = service.explain_model("activation_maximisation", "shapes-cnn",
                                  {**body, "params": {"n_steps": 16, "seed": 4}})
    assert again["images"][0]["png"] == first["images"][0]["png"]  # the same start and transformations
    assert again["images"][0]["objective"] == first["images"][0]["objective"]
    assert other["images"][0]["png"] != again["images"][0]["png"]


def test_a_channel_of_a_layer_is_maximised_beyond_the_real_images(service: ExplanationService, shapes) -> None:
    model, images, _ = shapes
    out = service.explain_model("activation_maximisation", "shapes-cnn",
                                {"params": {**AM_FAST, "layer": "features.10", "channel": 5, "n_images": 2}})
    with torch.no_grad():
        _, act = layer_output(model, "features.10", to_tensor(images))
    real = float(act[:, 5].mean((1, 2)).max())
    assert [g["label"] for g in out["images"]] == ["features.10[5]"] * 2
    assert min(g["objective"] for g in out["images"]) > real
    assert out["images"][0]["png"] != out["images"][1]["png"]  # two random starts


@pytest.mark.parametrize("layer", ["features.6", "features.14"])
def test_feature_inversion_matches_the_representation(service: ExplanationService, shapes, layer: str) -> None:
    _, images, _ = shapes
    buf = io.BytesIO()
    Image.fromarray(images[2]).save(buf, format="PNG")
    body = {"input": {"image": base64.b64encode(buf.getvalue()).decode()}, "params": {"layer": layer, "n_steps": 150}}
    out = service.explain_model("feature_inversion", "shapes-cnn", body)
    d = out["details"]
    assert d["initial_relative_error"] > 0.8 and d["relative_error"] < INVERSION_BOUND, d
    inverted, shown = png(out["images"][0]["png"]), png(out["images"][1]["png"])
    np.testing.assert_array_equal(shown, images[2])  # the input as the model saw it (already 64 px)
    assert inverted.shape == shown.shape and not np.array_equal(inverted, shown)
