"""A private Redis server and real worker processes for the queue tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from app.embedded import redis_binary

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Our own redis-server on a free loopback port: nothing another run left can leak in."""
    port = free_port()
    folder = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen([redis_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(folder)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis(port=port)
    for _ in range(200):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(timeout=10)


class WorkerProcess:
    """`python -m workers` as a child process, with its output in a log file."""

    def __init__(self, redis_url: str, model_dir: Path, queue: str, log: Path) -> None:
        env = {**os.environ, "XAI_REDIS_URL": redis_url, "XAI_MODEL_DIR": str(model_dir), "XAI_DEVICE": "cpu",
               "XAI_QUEUE_NAME": queue, "PYTHONPATH": str(ROOT)}
        self.log = log
        self.proc = subprocess.Popen([sys.executable, "-m", "workers"], env=env, cwd=ROOT,
                                     stdout=log.open("ab"), stderr=subprocess.STDOUT)
        self.redis_url, self.queue = redis_url, queue

    def wait_alive(self, redis_url: str, queue: str, timeout: float = 90.0) -> None:
        """Until the worker's heartbeat shows (it has loaded its models and listens)."""
        from jobqueue import heartbeat

        conn = redis.Redis.from_url(redis_url)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(w.get("pid") == self.proc.pid for w in heartbeat.workers(conn, queue)):
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"the worker exited: {self.log.read_text()[-2000:]}")
            time.sleep(0.1)
        raise AssertionError(f"no heartbeat from the worker in {timeout} s: {self.log.read_text()[-2000:]}")

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
