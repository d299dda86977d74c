"""Targets on a worker: a list of targets as one job (one set of evaluations for all), and a segmentation
model's region target run by an async method."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings
from explainers.serialize import decode_array
from tests.conftest import png_bytes
from tests.workers.conftest import WorkerProcess
from tests.workers.test_jobs import poll, queue_name  # noqa: F401  (fixture)

ROOT = Path(__file__).resolve().parents[2]


def test_target_lists_and_region_targets_run_as_jobs(tiny_dir: Path, redis_url, queue_name, tmp_path):  # noqa: F811
    models = tmp_path / "models"
    shutil.copytree(tiny_dir / "tiny-image", models / "tiny-image")
    shutil.copytree(ROOT / "models" / "shapes-seg", models / "shapes-seg")
    settings = Settings(model_dir=models, preload="startup", device="cpu", redis_url=redis_url,
                        queue_name=queue_name, job_retries=0)
    log = tmp_path / "worker.log"
    worker = WorkerProcess(redis_url, models, queue_name, log)
    rgb = np.random.default_rng(4).integers(0, 256, size=(16, 16, 3), dtype=np.uint8)
    image = {"image": base64.b64encode(png_bytes(rgb)).decode()}
    params = {"n_masks": 200, "seed": 5}
    try:
        with TestClient(create_app(settings)) as api:
            r = api.post("/explain/rise", json={"model_id": "tiny-image", "input": image, "target": [2, 0],
                                                "params": params})
            assert r.status_code == 202, r.text
            final = poll(api, r.json()["job_id"], {"finished", "failed"})[-1]
            assert final["status"] == "finished", (final["error"], log.read_text()[-1500:])
            result = final["result"]
            assert [e["target"]["index"] for e in result["targets"]] == [2, 0]
            assert result["details"]["model_evaluations"] == result["targets"][0]["details"]["model_evaluations"]
            assert result["targets"][1]["details"]["model_evaluations"] == 0  # the first target's served both
            direct = api.app.state.service.explain("rise", "tiny-image", image, target=0, params=params)  # type: ignore[attr-defined]
            np.testing.assert_allclose(decode_array(result["targets"][1]["attribution"]),
                                       decode_array(direct["attribution"]), rtol=1e-5, atol=1e-7)
            assert api.get(f"/jobs/{r.json()['job_id']}/overlay.png").status_code == 404  # one per target

            shape = base64.b64encode((ROOT / "examples" / "shape-2.png").read_bytes()).decode()
            target = {"class": "circle", "box": [8, 8, 56, 56]}
            r = api.post("/explain/rise", json={"model_id": "shapes-seg", "input": {"image": shape},
                                                "target": target, "params": params})
            assert r.status_code == 202, r.text
            final = poll(api, r.json()["job_id"], {"finished", "failed"})[-1]
            assert final["status"] == "finished", (final["error"], log.read_text()[-1500:])
            assert final["result"]["target"]["label"] == "circle"
            assert final["result"]["details"]["explained"] == "logits"
            direct = api.app.state.service.explain("rise", "shapes-seg", {"image": shape}, target=target,  # type: ignore[attr-defined]
                                                   params=params)
            np.testing.assert_allclose(decode_array(final["result"]["attribution"]),
                                       decode_array(direct["attribution"]), rtol=1e-5, atol=1e-7)
            bad = api.post("/explain/rise", json={"model_id": "shapes-seg", "input": {"image": shape},
                                                  "target": {"class": "circle", "box": [0, 0, 500, 10]}})
            assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_region"  # at once, no job
    finally:
        worker.stop()
