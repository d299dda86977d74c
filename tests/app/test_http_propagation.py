"""The propagation methods over HTTP: their bad inputs are coded 4xx, and no hook is left behind."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.app.conftest import assert_error, make_client
from tests.bundles import make_propagation_bundles

PROPAGATION = ["lrp", "deep_taylor", "excitation_backprop", "deeplift", "patternnet", "pattern_attribution"]


@pytest.fixture(scope="module")
def prop_client(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    root = tmp_path_factory.mktemp("propagation-registry")
    make_propagation_bundles(root, tiny_dir)
    with make_client(root, state_dir=tmp_path_factory.mktemp("propagation-state")) as client:
        yield client


def post(client: TestClient, method: str, model_id: str, input_: dict[str, Any], **params: Any) -> Any:
    return client.post(f"/explain/{method}", json={"model_id": model_id, "input": input_, "params": params})


@pytest.mark.parametrize("params", [{"composite": "epsilon_plus_flatt"}, {"rules": {"pooling": "epsilon"}},
                                    {"rules": {"conv": "z_minus"}}, {"alpha": 3, "beta": 1}, {"epsilon": 0},
                                    {"gamma": -1}])
def test_unknown_composites_rules_and_layer_types_are_invalid_params(client, inputs, params):
    error = assert_error(post(client, "lrp", "tiny-image", inputs["image"], **params), 422, "invalid_params")
    assert error["details"] and all("param" in d for d in error["details"])


@pytest.mark.parametrize("modality,model_id", [("text", "tiny-text"), ("tabular", "tiny-tabular")])
@pytest.mark.parametrize("method,params", [("lrp", {"composite": "epsilon_gamma_box"}),
                                           ("lrp", {"rules": {"first": "z_box"}}),
                                           ("deep_taylor", {"input_rule": "z_box"})])
def test_the_pixel_rule_on_other_inputs_is_refused(client, inputs, modality, model_id, method, params):
    error = assert_error(post(client, method, model_id, inputs[modality], **params), 422, "rule_not_supported")
    assert error["details"] == {"rule": "z_box", "modality": modality}


@pytest.mark.parametrize("method", PROPAGATION)
def test_a_model_the_engine_cannot_handle_is_named_and_left_unhooked(prop_client, inputs, method):
    error = assert_error(post(prop_client, method, "tiny-gated", inputs["image"]), 422, "unsupported_model")
    assert error["details"] == {"layer": "mul", "type": "mul"} and "mul" in error["message"]
    module = prop_client.app.state.service.registry.get("tiny-gated").module  # type: ignore[attr-defined]
    assert sum(len(m._forward_hooks) + len(m._backward_hooks) for m in module.modules()) == 0
    assert post(prop_client, "gradcam", "tiny-gated", inputs["image"]).status_code == 200  # the model still serves


@pytest.mark.parametrize("method", ["patternnet", "pattern_attribution"])
def test_patterns_missing_says_what_to_do(prop_client, inputs, method):
    error = assert_error(post(prop_client, method, "tiny-image-bare", inputs["image"]), 409, "patterns_missing")
    assert error["details"]["compute"] == "POST /models/tiny-image-bare/patterns"
    assert "sample" in error["message"]


def test_a_bundle_with_samples_gets_its_patterns_on_first_use(client, inputs):
    first = client.post("/explain/patternnet", json={"model_id": "tiny-image", "input": inputs["image"]})
    assert first.status_code == 200, first.text
    assert first.json()["details"]["patterns_from"] == "bundle samples"
    assert first.json()["details"]["pattern_samples"] == 24


@pytest.mark.parametrize("body,status,code", [
    ({}, 422, "no_samples"), ({"inputs": [{"text": "not an image"}]}, 422, "wrong_input_kind"),
    ({"inputs": [{"image": "bm90IGFuIGltYWdl"}]}, 400, "invalid_image"), ({"inputs": []}, 422, "no_samples")])
def test_a_patterns_job_checks_its_sample_set_before_queueing(prop_client, body, status, code):
    assert_error(prop_client.post("/models/tiny-image-bare/patterns", json=body), status, code)


def test_a_patterns_job_for_an_unknown_model_is_a_404(prop_client):
    assert_error(prop_client.post("/models/nope/patterns", json={}), 404, "unknown_model")


@pytest.mark.parametrize("method", PROPAGATION)
def test_propagation_methods_explain_logits_only(client, inputs, method):
    assert_error(post(client, method, "tiny-image", inputs["image"], score="probabilities"), 422, "invalid_params")
