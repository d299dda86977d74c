"""The one reaper: jobs whose worker stopped sending heartbeats are retried or failed.

The API and every worker run it (whoever is alive notices); RQ's registry cleanup is idempotent.
"""

from __future__ import annotations

import logging
import threading

import redis
from rq.queue import Queue
from rq.registry import StartedJobRegistry

from jobqueue import heartbeat

log = logging.getLogger(__name__)


def reap(queue: Queue) -> None:
    StartedJobRegistry(queue=queue).cleanup()
    heartbeat.prune(queue.connection, queue.name)


class Reaper(threading.Thread):
    """Every `every` seconds, reap each queue; a Redis outage is waited out quietly."""

    def __init__(self, queues: list[Queue], every: float = 5.0) -> None:
        super().__init__(name="reaper", daemon=True)
        self.queues, self.every = queues, every
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.every):
            for queue in self.queues:
                try:
                    reap(queue)
                except redis.RedisError as exc:
                    log.debug("reaper: Redis does not answer: %s", exc)
                except Exception:
                    log.exception("reaping abandoned jobs failed")

    def stop(self) -> None:
        self.stopped.set()
