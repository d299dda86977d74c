"""Discovery: health, readiness, metrics, models and methods, read against the registries."""

from __future__ import annotations

import json
import re
import shutil
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import annotated_types
import numpy as np
import pytest
from fastapi.testclient import TestClient
from pydantic_core import PydanticUndefined

from explainers.methods import all_methods, local_methods
from explainers.methods._attention import AttentionExplainer
from tests.app.conftest import (
    ANY_TEXT,
    FEATURES,
    LABELS,
    assert_error,
    b64,
    beat_as_a_worker,
    forget_beats,
    make_client,
)
from tests.conftest import png_bytes

MODEL_INFO_KEYS = {"id", "modality", "labels", "input", "methods", "source", "device"}
METHOD_INFO_KEYS = {"scope", "takes", "name", "execution", "modalities", "params", "requires"}
MODALITY = {"tiny-image": "image", "tiny-text": "text", "tiny-tabular": "tabular"}


def methods_for(modality: str) -> list[str]:
    """The local methods of a modality that a tiny bundle takes (none is a transformer)."""
    return sorted(name for name, cls in local_methods().items()
                  if modality in {m.value for m in cls.modalities} and not issubclass(cls, AttentionExplainer))


# -- health and readiness -------------------------------------------------------------------------

def test_healthz(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert {k: v for k, v in body.items() if v is not None} == {"status": "ok"}  # (it adds "reasons": null)


def test_readyz_needs_a_live_worker(client: TestClient) -> None:
    forget_beats(client)
    response = client.get("/readyz")
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["status"] == "not_ready" and set(body["reasons"]) == {"workers"}
    assert body["queue"]["status"] == "ok" and body["workers"] == []
    assert {m: s["status"] for m, s in body["models"].items()} == dict.fromkeys(MODALITY, "ready")
    assert all(m["loaded"] and m["status"] == "ready" for m in client.get("/models").json()["models"])


def test_readyz_when_loaded_and_a_worker_beats(client: TestClient) -> None:
    beat_as_a_worker(client, "w1")
    try:
        response = client.get("/readyz")
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["status"] == "ready" and body["reasons"] is None
        assert [w["name"] for w in body["workers"]] == ["w1"] and body["workers"][0]["state"] == "idle"
    finally:
        forget_beats(client)
    beat_as_a_worker(client, "w-old", age=60)  # a worker silent for a minute is gone
    try:
        assert client.get("/readyz").json()["reasons"] == {"workers": ANY_TEXT}
    finally:
        forget_beats(client)


@pytest.fixture(scope="module")
def empty_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with make_client(tmp_path_factory.mktemp("empty-registry")) as c:
        yield c


def test_readyz_with_no_models(empty_client: TestClient) -> None:
    response = empty_client.get("/readyz")
    assert response.status_code == 503
    assert response.headers["retry-after"].isdigit()
    body = response.json()
    assert body["status"] != "ready"
    assert body["reasons"] and "registry folder" in body["reasons"]["models"]
    assert empty_client.get("/healthz").json()["status"] == "ok"
    assert empty_client.get("/models").json() == {"models": []}
    assert_error(empty_client.post("/explain/saliency", json={"model_id": "tiny-text", "input": {"text": "good"}}),
                 404, "unknown_model")


@pytest.fixture(scope="module")
def broken_dir(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The three tiny bundles plus one whose manifest is valid but whose weights file is garbage,
    and one whose manifest does not parse."""
    root = tmp_path_factory.mktemp("broken-registry")
    for name in ("tiny-image", "tiny-text", "tiny-tabular"):
        shutil.copytree(tiny_dir / name, root / name)
    bad = root / "bad-weights"
    shutil.copytree(tiny_dir / "tiny-image", bad)
    manifest = json.loads((bad / "model.json").read_text())
    manifest["id"] = "bad-weights"
    (bad / "model.json").write_text(json.dumps(manifest))
    (bad / "weights.safetensors").write_bytes(b"\x00garbage, not safetensors" * 10)
    unreadable = root / "bad-manifest"
    shutil.copytree(tiny_dir / "tiny-text", unreadable)
    (unreadable / "model.json").write_text("{this is not json")
    return root


@pytest.fixture(scope="module")
def broken_client(broken_dir: Path) -> Iterator[TestClient]:
    with make_client(broken_dir) as c:  # the broken bundle must not stop the start
        yield c


def test_readyz_with_a_broken_bundle_stays_ready(broken_client: TestClient, broken_dir: Path) -> None:
    beat_as_a_worker(broken_client, "w1")
    try:
        response = broken_client.get("/readyz")
        assert response.status_code == 200, response.text
        models = response.json()["models"]
        assert models["bad-weights"]["status"] == "error" and models["bad-manifest"]["status"] == "error"
        assert models["tiny-image"] == {"status": "ready", "error": None}
        assert str(broken_dir) not in response.text and str(broken_dir.resolve()) not in response.text
        assert "Safetensor" in models["bad-weights"]["error"]
    finally:
        forget_beats(broken_client)


def test_broken_bundle_does_not_take_the_service_down(broken_client: TestClient, image_b64: str) -> None:
    models = {m["id"]: m for m in broken_client.get("/models").json()["models"]}
    assert {"tiny-image", "tiny-text", "tiny-tabular", "bad-weights", "bad-manifest"} == set(models)
    assert models["bad-weights"]["loaded"] is False and models["bad-weights"]["status"] == "error"
    assert models["bad-manifest"]["status"] == "error" and "not json" not in models["bad-manifest"]["error"]
    assert "model.json" in models["bad-manifest"]["error"] and models["bad-manifest"]["modality"] is None
    assert models["bad-weights"]["labels"] == ["red", "green", "blue"]  # complete from its manifest
    assert all(models[i]["loaded"] for i in ("tiny-image", "tiny-text", "tiny-tabular"))
    info = broken_client.get("/models/bad-weights")
    assert info.status_code == 200 and info.json()["loaded"] is False

    for path, body in (("/explain/saliency", {"model_id": "bad-weights", "input": {"image": image_b64}}),
                       ("/models/bad-weights/predict", {"input": {"image": image_b64}})):
        response = broken_client.post(path, json=body)
        assert_error(response, 503, "model_unavailable")
        assert response.headers["retry-after"].isdigit()

    ok = broken_client.post("/explain/saliency", json={"model_id": "tiny-image", "input": {"image": image_b64}})
    assert ok.status_code == 200
    ok = broken_client.post("/explain/saliency", json={"model_id": "tiny-text", "input": {"text": "good plot"}})
    assert ok.status_code == 200
    assert broken_client.get("/models/bad-manifest").json()["status"] == "error"
    assert_error(broken_client.get("/models/no-such-bundle"), 404, "unknown_model")


# -- metrics --------------------------------------------------------------------------------------

def test_metrics_use_route_templates(client: TestClient, image_b64: str) -> None:
    client.get("/models/tiny-text")
    client.get("/models/no-such-model-xyz")
    client.post("/models/tiny-text/predict", json={"input": {"text": "good"}})
    client.post("/explain/saliency", json={"model_id": "tiny-image", "input": {"image": image_b64}})
    client.post("/explain/no_such_method_xyz", json={"model_id": "tiny-image", "input": {"image": image_b64}})
    client.get("/no/such/route/xyz")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert "# TYPE xai_requests_total counter" in text
    samples = [line for line in text.splitlines() if line.startswith("xai_requests_total{")]
    sample = re.compile(r'^xai_requests_total\{route="([^"]*)",method="([A-Z]+)",status="(\d{3})"\} (\d+)$')
    routes = set()
    for line in samples:
        match = sample.match(line)
        assert match, line
        routes.add(match.group(1))
    assert {"/models/{model_id}", "/models/{model_id}/predict", "/explain/{method}"} <= routes
    assert 'route="/models/{model_id}",method="GET",status="404"' in text
    routes_text = "\n".join(samples)
    for raw in ("tiny-text", "no-such-model-xyz", "no_such_method_xyz", "/no/such/route/xyz", "saliency"):
        assert raw not in routes_text, f"raw path part {raw!r} leaked into the route labels"
    assert "no_such_method_xyz" not in text and "no-such-model-xyz" not in text


# -- models ---------------------------------------------------------------------------------------

def test_models_lists_the_three(client: TestClient) -> None:
    response = client.get("/models")
    assert response.status_code == 200
    models = response.json()["models"]
    assert sorted(m["id"] for m in models) == sorted(MODALITY)
    for info in models:
        assert set(info) >= MODEL_INFO_KEYS
        assert info["modality"] == MODALITY[info["id"]]
        assert info["labels"] == LABELS[info["id"]]
        assert sorted(info["methods"]) == methods_for(info["modality"])
        assert info["source"] == "local"
        assert info["device"] == "cpu"
        assert isinstance(info["input"], dict) and info["input"]
        assert client.get(f"/models/{info['id']}").json() == info


def test_model_input_descriptions(client: TestClient) -> None:
    image = client.get("/models/tiny-image").json()["input"]
    assert image["size"] == [16, 16] and image["channels"] == 3
    text = client.get("/models/tiny-text").json()["input"]
    assert text["tokenizer"] == "words"
    tabular = client.get("/models/tiny-tabular").json()["input"]
    features = {f["name"]: f for f in tabular["features"]}
    assert list(features) == list(FEATURES)
    assert features["kind"]["kind"] == "categorical" and features["kind"]["values"] == [0, 1, 2]
    assert features["f0"]["kind"] == "continuous"


def test_unknown_model_info(client: TestClient) -> None:
    error = assert_error(client.get("/models/nope"), 404, "unknown_model")
    assert sorted(error["details"]["known"]) == sorted(MODALITY)


# -- methods --------------------------------------------------------------------------------------

def test_methods_lists_the_registry(client: TestClient) -> None:
    response = client.get("/methods")
    assert response.status_code == 200
    listed = {m["name"]: m for m in response.json()["methods"]}
    registry = all_methods()
    assert set(listed) == set(registry)
    for name, cls in registry.items():
        info = listed[name]
        assert set(info) >= METHOD_INFO_KEYS
        assert info["execution"] == cls.execution.value
        assert info["execution"] in ("sync", "async")
        assert sorted(info["modalities"]) == sorted(m.value for m in cls.modalities)
        assert info["requires"] in ("gradients", "activations", "predictions")
        assert info["requires"] == cls.requires.value
        assert info["local_only"] is cls.needs_module
        assert cls.needs_module or info["requires"] == "predictions"


def _schema_bounds(prop: dict[str, Any]) -> dict[str, Any]:
    """Bounds of a property, looking inside anyOf (optional fields)."""
    found = {k: prop[k] for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "maxLength",
                                  "minLength", "maxItems", "minItems") if k in prop}
    for option in prop.get("anyOf", []):
        found.update(_schema_bounds(option))
    return found


@pytest.mark.parametrize("name", list(all_methods()))
def test_method_params_schema(client: TestClient, name: str) -> None:
    listed = {m["name"]: m for m in client.get("/methods").json()["methods"]}
    schema = listed[name]["params"]
    model = all_methods()[name].Params
    assert schema["type"] == "object"
    assert set(schema["properties"]) == set(model.model_fields)
    assert schema.get("additionalProperties") is False  # unknown keys are rejected
    for field_name, info in model.model_fields.items():
        prop = schema["properties"][field_name]
        if info.default is not PydanticUndefined:
            assert prop["default"] == info.default, field_name
        bounds = _schema_bounds(prop)
        for meta in info.metadata:
            if isinstance(meta, annotated_types.Ge):
                assert bounds["minimum"] == meta.ge, field_name
            if isinstance(meta, annotated_types.Le):
                assert bounds["maximum"] == meta.le, field_name
            if isinstance(meta, annotated_types.MaxLen):
                assert bounds.get("maxLength", bounds.get("maxItems")) == meta.max_length, field_name  # str, list
        if typing.get_origin(info.annotation) is typing.Literal:
            allowed = list(typing.get_args(info.annotation))
            assert prop.get("enum", [prop.get("const")]) == allowed, field_name


def test_integrated_gradients_schema_has_bounds(client: TestClient) -> None:
    listed = {m["name"]: m for m in client.get("/methods").json()["methods"]}
    n_steps = listed["integrated_gradients"]["params"]["properties"]["n_steps"]
    assert n_steps["minimum"] == 1 and n_steps["maximum"] == 1024 and n_steps["default"] == 50
    assert n_steps.get("description")


# -- the registry folder is configurable ----------------------------------------------------------

def test_a_new_bundle_in_a_fresh_folder_shows_up(tiny_dir: Path, tmp_path: Path) -> None:
    shutil.copytree(tiny_dir / "tiny-tabular", tmp_path / "credit")
    manifest = json.loads((tmp_path / "credit" / "model.json").read_text())
    manifest["id"] = "credit-scorer"
    (tmp_path / "credit" / "model.json").write_text(json.dumps(manifest))
    shutil.copytree(tiny_dir / "tiny-image", tmp_path / "tiny-image")
    with make_client(tmp_path) as c:
        assert sorted(m["id"] for m in c.get("/models").json()["models"]) == ["credit-scorer", "tiny-image"]
        beat_as_a_worker(c, "w1")
        assert c.get("/readyz").status_code == 200
        response = c.post("/explain/saliency", json={"model_id": "credit-scorer",
                                                     "input": {"features": dict(FEATURES)}})
        assert response.status_code == 200, response.text[:300]
        assert response.json()["model_id"] == "credit-scorer"
        assert_error(c.get("/models/tiny-tabular"), 404, "unknown_model")


def test_lazy_preload_loads_on_first_use(tiny_dir: Path) -> None:
    with make_client(tiny_dir, preload="lazy") as c:
        before = {m["id"]: m["loaded"] for m in c.get("/models").json()["models"]}
        assert not any(before.values())
        image = png_bytes(np.zeros((8, 8, 3), dtype=np.uint8))
        response = c.post("/explain/saliency", json={"model_id": "tiny-image", "input": {"image": b64(image)}})
        assert response.status_code == 200
        assert c.get("/models/tiny-image").json()["loaded"] is True


def test_readyz_with_an_unreadable_manifest(tiny_dir: Path, tmp_path: Path) -> None:
    shutil.copytree(tiny_dir / "tiny-image", tmp_path / "tiny-image")
    shutil.copytree(tiny_dir / "tiny-text", tmp_path / "tiny-text")
    (tmp_path / "tiny-text" / "model.json").write_text("{this is not json")
    with make_client(tmp_path) as c:
        states = {m["id"]: m["status"] for m in c.get("/models").json()["models"]}
        assert states == {"tiny-image": "ready", "tiny-text": "error"}
        assert c.post("/models/tiny-image/predict",
                      json={"input": {"image": b64(png_bytes(np.zeros((8, 8, 3), dtype=np.uint8)))}}).status_code == 200
        beat_as_a_worker(c, "w1")
        response = c.get("/readyz")
        assert response.status_code == 200  # one model serves
        assert response.json()["models"]["tiny-text"]["status"] == "error"
        assert str(tmp_path) not in response.text
