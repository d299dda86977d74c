"""Several inputs as one job on a worker process: progress over the inputs, the list body, the cache."""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings
from tests.conftest import png_bytes
from tests.workers.conftest import WorkerProcess
from tests.workers.test_jobs import poll, queue_name  # noqa: F401  (fixture)


def image(seed: int) -> dict:
    rgb = np.random.default_rng(seed).integers(0, 256, size=(16, 16, 3), dtype=np.uint8)
    return {"image": base64.b64encode(png_bytes(rgb)).decode()}


def test_a_list_of_inputs_is_one_job(tiny_dir: Path, redis_url, queue_name, tmp_path):  # noqa: F811
    settings = Settings(model_dir=tiny_dir, preload="startup", device="cpu", redis_url=redis_url,
                        queue_name=queue_name, job_retries=0)
    log = tmp_path / "worker.log"
    worker = WorkerProcess(redis_url, tiny_dir, queue_name, log)
    params = {"window": 4, "stride": 4}
    inputs = [image(1), image(2), image(3)]
    try:
        with TestClient(create_app(settings)) as api:
            r = api.post("/explain/occlusion", json={"model_id": "tiny-image", "inputs": inputs, "params": params})
            assert r.status_code == 202, r.text
            states = poll(api, r.json()["job_id"], {"finished", "failed"})
            final = states[-1]
            assert final["status"] == "finished", (final, log.read_text()[-2000:])
            assert final["kind"] == "batch" and final["method"] == "occlusion" and final["progress"] == 1.0
            result = final["result"]
            assert len(result["explanations"]) == 3
            assert all(e["details"]["batched"] == {"inputs": 3} for e in result["explanations"])
            assert all(e["details"]["model_evaluations"] == 17 for e in result["explanations"])  # 16 windows + 1
            # each entry is now in the cache under its own single-input key
            one = api.post("/explain/occlusion", json={"model_id": "tiny-image", "input": inputs[1], "params": params})
            assert one.status_code == 200 and one.json()["details"]["cached"] is True
            assert one.json()["attribution"] == result["explanations"][1]["attribution"]
            assert "batched" not in one.json()["details"]
            # and the whole list again answers from the cache at once
            again = api.post("/explain/occlusion", json={"model_id": "tiny-image", "inputs": inputs,
                                                          "params": params})
            assert again.status_code == 200
            assert [e["details"]["cached"] for e in again.json()["explanations"]] == [True] * 3
            assert api.get(f"/jobs/{r.json()['job_id']}/overlay.png").status_code == 404  # not an explanation
            bad = api.post("/explain/occlusion?async=true", json={"model_id": "tiny-image",
                                                                   "inputs": [image(4), {"image": "x"}]})
            assert bad.status_code == 400 and bad.json()["error"]["details"]["input_index"] == 1
    finally:
        worker.stop()
