"""The evidence jobs end to end on a worker process: several methods with an async one, the sanity check
(then answered from its store), and the evaluation table with a region; progress with an error estimate."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image

from app.main import create_app
from app.settings import Settings
from tests.conftest import png_bytes
from tests.workers.conftest import WorkerProcess
from tests.workers.test_jobs import poll, queue_name  # noqa: F401  (fixture)


def image(seed: int) -> dict:
    rgb = np.random.default_rng(seed).integers(0, 256, size=(16, 16, 3), dtype=np.uint8)
    return {"image": base64.b64encode(png_bytes(rgb)).decode()}


def finished(api: TestClient, response, log: Path) -> dict:
    assert response.status_code == 202, response.text
    final = poll(api, response.json()["job_id"], {"finished", "failed"})[-1]
    assert final["status"] == "finished", (final, log.read_text()[-2000:])
    return final


def test_study_jobs_run_on_a_worker(tiny_dir: Path, redis_url, queue_name, tmp_path):  # noqa: F811
    settings = Settings(model_dir=tiny_dir, preload="startup", device="cpu", redis_url=redis_url,
                        queue_name=queue_name, job_retries=0)
    log = tmp_path / "worker.log"
    worker = WorkerProcess(redis_url, tiny_dir, queue_name, log)
    try:
        with TestClient(create_app(settings)) as api:
            body = {"model_id": "tiny-image", "input": {**image(5), "box": [2, 2, 10, 10]},
                    "methods": ["saliency", "rise"], "params": {"rise": {"n_masks": 200, "seed": 3}}}
            multi = finished(api, api.post("/explain", json=body), log)
            assert multi["kind"] == "multi" and multi["progress"] == 1.0
            assert multi["error_estimate"] is not None and multi["error_estimate"] > 0  # RISE's running error
            result = multi["result"]
            assert [e["method"] for e in result["explanations"]] == ["saliency", "rise"]
            assert result["agreement"][0]["methods"] == ["saliency", "rise"]
            assert all("localisation" in e["details"] for e in result["explanations"])
            assert result["explanations"][1]["details"]["model_evaluations"] >= 200

            sanity = {"methods": ["gradcam", "saliency"], "inputs": [image(1), image(2)], "stages": 3}
            first = finished(api, api.post("/models/tiny-image/sanity", json=sanity), log)
            assert first["kind"] == "sanity"
            checked = first["result"]
            assert checked["n_inputs"] == 2 and checked["origin"] == "request inputs"
            assert [m["method"] for m in checked["methods"]] == ["gradcam", "saliency"]
            for method in checked["methods"]:
                assert method["cached"] is False and method["verdict"] in ("passes", "fails")
                assert method["passes"] == (method["verdict"] == "passes")
                assert 1 <= len(method["stages"]) <= 3
                assert all(-1 <= s["spearman"] <= 1 and -1 <= s["ssim"] <= 1 for s in method["stages"])
            again = finished(api, api.post("/models/tiny-image/sanity", json=sanity), log)["result"]
            assert all(m["cached"] for m in again["methods"])
            assert [m["stages"] for m in again["methods"]] == [m["stages"] for m in checked["methods"]]
            listed = {m["name"]: m["sanity"] for m in api.get("/methods").json()["methods"]}
            assert listed["gradcam"]["tiny-image"] == checked["methods"][0]["verdict"]

            evaluation = {"methods": ["saliency", "gradcam"], "quality": {"steps": 6},
                          "inputs": [{**image(7), "box": [0, 0, 8, 8]}, image(8), image(9)]}
            table = finished(api, api.post("/models/tiny-image/evaluate", json=evaluation), log)["result"]
            assert table["n_inputs"] == 3 and table["with_regions"] == 1 and table["settings"]["steps"] == 6
            rows = {r["method"]: r for r in table["rows"]}
            assert set(rows) == {"saliency", "gradcam"}
            for row in rows.values():
                assert row["n"] == 3 and row["failures"] == 0
                for name in ("deletion_auc", "insertion_auc", "random_deletion_auc", "ms_per_explanation"):
                    assert row[name]["mean"] is not None and row[name]["sem"] is not None
                assert row["pointing_game"]["sem"] is None  # one input with a region
                assert row["pointing_game"]["mean"] in (0.0, 1.0)
            assert rows["gradcam"]["evaluations_per_explanation"]["mean"] >= 1
            chart = Image.open(io.BytesIO(base64.b64decode(table["chart_png"])))
            assert chart.format == "PNG" and chart.size[0] > 200
    finally:
        worker.stop()
