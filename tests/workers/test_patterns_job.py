"""The patterns job end to end: the API queues it, a worker process computes and stores the patterns in the
shared state folder, and the API's patternnet finds them there."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings
from tests.bundles import make_propagation_bundles
from tests.conftest import png_bytes
from tests.workers.conftest import WorkerProcess
from tests.workers.test_jobs import poll, queue_name  # noqa: F401  (fixture)


@pytest.fixture(scope="module")
def bare_dir(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("patterns-registry")
    make_propagation_bundles(root, tiny_dir)
    return root


def image(seed: int) -> dict:
    rgb = np.random.default_rng(seed).integers(0, 256, size=(16, 16, 3), dtype=np.uint8)
    return {"image": base64.b64encode(png_bytes(rgb)).decode()}


def test_patterns_job_stores_patterns_that_the_api_then_uses(bare_dir, redis_url, queue_name, tmp_path):  # noqa: F811
    assert os.environ.get("XAI_STATE_DIR")  # the API and the worker share it (tests/conftest.py sets it)
    settings = Settings(model_dir=bare_dir, preload="startup", device="cpu", redis_url=redis_url,
                        queue_name=queue_name, job_retries=0)
    worker = WorkerProcess(redis_url, bare_dir, queue_name, tmp_path / "worker.log")
    try:
        with TestClient(create_app(settings)) as api:
            body = {"model_id": "tiny-image-bare", "input": image(99)}
            missing = api.post("/explain/patternnet", json=body)
            assert missing.status_code == 409 and missing.json()["error"]["code"] == "patterns_missing"

            r = api.post("/models/tiny-image-bare/patterns", json={"inputs": [image(s) for s in range(6)]})
            assert r.status_code == 202, r.text
            job_id = r.json()["job_id"]
            assert r.headers["location"] == f"/jobs/{job_id}"
            final = poll(api, job_id, {"finished", "failed"})[-1]
            assert final["status"] == "finished", (final, (tmp_path / "worker.log").read_text()[-2000:])
            assert final["kind"] == "patterns" and final["method"] == "patterns"
            result = final["result"]
            assert result["n_samples"] == 6 and result["layers"] == 3 and result["stored"] is True
            assert result["origin"] == "request inputs" and len(result["weights_hash"]) == 64
            for name in ("overlay.png", "attribution.npy"):
                r = api.get(f"/jobs/{job_id}/{name}")
                assert r.status_code == 404 and r.json()["error"]["code"] == "not_an_explanation"

            done = api.post("/explain/patternnet", json=body)
            assert done.status_code == 200, done.text
            assert done.json()["details"]["pattern_samples"] == 6
            assert done.json()["details"]["patterns_from"] == "request inputs"
            waited = api.post("/models/tiny-image-bare/patterns?wait=60", json={"inputs": [image(7)]})
            assert waited.status_code == 200 and waited.json()["n_samples"] == 1
            again = api.post("/explain/pattern_attribution", json=body)  # the newer file replaces the old
            assert again.status_code == 200 and again.json()["details"]["pattern_samples"] == 1
    finally:
        worker.stop()
