"""The model-level studies on the shipped shapes model: the sanity check through the service (its store and
verdicts), the evaluation table with the bundle's object masks, and the files the scripts publish."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from explainers.models.registry import ModelRegistry
from explainers.sanity_store import SanityStore
from explainers.service import ExplanationService
from tests.explainers.conftest import REPO_MODELS

ROOT = REPO_MODELS.parent


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> ExplanationService:
    return ExplanationService(ModelRegistry(REPO_MODELS, device="cpu", state_dir=tmp_path_factory.mktemp("state")))


def test_the_sanity_check_flags_guided_backprop_passes_gradcam_and_is_kept(service):
    first = service.studies.sanity("shapes-cnn", ["gradcam", "guided_backprop"], n_inputs=2, stages=4, seed=1)
    assert first["origin"] == "bundle samples" and first["n_inputs"] == 2
    verdicts = {m["method"]: m for m in first["methods"]}
    assert verdicts["gradcam"]["verdict"] == "passes" and verdicts["guided_backprop"]["verdict"] == "fails"
    assert not any(m["cached"] for m in first["methods"])
    assert all(m["weights_hash"] == first["weights_hash"] for m in first["methods"])

    again = service.studies.sanity("shapes-cnn", ["gradcam", "guided_backprop"], n_inputs=2, stages=4, seed=1)
    assert all(m["cached"] for m in again["methods"])
    assert [m["stages"] for m in again["methods"]] == [m["stages"] for m in first["methods"]]
    other = service.studies.sanity("shapes-cnn", ["gradcam"], n_inputs=2, stages=4, seed=2)  # other settings
    assert other["methods"][0]["cached"] is False

    listed = {m["name"]: m["sanity"] for m in service.methods_info()}
    assert listed["gradcam"]["shapes-cnn"] == "passes" and listed["guided_backprop"]["shapes-cnn"] == "fails"


def test_results_for_other_weights_are_ignored(tmp_path):
    store = SanityStore(tmp_path)
    result = {"method": "saliency", "verdict": "passes"}
    assert store.put("m", "a" * 64, "key", result)
    assert store.get("m", "a" * 64, "key") == result
    assert store.get("m", "b" * 64, "key") is None
    path = store.path("m", "a" * 64)
    assert path is not None
    path.write_text(json.dumps({"weights_hash": "c" * 64, "results": {"key": result}}))  # a file left by other weights
    assert store.get("m", "a" * 64, "key") is None
    assert store.verdicts("m", "a" * 64, tmp_path) == {}
    assert SanityStore(None).put("m", "a" * 64, "key", result) is False


def test_the_evaluation_table_has_localisation_from_the_bundles_masks(service):
    table = service.studies.evaluate("shapes-cnn", ["gradcam", "saliency"], n_inputs=4)
    assert table["origin"] == "bundle samples" and table["n_inputs"] == 4 and table["with_regions"] == 4
    rows = {r["method"]: r for r in table["rows"]}
    for row in rows.values():
        assert row["n"] == 4 and row["failures"] == 0
        for name in ("deletion_auc", "insertion_auc", "morf_aopc", "lerf_aopc", "random_deletion_auc",
                     "pointing_game", "energy_share", "positive_share", "ms_per_explanation"):
            assert row[name]["sem"] is not None and row[name]["mean"] == row[name]["mean"]  # not NaN
        assert 0 <= row["pointing_game"]["mean"] <= 1 and 0 <= row["energy_share"]["mean"] <= 1
    # the trained model's Grad-CAM finds the shape: on the object more often than not, and it beats a random map
    assert rows["gradcam"]["pointing_game"]["mean"] >= 0.5
    assert rows["gradcam"]["deletion_auc"]["mean"] < rows["gradcam"]["random_deletion_auc"]["mean"]
    assert rows["saliency"]["evaluations_per_explanation"]["mean"] >= 1


def test_the_shipped_sanity_verdicts_are_for_the_shipped_weights(service):
    found = 0
    for model_id in service.registry.ids():
        path = service.registry.folder_of(model_id) / "sanity.json"
        if not path.exists():
            continue
        shipped = json.loads(path.read_text())
        assert shipped["weights_hash"] == service.registry.weights_hash(model_id), \
            f"{path}: other weights (python scripts/sanity_checks.py)"
        found += 1
    assert found == len(service.registry.ids())  # every shipped model
    image = json.loads((REPO_MODELS / "shapes-cnn" / "sanity.json").read_text())
    assert {m["method"]: m["verdict"] for m in image["methods"]}["gradcam"] == "passes"


def test_the_readme_evaluation_table_is_the_published_one():
    done = subprocess.run([sys.executable, "scripts/evaluation_table.py", "--check"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    results = json.loads((ROOT / "docs" / "evaluation.json").read_text())
    assert {m["model_id"] for m in results["models"]} == {"shapes-cnn", "sentiment-cnn", "breast-cancer-mlp",
                                                           "shapes-vit", "sentiment-transformer"}
    for model_id in ("shapes-cnn", "shapes-vit"):
        shapes = next(m for m in results["models"] if m["model_id"] == model_id)
        assert shapes["with_regions"] == shapes["n_inputs"] == 16
    vit = next(m for m in results["models"] if m["model_id"] == "shapes-vit")
    assert {"attention_rollout", "transformer_attribution"} <= {row["method"] for row in vit["rows"]}
    assert Path(ROOT / "README.md").read_text().count("<!-- evaluation-table:start -->") == 1
