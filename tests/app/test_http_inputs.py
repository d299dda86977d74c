"""Several inputs per request (`inputs: [...]`): the list body, each entry the single-input answer, every 4xx."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
import pytest

from app.schemas.requests import MAX_INPUTS
from explainers.serialize import decode_array
from explainers.service import Limits
from tests.app.conftest import FEATURES, assert_error
from tests.conftest import png_bytes


def image(seed: int, size: tuple[int, int] = (16, 16)) -> dict[str, str]:
    rgb = np.random.default_rng(seed).integers(0, 256, size=(*size, 3), dtype=np.uint8)
    return {"image": base64.b64encode(png_bytes(rgb)).decode()}


def body(inputs: list[dict[str, Any]], model: str = "tiny-image", **extra: Any) -> dict[str, Any]:
    return {"model_id": model, "inputs": inputs, "output": {"overlay": False}, **extra}


@pytest.mark.parametrize("method,params", [("saliency", {}), ("gradcam", {}),
                                           ("integrated_gradients", {"n_steps": 6, "batch_size": 4})])
def test_each_entry_is_the_single_input_answer(client, method, params):
    inputs = [image(1), image(2, (24, 30)), image(3)]
    r = client.post(f"/explain/{method}", json=body(inputs, params=params))
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["model_id"] == "tiny-image" and got["method"] == method and got["timing_ms"]["total"] > 0
    assert len(got["explanations"]) == 3
    for one, entry in zip(inputs, got["explanations"]):
        alone = client.post(f"/explain/{method}", json={"model_id": "tiny-image", "input": one, "params": params,
                                                         "output": {"overlay": False}}).json()
        assert entry["details"]["batched"] == {"inputs": 3}
        assert entry["target"]["index"] == alone["target"]["index"]
        assert entry["attribution"]["shape"] == alone["attribution"]["shape"]
        np.testing.assert_allclose(decode_array(entry["attribution"]), decode_array(alone["attribution"]),
                                   rtol=1e-4, atol=1e-6)
        assert set(entry["details"]) - {"batched"} == set(alone["details"])
    assert got["explanations"][1]["attribution"]["shape"] == [24, 30]  # each map at its own image's size


def test_text_and_tabular_lists(client):
    r = client.post("/explain/saliency", json=body([{"text": "good movie"}, {"text": "an awful, awful plot"}],
                                                   model="tiny-text"))
    assert r.status_code == 200, r.text
    entries = r.json()["explanations"]
    assert [len(e["details"]["tokens"]) for e in entries] == [e["attribution"]["shape"][0] for e in entries]
    assert all(e["details"]["batched"] == {"inputs": 1} for e in entries)  # texts run one by one
    r = client.post("/explain/saliency", json=body([{"features": FEATURES}] * 2, model="tiny-tabular", target="b"))
    assert r.status_code == 200, r.text
    assert [e["target"]["label"] for e in r.json()["explanations"]] == ["b", "b"]


def test_a_region_per_input(client):
    r = client.post("/explain/saliency", json=body([{**image(1), "box": [0, 0, 8, 8]}, image(2)]))
    assert r.status_code == 200, r.text
    entries = r.json()["explanations"]
    assert "localisation" in entries[0]["details"] and "localisation" not in entries[1]["details"]


@pytest.mark.parametrize("payload,status,code", [
    ({"model_id": "tiny-image"}, 422, "invalid_request"),
    ({"model_id": "tiny-image", "input": image(1), "inputs": [image(1)]}, 422, "invalid_request"),
    (body([]), 422, "empty_inputs"),
    (body([image(1)] * (MAX_INPUTS + 1)), 422, "too_many_inputs"),
    (body([image(1), {"text": "hello"}]), 422, "wrong_input_kind"),
    (body([image(1), {"image": "not base64!"}]), 400, "invalid_image"),
    (body([image(1)], target=7), 422, "invalid_target"),
    (body([image(1)], params={"nope": 1}), 422, "invalid_params"),
    (body([{"text": "hello", "box": [0, 0, 1, 1]}], model="tiny-text"), 422, "invalid_region"),
    (body([image(1)], model="nope"), 404, "unknown_model"),
])
def test_bad_requests_are_coded_4xx(client, payload, status, code):
    assert_error(client.post("/explain/saliency", json=payload), status, code)


def test_a_bad_input_says_which(client):
    r = client.post("/explain/saliency", json=body([image(1), image(2), {"image": "not base64!"}]))
    error = assert_error(r, 400, "invalid_image")
    assert error["details"]["input_index"] == 2 and "inputs[2]" in error["message"]


def test_total_pixels_are_bounded(small_client):
    """Each image within the pixel limit, the list over it in all (a small app: 1 M pixels)."""
    big = {"image": base64.b64encode(png_bytes(np.full((600, 600, 3), 90, dtype=np.uint8))).decode()}
    r = small_client.post("/explain/saliency", json=body([big] * 3))
    if r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large":
        pytest.fail("the body limit answered before the pixel total: " + r.text)
    error = assert_error(r, 413, "inputs_too_large")
    assert error["details"]["pixels"] == 3 * 360_000
    assert small_client.post("/explain/saliency", json=body([big] * 2)).status_code == 200


def test_total_characters_are_bounded(client):
    error = assert_error(client.post("/explain/saliency", json=body([{"text": "good " * 12_000}] * 2,
                                                                    model="tiny-text")), 413, "inputs_too_large")
    assert error["details"]["chars"] == 120_000


def test_the_bound_in_the_schema_is_the_service_bound(client):
    assert Limits().max_inputs == MAX_INPUTS
    schema = client.get("/openapi.json").json()["components"]["schemas"]["ExplainRequest"]["properties"]["inputs"]
    assert schema["maxItems"] == MAX_INPUTS and schema["minItems"] == 1
