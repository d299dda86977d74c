"""Several methods in one request (POST /explain), and the checks the sanity and evaluation requests pass
before they are queued (the jobs themselves run in tests/workers/test_study_jobs.py)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from scipy.stats import spearmanr

from explainers.serialize import decode_array
from tests.app.conftest import assert_error


def multi(inputs: dict, methods: list[str], **extra: Any) -> dict[str, Any]:
    return {"model_id": "tiny-image", "input": inputs["image"], "methods": methods, **extra}


def test_each_method_explains_the_same_target_and_their_agreement_is_reported(client, inputs):
    r = client.post("/explain", json=multi(inputs, ["saliency", "gradcam", "integrated_gradients"],
                                           params={"integrated_gradients": {"n_steps": 8}}, top_percent=20))
    assert r.status_code == 200, r.text
    body = r.json()
    assert [e["method"] for e in body["explanations"]] == ["saliency", "gradcam", "integrated_gradients"]
    assert {e["target"]["index"] for e in body["explanations"]} == {body["target"]["index"]}
    assert body["target"]["index"] == body["predictions"][0]["index"]  # null target: the top-1 class
    assert 8 <= body["explanations"][2]["details"]["model_evaluations"] < 50  # its params were used (default 50)
    pairs = body["agreement"]
    assert [p["methods"] for p in pairs] == [["saliency", "gradcam"], ["saliency", "integrated_gradients"],
                                             ["gradcam", "integrated_gradients"]]
    maps = {e["method"]: decode_array(e["attribution"]).ravel() for e in body["explanations"]}
    for pair in pairs:
        a, b = (maps[m] for m in pair["methods"])
        assert pair["spearman"] == pytest.approx(spearmanr(a, b).statistic, abs=1e-6)
        k = round(a.size * 0.2)
        top = len(set(np.argsort(-a)[:k]) & set(np.argsort(-b)[:k])) / k
        assert pair["top_overlap"] == pytest.approx(top, abs=2 / k) and pair["top_percent"] == 20


def test_a_given_target_is_kept_for_every_method(client, inputs):
    r = client.post("/explain", json=multi(inputs, ["saliency", "input_x_gradient"], target=1))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["target"]["index"] == 1 and all(e["target"]["index"] == 1 for e in body["explanations"])
    assert len(body["agreement"]) == 1


def test_a_region_gives_every_method_its_localisation(client, inputs):
    region = {"box": [6, 4, 18, 12]}
    r = client.post("/explain", json={**multi(inputs, ["saliency", "gradcam"]),
                                      "input": {**inputs["image"], **region}})
    assert r.status_code == 200, r.text
    shares = [e["details"]["localisation"]["region_share"] for e in r.json()["explanations"]]
    assert shares[0] == shares[1] == pytest.approx(12 * 8 / (24 * 30))


@pytest.mark.parametrize("methods,params,code", [
    (["saliency"], {}, "invalid_request"),                                   # one method: use /explain/{method}
    (["saliency", "saliency"], {}, "invalid_methods"),
    (["saliency", "gradcam"], {"occlusion": {}}, "invalid_methods"),
    (["saliency", "no_such_method"], {}, "unknown_method"),
    (["saliency", "gradcam"], {"gradcam": {"layer": "no.such.layer"}}, {"invalid_params", "unknown_layer"}),
    (["saliency", "activation_maximisation"], {}, {"global_method", "unknown_method"}),
])
def test_bad_method_lists_are_coded_4xx(client, inputs, methods, params, code):
    r = client.post("/explain", json=multi(inputs, methods, params=params))
    assert 400 <= r.status_code < 500, r.text
    assert_error(r, r.status_code, code)


def test_an_async_method_makes_the_request_a_job(client, inputs):
    r = client.post("/explain", json=multi(inputs, ["saliency", "rise"], params={"rise": {"n_masks": 64}}))
    assert r.status_code == 202, r.text
    state = client.get(r.headers["location"]).json()
    assert state["kind"] == "multi" and state["status"] == "queued"
    forced = client.post("/explain?async=true", json=multi(inputs, ["saliency", "gradcam"]))
    assert forced.status_code == 202 and client.get(forced.headers["location"]).json()["kind"] == "multi"


def test_a_bad_multi_job_is_refused_before_it_is_queued(client, inputs):
    bad = multi(inputs, ["saliency", "rise"], params={"rise": {"n_masks": 0}})
    assert_error(client.post("/explain", json=bad), 422, "invalid_params")
    text = {"model_id": "tiny-text", "input": {**inputs["text"], "box": [0, 0, 1, 1]}, "methods": ["saliency", "lime"]}
    assert_error(client.post("/explain", json=text), 422, "invalid_region")


def image_input(seed: int) -> dict[str, Any]:
    import base64

    from tests.conftest import png_bytes
    rgb = np.random.default_rng(seed).integers(0, 256, size=(16, 16, 3), dtype=np.uint8)
    return {"image": base64.b64encode(png_bytes(rgb)).decode()}


@pytest.mark.parametrize("route", ["sanity", "evaluate"])
def test_study_requests_are_checked_before_they_are_queued(client, route):
    url = f"/models/tiny-image/{route}"
    assert_error(client.post("/models/nope/" + route, json={}), 404, "unknown_model")
    assert_error(client.post(url, json={"methods": ["saliency", "saliency"], "inputs": [image_input(0)]}), 422,
                 "invalid_methods")
    assert_error(client.post(url, json={"methods": ["bogus"], "inputs": [image_input(0)]}), 404, "unknown_method")
    assert_error(client.post(url, json={"methods": ["saliency"], "params": {"gradcam": {}},
                                        "inputs": [image_input(0)]}), 422, "invalid_methods")
    assert_error(client.post(url, json={"methods": ["saliency"], "inputs": [{"text": "words"}]}), 422,
                 "wrong_input_kind")
    assert_error(client.post(url, json={"methods": ["saliency"], "inputs": []}), 422, "invalid_request")
    queued = client.post(url, json={"methods": ["saliency"], "inputs": [image_input(1), image_input(2)]})
    assert queued.status_code == 202, queued.text
    state = client.get(queued.headers["location"]).json()
    assert state["kind"] == ("sanity" if route == "sanity" else "evaluation") and state["status"] == "queued"
