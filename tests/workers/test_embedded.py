"""The embedded default: no Redis configured, the app starts its own Redis and a worker."""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings
from tests.conftest import png_bytes
from tests.workers.conftest import ROOT, free_port

BODY = {"model_id": "tiny-image", "params": {"window": 4, "stride": 4},
        "input": {"image": base64.b64encode(png_bytes(
            np.random.default_rng(1).integers(0, 256, size=(16, 16, 3), dtype=np.uint8))).decode()}}


def wait_until(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_embedded_redis_and_a_supervised_worker(tiny_dir: Path, tmp_path: Path):
    settings = Settings(model_dir=tiny_dir, preload="startup", device="cpu", redis_url=None,
                        state_dir=tmp_path / "state", embedded_workers=1)
    with TestClient(create_app(settings)) as api:
        assert api.get("/readyz").json()["reasons"].get("workers"), "ready before the worker is"
        wait_until(lambda: api.get("/readyz").status_code == 200, 60, "the worker's first heartbeat")
        assert [w["state"] for w in api.get("/readyz").json()["workers"]] == ["idle"]
        r = api.post("/explain/occlusion?wait=90", json=BODY)
        assert r.status_code == 200, r.text
        supervisor = api.app.state.service.supervisor
        old = supervisor.processes[0]
        old.send_signal(signal.SIGKILL)
        wait_until(lambda: supervisor.restarts == 1 and supervisor.alive() == 1, 30, "the worker's restart")
        assert supervisor.processes[0].pid != old.pid
        assert api.post("/explain/occlusion?wait=90", json=BODY).status_code == 200
        redis_process = api.app.state.service.embedded.process
    assert redis_process.poll() is not None  # shut down with the app
    assert all(p.poll() is not None for p in supervisor.processes)


def test_python_dash_m_app_serves_everything_on_its_defaults(tiny_dir: Path, tmp_path: Path):
    port = free_port()
    env = {**os.environ, "XAI_MODEL_DIR": str(tiny_dir), "XAI_STATE_DIR": str(tmp_path / "state"),
           "XAI_EMBEDDED_WORKERS": "1", "XAI_DEVICE": "cpu", "PYTHONPATH": str(ROOT)}
    env.pop("XAI_REDIS_URL", None)
    proc = subprocess.Popen([sys.executable, "-m", "app", "--port", str(port)], cwd=ROOT, env=env,
                            stdout=(tmp_path / "app.log").open("wb"), stderr=subprocess.STDOUT)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=100) as client:
            def ready() -> bool:
                try:
                    return client.get("/readyz").status_code == 200
                except httpx.TransportError:
                    return False
            wait_until(ready, 90, "readiness")
            assert client.get("/healthz").json()["status"] == "ok"
            assert client.post("/explain/gradcam", json={**BODY, "params": {}}).status_code == 200
            assert client.post("/explain/occlusion?wait=90", json=BODY).status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) is not None
