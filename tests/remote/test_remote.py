"""Remote models on a model server: the same predictions and explanations as their local twins from
batched infer calls, gradient methods refused, and clear errors when the server is down, slow or wrong.

Tolerances: a twin computes the same function in other arithmetic (scikit-learn in float64 against
torch in float32; numpy's einsum against torch's convolution), so its probabilities differ by < 1e-6
(measured: 6e-8 tabular, 7e-7 image logits). Occlusion and RISE are differences and averages of
probabilities: 1e-5. LIME and KernelSHAP solve weighted least-squares problems on them, which can
amplify the gaps by the problem's condition number: 1e-4. The largest attribution gap seen in these
cases is 2.4e-7. Anchors only compares top classes: the same anchor, precision and coverage.
"""

from __future__ import annotations

import base64
import json
import math
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings
from explainers.errors import ServiceError
from explainers.methods import local_methods
from explainers.models.manifest import Manifest
from explainers.models.registry import ModelRegistry
from explainers.models.remote import ModelServerError, ModelServerUnavailable, RemoteModel, V2Client
from explainers.serialize import OutputOptions, decode_array
from explainers.service import ExplanationService
from explainers.types import Requires
from tests.conftest import png_bytes
from tests.remote.conftest import (
    DOWN_IMG,
    DOWN_TAB,
    FAILING,
    IMG,
    IMG_MAX_BATCH,
    IMG_NHWC,
    IMG_REMOTE,
    MALFORMED,
    MISSING,
    NOT_JSON,
    QUICK,
    ROOT,
    SLOW,
    TAB,
    TAB_REMOTE,
    TEXT,
    TEXT_REMOTE,
    FakeV2Server,
)

TEXT_INPUT = "The movie was not good, the plot was awful."
TWINS = {"tabular": (TAB, TAB_REMOTE), "image": (IMG, IMG_REMOTE), "text": (TEXT, TEXT_REMOTE),
         "image-nhwc": (IMG, IMG_NHWC)}
FAST_S = 3.0  # a broken server is reported within this


@pytest.fixture(scope="session")
def service(remote_dir: Path) -> ExplanationService:
    return ExplanationService(ModelRegistry(remote_dir, device="cpu"))


@pytest.fixture(scope="session")
def api(remote_dir: Path) -> Iterator[TestClient]:
    settings = Settings(model_dir=remote_dir, preload="startup", device="cpu", embedded_workers=0,
                        log_level="warning")
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture(scope="session")
def inputs(rgb_image: np.ndarray) -> dict[str, dict[str, Any]]:
    folder = ROOT / "models" / TAB
    names = [f["name"] for f in json.loads((folder / "model.json").read_text())["tabular"]["features"]]
    background = np.load(folder / "background.npy")
    row = 0.4 * background[93] + 0.6 * background[84]  # between a malignant and a benign case: p(benign) 0.71
    image = {"image": base64.b64encode(png_bytes(rgb_image)).decode("ascii")}
    return {"tabular": {"features": dict(zip(names, map(float, row)))}, "image": image, "image-nhwc": image,
            "text": {"text": TEXT_INPUT}}


def black_box(modality: str) -> set[str]:
    """Methods that need only predictions: not white-box ones, nor Score-CAM (it reads a layer)."""
    return {name for name, cls in local_methods().items() if cls.requires is Requires.PREDICTIONS
            and name != "scorecam" and modality in {m.value for m in cls.modalities}}


class Recorder:
    """Wraps a remote model's forward and its client's infer: rows per forward, rows per request."""

    def __init__(self, model: RemoteModel, monkeypatch: pytest.MonkeyPatch) -> None:
        self.forwards: list[tuple[int, int]] = []  # (rows, infer requests) of each forward
        self.requests: list[int] = []
        forward, infer = model.forward, model.client.infer

        def recorded_infer(batch: np.ndarray) -> np.ndarray:
            self.requests.append(len(batch))
            return infer(batch)

        def recorded_forward(batch: Any) -> Any:
            before = len(self.requests)
            out = forward(batch)
            self.forwards.append((len(batch), len(self.requests) - before))
            return out

        monkeypatch.setattr(model.client, "infer", recorded_infer)
        monkeypatch.setattr(model, "forward", recorded_forward)


def explain(service: ExplanationService, method: str, model_id: str, payload: dict[str, Any],
            params: dict[str, Any]) -> dict[str, Any]:
    return service.explain(method, model_id, payload, params=params,
                           output=OutputOptions(overlay=False, attribution="base64"))


# -- discovery ---------------------------------------------------------------------------------------
def test_models_lists_remote_models_with_black_box_methods_only(api: TestClient) -> None:
    models = {m["id"]: m for m in api.get("/models").json()["models"]}
    for kind, (local, remote) in TWINS.items():
        modality = kind.split("-")[0]
        assert models[remote]["source"] == "remote" and models[remote]["device"] == "remote"
        assert set(models[remote]["methods"]) == black_box(modality), remote
        assert models[local]["source"] == "local" and models[local]["device"] == "cpu"
        assert {"saliency", "integrated_gradients"} <= set(models[local]["methods"])
    assert {"occlusion", "rise", "lime", "kernel_shap", "anchors", "shapley_sampling", "cle"} == black_box("image")
    info = api.get(f"/models/{IMG_REMOTE}").json()
    assert info["input"]["server"] == {"protocol": "v2", "model_name": IMG, "model_version": "1",
                                       "max_batch": IMG_MAX_BATCH}
    assert info["input"]["size"] == [16, 16] and info["labels"] == models[IMG]["labels"]


def test_remote_models_load_without_their_server_and_report_it(remote_dir: Path) -> None:
    t0 = time.monotonic()
    registry = ModelRegistry(remote_dir, device="cpu")
    assert registry.load_all() == {}  # no bundle needs its server to load
    assert time.monotonic() - t0 < 10
    down = registry.remote_status()
    assert {DOWN_TAB, DOWN_IMG, MISSING} <= set(down)
    assert not {TAB_REMOTE, IMG_REMOTE, TEXT_REMOTE} & set(down)
    assert "does not report" in down[DOWN_TAB]


# -- predictions and explanations equal the local twin's ------------------------------------------------
@pytest.mark.parametrize("kind", list(TWINS))
def test_predict_on_the_remote_twin_equals_local(api: TestClient, inputs: dict[str, Any], kind: str) -> None:
    local, remote = TWINS[kind]
    body = {"input": inputs[kind], "top_k": 3}
    a, b = api.post(f"/models/{local}/predict", json=body), api.post(f"/models/{remote}/predict", json=body)
    assert a.status_code == 200 and b.status_code == 200, b.text
    pa, pb = a.json()["predictions"], b.json()["predictions"]
    assert [p["index"] for p in pa] == [p["index"] for p in pb]
    np.testing.assert_allclose([p["score"] for p in pb], [p["score"] for p in pa], atol=1e-4)


CASES = [
    ("tabular", "occlusion", {"n_background": 20}, 1e-5),
    ("tabular", "lime", {"n_samples": 200}, 1e-4),
    ("tabular", "kernel_shap", {"n_samples": 200, "n_background": 20}, 1e-4),
    ("tabular", "anchors", {"n_background": 100, "max_evaluations": 3000, "coverage_samples": 1000}, 0.0),
    ("image", "occlusion", {"window": 4, "stride": 4}, 1e-5),
    ("image", "rise", {"n_masks": 200, "batch_size": 32}, 1e-5),
    ("image", "lime", {"n_samples": 150, "segmentation": "grid", "n_segments": 16}, 1e-4),
    ("image", "kernel_shap", {"n_samples": 128, "segmentation": "grid", "n_segments": 16, "max_exact_features": 0},
     1e-4),
    ("image-nhwc", "occlusion", {"window": 8, "stride": 4}, 1e-5),
    ("text", "occlusion", {}, 1e-5),
    ("text", "lime", {"n_samples": 100}, 1e-4),
    ("tabular", "shapley_sampling", {"n_permutations": 6, "n_background": 10, "max_exact_features": 0}, 1e-4),
    ("image", "cle", {"n_samples": 120, "segmentation": "grid", "n_segments": 9}, 1e-4),
]


@pytest.mark.parametrize(("kind", "method", "params", "atol"), CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_black_box_explanation_on_the_remote_twin_equals_local(
        service: ExplanationService, inputs: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
        kind: str, method: str, params: dict[str, Any], atol: float) -> None:
    local, remote = TWINS[kind]
    model = service.registry.get(remote)
    assert isinstance(model, RemoteModel)
    calls = Recorder(model, monkeypatch)
    a = explain(service, method, local, inputs[kind], params)
    b = explain(service, method, remote, inputs[kind], params)

    assert [p["index"] for p in a["predictions"]] == [p["index"] for p in b["predictions"]]
    np.testing.assert_allclose([p["score"] for p in b["predictions"]], [p["score"] for p in a["predictions"]],
                               atol=1e-4)
    assert a["target"]["index"] == b["target"]["index"]
    np.testing.assert_allclose(decode_array(b["attribution"]), decode_array(a["attribution"]), atol=atol, rtol=0)
    if method == "anchors":
        assert b["details"]["anchor"] == a["details"]["anchor"]
        assert b["details"]["precision"] == pytest.approx(a["details"]["precision"])
        assert b["details"]["coverage"] == pytest.approx(a["details"]["coverage"])

    # Batched: each forward sends ceil(rows / max_batch) requests of at most max_batch rows, and every
    # evaluation (plus the one forward that finds the target) is one row of one request.
    evaluations = b["details"]["model_evaluations"]
    max_batch = model.spec.max_batch
    assert sum(calls.requests) == sum(rows for rows, _ in calls.forwards) == evaluations + 1
    assert max(calls.requests) <= max_batch
    assert all(n == math.ceil(rows / max_batch) for rows, n in calls.forwards), calls.forwards
    assert len(calls.requests) <= math.ceil(evaluations / max_batch) + len(calls.forwards)
    if method == "rise":  # 200 masks in forwards of 32 rows, 16 rows per request, plus the target's forward
        assert len(calls.requests) == 1 + 2 * 6 + 1


def test_global_black_box_methods_on_the_remote_twin_equal_local(service: ExplanationService) -> None:
    """Rule extraction reads only predictions: on the remote twin it finds the same rules."""
    body = {"params": {"max_depth": 2, "n_perturbed": 200}}
    a = service.explain_model("rule_extraction", TAB, body)
    b = service.explain_model("rule_extraction", TAB_REMOTE, body)
    assert [r["text"] for r in a["rules"]] == [r["text"] for r in b["rules"]]
    assert a["details"]["fidelity"] == b["details"]["fidelity"]
    assert "rule_extraction" in service.model_info(TAB_REMOTE)["global_methods"]
    assert service.model_info(IMG_REMOTE)["global_methods"] == []  # each reads a layer of image models


# -- what a remote model cannot do ------------------------------------------------------------------------
@pytest.mark.parametrize(("method", "model_id", "kind"), [
    ("saliency", IMG_REMOTE, "image"), ("gradcam", IMG_REMOTE, "image"), ("scorecam", IMG_REMOTE, "image"),
    ("integrated_gradients", TAB_REMOTE, "tabular"), ("smoothgrad", TEXT_REMOTE, "text")])
def test_gradient_methods_on_a_remote_model_are_422(api: TestClient, inputs: dict[str, Any], method: str,
                                                    model_id: str, kind: str) -> None:
    r = api.post(f"/explain/{method}", json={"model_id": model_id, "input": inputs[kind]})
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "method_not_supported_for_model"
    assert "model server" in error["message"] and method not in error["details"]["methods_for_model"]


# -- a server that is down, slow or wrong -------------------------------------------------------------
@pytest.mark.parametrize(("model_id", "kind"), [(DOWN_TAB, "tabular"), (DOWN_IMG, "image")])
def test_predict_with_the_server_down_is_503_with_retry_after(api: TestClient, inputs: dict[str, Any],
                                                              model_id: str, kind: str) -> None:
    t0 = time.monotonic()
    r = api.post(f"/models/{model_id}/predict", json={"input": inputs[kind]})
    assert time.monotonic() - t0 < FAST_S
    assert r.status_code == 503 and r.headers["Retry-After"]
    error = r.json()["error"]
    assert error["code"] == "model_server_unavailable"
    assert "connection failed" in error["message"] and error["details"]["attempts"] == QUICK["retries"] + 1


def test_explain_with_the_server_down_raises_a_service_error(service: ExplanationService,
                                                             inputs: dict[str, Any]) -> None:
    """The worker stores a ServiceError's {code, message} on the job and does not retry it."""
    t0 = time.monotonic()
    with pytest.raises(ModelServerUnavailable) as caught:
        explain(service, "occlusion", DOWN_TAB, inputs["tabular"], {"n_background": 5})
    assert time.monotonic() - t0 < FAST_S
    assert isinstance(caught.value, ServiceError) and caught.value.status == 503
    assert caught.value.to_dict()["code"] == "model_server_unavailable"


def test_an_async_job_with_the_server_down_fails_with_the_reason(
        api: TestClient, service: ExplanationService, inputs: dict[str, Any],
        monkeypatch: pytest.MonkeyPatch) -> None:
    from rq.serializers import JSONSerializer

    from workers import tasks
    from workers.worker import ExplanationWorker

    r = api.post("/explain/occlusion", json={"model_id": DOWN_IMG, "input": inputs["image"]})
    assert r.status_code == 202, r.text  # checked and queued: the server is not asked before the job runs
    job_id = r.json()["job_id"]
    queue = api.app.state.service.jobs.queue  # type: ignore[attr-defined]
    monkeypatch.setattr(tasks, "_service", service)
    worker = ExplanationWorker([queue], connection=queue.connection, serializer=JSONSerializer)
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        worker.work(burst=True, with_scheduler=False)  # in this process: runs workers.tasks.explain_job
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    state = api.get(f"/jobs/{job_id}").json()
    assert state["status"] == "failed"
    assert state["error"]["code"] == "model_server_unavailable" and "unavailable" in state["error"]["message"]


@pytest.mark.parametrize(("model_id", "status", "code", "says", "attempts"), [
    (SLOW, 503, "model_server_unavailable", "no answer within", QUICK["retries"] + 1),
    (FAILING, 503, "model_server_unavailable", "HTTP 500", QUICK["retries"] + 1),
    (MALFORMED, 502, "model_server_error", "5 scores per row for 3 labels", 1),
    (NOT_JSON, 502, "model_server_error", "is not JSON", 1),
    (MISSING, 502, "model_server_error", "HTTP 404", 1),
])
def test_a_slow_failing_or_wrong_server_is_a_clear_error(api: TestClient, fake_server: FakeV2Server,
                                                          model_id: str, status: int, code: str, says: str,
                                                          attempts: int) -> None:
    before = fake_server.hits[model_id]
    t0 = time.monotonic()
    r = api.post(f"/models/{model_id}/predict", json={"input": {"features": [0.5, -1.0, 0.25, 2]}})
    assert time.monotonic() - t0 < FAST_S
    assert r.status_code == status, r.text
    assert ("Retry-After" in r.headers) == (status == 503)
    error = r.json()["error"]
    assert error["code"] == code and says in error["message"], error
    assert fake_server.hits[model_id] - before == attempts  # 4xx and bad bodies are not retried


def answer(body: Any, status: int = 200) -> httpx.MockTransport:
    return httpx.MockTransport(lambda request: httpx.Response(status, json=body))


@pytest.mark.parametrize(("body", "says"), [
    ({"no": "outputs"}, "no 'outputs' list"),
    ({"outputs": []}, "no 'outputs' list"),
    ({"outputs": [{"name": "other", "shape": [2, 3], "datatype": "FP32", "data": [0] * 6}]}, "no output named"),
    ({"outputs": [{"name": "p", "shape": [3, 3], "datatype": "FP32", "data": [0] * 9}]}, "for a batch of 2 rows"),
    ({"outputs": [{"name": "p", "shape": [2, 3], "datatype": "FP32", "data": [0] * 5}]}, "holds 5 numbers"),
    ({"outputs": [{"name": "p", "shape": [2, 3], "datatype": "BYTES", "data": ["a"] * 6}]}, "not numeric"),
    ({"outputs": [{"name": "p", "shape": [2, 3], "datatype": "FP32", "data": ["a"] * 6}]}, "not a flat list"),
])
def test_malformed_infer_answers_are_model_server_errors(body: Any, says: str) -> None:
    spec = Manifest.model_validate(json.loads((ROOT / "models" / TAB / "model.json").read_text()) | {
        "architecture": None, "weights": None, "architecture_kwargs": {},
        "remote": {"url": "http://model-server", "model_name": "m", "input_name": "x", "datatype": "FP32",
                   "layout": "features", "output_name": "p", "retries": 0}}).remote
    assert spec is not None
    client = V2Client(spec, transport=answer(body))
    with pytest.raises(ModelServerError, match=says):
        client.infer(np.zeros((2, 30), dtype=np.float32))
    assert client.infer_requests == 1 and client.infer_rows == 2


# -- the manifest --------------------------------------------------------------------------------------
def _manifest(**changes: Any) -> dict[str, Any]:
    data = json.loads((ROOT / "models" / TAB / "model.json").read_text())
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


REMOTE = {"url": "http://127.0.0.1:8080", "model_name": "m", "input_name": "x", "datatype": "FP32",
          "layout": "features"}


@pytest.mark.parametrize(("changes", "says"), [
    ({"remote": REMOTE}, "takes no 'architecture'"),
    ({"architecture": None, "architecture_kwargs": None, "weights": None}, "either 'architecture' and 'weights'"),
    ({"architecture": None, "architecture_kwargs": None, "weights": None, "remote": {**REMOTE, "layout": "NCHW"}},
     "remote.layout"),
    ({"architecture": None, "architecture_kwargs": None, "weights": None, "remote": {**REMOTE, "datatype": "INT64"}},
     "remote.datatype"),
    ({"architecture": None, "architecture_kwargs": None, "weights": None, "remote": {**REMOTE, "retries": 9}},
     "less than or equal to 5"),
    ({"architecture": None, "architecture_kwargs": None, "weights": None, "remote": {**REMOTE, "url": "ftp://x"}},
     "should match pattern"),
    ({"architecture": None, "architecture_kwargs": None, "weights": None, "output": "logits",
      "remote": {**REMOTE, "output": "probabilities"}}, "disagree"),
])
def test_bad_remote_manifests_are_rejected(changes: dict[str, Any], says: str) -> None:
    with pytest.raises(ValueError, match=says):
        Manifest.model_validate(_manifest(**changes))


def test_a_remote_manifest_takes_its_output_kind_from_the_remote_section() -> None:
    m = Manifest.model_validate(_manifest(architecture=None, architecture_kwargs=None, weights=None,
                                          remote={**REMOTE, "output": "probabilities"}))
    assert m.output == "probabilities" and m.is_remote and m.remote is not None and m.remote.max_batch == 64
