"""A schema fuzzer (schemathesis, every check) against the live app: 0 server errors, 0 responses that
break the spec. Bounded: a fixed seed, a few examples per operation, a time budget.

The app runs as `python -m app` over the tiny bundles, with its embedded Redis and one worker (so that
it is ready, and the jobs the fuzzer makes run). `tests/live/schemathesis.toml` says why two checks are
tuned (with the reasons).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.live.conftest import ROOT
from tests.workers.conftest import free_port

CONFIG = Path(__file__).with_name("schemathesis.toml")
MAX_EXAMPLES = 25
MAX_TIME_S = 300  # the run takes well under a minute; this only bounds a hang


@pytest.fixture(scope="module")
def fuzzed_app(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("fuzz")
    port = free_port()
    env = {**os.environ, "XAI_MODEL_DIR": str(tiny_dir), "XAI_STATE_DIR": str(folder / "state"),
           "XAI_EMBEDDED_WORKERS": "1", "XAI_DEVICE": "cpu", "XAI_PRELOAD": "startup", "XAI_LOG_LEVEL": "warning",
           "XAI_MAX_WAIT": "10",  # a ?wait= holds the request at most this long: under the fuzzer's timeout (30 s)
           "PYTHONPATH": str(ROOT)}
    env.pop("XAI_REDIS_URL", None)
    log = folder / "app.log"
    proc = subprocess.Popen([sys.executable, "-m", "app", "--port", str(port)], cwd=ROOT, env=env,
                            stdout=log.open("wb"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the app did not become ready:\n{log.read_text()[-3000:]}")
            time.sleep(0.3)
        yield url
        assert "Traceback" not in log.read_text(), log.read_text()[-3000:]
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_the_fuzzer_finds_no_server_error_and_no_schema_violation(fuzzed_app: str, tmp_path: Path) -> None:
    st = shutil.which("schemathesis", path=str(Path(sys.executable).parent)) or "schemathesis"
    command = [st, "--config-file", str(CONFIG), "run", f"{fuzzed_app}/openapi.json", "--checks", "all",
               "--exclude-checks", "use_after_free",  # DELETE cancels; see schemathesis.toml
               "--max-examples", str(MAX_EXAMPLES), "--seed", "20260901", "--workers", "1", "--no-shrink",
               "--request-timeout", "30", "--suppress-health-check", "all",
               "--report", "junit", "--report-dir", str(tmp_path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=MAX_TIME_S + 120, cwd=tmp_path)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-6000:]
    summary = out.split("SUMMARY")[-1]
    assert "Failures:" not in summary and "Server error" not in out, out[-6000:]
    tested = [line for line in out.splitlines() if "Tested:" in line]
    assert tested and int(tested[0].split()[-1]) >= 15, out[-3000:]  # every operation of the spec was tried
