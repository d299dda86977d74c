"""One live service for the whole session: `python -m app` on a free port over the shipped demo models,
with an embedded Redis and one worker, so that async methods run. The browser, README, client, CLI
and generated-client tests share it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.live.browser import chrome, screenshots  # noqa: F401  (fixtures for the browser tests)
from tests.workers.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "models"
EXAMPLES = ROOT / "examples"
START_TIMEOUT_S = 180


@dataclass(frozen=True)
class LiveServer:
    url: str
    log: Path

    def tail(self, n: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-n:]


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=5).status_code == 200
    except httpx.TransportError:
        return False


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    port = free_port()
    folder = tmp_path_factory.mktemp("live")
    log = folder / "app.log"
    env = {**os.environ, "XAI_MODEL_DIR": str(MODELS), "XAI_STATE_DIR": str(folder / "state"),
           "XAI_EMBEDDED_WORKERS": "1", "XAI_DEVICE": "cpu", "XAI_PRELOAD": "startup", "XAI_LOG_LEVEL": "warning",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    env.pop("XAI_REDIS_URL", None)
    proc = subprocess.Popen([sys.executable, "-m", "app", "--host", "127.0.0.1", "--port", str(port)], cwd=ROOT,
                            env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    server = LiveServer(f"http://127.0.0.1:{port}", log)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _ready(server.url):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the live service did not become ready:\n{server.tail()}")
            time.sleep(0.3)
        yield server
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
