"""Deletion, insertion and AOPC on a model whose right answers are known in closed form."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from explainers.base import Context
from explainers.evaluation.faithfulness import FaithfulnessOptions, evaluations_needed, faithfulness, step_masks
from explainers.models.handle import RawInput
from explainers.models.registry import ModelRegistry
from explainers.params import BlackBoxParams
from tests.bundles import _write
from tests.tiny_models import build_region_mean

SIDE, REGION = 16, np.zeros((16, 16), dtype=bool)
REGION[4:8, 4:8] = True  # 16 of 256 pixels: 1/16 of the image


@pytest.fixture(scope="module")
def region_model(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("region")
    _write(root / "region-mean", {
        "id": "region-mean", "modality": "image", "architecture": "tiny_models:build_region_mean",
        "weights": "weights.safetensors", "labels": ["inside", "outside"], "output": "probabilities",
        "image": {"size": [SIDE, SIDE], "mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0]}}, build_region_mean())
    return ModelRegistry(Path(root), device="cpu").get("region-mean")


def run(model, attribution: np.ndarray, **options):
    raw = RawInput(image=np.full((SIDE, SIDE, 3), 255, dtype=np.uint8))  # white: class 0 has probability 1
    with model.lock:
        ctx = Context(model, model.prepare(raw), 0, BlackBoxParams(), 2)
        out = faithfulness(ctx, attribution, FaithfulnessOptions(steps=16, fill="black", insertion_start="black",
                                                                 **options))
    return out, ctx.evaluations


def test_the_perfect_map_gives_the_analytic_figures(region_model):
    out, evaluations = run(region_model, REGION.astype(np.float32))
    ours = out["map"]
    # deletion: all of the region is gone after the first 1/16: the curve 1, 0, 0, ...: area 1/32
    assert ours["deletion_auc"] == pytest.approx(1 / 32, abs=1e-6)
    assert ours["insertion_auc"] == pytest.approx(31 / 32, abs=1e-6)
    assert ours["morf_aopc"] == pytest.approx(16 / 17, abs=1e-6)
    assert ours["lerf_aopc"] == pytest.approx(1 / 17, abs=1e-6)  # the region goes last: only the last step drops
    assert evaluations == evaluations_needed(SIDE * SIDE, FaithfulnessOptions(steps=16)) == 17 * 5


def test_a_random_map_scores_about_the_average(region_model):
    out, _ = run(region_model, REGION.astype(np.float32), seed=3)
    random = out["random"]
    assert random["deletion_auc"] == pytest.approx(0.5, abs=0.08)
    assert random["insertion_auc"] == pytest.approx(0.5, abs=0.08)
    assert out["map"]["deletion_auc"] < random["deletion_auc"] < out["map"]["insertion_auc"]


def test_an_inverted_map_scores_worst(region_model):
    out, _ = run(region_model, (~REGION).astype(np.float32), random_reference=False)
    assert "random" not in out
    assert out["map"]["deletion_auc"] == pytest.approx(1 - 1 / 32, abs=1e-6)
    assert out["map"]["insertion_auc"] == pytest.approx(1 / 32, abs=1e-6)


def test_step_masks_remove_and_insert_in_order():
    order = np.array([2, 0, 3, 1])
    deleted = step_masks(order, 4, insert=False)
    assert deleted.tolist() == [[1, 1, 1, 1], [1, 1, 0, 1], [0, 1, 0, 1], [0, 1, 0, 0], [0, 0, 0, 0]]
    inserted = step_masks(order, 2, insert=True)
    assert inserted.tolist() == [[0, 0, 0, 0], [1, 0, 1, 0], [1, 1, 1, 1]]


def test_the_map_must_have_one_value_per_feature(region_model):
    with pytest.raises(ValueError):
        run(region_model, np.zeros((8, 8), dtype=np.float32))
