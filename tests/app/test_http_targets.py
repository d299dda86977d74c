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
    assert body["details"]["backward_passes"] == 1 and body["details"]["model_evaluations"] == 1


def test_gradient_list_counts_backward_passes(client: TestClient) -> None:
    body = post(client, "integrated_gradients", target=[0, 1, 2], params={"n_steps": 8}).json()
    assert body["details"]["backward_passes"] == 1  # 8 path points in one batch, one batched backward
    assert [e["details"]["backward_passes"] for e in body["targets"]] == [1, 0, 0]


def test_contrastive_single_body(client: TestClient) -> None:
    body = post(client, "integrated_gradients", target={"class": "a", "versus": "b"},
                params={"n_steps": 64}).json()
    assert body["target"]["label"] == "a" and body["details"]["versus"]["label"] == "b"
    d = body["details"]
    assert sum(decode_array(body["attribution"])) == pytest.approx(d["score_input"] - d["score_baseline"], rel=1e-2)


@pytest.mark.parametrize("target, code", [
    (list(range(17)), None), ([0, 0], "invalid_target"), ([0, "zzz"], "invalid_target"),
    ({"class": 1, "versus": 1}, "invalid_target"), ({"class": 1, "versus": "b"}, "invalid_target"),
    ({"class": 0, "box": [0, 0, 1, 1]}, "unsupported_target"), ([], "invalid_target"),
    ({"versus": 1}, None), ([{"class": 0}], None)])
def test_bad_targets_are_coded_4xx(client: TestClient, target: Any, code: str | None) -> None:
    r = post(client, "saliency", target=target)
    assert 400 <= r.status_code < 500, r.text
    if code is not None:
        assert r.json()["error"]["code"] == code


def test_too_many_targets_code(client: TestClient) -> None:
    r = post(client, "saliency", target=list(range(17)))
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "too_many_targets"  # the length is checked before the labels
