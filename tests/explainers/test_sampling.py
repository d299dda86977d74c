"""Sampling methods with error bars, stopping when converged, and budgets; the fixes fresh inputs asked for."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from explainers.errors import InvalidParams
from explainers.masking import segment
from explainers.models.handle import RawInput
from explainers.models.registry import ModelRegistry
from explainers.models.samples import bundle_samples
from tests.bundles import _write, random_tabular_bundle
from tests.explainers.conftest import raw_for
from tests.explainers.test_methods import explain
from tests.tiny_models import build_region_mean


@pytest.fixture(scope="module")
def sampling_registry(tmp_path_factory: pytest.TempPathFactory) -> ModelRegistry:
    """`region-mean` (a known RISE map) and `ten`: a ten-feature MLP whose exact Shapley values are computable."""
    root = tmp_path_factory.mktemp("sampling")
    _write(root / "region-mean", {
        "id": "region-mean", "modality": "image", "architecture": "tiny_models:build_region_mean",
        "weights": "weights.safetensors", "labels": ["inside", "outside"], "output": "probabilities",
        "image": {"size": [16, 16], "mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0]}}, build_region_mean())
    random_tabular_bundle(root / "ten", ["a", "b"], 10, seed=7, background_rows=60)
    return ModelRegistry(Path(root), device="cpu")


WHITE = RawInput(image=np.full((16, 16, 3), 255, dtype=np.uint8))
RISE = {"cell_size": 4, "fill": "black", "n_masks": 20000}


def test_rise_stops_when_converged_with_a_faithful_map(sampling_registry):
    model = sampling_registry.get("region-mean")
    reference = explain("rise", model, WHITE, seed=1, **RISE)
    stopped = explain("rise", model, WHITE, seed=2, tolerance=0.2, **RISE)
    assert stopped.details["stopped"] == "converged" and stopped.details["n_masks"] < 20000 / 4
    assert stopped.details["relative_error"] <= 0.2 and "stopped" not in reference.details
    assert np.corrcoef(stopped.attribution.ravel(), reference.attribution.ravel())[0, 1] >= 0.99
    assert stopped.details["model_evaluations"] == stopped.details["n_masks"]


def test_rise_reports_and_can_remove_its_offset(sampling_registry):
    model = sampling_registry.get("region-mean")
    plain = explain("rise", model, WHITE, n_masks=1000, cell_size=4, fill="black")
    centred = explain("rise", model, WHITE, n_masks=1000, cell_size=4, fill="black", center=True)
    offset = plain.details["offset"]
    assert 0 < offset < 1 and centred.signed and not plain.signed
    np.testing.assert_allclose(centred.attribution, plain.attribution - offset, atol=1e-5)


def test_kernel_shap_standard_errors_cover_the_exact_values(sampling_registry):
    """Over 30 seeds, the error against the exact Shapley values falls inside the reported 95 % interval at
    least 90 % of the time (measured here: about 97 %)."""
    model = sampling_registry.get("ten")
    raw = RawInput(features=np.random.default_rng(1).normal(size=10))
    exact = explain("kernel_shap", model, raw, max_exact_features=16)
    assert exact.details["exact"] and exact.details["standard_errors"] == [0.0] * 10
    hits = []
    for seed in range(30):
        est = explain("kernel_shap", model, raw, max_exact_features=0, n_samples=400, seed=seed)
        se = np.array(est.details["standard_errors"])
        assert (se > 0).all() and est.details["n_pairs"] > 0 and est.details["n_evaluations"] <= 402
        hits.append(np.abs(est.attribution - exact.attribution) <= 1.96 * se)
    assert np.mean(hits) >= 0.9, np.mean(hits)


def test_kernel_shap_interactions_are_closer_to_the_exact_values_and_bounded(sampling_registry, tiny_registry):
    """On the ten-feature MLP the order-three surrogate's error against the exact values is below the additive
    fit's on the same coalitions (median over seeds); with too many features it is refused."""
    model = sampling_registry.get("ten")
    raw = RawInput(features=np.random.default_rng(1).normal(size=10))
    exact = explain("kernel_shap", model, raw, max_exact_features=16).attribution
    errors: dict[str, list[float]] = {"additive": [], "interactions": []}
    for seed in range(8):
        for surrogate in errors:
            out = explain("kernel_shap", model, raw, max_exact_features=0, n_samples=300, seed=seed,
                          surrogate=surrogate)
            assert out.details["surrogate"] == surrogate and out.details["enumerated_sizes"] == [1, 2, 8, 9]
            errors[surrogate].append(float(np.linalg.norm(out.attribution - exact)))
    assert np.median(errors["interactions"]) < np.median(errors["additive"])
    auto = explain("kernel_shap", model, raw, max_exact_features=0, n_samples=300)
    assert auto.details["surrogate"] == "interactions"  # 165 interaction terms, 300 coalitions
    image = tiny_registry.get("tiny-image")
    with pytest.raises(InvalidParams) as refused:
        explain("kernel_shap", image, raw_for(image), segmentation="grid", n_segments=64, surrogate="interactions")
    assert refused.value.details == {"features": 64}
    wide = explain("kernel_shap", image, raw_for(image), segmentation="grid", n_segments=64, max_exact_features=0,
                   n_samples=2048)
    assert wide.details["surrogate"] == "interactions"  # among the 11 highest-ranked (220 terms, 2048 coalitions)
    names = wide.details["interaction_features"]
    assert len(names) == 11 and set(names) <= {f"superpixel {i}" for i in range(64)}
    additive = explain("kernel_shap", image, raw_for(image), segmentation="grid", n_segments=64,
                       max_exact_features=0, surrogate="additive")
    assert additive.details["interaction_features"] == [] and additive.details["surrogate"] == "additive"


def test_kernel_shap_uses_the_whole_small_background(demo_registry):
    """A subsample of the background biased the values away from the exact Shapley values; by default the
    whole background (up to 1000 rows) defines the value function, and details say which was used."""
    model = demo_registry.get("breast-cancer-mlp")
    raw = raw_for(model, 0)
    whole = explain("kernel_shap", model, raw, n_samples=512)
    part = explain("kernel_shap", model, raw, n_samples=512, n_background=50)
    assert whole.details["background"] == "all" and whole.details["background_rows"] == 400
    assert part.details["background"] == "a seeded subsample" and part.details["background_rows"] == 50
    assert whole.details["base_value"] != pytest.approx(part.details["base_value"], abs=1e-6)


BUDGETED = [("rise", "tiny-image", {"n_masks": 2000, "batch_size": 50}, 41),
            ("occlusion", "tiny-image", {"window": 4, "stride": 1, "batch_size": 20}, 41),
            ("lime", "tiny-text", {"n_samples": 400, "batch_size": 20}, 41),
            ("kernel_shap", "tiny-image", {"n_samples": 800, "max_exact_features": 0, "batch_size": 20}, 41),
            ("scorecam", "tiny-image", {"batch_size": 2}, 5),  # its CAM layer has 8 channels
            ("lime", "tiny-tabular", {"n_samples": 400, "batch_size": 20}, 41)]


@pytest.mark.parametrize("name,model_id,params,budget", BUDGETED, ids=[f"{n}-{m}" for n, m, _, _ in BUDGETED])
def test_an_evaluation_budget_stops_with_the_estimate_so_far(tiny_registry, name, model_id, params, budget):
    model = tiny_registry.get(model_id)
    out = explain(name, model, raw_for(model, 1), max_evaluations=budget, **params)
    assert out.details["stopped"] == "budget" and out.details["model_evaluations"] <= budget
    assert np.isfinite(out.attribution).all() and np.abs(out.attribution).max() > 0
    full = explain(name, model, raw_for(model, 1), **params)
    assert "stopped" not in full.details and full.details["model_evaluations"] > budget


def test_a_time_budget_stops_anchors_and_rise(tiny_registry):
    model = tiny_registry.get("tiny-image")
    slow = explain("rise", model, raw_for(model, 1), n_masks=20000, batch_size=10, time_budget_s=0.3)
    assert slow.details["stopped"] == "budget" and slow.details["n_masks"] < 20000  # 20000 masks take ~4 s
    strict = {"threshold": 0.999, "delta": 1e-4, "epsilon": 1e-3, "beam_size": 10, "samples_per_round": 10}
    anchors = explain("anchors", model, raw_for(model, 1), time_budget_s=0.3, batch_size=1, **strict)  # ~3 s
    assert anchors.details["stopped"] == "budget" and anchors.details["budget_exhausted"]


def test_a_budget_too_small_for_a_first_estimate_is_a_422(tiny_registry):
    model = tiny_registry.get("tiny-image")
    for name in ("occlusion", "kernel_shap"):  # the input's own score, or the two ends, take the one evaluation
        with pytest.raises(InvalidParams) as err:
            explain(name, model, raw_for(model, 1), max_evaluations=1)
        assert err.value.code == "budget_too_small"


def test_superpixels_follow_the_count_asked_on_small_images(demo_registry):
    images = [raw.image for raw in bundle_samples(demo_registry.get("shapes-cnn"))]
    counts = [int(segment(img, "slic", 50).max()) + 1 for img in images]
    assert min(counts) >= 25 and np.median(counts) >= 40, counts
    flat = np.full((64, 64, 3), 128, dtype=np.uint8)  # nothing to segment: a grid, and a warning
    model = demo_registry.get("shapes-cnn")
    out = explain("lime", model, RawInput(image=flat), n_samples=50, segmentation="felzenszwalb")
    assert "grid was used" in out.details["warning"] and out.details["n_features"] >= 25
