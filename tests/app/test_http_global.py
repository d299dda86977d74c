"""Global methods over HTTP: discovery by scope, the model-level route, and every bad request a coded 4xx
answered at once (the request is checked before it is queued; the app here runs no worker)."""

from __future__ import annotations

from typing import Any

import annotated_types
import pytest
from fastapi.testclient import TestClient

from explainers.methods import global_methods, local_methods
from explainers.types import Takes
from tests.app.conftest import FEATURES, TEXT, assert_error, b64, timed
from tests.app.test_http_bad_input import PNG

IMAGE = {"image": b64(PNG)}
MODEL_FOR = {"image": "tiny-image", "text": "tiny-text", "tabular": "tiny-tabular"}


def post_global(client: TestClient, model_id: str, method: str, body: Any = None):
    return timed(client.post, f"/models/{model_id}/global/{method}", json=body)


def good_body(method: str) -> dict[str, Any]:
    """The smallest valid request of a global method (on its first modality's tiny model)."""
    return {"input": IMAGE} if global_methods()[method].takes is Takes.INPUT else {}


def model_for(method: str) -> str:
    return MODEL_FOR[sorted(m.value for m in global_methods()[method].modalities)[-1]]


def test_methods_say_their_scope_and_what_they_take(client: TestClient) -> None:
    listed = {m["name"]: m for m in client.get("/methods").json()["methods"]}
    assert {n for n, m in listed.items() if m["scope"] == "global"} == set(global_methods())
    assert {n for n, m in listed.items() if m["scope"] == "local"} == set(local_methods())
    for name, cls in global_methods().items():
        assert listed[name]["execution"] == "async" and listed[name]["takes"] == cls.takes.value
    assert all(m["takes"] == "input" for m in listed.values() if m["scope"] == "local")
    assert listed["feature_inversion"]["takes"] == "input" and listed["normlime"]["takes"] == "samples"


def test_models_list_their_global_methods_apart(client: TestClient) -> None:
    tabular = client.get("/models/tiny-tabular").json()
    image = client.get("/models/tiny-image").json()
    assert tabular["global_methods"] == ["normlime", "rule_extraction"]
    assert image["global_methods"] == ["activation_maximisation", "feature_inversion", "normlime"]
    for info in (tabular, image):
        assert not set(info["methods"]) & set(global_methods())


@pytest.mark.parametrize("method", list(global_methods()))
def test_a_good_request_is_queued_as_a_global_job(client: TestClient, method: str) -> None:
    r = post_global(client, model_for(method), method, {**good_body(method), "params": {"seed": 2}})
    assert r.status_code == 202, r.text
    job_id = r.json()["job_id"]
    assert r.headers["location"] == f"/jobs/{job_id}"
    state = client.get(f"/jobs/{job_id}").json()
    assert state["kind"] == "global" and state["method"] == method and state["status"] == "queued"
    client.delete(f"/jobs/{job_id}")


def test_a_global_method_asked_about_one_input(client: TestClient) -> None:
    body = {"model_id": "tiny-tabular", "input": {"features": dict(FEATURES)}}
    error = assert_error(timed(client.post, "/explain/normlime", json=body), 422, "global_method")
    assert "/global/normlime" in error["message"]
    error = assert_error(post_global(client, "tiny-tabular", "normlime", {"input": {"features": dict(FEATURES)}}),
                         422, "input_not_accepted")
    assert error["details"]["takes"] == "samples"
    assert_error(post_global(client, "tiny-image", "activation_maximisation", {"input": IMAGE}), 422,
                 "input_not_accepted")


def test_a_local_method_asked_without_an_input(client: TestClient) -> None:
    assert_error(timed(client.post, "/explain/gradcam", json={"model_id": "tiny-image"}), 422, "invalid_request")
    error = assert_error(post_global(client, "tiny-image", "gradcam"), 422, "local_method")
    assert "/explain/gradcam" in error["message"]
    assert_error(post_global(client, "tiny-image", "feature_inversion"), 422, "input_required")


def test_unknown_methods_models_and_modalities(client: TestClient) -> None:
    assert_error(post_global(client, "tiny-image", "no_such_method"), 404, "unknown_method")
    assert_error(post_global(client, "no-such-model", "normlime"), 404, "unknown_model")
    error = assert_error(post_global(client, "tiny-image", "rule_extraction"), 422, "method_not_supported_for_model")
    assert "normlime" in error["details"]["global_methods_for_model"]
    assert_error(post_global(client, "tiny-image", "normlime", {"no_such_field": 1}), 422, "invalid_request")


def test_layers_and_channels_that_do_not_exist(client: TestClient) -> None:
    error = assert_error(post_global(client, "tiny-image", "activation_maximisation", {"params": {"layer": "nope"}}),
                         422, "invalid_params")
    assert "some_layers" in error["details"]
    error = assert_error(post_global(client, "tiny-image", "activation_maximisation",
                                     {"params": {"layer": "0.3", "channel": 8}}), 422, "invalid_params")
    assert error["details"] == {"channels": 8}
    assert_error(post_global(client, "tiny-image", "feature_inversion", {"input": IMAGE, "params": {"layer": "9"}}),
                 422, "invalid_params")
    assert_error(post_global(client, "tiny-image", "normlime", {"params": {"layer": "nope"}}), 422, "invalid_params")
    assert_error(timed(client.post, "/explain/gradcam", json={"model_id": "tiny-image", "input": IMAGE,
                                                              "params": {"layer": "nope"}}), 422, "invalid_params")
    assert_error(post_global(client, "tiny-image", "activation_maximisation", {"target": "no such class"}), 422,
                 "invalid_target")


@pytest.mark.parametrize("areas", [[0.0], [1.0], [1.5], [-0.2], [0.1, 1.0], [], [0.1] * 9])
def test_areas_outside_zero_one(client: TestClient, areas: list[float]) -> None:
    body = {"model_id": "tiny-image", "input": IMAGE, "params": {"areas": areas}}
    error = assert_error(timed(client.post, "/explain/extremal_perturbation", json=body), 422, "invalid_params")
    assert all(d["param"].startswith("areas") for d in error["details"])


def test_sample_sets_empty_too_big_or_of_the_wrong_modality(client: TestClient) -> None:
    assert_error(post_global(client, "tiny-tabular", "normlime", {"inputs": []}), 422, "empty_samples")
    rows = [{"features": dict(FEATURES)}] * 4097
    error = assert_error(post_global(client, "tiny-tabular", "rule_extraction", {"inputs": rows}), 422,
                         "too_many_samples")
    assert error["details"] == {"max": 4096}
    assert_error(post_global(client, "tiny-tabular", "normlime", {"inputs": [{"text": TEXT}]}), 422,
                 "wrong_input_kind")
    assert_error(post_global(client, "tiny-text", "normlime", {"inputs": [{"text": TEXT}, IMAGE]}), 422,
                 "wrong_input_kind")
    assert_error(post_global(client, "tiny-image", "activation_maximisation", {"inputs": [IMAGE]}), 422,
                 "samples_not_accepted")
    assert_error(post_global(client, "tiny-image", "normlime", {"inputs": [{"image": "bm90IGFuIGltYWdl"}]}), 400,
                 "invalid_image")


def _bound_cases() -> list[Any]:
    cases = []
    for name, cls in global_methods().items():
        for field, info in cls.Params.model_fields.items():
            for meta in info.metadata:
                bad = None
                if isinstance(meta, annotated_types.Ge):
                    bad = meta.ge - 1
                elif isinstance(meta, annotated_types.Le):
                    bad = meta.le + 1
                elif isinstance(meta, annotated_types.MaxLen):
                    bad = "x" * (meta.max_length + 1)
                if bad is not None:
                    cases.append(pytest.param(name, field, bad, id=f"{name}-{field}-{type(meta).__name__}"))
    return cases


@pytest.mark.parametrize("method,field,value", _bound_cases())
def test_global_params_out_of_bounds(client: TestClient, method: str, field: str, value: Any) -> None:
    body = {**good_body(method), "params": {field: value}}
    error = assert_error(post_global(client, model_for(method), method, body), 422, "invalid_params")
    assert any(d["param"] == field for d in error["details"]), error


@pytest.mark.parametrize("method", list(global_methods()))
def test_global_unknown_params(client: TestClient, method: str) -> None:
    body = {**good_body(method), "params": {"no_such_param": 1}}
    assert_error(post_global(client, model_for(method), method, body), 422, "invalid_params")
