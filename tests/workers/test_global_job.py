"""Global jobs end to end: the API queues them, a worker process runs them, the job's result is the
GlobalExplanation (rules, images), and the files of explanation jobs are refused for them."""

from __future__ import annotations

import base64
import io
from pathlib import Path

from fastapi.testclient import TestClient
from PIL import Image

from app.main import create_app
from app.settings import Settings
from tests.workers.conftest import WorkerProcess
from tests.workers.test_jobs import poll, queue_name  # noqa: F401  (fixture)


def test_global_jobs_run_on_a_worker(tiny_dir: Path, redis_url, queue_name, tmp_path):  # noqa: F811
    settings = Settings(model_dir=tiny_dir, preload="startup", device="cpu", redis_url=redis_url,
                        queue_name=queue_name, job_retries=0)
    worker = WorkerProcess(redis_url, tiny_dir, queue_name, tmp_path / "worker.log")
    try:
        worker.wait_alive(redis_url, queue_name)  # `?wait` with no worker alive answers the 202 at once
        with TestClient(create_app(settings)) as api:
            waited = api.post("/models/tiny-tabular/global/rule_extraction?wait=60",
                              json={"params": {"max_depth": 2, "n_perturbed": 300}})
            assert waited.status_code == 200, (waited.text, (tmp_path / "worker.log").read_text()[-2000:])
            result = waited.json()
            assert result["scope"] == "global" and result["method"] == "rule_extraction" and result["rules"]
            assert 0.0 <= result["details"]["fidelity"] <= 1.0
            assert all(len(r["conditions"]) <= 2 for r in result["rules"])

            r = api.post("/models/tiny-image/global/activation_maximisation",
                         json={"target": "green", "params": {"n_steps": 4, "n_images": 2}})
            assert r.status_code == 202, r.text
            job_id = r.json()["job_id"]
            final = poll(api, job_id, {"finished", "failed"})[-1]
            assert final["status"] == "finished", (final, (tmp_path / "worker.log").read_text()[-2000:])
            assert final["kind"] == "global" and final["method"] == "activation_maximisation"
            images = final["result"]["images"]
            assert [g["label"] for g in images] == ["green", "green"]
            assert Image.open(io.BytesIO(base64.b64decode(images[0]["png"]))).size == (16, 16)
            for name in ("overlay.png", "attribution.npy"):
                refused = api.get(f"/jobs/{job_id}/{name}")
                assert refused.status_code == 404 and refused.json()["error"]["code"] == "not_an_explanation"
    finally:
        worker.stop()
