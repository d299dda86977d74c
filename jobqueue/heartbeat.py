"""Heartbeats: a worker says it is alive (and what it runs) every few seconds; the API counts them.

A worker's beat is one field of a Redis hash per queue, `name -> {"at", "host", "pid", "state", "job",
"device", "models"}`; a worker whose last beat is older than `ALIVE_S` counts as gone. The beat runs
on a side thread, so that a worker busy with a long job, or killed, is told apart in seconds.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import redis

from jobqueue import keys

log = logging.getLogger(__name__)

ALIVE_S = 15.0  # a worker silent for longer counts as gone
EVERY_S = 5.0


def beat(connection: redis.Redis, queue: str, name: str, state: dict[str, Any]) -> None:
    connection.hset(keys.WORKERS.format(queue=queue), name, json.dumps({**state, "at": time.time()}))


def forget(connection: redis.Redis, queue: str, name: str) -> None:
    connection.hdel(keys.WORKERS.format(queue=queue), name)


def workers(connection: redis.Redis, queue: str, *, now: float | None = None) -> list[dict[str, Any]]:
    """Every worker that beat within `ALIVE_S`, with its last state (`name` added)."""
    now = time.time() if now is None else now
    out = []
    for name, raw in connection.hgetall(keys.WORKERS.format(queue=queue)).items():
        try:
            state = json.loads(raw)
        except ValueError:
            continue
        if now - float(state.get("at", 0)) <= ALIVE_S:
            out.append({"name": name.decode() if isinstance(name, bytes) else str(name), **state})
    return sorted(out, key=lambda w: w["name"])


def prune(connection: redis.Redis, queue: str, older_than: float = 3600.0) -> int:
    """Drop the beats of workers gone for more than `older_than` seconds."""
    key = keys.WORKERS.format(queue=queue)
    stale = [name for name, raw in connection.hgetall(key).items()
             if time.time() - float(_at(raw)) > older_than]
    return int(connection.hdel(key, *stale)) if stale else 0


def _at(raw: bytes | str) -> float:
    try:
        return float(json.loads(raw).get("at", 0))
    except (ValueError, AttributeError):
        return 0.0


class Heartbeat(threading.Thread):
    """Calls `send` every `every` seconds until stopped; a failed beat (Redis away) is logged and retried."""

    def __init__(self, send: Callable[[], None], every: float = EVERY_S, name: str = "heartbeat") -> None:
        super().__init__(name=name, daemon=True)
        self.send, self.every = send, every
        self.stopped = threading.Event()
        self.failures = 0

    def run(self) -> None:
        while True:
            try:
                self.send()
                if self.failures:
                    log.info("heartbeat: Redis answers again after %d missed beats", self.failures)
                self.failures = 0
            except redis.RedisError as exc:
                self.failures += 1
                if self.failures in (1, 10) or self.failures % 60 == 0:
                    log.warning("heartbeat: Redis does not answer (%s); retrying", exc)
            except Exception:
                log.exception("heartbeat failed")
            if self.stopped.wait(self.every):
                return

    def stop(self) -> None:
        self.stopped.set()
