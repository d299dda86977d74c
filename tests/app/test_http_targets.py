"""Several targets over HTTP: the body with one entry per target, the contrastive body, and every 4xx."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from explainers.serialize import decode_array
from tests.app.conftest import FEATURES

BODY: dict[str, Any] = {"model_id": "tiny-tabular", "input": {"features": dict(FEATURES)}}


def post(client: TestClient, method: str, **extra: Any):
    return client.post(f"/explain/{method}", json={**BODY, **extra})


def test_a_list_gives_one_entry_per_target_equal_to_single_calls(client: TestClient) -> None:
    r = post(client, "input_x_gradient", target=["c", 0])
    assert r.status_code == 200, r.text
    body = r.json()
    assert [e["target"]["index"] for e in body["targets"]] == [2, 0]
    assert body["details"]["targets"] == 2 and body["predictions"]
    assert all(e["overlay_png"] for e in body["targets"])
    for entry, one in zip(body["targets"], ("c", 0)):
        single = post(client, "input_x_gradient", target=one).json()
        assert "targets" not in single and single["target"] == entry["target"]
        np.testing.assert_allclose(decode_array(entry["attribution"]), decode_array(single["attribution"]),
                                   rtol=1e-5, atol=1e-7)
        assert single["details"]["backward_passes"] == 1
    assert body["details"]["backward_passes"] == 1 and body["details"]["model_evaluations"] == 1


def test_a_one_class_list_is_the_several_targets_body(client: TestClient) -> None:
    body = post(client, "saliency", target=[1]).json()
    assert [e["target"]["index"] for e in body["targets"]] == [1] and body["details"]["targets"] == 1


def test_gradient_list_counts_backward_passes(client: TestClient) -> None:
    body = post(client, "integrated_gradients", target=[0, 1, 2], params={"n_steps": 8}).json()
    assert body["details"]["backward_passes"] == 1  # 8 path points in one batch, one batched backward
    assert [e["details"].get("backward_passes", 0) for e in body["targets"]] == [1, 0, 0]


def test_black_box_list_evaluates_once(client: TestClient) -> None:
    """(occlusion runs as a job over HTTP: tests/workers/test_target_jobs.py; here the service the worker runs)"""
    service = client.app.state.service  # type: ignore[attr-defined]
    body = service.explain("occlusion", "tiny-tabular", BODY["input"], target=[0, 1, 2])
    one = service.explain("occlusion", "tiny-tabular", BODY["input"], target=0)
    assert body["details"]["model_evaluations"] == one["details"]["model_evaluations"] > 0
    assert [e["details"]["model_evaluations"] for e in body["targets"]][1:] == [0, 0]


def test_contrastive_single_body(client: TestClient) -> None:
    body = post(client, "integrated_gradients", target={"class": "a", "versus": "b"},
                params={"n_steps": 64}).json()
    assert body["target"]["label"] == "a" and body["details"]["versus"]["label"] == "b"
    d = body["details"]
    assert sum(decode_array(body["attribution"])) == pytest.approx(d["score_input"] - d["score_baseline"], rel=1e-2)


@pytest.mark.parametrize("target, code", [
    (list(range(17)), "too_many_targets"), ([0, 0], "invalid_target"), ([0, "zzz"], "invalid_target"),
    ({"class": 1, "versus": 1}, "invalid_target"), ({"class": 1, "versus": "b"}, "invalid_target"),
    ({"class": 0, "box": [0, 0, 1, 1]}, "invalid_target"), ([], "invalid_target"),
    ({"versus": 1}, "invalid_request"), ([{"class": 0}], "invalid_request"), ([[0]], "invalid_request")])
def test_bad_targets_are_coded_4xx(client: TestClient, target: Any, code: str) -> None:
    r = post(client, "saliency", target=target)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == code


def test_a_versus_on_a_method_that_is_not_contrastive_is_refused(client: TestClient) -> None:
    r = post(client, "lrp", target={"class": 0, "versus": 1})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_target"
    assert "versus" in r.json()["error"]["message"]


def test_targets_with_several_inputs_or_methods_are_refused(client: TestClient) -> None:
    inputs = [{"features": dict(FEATURES)}] * 2
    r = client.post("/explain/saliency", json={"model_id": "tiny-tabular", "inputs": inputs, "target": [0, 1]})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_target"
    r = client.post("/explain", json={**BODY, "methods": ["saliency", "occlusion"], "target": {"class": 0,
                                                                                             "versus": 1}})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_target"
