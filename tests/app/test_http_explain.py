"""POST /explain/{method} through the real app, generated from the method registry."""

from __future__ import annotations

import html
import json
from typing import Any, get_args

import numpy as np
import pytest
from fastapi.testclient import TestClient

from explainers.methods import local_methods
from explainers.methods._attention import AttentionExplainer
from explainers.render.colormaps import COLORMAPS
from explainers.serialize import decode_array
from tests.app.conftest import BARE, FEATURES, LABELS, MODEL_FOR, as_sent, b64, decode_png, picture_size
from tests.conftest import png_bytes


def _case(name: str, *values: Any) -> Any:
    return pytest.param(name, *values, id="-".join([name, *map(str, values)]))


# Sync methods answer here; async ones answer 202 with a job and are tested end to end, with a
# real queue and worker, in tests/workers.
# the attention methods explain transformers, which the tiny bundles are not: tests/app/test_http_bad_input.py
# and tests/explainers/test_transformers.py cover them
SYNC = {name: cls for name, cls in local_methods().items()
        if cls.execution.value == "sync" and not issubclass(cls, AttentionExplainer)}
CASES = [_case(name, modality.value)
         for name, cls in SYNC.items() for modality in sorted(cls.modalities, key=lambda m: m.value)]
IMAGE_METHODS = [_case(name) for name, cls in SYNC.items() if "image" in {m.value for m in cls.modalities}]
CAM_METHODS = [_case(name) for name, cls in SYNC.items() if "layer" in cls.Params.model_fields]
FAST_PARAMS: dict[str, dict[str, Any]] = {"smoothgrad": {"n_samples": 8}, "integrated_gradients": {"n_steps": 16}}
EXPLANATION_KEYS = {"method", "model_id", "target", "predictions", "attribution", "overlay_png", "details",
                    "timing_ms"}


def explain(client: TestClient, method: str, model_id: str, input_: dict[str, Any], **body: Any) -> dict[str, Any]:
    response = client.post(f"/explain/{method}", json={"model_id": model_id, "input": input_, **body})
    assert response.status_code == 200, response.text[:1000]
    return response.json()


def run(client: TestClient, inputs: dict[str, Any], method: str, modality: str, **body: Any) -> dict[str, Any]:
    body.setdefault("params", dict(FAST_PARAMS.get(method, {})))
    return explain(client, method, MODEL_FOR[modality], inputs[modality], **body)


def attribution_of(result: dict[str, Any]) -> np.ndarray:
    assert result["attribution"] is not None
    arr = decode_array(result["attribution"])
    assert list(arr.shape) == result["attribution"]["shape"]
    return arr


def check_prediction(pred: dict[str, Any], labels: list[str]) -> None:
    assert set(pred) == {"index", "label", "score"}
    assert 0 <= pred["index"] < len(labels)
    assert pred["label"] == labels[pred["index"]]
    assert 0.0 <= pred["score"] <= 1.0


# -- every method x every modality it serves ----------------------------------------------------

@pytest.mark.parametrize("method,modality", CASES)
def test_explanation_has_the_contract_fields(client: TestClient, inputs: dict[str, Any],
                                             image_array: np.ndarray, method: str, modality: str) -> None:
    model_id = MODEL_FOR[modality]
    result = run(client, inputs, method, modality)
    assert set(result) >= EXPLANATION_KEYS
    assert result["method"] == method and result["model_id"] == model_id
    labels = LABELS[model_id]
    check_prediction(result["target"], labels)
    assert result["predictions"], "no predictions"
    for pred in result["predictions"]:
        check_prediction(pred, labels)
    scores = [p["score"] for p in result["predictions"]]
    assert scores == sorted(scores, reverse=True)
    assert result["target"]["index"] == result["predictions"][0]["index"]  # null target = top-1
    assert result["target"]["score"] == pytest.approx(result["predictions"][0]["score"], abs=1e-6)
    assert set(result["attribution"]) == {"shape", "dtype", "encoding", "data"}
    assert result["attribution"]["dtype"] == "float32" and result["attribution"]["encoding"] == "base64"
    assert isinstance(result["timing_ms"]["total"], (int, float)) and result["timing_ms"]["total"] >= 0
    assert isinstance(result["details"], dict)
    default_score = local_methods()[method].Params.model_fields["score"].default  # black-box methods: probabilities
    assert result["details"]["explained"] == default_score
    if local_methods()[method].requires.value == "gradients":
        assert default_score == "logits"

    attr = attribution_of(result)
    assert attr.dtype == np.float32
    assert np.all(np.isfinite(attr))
    # Text has no picture in the contract (details.html is its rendering); images and tables do.
    png = decode_png(result["overlay_png"]) if modality != "text" or result["overlay_png"] else None

    if modality == "image":
        height, width = image_array.shape[:2]
        assert attr.shape == (height, width)  # the image as sent, not the model's 16x16
        assert png is not None and png.mode == "RGB"
        pic_w, pic_h = picture_size(height, width)  # enlarged to a legible size, the legend under it
        assert png.width == max(pic_w, 256) and png.height > pic_h + 40
    elif modality == "text":
        tokens = result["details"]["tokens"]
        assert tokens and all(isinstance(t, str) for t in tokens)
        assert attr.shape == (len(tokens),)
        page = result["details"]["html"]
        assert isinstance(page, str)
        for token in tokens:
            assert html.escape(token) in page
    else:
        assert attr.shape == (len(FEATURES),)
        rows = result["details"]["features"]
        assert [set(r) for r in rows] == [{"name", "value", "score"}] * len(FEATURES)
        assert sorted(r["name"] for r in rows) == sorted(FEATURES)
        magnitudes = [abs(r["score"]) for r in rows]
        assert magnitudes == sorted(magnitudes, reverse=True)
        order = list(FEATURES)
        for row in rows:
            assert row["value"] == pytest.approx(FEATURES[row["name"]])
            assert row["score"] == pytest.approx(float(attr[order.index(row["name"])]), rel=1e-6, abs=1e-7)
        assert png is not None and png.width > 50 and png.height > 20  # a bar chart, not an empty image


@pytest.mark.parametrize("method,modality", CASES)
def test_probability_scores_are_reported(client: TestClient, inputs: dict[str, Any], method: str,
                                         modality: str) -> None:
    params = {**FAST_PARAMS.get(method, {}), "score": "probabilities"}
    if "probabilities" not in get_args(local_methods()[method].Params.model_fields["score"].annotation):
        # the propagation methods distribute the logit: asking for the probability is a clear 422
        body = {"model_id": MODEL_FOR[modality], "input": inputs[modality], "params": params}
        response = client.post(f"/explain/{method}", json=body)
        assert response.status_code == 422 and response.json()["error"]["code"] == "invalid_params"
        return
    result = run(client, inputs, method, modality, params=params)
    assert result["details"]["explained"] == "probabilities"
    assert np.all(np.isfinite(attribution_of(result)))


@pytest.mark.parametrize("method,modality", CASES)
def test_same_request_same_attribution(client: TestClient, inputs: dict[str, Any], method: str,
                                       modality: str) -> None:
    first = attribution_of(run(client, inputs, method, modality))
    second = attribution_of(run(client, inputs, method, modality))
    np.testing.assert_array_equal(first, second)


@pytest.mark.parametrize("modality", ["image", "text", "tabular"])
def test_smoothgrad_seed_is_deterministic_and_matters(client: TestClient, inputs: dict[str, Any],
                                                      modality: str) -> None:
    def attr(seed: int) -> np.ndarray:
        params = {"n_samples": 8, "seed": seed}
        return attribution_of(run(client, inputs, "smoothgrad", modality, params=params))

    np.testing.assert_array_equal(attr(3), attr(3))
    assert not np.array_equal(attr(3), attr(4))


# -- transport and options ----------------------------------------------------------------------

@pytest.mark.parametrize("method", ["saliency", "gradcam", "smoothgrad"])
def test_multipart_upload_equals_json(client: TestClient, image_png: bytes, image_b64: str, method: str) -> None:
    params = FAST_PARAMS.get(method, {})
    output = {"colormap": "viridis", "alpha": 0.3}
    by_json = explain(client, method, "tiny-image", {"image": image_b64}, target=1, params=params, output=output)
    response = client.post(f"/explain/{method}", files={"file": ("x.png", image_png, "image/png")},
                           data={"model_id": "tiny-image", "target": "1", "params": json.dumps(params),
                                 "output": json.dumps(output)})
    assert response.status_code == 200, response.text[:1000]
    by_form = response.json()
    assert by_form["target"] == by_json["target"] and by_form["target"]["index"] == 1
    assert by_form["predictions"] == by_json["predictions"]
    np.testing.assert_array_equal(attribution_of(by_form), attribution_of(by_json))
    assert by_form["overlay_png"] == by_json["overlay_png"]


def test_multipart_target_label_and_defaults(client: TestClient, image_png: bytes) -> None:
    response = client.post("/explain/saliency", files={"file": ("x.png", image_png, "image/png")},
                           data={"model_id": "tiny-image", "target": "blue"})
    assert response.status_code == 200, response.text[:1000]
    assert response.json()["target"]["index"] == 2
    response = client.post("/explain/saliency", files={"file": ("x.png", image_png, "image/png")},
                           data={"model_id": "tiny-image"})
    assert response.status_code == 200, response.text[:1000]
    body = response.json()
    assert body["target"]["index"] == body["predictions"][0]["index"]


@pytest.mark.parametrize("modality", ["image", "text", "tabular"])
def test_target_by_index_label_and_null(client: TestClient, inputs: dict[str, Any], modality: str) -> None:
    labels = LABELS[MODEL_FOR[modality]]
    top = run(client, inputs, "saliency", modality, target=None)
    assert top["target"]["index"] == top["predictions"][0]["index"]
    probabilities = {p["index"]: p["score"] for p in top["predictions"]}
    maps = {}
    for index, label in enumerate(labels):
        by_index = run(client, inputs, "saliency", modality, target=index)
        by_label = run(client, inputs, "saliency", modality, target=label)
        assert by_index["target"] == by_label["target"]
        assert by_index["target"]["index"] == index and by_index["target"]["label"] == label
        assert by_index["target"]["score"] == pytest.approx(probabilities[index], abs=1e-6)
        np.testing.assert_array_equal(attribution_of(by_index), attribution_of(by_label))
        maps[index] = attribution_of(by_index)
    np.testing.assert_array_equal(attribution_of(top), maps[top["target"]["index"]])
    assert not np.array_equal(maps[0], maps[1])  # the target matters


@pytest.mark.parametrize("modality", ["image", "text", "tabular"])
def test_attribution_encodings(client: TestClient, inputs: dict[str, Any], modality: str) -> None:
    as_b64 = run(client, inputs, "input_x_gradient", modality)
    as_list = run(client, inputs, "input_x_gradient", modality, output={"attribution": "list"})
    assert as_list["attribution"]["encoding"] == "list" and isinstance(as_list["attribution"]["data"], list)
    assert as_list["attribution"]["shape"] == as_b64["attribution"]["shape"]
    listed = np.asarray(as_list["attribution"]["data"], dtype=np.float32)
    assert list(listed.shape) == as_list["attribution"]["shape"]
    np.testing.assert_array_equal(listed, attribution_of(as_b64))
    none = run(client, inputs, "input_x_gradient", modality, output={"attribution": "none"})
    assert none["attribution"] is None
    assert none["target"] == as_b64["target"] and none["overlay_png"] == as_b64["overlay_png"]


def test_overlay_can_be_turned_off(client: TestClient, inputs: dict[str, Any]) -> None:
    result = run(client, inputs, "saliency", "image", output={"overlay": False})
    assert result["overlay_png"] is None
    assert attribution_of(result).shape == (24, 30)


@pytest.mark.parametrize("colormap", sorted(COLORMAPS))
def test_every_colormap_is_accepted(client: TestClient, inputs: dict[str, Any], colormap: str) -> None:
    result = run(client, inputs, "saliency", "image", output={"colormap": colormap, "alpha": 0.8, **BARE})
    assert decode_png(result["overlay_png"]).size == picture_size(24, 30)


def test_colormap_and_alpha_change_the_overlay(client: TestClient, inputs: dict[str, Any]) -> None:
    overlays = {(cm, a): run(client, inputs, "gradcam", "image", output={"colormap": cm, "alpha": a})["overlay_png"]
                for cm in ("jet", "viridis") for a in (0.3, 0.9)}
    assert len(set(overlays.values())) == 4


@pytest.mark.parametrize("method", IMAGE_METHODS)
@pytest.mark.parametrize("colormap", [None, "jet", "bwr"])
def test_alpha_zero_overlay_is_the_input(client: TestClient, inputs: dict[str, Any], image_array: np.ndarray,
                                         method: str, colormap: str | None) -> None:
    result = run(client, inputs, method, "image", output={"alpha": 0.0, "colormap": colormap, **as_sent(24, 30)})
    np.testing.assert_array_equal(np.asarray(decode_png(result["overlay_png"]).convert("RGB")), image_array)


def test_alpha_one_overlay_differs_from_input(client: TestClient, inputs: dict[str, Any],
                                              image_array: np.ndarray) -> None:
    result = run(client, inputs, "saliency", "image", output={"alpha": 1.0})
    assert not np.array_equal(np.asarray(decode_png(result["overlay_png"]).convert("RGB")), image_array)


@pytest.mark.parametrize("modality", ["image", "text", "tabular"])
def test_integrated_gradients_completeness(client: TestClient, inputs: dict[str, Any], modality: str) -> None:
    # The gap is the quadrature error over the ReLU kinks; it shrinks as n_steps grows.
    result = run(client, inputs, "integrated_gradients", modality, params={"n_steps": 64})
    details = result["details"]
    gap, diff = details["completeness_gap"], details["score_difference"]
    assert abs(gap) <= 0.05 * abs(diff) + 1e-3, details
    attr = attribution_of(result)
    if modality == "image":  # the 16x16 map is resized to the 24x30 image: its mean is (about) kept
        assert float(attr.mean()) * 16 * 16 == pytest.approx(details["attribution_sum"], rel=0.05)
    else:
        assert float(attr.sum()) == pytest.approx(details["attribution_sum"], rel=1e-4, abs=1e-5)
    assert diff - details["attribution_sum"] == pytest.approx(gap, abs=1e-6)  # what is left to explain
    assert details["score_input"] - details["score_baseline"] == pytest.approx(diff, abs=1e-6)
    assert details["n_steps"] == 64


@pytest.mark.parametrize("method", CAM_METHODS)
def test_cam_layer_param_picks_another_layer(client: TestClient, inputs: dict[str, Any], method: str) -> None:
    default = run(client, inputs, method, "image")
    assert default["details"]["layer"] == "0.3" and default["details"]["cam_shape"] == [8, 8]
    early = run(client, inputs, method, "image", params={"layer": "0.1"})
    assert early["details"]["layer"] == "0.1" and early["details"]["cam_shape"] == [16, 16]
    assert attribution_of(early).shape == attribution_of(default).shape == (24, 30)
    assert not np.array_equal(attribution_of(early), attribution_of(default))


def test_non_square_image_of_another_size(client: TestClient) -> None:
    tall = np.random.default_rng(1).integers(0, 256, size=(41, 17, 3), dtype=np.uint8)
    result = explain(client, "gradcam", "tiny-image", {"image": b64(png_bytes(tall))}, output=BARE)
    assert attribution_of(result).shape == (41, 17)
    assert decode_png(result["overlay_png"]).size == picture_size(41, 17)


def test_features_as_list_equal_features_by_name(client: TestClient) -> None:
    by_name = explain(client, "saliency", "tiny-tabular", {"features": dict(FEATURES)})
    by_list = explain(client, "saliency", "tiny-tabular", {"features": list(FEATURES.values())})
    np.testing.assert_array_equal(attribution_of(by_name), attribution_of(by_list))
    assert by_name["details"]["features"] == by_list["details"]["features"]


def test_top_k_limits_predictions(client: TestClient, inputs: dict[str, Any]) -> None:
    assert len(run(client, inputs, "saliency", "image", top_k=1)["predictions"]) == 1
    assert len(run(client, inputs, "saliency", "image", top_k=100)["predictions"]) == 3


def test_image_data_url_is_accepted(client: TestClient, image_png: bytes, image_b64: str) -> None:
    plain = explain(client, "saliency", "tiny-image", {"image": image_b64})
    data_url = explain(client, "saliency", "tiny-image", {"image": "data:image/png;base64," + image_b64})
    np.testing.assert_array_equal(attribution_of(plain), attribution_of(data_url))


# -- plain predictions --------------------------------------------------------------------------

@pytest.mark.parametrize("modality", ["image", "text", "tabular"])
def test_predict_matches_the_explanation(client: TestClient, inputs: dict[str, Any], modality: str) -> None:
    model_id = MODEL_FOR[modality]
    labels = LABELS[model_id]
    response = client.post(f"/models/{model_id}/predict", json={"input": inputs[modality], "top_k": 10})
    assert response.status_code == 200, response.text[:1000]
    body = response.json()
    assert body["model_id"] == model_id
    preds = body["predictions"]
    assert len(preds) == len(labels)
    for pred in preds:
        check_prediction(pred, labels)
    scores = [p["score"] for p in preds]
    assert scores == sorted(scores, reverse=True)
    assert sum(scores) <= 1.0 + 1e-5
    assert sum(scores) == pytest.approx(1.0, abs=1e-5)  # every class reported
    assert sorted(p["index"] for p in preds) == list(range(len(labels)))

    explained = run(client, inputs, "saliency", modality, top_k=10)
    assert [p["index"] for p in explained["predictions"]] == [p["index"] for p in preds]
    for ours, theirs in zip(explained["predictions"], preds):
        assert ours["label"] == theirs["label"]
        assert ours["score"] == pytest.approx(theirs["score"], abs=1e-5)

    response = client.post(f"/models/{model_id}/predict", json={"input": inputs[modality], "top_k": 1})
    assert response.status_code == 200
    (only,) = response.json()["predictions"]
    assert only["index"] == preds[0]["index"] and only["score"] == pytest.approx(preds[0]["score"], abs=1e-6)


def test_predict_default_top_k(client: TestClient, inputs: dict[str, Any]) -> None:
    response = client.post("/models/tiny-image/predict", json={"input": inputs["image"]})
    assert response.status_code == 200
    assert len(response.json()["predictions"]) == 3  # top_k 5, capped at the 3 labels
