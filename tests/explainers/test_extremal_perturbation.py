"""Extremal perturbation on the shapes model: the area constraint, masks that beat random smooth masks of
the same area in both games, and pointing accuracy on the shipped images' object masks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from explainers.masking import compose_pixels
from explainers.methods._smooth_masks import SmoothMask, area_loss, area_template, random_smooth_mask
from explainers.methods.extremal_perturbation import ExtremalPerturbation
from explainers.models.handle import LocalModel, RawInput
from explainers.models.registry import ModelRegistry
from explainers.params import parse_params

AREAS = [0.05, 0.1, 0.2]
STEPS = 100  # enough on the 64 px shapes model (the default is 300)
N_IMAGES = 4
POINTING_TOLERANCE_PX = 2


@pytest.fixture(scope="module")
def shapes(demo_registry: ModelRegistry) -> tuple[LocalModel, dict[str, np.ndarray]]:
    model = demo_registry.get("shapes-cnn")
    with np.load(model.folder / "samples.npz") as data:
        return model, {k: data[k] for k in ("images", "labels", "masks")}


def run(model: LocalModel, image: np.ndarray, target: int, **params):
    p = parse_params(ExtremalPerturbation.Params, {"n_steps": STEPS, **params})
    return ExtremalPerturbation().explain(model, RawInput(image=image), p, target=target)


@pytest.fixture(scope="module")
def preserved(shapes) -> list:
    model, data = shapes
    return [run(model, data["images"][i], int(data["labels"][i]), areas=AREAS) for i in range(N_IMAGES)]


def test_area_loss_is_zero_exactly_at_the_area() -> None:
    template = area_template(0.25, 16, torch.device("cpu"))
    assert template.sum() == 4 and template[-4:].eq(1).all()
    exact = torch.zeros(1, 1, 4, 4)
    exact[0, 0, :2, :2] = 1
    soft = torch.full((1, 1, 4, 4), 0.25)
    assert area_loss(exact, template[None]).item() == 0.0
    assert area_loss(soft, template[None]).item() > 0.1  # the right mean, but not binary


def test_smooth_masks_reach_one_and_stay_in_range() -> None:
    masker = SmoothMask((32, 32), 4, 1.0, torch.device("cpu"))
    params = torch.zeros(1, 1, *masker.grid)
    params[0, 0, 3, 3] = 1.0
    mask = masker(params)[0, 0]
    assert float(mask.min()) >= 0.0 and float(mask.max()) <= 1.0 + 1e-6 and float(mask.max()) > 0.9
    assert float(mask[0, 0]) < 0.05 and float(mask[-1, -1]) < 0.05  # a blob, not a plateau


def test_the_area_constraint_is_met_within_5_percent(preserved) -> None:
    for out in preserved:
        for row in out.details["areas"]:
            assert abs(row["area_reached"] - row["area"]) <= 0.05 * row["area"], row
            assert abs(row["mask_mean"] - row["area"]) <= 0.03, row  # the soft rim adds a little


def test_preserved_scores_beat_random_smooth_masks_of_the_same_area(shapes, preserved) -> None:
    model, data = shapes
    gen = torch.Generator().manual_seed(0)
    for i, out in enumerate(preserved):
        inputs = model.prepare(RawInput(image=data["images"][i]))
        fill = inputs.baseline("blur")
        for row in out.details["areas"]:
            masks = torch.stack([random_smooth_mask(gen, row["area"], (64, 64)) for _ in range(8)])[:, None]
            with torch.no_grad():
                random = model.module(compose_pixels(inputs.x, fill, masks))[:, int(data["labels"][i])]
            assert row["score"] > float(random.max()), (i, row, random)


def test_the_deletion_game_removes_more_than_random_masks(shapes) -> None:
    model, data = shapes
    gen = torch.Generator().manual_seed(1)
    for i in range(2):
        target = int(data["labels"][i])
        out = run(model, data["images"][i], target, areas=[0.1], game="deletion")
        row = out.details["areas"][0]
        assert row["score"] < out.details["score_input"]
        inputs = model.prepare(RawInput(image=data["images"][i]))
        masks = torch.stack([random_smooth_mask(gen, 0.1, (64, 64)) for _ in range(8)])[:, None]
        with torch.no_grad():
            random = model.module(compose_pixels(inputs.x, inputs.baseline("blur"), 1 - masks))[:, target]
        assert row["score"] < float(random.min()), (i, row, random)


def test_pointing_accuracy_on_the_shipped_shapes(shapes, preserved, record_property) -> None:
    """The map's maximum lies on the object (within 2 px) for most of the shipped images."""
    _, data = shapes
    hits = []
    for i, out in enumerate(preserved):
        y, x = np.unravel_index(np.argmax(out.attribution), out.attribution.shape)
        t = POINTING_TOLERANCE_PX
        hits.append(bool(data["masks"][i][max(0, y - t):y + t + 1, max(0, x - t):x + t + 1].any()))
    accuracy = float(np.mean(hits))
    record_property("pointing_accuracy", accuracy)
    assert accuracy >= 3 / 4, hits
