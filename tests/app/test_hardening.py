"""Bad input found by fuzzing, models that fail at load, size bounds, request ids and logs, the sync cache."""

from __future__ import annotations

import io
import json
import logging
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from jobqueue.logs import ContextFilter, JsonFormatter
from tests.app.conftest import FEATURES, assert_error, b64, make_client
from tests.conftest import png_bytes

PNG = png_bytes(np.random.default_rng(2).integers(0, 256, size=(20, 28, 3), dtype=np.uint8))


# -- bad input ------------------------------------------------------------------------------------

@pytest.mark.parametrize("job_id", ["x", "0" * 32 + "0", "../../etc", "rq:job:abc", "%00", "é" * 40, "a" * 5000,
                                    "0123456789ABCDEF0123456789ABCDEF"])
def test_job_ids_of_any_shape_are_404(client: TestClient, job_id: str) -> None:
    for method, path in (("GET", f"/jobs/{job_id}"), ("DELETE", f"/jobs/{job_id}"),
                         ("GET", f"/jobs/{job_id}/overlay.png"), ("GET", f"/jobs/{job_id}/attribution.npy")):
        assert_error(client.request(method, path), 404, {"job_not_found", "not_found"})


@pytest.mark.parametrize("field,value", [("top_k", "١٢"), ("top_k", "²"), ("top_k", "1_0"), ("top_k", " 3"),
                                         ("top_k", "99999999999999999999999")])
def test_multipart_numbers_must_be_plain_decimals(client: TestClient, field: str, value: str) -> None:
    response = client.post("/explain/saliency", files={"file": ("x.png", PNG, "image/png")},
                           data={"model_id": "tiny-image", field: value})
    assert_error(response, 422, "invalid_request")


@pytest.mark.parametrize("target", ["²", "٣", "-0x1"])
def test_multipart_targets_that_are_not_decimals_are_labels(client: TestClient, target: str) -> None:
    response = client.post("/explain/saliency", files={"file": ("x.png", PNG, "image/png")},
                           data={"model_id": "tiny-image", "target": target})
    assert_error(response, 422, "invalid_target")


@pytest.mark.parametrize("path,body", [
    ("/explain/saliency", '{"model_id": "tiny-text", "input": {"text": "good \\ud800 plot"}}'),
    ("/explain/occlusion", '{"model_id": "tiny-text", "input": {"text": "\\udfff"}}'),
    ("/explain/saliency", '{"model_id": "tiny-\\ud83d", "input": {"text": "good"}}'),
    ("/explain/saliency", '{"model_id": "tiny-text", "input": {"text": "good"}, "target": "\\ud800"}'),
    ("/explain/gradcam", '{"model_id": "tiny-image", "input": {"image": "x"}, "params": {"layer": "\\udc00"}}'),
    ("/models/tiny-text/predict", '{"input": {"text": "\\ud800"}}'),
    ("/models/tiny-tabular/predict", '{"input": {"features": {"\\ud800": 1}}}'),
])
def test_text_utf8_cannot_carry_is_a_422(client: TestClient, path: str, body: str) -> None:
    response = client.post(path, content=body, headers={"content-type": "application/json"})
    error = assert_error(response, 422, "invalid_unicode")
    assert error["details"]


def test_a_lone_surrogate_never_makes_a_job(client: TestClient) -> None:
    before = client.get("/jobs", params={"limit": 1000}).json()["jobs"]
    body = '{"model_id": "tiny-text", "input": {"text": "a \\ud800 b"}, "params": {"seed": 1}}'
    assert_error(client.post("/explain/kernel_shap", content=body, headers={"content-type": "application/json"}),
                 422, "invalid_unicode")
    assert client.get("/jobs", params={"limit": 1000}).json()["jobs"] == before


@pytest.mark.parametrize("value", ["3.5e38", "-1e39", "1e300"])
def test_features_beyond_float32_are_refused(client: TestClient, value: str) -> None:
    body = f'{{"model_id": "tiny-tabular", "input": {{"features": [{value}, 0, 0, 1]}}}}'
    for path in ("/explain/saliency", "/explain/kernel_shap"):
        error = assert_error(client.post(path, content=body, headers={"content-type": "application/json"}),
                             422, "invalid_features")
        assert error["details"]["invalid"] == ["f0"]


def test_features_the_model_overflows_on_are_a_422_not_nan(client: TestClient) -> None:
    body = {"model_id": "tiny-tabular", "input": {"features": {**FEATURES, "f0": 3.0e38, "f1": -3.0e38}}}
    response = client.post("/explain/integrated_gradients", json=body)
    assert_error(response, 422, "non_finite_output")


@pytest.mark.parametrize("method,path,allow", [
    ("PUT", "/jobs/0123456789abcdef0123456789abcdef", "DELETE, GET, HEAD"),
    ("PATCH", "/models", "GET, HEAD"), ("GET", "/explain/saliency", "POST"), ("FOO", "/models", "GET, HEAD"),
    ("DELETE", "/static/css/app.css", "GET, HEAD")])
def test_405_says_what_is_allowed(client: TestClient, method: str, path: str, allow: str) -> None:
    response = client.request(method, path)
    assert_error(response, 405, "method_not_allowed")
    assert response.headers["allow"] == allow


def test_metrics_do_not_grow_with_invented_verbs(client: TestClient) -> None:
    for verb in ("FOO", "BAR", "XYZZY", "PROPFIND"):
        client.request(verb, "/models")
    text = client.get("/metrics").text
    assert 'method="OTHER"' in text
    assert not any(v in text for v in ("FOO", "BAR", "XYZZY", "PROPFIND"))


def test_bad_content_length_through_a_real_socket_is_json(tiny_dir: Path, tmp_path: Path) -> None:
    from app.main import create_app
    from app.settings import Settings
    from bench.common import serve

    app = create_app(Settings(model_dir=tiny_dir, preload="lazy", state_dir=tmp_path / "s", embedded_workers=0,
                              log_level="warning"))
    with serve(app) as url:
        port = int(url.rsplit(":", 1)[1])
        for length in (b"lots", b"-1", b"1, 2", b"0x10"):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                s.sendall(b"POST /explain/saliency HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                          b"Content-Length: " + length + b"\r\n\r\n{}")
                raw = b""
                while chunk := s.recv(65536):
                    raw += chunk
            head, _, body = raw.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 400"), raw[:200]
            assert b"application/json" in head.lower()
            assert json.loads(body)["error"]["code"] in ("bad_request", "bad_content_length")


# -- models fail loudly at load -------------------------------------------------------------------

@pytest.fixture(scope="module")
def load_dir(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("load-registry")
    shutil.copytree(tiny_dir / "tiny-image", root / "tiny-image")
    wrong = root / "too-many-labels"
    shutil.copytree(tiny_dir / "tiny-image", wrong)
    manifest = json.loads((wrong / "model.json").read_text())
    (wrong / "model.json").write_text(json.dumps({**manifest, "id": "too-many-labels",
                                                  "labels": ["a", "b", "c", "d"]}))
    for name, factor in (("twin-a", 1.0), ("twin-b", -1.0)):  # two bundles, one module file name, two models
        folder = root / name
        folder.mkdir()
        (folder / "net.py").write_text(
            "import torch\nfrom torch import nn\n\n"
            "class Net(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
            "        self.fc = nn.Linear(4, 2)\n\n    def forward(self, x):\n"
            f"        return self.fc(x) * {factor}\n\n\ndef build():\n    return Net()\n")
        torch = pytest.importorskip("torch")
        from safetensors.torch import save_file

        torch.manual_seed(0)
        save_file({k: v.contiguous() for k, v in torch.nn.Linear(4, 2).state_dict().items()
                   for k in [f"fc.{k}"]}, str(folder / "weights.safetensors"))
        np.save(folder / "background.npy", np.zeros((4, 4), dtype=np.float32))
        (folder / "model.json").write_text(json.dumps({
            "id": name, "modality": "tabular", "architecture": "net:build", "weights": "weights.safetensors",
            "labels": ["no", "yes"], "tabular": {"features": [{"name": f"x{i}"} for i in range(4)]}}))
    return root


def test_a_model_whose_outputs_do_not_match_its_labels_fails_at_load(load_dir: Path) -> None:
    with make_client(load_dir) as c:
        info = c.get("/models/too-many-labels").json()
        assert info["status"] == "error" and "[1, 4]" in info["error"] and "[1, 3]" in info["error"]
        assert str(load_dir) not in info["error"]
        assert_error(c.post("/explain/saliency", json={"model_id": "too-many-labels",
                                                       "input": {"image": b64(PNG)}}), 503, "model_unavailable")
        assert c.get("/models/tiny-image").json()["status"] == "ready"


def test_bundles_whose_module_files_share_a_name_do_not_collide(load_dir: Path) -> None:
    with make_client(load_dir) as c:
        row = {"features": [1.0, 2.0, 3.0, 4.0]}
        a = c.post("/explain/saliency", json={"model_id": "twin-a", "input": row}).json()
        b = c.post("/explain/saliency", json={"model_id": "twin-b", "input": row}).json()
        assert a["target"]["index"] != b["target"]["index"]  # the second's factor -1 flips the scores


def test_model_info_is_complete_before_the_weights_load(tiny_dir: Path) -> None:
    with make_client(tiny_dir, preload="lazy") as c:
        info = c.get("/models/tiny-tabular").json()
        assert info["loaded"] is False and info["status"] == "not_loaded"
        assert [f["name"] for f in info["input"]["features"]] == list(FEATURES)
        assert info["input"]["background_size"] == 32
        assert c.get("/models/tiny-text").json()["input"]["vocab_size"] == 12


# -- size bounds ----------------------------------------------------------------------------------

def test_maps_and_pictures_of_a_large_image_are_bounded(tiny_dir: Path) -> None:
    big = png_bytes(np.random.default_rng(0).integers(0, 256, size=(1500, 2400, 3), dtype=np.uint8))
    with make_client(tiny_dir, max_map_side=600) as c:
        body = c.post("/explain/gradcam", json={"model_id": "tiny-image", "input": {"image": b64(big)},
                                                "output": {"caption": False, "colorbar": False}}).json()
    assert body["attribution"]["shape"] == [375, 600]
    assert body["details"]["scale"] == 0.25 and body["details"]["input_size"] == [1500, 2400]
    import base64

    from PIL import Image

    picture = Image.open(io.BytesIO(base64.b64decode(body["overlay_png"])))
    assert max(picture.size) <= 600


def test_batches_are_split_to_fit_the_budget(tiny_dir: Path) -> None:
    with make_client(tiny_dir, max_batch_elements=16 * 16 * 3 * 8) as c:  # eight 16x16 images per pass
        body = c.post("/explain/integrated_gradients", json={
            "model_id": "tiny-image", "input": {"image": b64(PNG)}, "params": {"batch_size": 64}}).json()
    assert body["details"]["batch_size"] == {"requested": 64, "used": 8}


def test_a_result_over_the_size_cap_is_refused(tiny_dir: Path) -> None:
    with make_client(tiny_dir, max_result_bytes=70_000) as c:
        response = c.post("/explain/saliency", json={"model_id": "tiny-image", "input": {"image": b64(PNG)},
                                                     "output": {"attribution": "list", "size": 2048}})
        error = assert_error(response, 422, "result_too_large")
        assert error["details"]["max_bytes"] == 70_000


# -- request ids and logs -------------------------------------------------------------------------

def test_every_response_carries_a_request_id(client: TestClient) -> None:
    ids = {client.get("/healthz").headers["x-request-id"], client.get("/nope").headers["x-request-id"]}
    assert len(ids) == 2 and all(len(i) == 32 for i in ids)
    assert client.get("/models", headers={"X-Request-ID": "abc-123"}).headers["x-request-id"] == "abc-123"
    assert client.get("/models", headers={"X-Request-ID": "bad id\n"}).headers["x-request-id"] != "bad id\n"
    error = client.post("/explain/saliency", content=b"{", headers={"content-type": "application/json",
                                                                     "X-Request-ID": "rid-7"})
    assert error.status_code == 400 and error.headers["x-request-id"] == "rid-7"


def test_json_logs_carry_the_request_id_and_the_explanation(client: TestClient) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(ContextFilter())
    logger = logging.getLogger("app.explain")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)  # the test app logs warnings only
    try:
        client.post("/explain/saliency", json={"model_id": "tiny-text", "input": {"text": "good plot"}},
                    headers={"X-Request-ID": "trace-42"})
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    line = json.loads(stream.getvalue().strip().splitlines()[-1])
    assert line["request_id"] == "trace-42" and line["message"] == "explanation"
    assert line["model"] == "tiny-text" and line["method"] == "saliency" and line["status"] == "ok"
    assert line["evaluations"] >= 0 and line["duration_ms"] > 0 and line["level"] == "info"


# -- the cache of sync explanations -----------------------------------------------------------------

def test_sync_results_are_cached_only_when_asked(tiny_dir: Path, client: TestClient, tmp_path: Path) -> None:
    body = {"model_id": "tiny-text", "input": {"text": "good plot"}}
    assert [client.post("/explain/saliency", json=body).json()["details"]["cached"] for _ in range(2)] == [False] * 2
    with make_client(tiny_dir, cache_sync=True, state_dir=tmp_path / "s") as c:
        first, second = (c.post("/explain/saliency", json=body).json() for _ in range(2))
        other = c.post("/explain/saliency", json={**body, "output": {"attribution": "list"}}).json()
    assert first["details"]["cached"] is False and second["details"]["cached"] is True
    assert second["attribution"] == first["attribution"] and other["details"]["cached"] is False
