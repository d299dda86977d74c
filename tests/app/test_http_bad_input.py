"""Bad input: the right 4xx status, error code and error body, quickly, and never a 500."""

from __future__ import annotations

import io
import json
import shutil
import struct
import typing
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import annotated_types
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from explainers.methods import local_methods
from explainers.methods._attention import AttentionExplainer
from tests.app.conftest import FEATURES, SMALL_BODY, SMALL_PIXELS, TEXT, assert_error, b64, timed
from tests.conftest import png_bytes

IMAGE = np.random.default_rng(3).integers(0, 256, size=(20, 28, 3), dtype=np.uint8)
PNG = png_bytes(IMAGE)
JPEG = png_bytes(IMAGE, "JPEG", quality=90)
INPUT_FOR = {"image": {"image": b64(PNG)}, "text": {"text": TEXT}, "tabular": {"features": dict(FEATURES)}}
MODEL_FOR = {"image": "tiny-image", "text": "tiny-text", "tabular": "tiny-tabular"}


def post(client: TestClient, path: str, **kwargs: Any):
    return timed(client.post, path, **kwargs)


def post_json(client: TestClient, body: Any, method: str = "saliency"):
    return timed(client.post, f"/explain/{method}", json=body)


def post_raw(client: TestClient, content: bytes | str, method: str = "saliency",
             content_type: str = "application/json"):
    return timed(client.post, f"/explain/{method}", content=content, headers={"content-type": content_type})


def explain_body(modality: str, **extra: Any) -> dict[str, Any]:
    return {"model_id": MODEL_FOR[modality], "input": INPUT_FOR[modality], **extra}


def image_body(data: bytes, **extra: Any) -> dict[str, Any]:
    return {"model_id": "tiny-image", "input": {"image": b64(data)}, **extra}


ATTENTION_MODEL = "tiny-text-transformer"


@pytest.fixture(scope="module")
def transformer_client(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """The app over the tiny bundles and the tiny transformers (what the attention methods explain)."""
    from tests.app.conftest import make_client
    from tests.bundles import make_transformer_bundles

    root = tmp_path_factory.mktemp("with-transformers")
    for bundle in tiny_dir.iterdir():
        shutil.copytree(bundle, root / bundle.name)
    make_transformer_bundles(root)
    with make_client(root) as c:
        yield c


def for_method(method: str, client: TestClient, request: pytest.FixtureRequest) -> tuple[TestClient, dict[str, Any]]:
    """A client and the cheapest body a method can explain (an attention method: the tiny text transformer)."""
    modality = cheapest_modality(method)
    body = explain_body(modality)
    if issubclass(local_methods()[method], AttentionExplainer):
        return request.getfixturevalue("transformer_client"), {**body, "model_id": ATTENTION_MODEL}
    return client, body


def cheapest_modality(method: str) -> str:
    modalities = {m.value for m in local_methods()[method].modalities}
    return next(m for m in ("tabular", "text", "image") if m in modalities)


# -- routing: models, methods, paths --------------------------------------------------------------

def test_a_transformer_method_on_a_cnn_is_a_coded_422(client: TestClient) -> None:
    for method in ("attention_rollout", "transformer_attribution"):
        error = assert_error(post_json(client, explain_body("image"), method=method), 422,
                             "method_not_supported_for_model")
        assert "transformer" in error["message"] and method not in error["details"]["methods_for_model"]


def test_unknown_model(client: TestClient) -> None:
    error = assert_error(post_json(client, {"model_id": "nope", "input": {"text": "good"}}), 404, "unknown_model")
    assert "tiny-text" in error["details"]["known"]


def test_unknown_model_on_predict_and_info(client: TestClient) -> None:
    assert_error(post(client, "/models/nope/predict", json={"input": {"text": "good"}}), 404, "unknown_model")
    assert_error(timed(client.get, "/models/nope"), 404, "unknown_model")


def test_unknown_method(client: TestClient) -> None:
    assert_error(post_json(client, explain_body("text"), method="no_such_method"), 404, "unknown_method")


@pytest.mark.parametrize("method,modality", [
    pytest.param(name, modality, id=f"{name}-{modality}")
    for name, cls in local_methods().items() for modality in ("image", "text", "tabular")
    if modality not in {m.value for m in cls.modalities}])
def test_method_not_supported_for_model(client: TestClient, method: str, modality: str) -> None:
    error = assert_error(post_json(client, explain_body(modality), method=method), 422,
                         "method_not_supported_for_model")
    assert method not in error["details"]["methods_for_model"]


def test_get_on_post_route(client: TestClient) -> None:
    assert_error(timed(client.get, "/explain/saliency"), 405, "method_not_allowed")
    assert_error(timed(client.get, "/models/tiny-text/predict"), 405, "method_not_allowed")


def test_unknown_route(client: TestClient) -> None:
    assert_error(timed(client.get, "/no/such/route"), 404, "not_found")
    assert_error(timed(client.post, "/models/tiny-image/no-such-action"), 404, "not_found")
    assert_error(timed(client.post, "/explain/gradcam/extra"), 404, "not_found")


# -- the body itself ------------------------------------------------------------------------------

@pytest.mark.parametrize("content", [
    b"{", b"", b"not json", b'{"model_id": "tiny-text",}', b'{"model_id": "\xff\xfe"}', b"\x00\x01"],
    ids=["unclosed", "empty", "words", "trailing-comma", "bad-utf8", "binary"])
def test_json_that_does_not_parse(client: TestClient, content: bytes) -> None:
    assert_error(post_raw(client, content), 400, "invalid_json")


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_literals(client: TestClient, literal: str) -> None:
    body = f'{{"model_id": "tiny-tabular", "input": {{"features": [{literal}, 0, 0, 1]}}}}'
    assert_error(post_raw(client, body), 400, "invalid_json")
    body = f'{{"model_id": "tiny-image", "input": {{"image": "{b64(PNG)}"}}, "params": {{"n_steps": {literal}}}}}'
    assert_error(post_raw(client, body, method="integrated_gradients"), 400, "invalid_json")


def test_nan_in_predict_features(client: TestClient) -> None:
    response = post(client, "/models/tiny-tabular/predict", content='{"input": {"features": [NaN, 0, 0, 1]}}',
                    headers={"content-type": "application/json"})
    assert response.status_code in (400, 422), response.text
    assert_error(response, response.status_code, {"invalid_json", "invalid_features"})


def test_deeply_nested_json(client: TestClient) -> None:
    assert_error(post_raw(client, "[" * 100_000 + "]" * 100_000), 400, "invalid_json")


def test_deeply_nested_json_on_predict(client: TestClient) -> None:
    response = post(client, "/models/tiny-text/predict", content="[" * 100_000 + "]" * 100_000,
                    headers={"content-type": "application/json"})
    assert 400 <= response.status_code < 500
    assert_error(response, response.status_code, {"invalid_json", "bad_request"})


@pytest.mark.parametrize("body", ["[1, 2]", '"text"', "3", "null", "true"],
                         ids=["array", "string", "number", "null", "bool"])
def test_body_is_not_an_object(client: TestClient, body: str) -> None:
    assert_error(post_raw(client, body), 422, "invalid_request")


@pytest.mark.parametrize("body", [
    {"input": {"text": "good"}},
    {"model_id": "tiny-text"},
    {"model_id": "", "input": {"text": "good"}},
    {"model_id": 7, "input": {"text": "good"}},
    {"model_id": "tiny-text", "input": {}},
    {"model_id": "tiny-text", "input": {"text": "good", "image": b64(PNG)}},
    {"model_id": "tiny-text", "input": {"text": "good", "features": [1, 2, 3, 0]}},
    {"model_id": "tiny-text", "input": {"text": None}},
    {"model_id": "tiny-text", "input": {"sound": "beep"}},
    {"model_id": "tiny-text", "input": "good"},
    {"model_id": "tiny-text", "input": {"text": 5}},
    {"model_id": "tiny-text", "input": {"text": "good"}, "extra": 1},
    {"model_id": "tiny-text", "input": {"text": "good"}, "top_k": 0},
    {"model_id": "tiny-text", "input": {"text": "good"}, "top_k": 101},
    {"model_id": "tiny-text", "input": {"text": "good"}, "output": {"attribution": "npy"}},
    {"model_id": "tiny-text", "input": {"text": "good"}, "output": {"alpha": 1.5}},
    {"model_id": "tiny-text", "input": {"text": "good"}, "output": {"alpha": -0.1}},
    {"model_id": "tiny-text", "input": {"text": "good"}, "output": {"colormap": "rainbow-unicorn"}},
    {"model_id": "tiny-text", "input": {"text": "good"}, "output": {"sizes": 3}},
    {"model_id": "tiny-text", "input": {"text": "good"}, "output": {"style": "rainbow"}},
    {"model_id": "tiny-text", "input": {"text": "good"}, "output": {"size": 0}},
    {"model_id": "tiny-text", "input": {"text": "good"}, "output": {"size": 4096}},
    {"model_id": "tiny-text", "input": {"text": "good"}, "output": {"mask_percent": 0}},
    {"model_id": "tiny-text", "input": {"text": "good"}, "output": {"mask_percent": 101}},
    {"model_id": "tiny-text", "input": {"text": "good"}, "output": {"caption": [True]}},
    {"model_id": "tiny-text", "input": {"text": "good"}, "target": [[1]]},
    {"model_id": "tiny-text", "input": {"text": "good"}, "target": 1.5},
], ids=["no-model", "no-input", "empty-model", "model-not-str", "input-empty", "text-and-image",
        "text-and-features", "text-null", "unknown-input-kind", "input-not-object", "text-not-str",
        "unknown-top-level-key", "top_k-0", "top_k-101", "bad-encoding", "alpha-high", "alpha-low",
        "unknown-colormap", "unknown-output-key", "unknown-style", "size-0", "size-4096", "mask-0", "mask-101",
        "caption-list", "target-list", "target-float"])
def test_schema_mismatch(client: TestClient, body: dict[str, Any]) -> None:
    error = assert_error(post_json(client, body), 422, "invalid_request")
    assert isinstance(error["details"], list) and error["details"]


@pytest.mark.parametrize("modality,kind", [("image", "text"), ("image", "features"), ("text", "image"),
                                           ("text", "features"), ("tabular", "image"), ("tabular", "text")])
def test_wrong_input_kind_for_the_model(client: TestClient, modality: str, kind: str) -> None:
    given = {"image": {"image": b64(PNG)}, "text": {"text": "good"}, "features": {"features": dict(FEATURES)}}[kind]
    body = {"model_id": MODEL_FOR[modality], "input": given}
    assert_error(post_json(client, body), 422, "wrong_input_kind")
    assert_error(post(client, f"/models/{MODEL_FOR[modality]}/predict", json={"input": given}), 422,
                 "wrong_input_kind")


def test_unsupported_content_type(client: TestClient) -> None:
    for content_type in ("text/plain", "application/xml", "image/png", "application/x-www-form-urlencoded"):
        assert_error(post_raw(client, b"model_id=tiny-text", content_type=content_type), 415,
                     "unsupported_media_type")


def test_json_with_charset_is_accepted(client: TestClient) -> None:
    body = json.dumps(explain_body("text"))
    assert post_raw(client, body, content_type="application/json; charset=utf-8").status_code == 200


# -- text -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["", " ", "\n\t  \r", "\u2003\u3000\u00a0", "\x1c\x1d\x1e\x1f"],
                         ids=["empty", "space", "whitespace", "unicode-spaces", "separators"])
def test_empty_text(client: TestClient, text: str) -> None:
    assert_error(post_json(client, {"model_id": "tiny-text", "input": {"text": text}}), 422, "empty_text")
    assert_error(post(client, "/models/tiny-text/predict", json={"input": {"text": text}}), 422, "empty_text")


def test_text_the_tokenizer_keeps_is_not_empty(client: TestClient) -> None:
    # The word tokenizer keeps every non-space character (unknown ones map to <unk>), so text that is
    # not blank always has tokens; zero-width and control characters are such tokens.
    for text in ("\u200b", "\x00", "🙂"):
        response = post_json(client, {"model_id": "tiny-text", "input": {"text": text}})
        assert response.status_code == 200, response.text
        assert response.json()["details"]["tokens"]


def test_text_over_the_character_limit(client: TestClient) -> None:
    response = post_json(client, {"model_id": "tiny-text", "input": {"text": "good " * 20_001}})
    assert_error(response, 413, "payload_too_large")


# -- features -------------------------------------------------------------------------------------

@pytest.mark.parametrize("features", [
    {"f0": 1.0, "f1": 0.0, "f2": 0.0},
    {**FEATURES, "f9": 1.0},
    {"f0": 1.0, "f1": 0.0, "f2": 0.0, "kinds": 1},
    {**FEATURES, "f1": None},
    {**FEATURES, "f1": "1.5"},
    {**FEATURES, "f1": True},
    {**FEATURES, "f1": [1.0]},
    {**FEATURES, "f1": {"v": 1}},
    {**FEATURES, "kind": 3},
    {**FEATURES, "kind": 0.5},
    {**FEATURES, "kind": -1},
    [1.0, 2.0, 3.0],
    [1.0, 2.0, 3.0, 1.0, 5.0],
    [],
    [1.0, None, 3.0, 1.0],
    [1.0, "x", 3.0, 1.0],
    [1.0, 2.0, 3.0, 7.0],
    {},
], ids=["missing-name", "unknown-name", "misspelt-name", "null-value", "string-value", "bool-value", "list-value",
        "object-value", "category-not-allowed", "category-fraction", "category-negative",
        "list-too-short", "list-too-long", "list-empty", "list-null", "list-string", "list-bad-category",
        "object-empty"])
def test_invalid_features(client: TestClient, features: Any) -> None:
    body = {"model_id": "tiny-tabular", "input": {"features": features}}
    assert_error(post_json(client, body), 422, "invalid_features")
    assert_error(post(client, "/models/tiny-tabular/predict", json={"input": {"features": features}}), 422,
                 "invalid_features")


def test_overflowing_float_feature(client: TestClient) -> None:
    """1e309 parses as inf in Python's JSON reader: not a finite number."""
    body = '{"model_id": "tiny-tabular", "input": {"features": {"f0": 1e309, "f1": 0, "f2": 0, "kind": 1}}}'
    error = assert_error(post_raw(client, body), 422, "invalid_features")
    assert error["details"]["invalid"] == ["f0"]


def test_huge_integer_feature(client: TestClient) -> None:
    body = '{"model_id": "tiny-tabular", "input": {"features": [1' + "0" * 400 + ', 0, 0, 1]}}'
    assert_error(post_raw(client, body), 422, "invalid_features")


def test_features_not_object_or_list(client: TestClient) -> None:
    assert_error(post_json(client, {"model_id": "tiny-tabular", "input": {"features": "1,2,3,0"}}), 422,
                 "invalid_request")


# -- params ---------------------------------------------------------------------------------------

def _bound_cases() -> list[Any]:
    """One out-of-bounds value per numeric bound of every method's Params, read from the field metadata."""
    cases = []
    for name, cls in local_methods().items():
        for field_name, info in cls.Params.model_fields.items():
            for meta in info.metadata:
                bad: Any = None
                if isinstance(meta, annotated_types.Ge):
                    bad, kind = meta.ge - 1, "ge"
                elif isinstance(meta, annotated_types.Gt):
                    bad, kind = meta.gt, "gt"
                elif isinstance(meta, annotated_types.Le):
                    bad, kind = meta.le + 1, "le"
                elif isinstance(meta, annotated_types.Lt):
                    bad, kind = meta.lt, "lt"
                elif isinstance(meta, annotated_types.MaxLen):
                    bad, kind = "x" * (meta.max_length + 1), "max_length"
                elif isinstance(meta, annotated_types.MinLen) and meta.min_length > 0:
                    bad, kind = "", "min_length"
                if bad is not None:
                    cases.append(pytest.param(name, field_name, bad, id=f"{name}-{field_name}-{kind}"))
    return cases


def _bound_values() -> list[Any]:
    """Every numeric bound itself (inclusive bounds must be accepted), for the sync methods."""
    cases = []
    for name, cls in local_methods().items():
        if cls.execution.value != "sync":
            continue
        for field_name, info in cls.Params.model_fields.items():
            for meta in info.metadata:
                if isinstance(meta, annotated_types.Ge):
                    cases.append(pytest.param(name, field_name, meta.ge, id=f"{name}-{field_name}-ge"))
                elif isinstance(meta, annotated_types.Le):
                    cases.append(pytest.param(name, field_name, meta.le, id=f"{name}-{field_name}-le"))
    return cases


def _choice_cases() -> list[Any]:
    cases = []
    for name, cls in local_methods().items():
        for field_name, info in cls.Params.model_fields.items():
            args = typing.get_args(info.annotation)
            if typing.get_origin(info.annotation) is typing.Literal:
                cases.append(pytest.param(name, field_name, "not-a-choice", id=f"{name}-{field_name}-choice"))
            elif info.annotation in (int, float, bool):
                cases.append(pytest.param(name, field_name, "lots", id=f"{name}-{field_name}-type"))
            elif str in args:
                cases.append(pytest.param(name, field_name, 12, id=f"{name}-{field_name}-type"))
    return cases


BOUND_CASES = _bound_cases()


def test_bounds_are_found() -> None:
    ids = {c.id for c in BOUND_CASES}
    assert {"integrated_gradients-n_steps-ge", "integrated_gradients-n_steps-le", "smoothgrad-noise_level-le",
            "smoothgrad-seed-ge"} <= ids


@pytest.mark.parametrize("method,field,value", BOUND_CASES)
def test_param_out_of_bounds(client: TestClient, request: pytest.FixtureRequest, method: str, field: str,
                             value: Any) -> None:
    client, body = for_method(method, client, request)
    body["params"] = {field: value}
    error = assert_error(post_json(client, body, method=method), 422, "invalid_params")
    assert any(d["param"] == field for d in error["details"]), error


@pytest.mark.parametrize("method,field,value", _bound_values())
def test_param_at_its_bound_is_accepted(client: TestClient, request: pytest.FixtureRequest, method: str, field: str,
                                        value: Any) -> None:
    client, body = for_method(method, client, request)
    response = timed(client.post, f"/explain/{method}", json={**body, "params": {field: value}}, limit=10)
    assert response.status_code == 200, response.text[:500]


@pytest.mark.parametrize("method,field,value", _choice_cases())
def test_param_of_the_wrong_kind(client: TestClient, request: pytest.FixtureRequest, method: str, field: str,
                                 value: Any) -> None:
    client, body = for_method(method, client, request)
    body["params"] = {field: value}
    assert_error(post_json(client, body, method=method), 422, "invalid_params")


@pytest.mark.parametrize("method", list(local_methods()))
def test_unknown_param(client: TestClient, request: pytest.FixtureRequest, method: str) -> None:
    client, body = for_method(method, client, request)
    body["params"] = {"no_such_param": 1}
    error = assert_error(post_json(client, body, method=method), 422, "invalid_params")
    assert "no_such_param" in json.dumps(error["details"])


@pytest.mark.parametrize("params", [[1, 2], "n_steps=3", 5, True])
def test_params_not_an_object(client: TestClient, params: Any) -> None:
    body = explain_body("text", params=params)
    assert_error(post_json(client, body, method="integrated_gradients"), 422, "invalid_request")


@pytest.mark.parametrize("params", [
    {"method": "riemann_trapezoid", "n_steps": 1},  # a rule that needs two points
    {"baseline": "pad"},  # a text baseline on an image
    {"n_steps": 2.5},
    {"n_steps": None},
], ids=["trapezoid-1-step", "text-baseline-on-image", "fraction", "null"])
def test_params_rejected_by_the_method(client: TestClient, params: dict[str, Any]) -> None:
    body = explain_body("image", params=params)
    assert_error(post_json(client, body, method="integrated_gradients"), 422, "invalid_params")


@pytest.mark.parametrize("layer", ["nope", "0.9", "2", "3"], ids=["unknown", "missing-child", "flatten", "linear"])
def test_cam_layer_that_does_not_fit(client: TestClient, layer: str) -> None:
    assert_error(post_json(client, explain_body("image", params={"layer": layer}), method="gradcam"), 422,
                 "invalid_params")


def test_params_are_checked_before_the_input(client: TestClient) -> None:
    body = {"model_id": "tiny-image", "input": {"image": "%%%"}, "params": {"n_steps": 0}}
    assert_error(post_json(client, body, method="integrated_gradients"), 422, "invalid_params")


# -- target ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("modality,target", [
    ("image", 3), ("image", -1), ("image", 10**6), ("image", "purple"), ("image", "Red"), ("image", ""),
    ("text", 2), ("text", "neutral"), ("tabular", 3), ("tabular", "d"), ("image", "1"), ("image", 10**30)],
    ids=["past-end", "negative", "huge", "unknown-label", "label-case", "empty-label", "text-past-end",
         "text-unknown", "tabular-past-end", "tabular-unknown", "index-as-string", "enormous"])
def test_invalid_target(client: TestClient, modality: str, target: Any) -> None:
    assert_error(post_json(client, explain_body(modality, target=target)), 422, "invalid_target")


def test_boolean_target(client: TestClient) -> None:
    response = post_json(client, explain_body("text", target=True))
    assert response.status_code == 422, response.text[:300]
    assert_error(response, 422, {"invalid_target", "invalid_request"})


def test_invalid_target_in_multipart(client: TestClient) -> None:
    for target in ("7", "-1", "purple"):
        response = post(client, "/explain/saliency", files={"file": ("x.png", PNG, "image/png")},
                        data={"model_id": "tiny-image", "target": target})
        assert_error(response, 422, "invalid_target")


# -- images ---------------------------------------------------------------------------------------

def _truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


@pytest.mark.parametrize("image", ["not base64!", "%%%%", "aGVsbG8", "aGVsbG8=x", "data:image/png;base64,@@@"],
                         ids=["words", "symbols", "bad-padding", "junk-after-padding", "data-url-junk"])
def test_image_not_base64(client: TestClient, image: str) -> None:
    assert_error(post_json(client, {"model_id": "tiny-image", "input": {"image": image}}), 400, "invalid_image")


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _tiff() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(IMAGE).save(buf, format="TIFF")
    return buf.getvalue()


BAD_IMAGES = {
    "random-bytes": np.random.default_rng(0).bytes(4096),
    "truncated-png": _truncated(PNG),
    "truncated-jpeg": _truncated(JPEG),
    "png-header-only": PNG[:33],
    "png-signature-only": PNG[:8],
    "jpeg-soi-only": JPEG[:2],
    "empty": b"",
    "text": b"this is not an image\n",
    "svg": b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>',
    "tiff-not-accepted": _tiff(),
    "zero-width-png": b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", 0, 10, 8, 2, 0, 0, 0))
    + _png_chunk(b"IEND", b""),
}


@pytest.mark.parametrize("name", list(BAD_IMAGES))
def test_bad_image_as_json(client: TestClient, name: str) -> None:
    assert_error(post_json(client, image_body(BAD_IMAGES[name])), 400, "invalid_image")


@pytest.mark.parametrize("name", list(BAD_IMAGES))
def test_bad_image_as_multipart(client: TestClient, name: str) -> None:
    response = post(client, "/explain/saliency", files={"file": ("image.png", BAD_IMAGES[name], "image/png")},
                    data={"model_id": "tiny-image"})
    assert_error(response, 400, "invalid_image")


@pytest.mark.parametrize("name", ["random-bytes", "truncated-png", "empty"])
def test_bad_image_on_predict(client: TestClient, name: str) -> None:
    response = post(client, "/models/tiny-image/predict", json={"input": {"image": b64(BAD_IMAGES[name])}})
    assert_error(response, 400, "invalid_image")


def _png_bomb(width: int, height: int) -> bytes:
    """A real 1-bit PNG of width x height black pixels: a few hundred KB claiming `width * height` pixels."""
    row = b"\x00" * (1 + (width + 7) // 8)
    compressor = zlib.compressobj(9)
    parts = [compressor.compress(row * min(1000, height - i)) for i in range(0, height, 1000)]
    parts.append(compressor.flush())
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", b"".join(parts))
            + _png_chunk(b"IEND", b""))


@pytest.fixture(scope="module")
def bomb() -> bytes:
    data = _png_bomb(30_000, 30_000)
    assert len(data) < 200_000
    return data


def test_decompression_bomb(client: TestClient, bomb: bytes) -> None:
    assert_error(timed(client.post, "/explain/saliency", json=image_body(bomb)), 413, "image_too_large")


def test_decompression_bomb_is_refused_quickly(client: TestClient, bomb: bytes) -> None:
    """Whatever the code, the bomb is refused from its header, fast, and never decoded."""
    for response in (timed(client.post, "/explain/saliency", json=image_body(bomb)),
                     timed(client.post, "/explain/saliency", files={"file": ("bomb.png", bomb, "image/png")},
                           data={"model_id": "tiny-image"}),
                     timed(client.post, "/models/tiny-image/predict", json={"input": {"image": b64(bomb)}})):
        assert response.status_code in (400, 413), response.text
        assert_error(response, response.status_code, {"image_too_large", "invalid_image"})


def test_image_over_the_pixel_limit_below_pillows(client: TestClient) -> None:
    """7000x7000 = 49M pixels: over the default 40M limit, under Pillow's own bomb check."""
    response = timed(client.post, "/explain/saliency", json=image_body(_png_bomb(7000, 7000)))
    error = assert_error(response, 413, "image_too_large")
    assert error["details"]["width"] == 7000 and error["details"]["height"] == 7000


def test_image_over_max_image_pixels(small_client: TestClient) -> None:
    big = png_bytes(np.full((1000, 1001, 3), 90, dtype=np.uint8))
    assert len(big) < SMALL_BODY // 2
    error = assert_error(timed(small_client.post, "/explain/saliency", json=image_body(big)), 413, "image_too_large")
    assert error["details"]["max_pixels"] == SMALL_PIXELS
    response = timed(small_client.post, "/explain/saliency", files={"file": ("big.png", big, "image/png")},
                     data={"model_id": "tiny-image"})
    assert_error(response, 413, "image_too_large")
    response = timed(small_client.post, "/models/tiny-image/predict", json={"input": {"image": b64(big)}})
    assert_error(response, 413, "image_too_large")


def test_image_at_max_image_pixels_is_accepted(small_client: TestClient) -> None:
    edge = png_bytes(np.full((1000, 1000, 3), 90, dtype=np.uint8))
    response = timed(small_client.post, "/explain/saliency", json=image_body(edge), limit=10)
    assert response.status_code == 200, response.text[:300]


# -- body size ------------------------------------------------------------------------------------

def _big_json() -> bytes:
    return json.dumps(image_body(b"\x00" * (SMALL_BODY + 10_000))).encode()


def _chunks(data: bytes, size: int = 32_768):
    for i in range(0, len(data), size):
        yield data[i:i + size]


def test_body_over_the_limit_as_json(small_client: TestClient) -> None:
    error = assert_error(post_raw(small_client, _big_json()), 413, "payload_too_large")
    assert error["details"]["max_bytes"] == SMALL_BODY


def test_body_over_the_limit_as_multipart(small_client: TestClient) -> None:
    response = timed(small_client.post, "/explain/saliency",
                     files={"file": ("big.png", b"\x00" * (SMALL_BODY + 10_000), "image/png")},
                     data={"model_id": "tiny-image"})
    assert_error(response, 413, "payload_too_large")


def test_body_over_the_limit_on_predict(small_client: TestClient) -> None:
    body = json.dumps({"input": {"image": b64(b"\x00" * (SMALL_BODY + 10_000))}})
    response = timed(small_client.post, "/models/tiny-image/predict", content=body,
                     headers={"content-type": "application/json"})
    assert_error(response, 413, "payload_too_large")


def test_streamed_body_without_content_length(small_client: TestClient) -> None:
    response = timed(small_client.post, "/explain/saliency", content=_chunks(_big_json()),
                     headers={"content-type": "application/json"})
    assert "content-length" not in response.request.headers
    assert_error(response, 413, "payload_too_large")


def test_streamed_multipart_without_content_length(small_client: TestClient) -> None:
    request = small_client.build_request("POST", "/explain/saliency",
                                         files={"file": ("big.png", b"\x00" * (SMALL_BODY + 10_000), "image/png")},
                                         data={"model_id": "tiny-image"})
    raw = request.read()
    response = timed(small_client.post, "/explain/saliency", content=_chunks(raw),
                     headers={"content-type": request.headers["content-type"]})
    assert_error(response, 413, "payload_too_large")


def test_lying_content_length(small_client: TestClient) -> None:
    response = timed(small_client.post, "/explain/saliency", content=_big_json(),
                     headers={"content-type": "application/json", "content-length": "100"})
    assert_error(response, 413, "payload_too_large")


def test_malformed_content_length(small_client: TestClient) -> None:
    response = timed(small_client.post, "/explain/saliency", content=b"{}",
                     headers={"content-type": "application/json", "content-length": "lots"})
    assert_error(response, 400, "bad_content_length")


def test_body_under_the_limit_is_accepted(small_client: TestClient) -> None:
    response = timed(small_client.post, "/explain/saliency", json=image_body(PNG))
    assert response.status_code == 200, response.text[:300]


# -- multipart ------------------------------------------------------------------------------------

def test_multipart_without_a_file(client: TestClient) -> None:
    response = post(client, "/explain/saliency", files={"model_id": (None, "tiny-image")})
    assert_error(response, 422, "missing_file")


def test_multipart_file_sent_as_a_plain_field(client: TestClient) -> None:
    response = post(client, "/explain/saliency", files={"model_id": (None, "tiny-image"), "file": (None, "abc")})
    assert_error(response, 422, "missing_file")


def test_multipart_without_model_id(client: TestClient) -> None:
    response = post(client, "/explain/saliency", files={"file": ("x.png", PNG, "image/png")})
    assert_error(response, 422, "invalid_request")


@pytest.mark.parametrize("field,value,status,code", [
    ("params", "{not json", 400, "invalid_json"),
    ("output", "{not json", 400, "invalid_json"),
    ("params", "NaN", 400, "invalid_json"),
    ("params", "[1, 2]", 422, "invalid_request"),
    ("params", '{"no_such_param": 1}', 422, "invalid_params"),
    ("output", '{"alpha": 7}', 422, "invalid_request"),
    ("top_k", "0", 422, "invalid_request"),
    ("top_k", "many", 422, "invalid_request"),
], ids=["params-not-json", "output-not-json", "params-nan", "params-list", "params-unknown", "output-alpha",
        "top_k-0", "top_k-word"])
def test_multipart_bad_fields(client: TestClient, field: str, value: str, status: int, code: str) -> None:
    response = post(client, "/explain/saliency", files={"file": ("x.png", PNG, "image/png")},
                    data={"model_id": "tiny-image", field: value})
    assert_error(response, status, code)


def test_multipart_text_model(client: TestClient) -> None:
    response = post(client, "/explain/saliency", files={"file": ("x.png", PNG, "image/png")},
                    data={"model_id": "tiny-text"})
    assert_error(response, 422, "wrong_input_kind")


def test_multipart_without_boundary(client: TestClient) -> None:
    response = post_raw(client, b"--x\r\n", content_type="multipart/form-data")
    assert 400 <= response.status_code < 500
    assert_error(response, response.status_code, {"bad_request", "invalid_request", "missing_file"})


def test_multipart_two_files(client: TestClient) -> None:
    response = post(client, "/explain/saliency",
                    files=[("file", ("a.png", PNG, "image/png")), ("file", ("b.png", PNG, "image/png"))],
                    data={"model_id": "tiny-image"})
    assert 400 <= response.status_code < 500
    assert_error(response, response.status_code, {"bad_request", "invalid_request"})


# -- the service stays up -------------------------------------------------------------------------

def test_service_still_answers_after_bad_input(client: TestClient) -> None:
    response = post_json(client, explain_body("image"))
    assert response.status_code == 200
    metrics = client.get("/metrics").text
    assert 'status="200"' in metrics
