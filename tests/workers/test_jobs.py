"""Async methods end to end: a real Redis, real worker processes, the real app over HTTP."""

from __future__ import annotations

import base64
import io
import json
import shutil
import signal
import time
import uuid
import zlib
from pathlib import Path

import numpy as np
import pytest
import redis
from fastapi.testclient import TestClient
from PIL import Image

from app.main import create_app
from app.settings import Settings
from explainers.serialize import decode_array
from tests.bundles import make_slow_bundle
from tests.conftest import png_bytes
from tests.workers.conftest import WorkerProcess, free_port

LONG = {"n_masks": 2000, "batch_size": 1}  # on slow-image (5 ms a call): a RISE job of 10 s or more


def image_body(model_id: str = "tiny-image", **params) -> dict:
    rgb = np.random.default_rng(0).integers(0, 256, size=(20, 28, 3), dtype=np.uint8)
    return {"model_id": model_id, "input": {"image": base64.b64encode(png_bytes(rgb)).decode()},
            "params": params}


def long_body(**params) -> dict:
    return image_body("slow-image", **{**LONG, **params})


@pytest.fixture
def queue_name() -> str:
    return f"test-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def jobs_dir(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny bundles plus slow-image."""
    root = tmp_path_factory.mktemp("jobs-registry")
    for bundle in tiny_dir.iterdir():
        shutil.copytree(bundle, root / bundle.name)
    make_slow_bundle(root)
    return root


@pytest.fixture
def api(jobs_dir: Path, redis_url: str, queue_name: str):
    settings = Settings(model_dir=jobs_dir, preload="startup", device="cpu", redis_url=redis_url,
                        queue_name=queue_name, job_retries=1)
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture
def worker_factory(jobs_dir: Path, redis_url: str, queue_name: str, tmp_path: Path):
    started: list[WorkerProcess] = []

    def start(wait: bool = True) -> WorkerProcess:
        w = WorkerProcess(redis_url, jobs_dir, queue_name, tmp_path / f"worker{len(started)}.log")
        started.append(w)
        if wait:
            w.wait_alive(redis_url, queue_name)
        return w

    yield start
    for w in started:
        w.stop()


def poll(api: TestClient, job_id: str, until: set[str], timeout: float = 120.0) -> list[dict]:
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = api.get(f"/jobs/{job_id}").json()
        seen.append(state)
        if state["status"] in until:
            return seen
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} still {seen[-1]['status']} after {timeout}s")


def submit(api: TestClient, method: str = "occlusion", body: dict | None = None, **kw) -> str:
    r = api.post(f"/explain/{method}", json=body or image_body(), **kw)
    assert r.status_code == 202, r.text
    assert r.headers["location"] == f"/jobs/{r.json()['job_id']}"
    assert r.json()["status"] == "queued" and r.json()["links"]["self"] == r.headers["location"]
    return r.json()["job_id"]


def test_job_runs_to_finished_with_growing_progress_and_result_files(api, worker_factory):
    worker_factory()
    job_id = submit(api, "rise", image_body(n_masks=3000, batch_size=8, seed=3))
    states = poll(api, job_id, {"finished", "failed"})
    final = states[-1]
    assert final["status"] == "finished", final
    progress = [s["progress"] for s in states]
    assert progress == sorted(progress) and progress[-1] == 1.0
    assert any(0 < p < 1 for p in progress), progress  # seen mid-way
    result = final["result"]
    assert result["method"] == "rise" and result["model_id"] == "tiny-image"
    attribution = decode_array(result["attribution"])
    assert attribution.shape == (20, 28) and np.isfinite(attribution).all()
    npy = np.load(io.BytesIO(api.get(f"/jobs/{job_id}/attribution.npy").content), allow_pickle=False)
    np.testing.assert_array_equal(npy, attribution)
    png = Image.open(io.BytesIO(api.get(f"/jobs/{job_id}/overlay.png").content))
    assert png.format == "PNG" and png.width == 280 and png.height > 200  # enlarged 10x, legend under it
    # The same seed in-process gives the same map: the result does not depend on who ran it.
    direct = api.app.state.service.explain("rise", "tiny-image", {"image": png_bytes(
        np.random.default_rng(0).integers(0, 256, size=(20, 28, 3), dtype=np.uint8))},
        params={"n_masks": 3000, "batch_size": 8, "seed": 3})
    np.testing.assert_array_equal(decode_array(direct["attribution"]), attribution)


def test_wait_returns_the_explanation_and_list_encoding_is_honoured(api, worker_factory):
    worker_factory()
    body = image_body(window=4, stride=4) | {"output": {"attribution": "list"}}
    r = api.post("/explain/occlusion?wait=60", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["method"] == "occlusion" and isinstance(r.json()["attribution"]["data"], list)


def test_wait_answers_at_once_with_a_hint_when_no_worker_runs(api):
    t0 = time.monotonic()
    r = api.post("/explain/occlusion?wait=30", json=image_body())
    assert r.status_code == 202 and time.monotonic() - t0 < 5
    assert r.json()["details"]["workers"] == 0 and "worker" in r.json()["details"]["hint"]
    assert api.get(f"/jobs/{r.json()['job_id']}").json()["status"] == "queued"
    assert api.get("/readyz").json()["reasons"]["workers"]


def test_bad_requests_fail_at_once_and_enqueue_nothing(api, queue_name, redis_url):
    conn = redis.Redis.from_url(redis_url)
    before = conn.llen(f"rq:queue:{queue_name}")
    for body, code in [(image_body(window=100000), "invalid_params"),
                       (image_body(not_a_param=1), "invalid_params"),
                       ({**image_body(), "model_id": "nope"}, "unknown_model"),
                       ({**image_body(), "input": {"image": "not base64!"}}, "invalid_image"),
                       ({**image_body(), "target": 99}, "invalid_target")]:
        r = api.post("/explain/occlusion", json=body)
        assert 400 <= r.status_code < 500 and r.json()["error"]["code"] == code, r.text
    assert api.post("/explain/rise", json={"model_id": "tiny-text", "input": {"text": "good"}}).json()[
        "error"]["code"] == "method_not_supported_for_model"
    assert conn.llen(f"rq:queue:{queue_name}") == before


def test_job_payload_is_json_and_results_expire(api, redis_url, worker_factory):
    conn = redis.Redis.from_url(redis_url)
    job_id = submit(api)
    data = json.loads(zlib.decompress(conn.hget(f"rq:job:{job_id}", "data")))
    assert "workers.tasks.explain_job" in json.dumps(data)
    worker_factory()
    assert poll(api, job_id, {"finished"})[-1]["status"] == "finished"
    assert 0 < conn.ttl(f"rq:job:{job_id}") <= api.app.state.settings.result_ttl
    assert api.get("/jobs/0123456789abcdef").status_code == 404
    assert api.get("/jobs/0123456789abcdef").json()["error"]["code"] == "job_not_found"


def test_cancel_a_queued_job(api):
    job_id = submit(api)
    r = api.delete(f"/jobs/{job_id}")
    assert r.status_code == 200 and r.json()["status"] == "canceled"
    assert api.get(f"/jobs/{job_id}/overlay.png").json()["error"]["code"] == "job_not_finished"


def test_cancel_a_running_job_stops_it_within_seconds(api, worker_factory):
    worker_factory()
    job_id = submit(api, "rise", long_body())
    poll(api, job_id, {"started"}, timeout=60)
    t0 = time.monotonic()
    assert api.delete(f"/jobs/{job_id}").status_code == 200
    final = poll(api, job_id, {"canceled", "finished", "failed"}, timeout=30)[-1]
    assert final["status"] == "canceled" and time.monotonic() - t0 < 10, final
    # The worker is free again: a new job runs.
    assert poll(api, submit(api), {"finished"})[-1]["status"] == "finished"


def test_a_sigkilled_worker_loses_nothing(api, worker_factory):
    first = worker_factory()
    job_id = submit(api, "rise", long_body())
    poll(api, job_id, {"started"}, timeout=60)
    first.signal(signal.SIGKILL)
    worker_factory()  # a new worker picks up the retried job
    t0 = time.monotonic()
    states = poll(api, job_id, {"finished", "failed"}, timeout=120)
    assert states[-1]["status"] == "finished", states[-1]
    assert states[-1]["attempts"] == 2
    assert time.monotonic() - t0 < 120


def test_a_sigkilled_worker_without_retries_left_fails_the_job_with_a_reason(jobs_dir, redis_url, queue_name,
                                                                               worker_factory):
    settings = Settings(model_dir=jobs_dir, preload="startup", device="cpu", redis_url=redis_url,
                        queue_name=queue_name, job_retries=0)
    with TestClient(create_app(settings)) as api:
        w = worker_factory()
        job_id = submit(api, "rise", long_body())
        poll(api, job_id, {"started"}, timeout=60)
        w.signal(signal.SIGKILL)
        final = poll(api, job_id, {"finished", "failed"}, timeout=120)[-1]
        assert final["status"] == "failed" and final["error"]["code"] == "worker_lost", final


def test_sigterm_gives_the_running_job_back_and_the_worker_exits(api, worker_factory):
    first = worker_factory()
    job_id = submit(api, "rise", long_body())
    poll(api, job_id, {"started"}, timeout=60)
    first.signal(signal.SIGTERM)
    first.proc.wait(timeout=30)
    state = api.get(f"/jobs/{job_id}").json()
    assert state["status"] == "queued", state
    worker_factory()
    assert poll(api, job_id, {"finished", "failed"}, timeout=120)[-1]["status"] == "finished"


def test_redis_down_at_submit_is_a_503_with_retry_after(tiny_dir):
    settings = Settings(model_dir=tiny_dir, preload="startup", device="cpu",
                        redis_url=f"redis://127.0.0.1:{free_port()}/0")
    with TestClient(create_app(settings)) as api:
        t0 = time.monotonic()
        r = api.post("/explain/occlusion", json=image_body())
        assert r.status_code == 503 and r.json()["error"]["code"] == "queue_unavailable"
        assert int(r.headers["retry-after"]) > 0 and time.monotonic() - t0 < 5
        assert api.get("/readyz").status_code == 503
        assert api.post("/explain/gradcam", json=image_body()).status_code == 200  # sync still answers


def test_the_plain_rq_cli_runs_our_jobs(api, redis_url, queue_name, jobs_dir):
    """`rq worker -w workers.worker.ExplanationWorker -S json ...` works as the README says."""
    import os
    import subprocess
    import sys

    from tests.workers.conftest import ROOT

    job_id = submit(api, body=image_body(window=4, stride=4))
    env = {**os.environ, "XAI_MODEL_DIR": str(jobs_dir), "XAI_DEVICE": "cpu", "PYTHONPATH": str(ROOT)}
    rq = Path(sys.executable).with_name("rq")
    subprocess.run([str(rq), "worker", "-w", "workers.worker.ExplanationWorker", "-S", "json", "-u", redis_url,
                    "--burst", queue_name], env=env, cwd=ROOT, check=True, timeout=120, capture_output=True)
    assert api.get(f"/jobs/{job_id}").json()["status"] == "finished"


def test_a_job_past_its_timeout_fails_with_a_reason_and_is_not_retried(jobs_dir, redis_url, queue_name,
                                                                       worker_factory):
    settings = Settings(model_dir=jobs_dir, preload="startup", device="cpu", redis_url=redis_url,
                        queue_name=queue_name, job_retries=2, job_timeout=10)
    with TestClient(create_app(settings)) as api:
        worker_factory()
        job_id = submit(api, "rise", long_body(n_masks=6000))
        t0 = time.monotonic()
        final = poll(api, job_id, {"finished", "failed"}, timeout=90)[-1]
        assert final["status"] == "failed" and final["error"]["code"] == "job_timeout", final
        assert final["attempts"] == 1 and time.monotonic() - t0 < 40
