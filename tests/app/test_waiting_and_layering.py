"""?wait holds no thread: 60 waiting requests leave /healthz fast. The layering of app, workers, jobqueue."""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np

from app.main import create_app
from app.settings import Settings
from bench.common import serve
from tests.app.conftest import b64, beat_as_a_worker
from tests.conftest import png_bytes

ROOT = Path(__file__).resolve().parents[2]
WAITERS = 60


def test_sixty_waiting_requests_leave_healthz_under_100_ms(tiny_dir: Path, tmp_path: Path) -> None:
    settings = Settings(model_dir=tiny_dir, preload="startup", device="cpu", state_dir=tmp_path / "state",
                        embedded_workers=0, log_level="warning")
    app = create_app(settings)
    image = b64(png_bytes(np.zeros((16, 16, 3), dtype=np.uint8)))

    async def scenario(url: str) -> tuple[list[float], list[int]]:
        async with httpx.AsyncClient(base_url=url, timeout=60, limits=httpx.Limits(max_connections=200)) as client:
            waits = [asyncio.create_task(client.post("/explain/occlusion?wait=8", json={  # 60 different jobs
                "model_id": "tiny-image", "input": {"image": image}, "params": {"window": 6 + i % 12,
                                                                               "stride": 1 + i // 12}}))
                     for i in range(WAITERS)]
            await asyncio.sleep(2.0)  # all of them are held now (no worker runs: the jobs stay queued)
            early = [t.result().text[:300] for t in waits if t.done()]
            assert not early, f"{len(early)} ?wait requests ended early: {early[:2]}"
            latencies = []
            for _ in range(15):
                t0 = time.perf_counter()
                assert (await client.get("/healthz")).status_code == 200
                latencies.append(time.perf_counter() - t0)
                await asyncio.sleep(0.05)
            statuses = [r.status_code for r in await asyncio.gather(*waits)]
        return latencies, statuses

    with serve(app) as url:
        beat_as_a_worker(app, "busy-worker")  # a worker is alive, so ?wait does wait
        latencies, statuses = asyncio.run(scenario(url))
    assert statuses == [202] * WAITERS
    assert statistics.median(latencies) < 0.1, latencies  # the median: one slow sample on a loaded machine is noise
    assert sorted(latencies)[len(latencies) * 3 // 4] < 0.1, latencies


def _imported(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_workers_import_nothing_of_app() -> None:
    code = ("import sys\nimport workers.__main__, workers.tasks, workers.worker, workers.runtime, workers.memory\n"
            "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] == 'app')))\n")
    assert _imported(code) == ""


def test_the_queue_layer_imports_neither_app_nor_workers_and_its_contract_no_torch() -> None:
    code = ("import sys\nimport jobqueue.contract, jobqueue.keys, jobqueue.connection, jobqueue.heartbeat, "
            "jobqueue.reaper, jobqueue.cache, jobqueue.settings, jobqueue.logs, jobqueue.job_metrics\n"
            "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in ('app', 'workers', 'torch'))))\n")
    assert _imported(code) == ""
