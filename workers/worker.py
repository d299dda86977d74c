"""The RQ worker: no fork per job (the models stay loaded, CUDA stays usable), heartbeats
from a side thread so that a killed worker's job is noticed in seconds, and a reaper that
retries or fails such jobs."""

from __future__ import annotations

import logging
import threading
from typing import Any

from rq import SimpleWorker
from rq.executions import Execution
from rq.job import Job
from rq.queue import Queue
from rq.registry import StartedJobRegistry

from workers import tasks

log = logging.getLogger(__name__)


class ExplanationWorker(SimpleWorker):
    """Runs jobs in-process; a heartbeat thread keeps the job's registry entry alive."""

    heartbeat_ttl = 20  # seconds without a heartbeat before a job counts as abandoned
    heartbeat_every = 5.0

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        return self.heartbeat_ttl

    def execute_job(self, job: Job, queue: Queue) -> None:
        execution = self.prepare_execution(job)
        stop = threading.Event()
        beat = threading.Thread(target=self._beat, args=(job, execution, stop), name="heartbeat", daemon=True)
        beat.start()
        try:
            self.perform_job(job, queue, execution)
        finally:
            stop.set()
            beat.join(timeout=10)
        self.set_state("idle")

    def _beat(self, job: Job, execution: Execution, stop: threading.Event) -> None:
        while not stop.wait(self.heartbeat_every):
            try:
                self.maintain_heartbeats(job, execution)
            except Exception:  # a missed beat is retried; the reaper tolerates a few
                log.exception("heartbeat failed")

    def request_stop(self, signum: Any, frame: Any) -> None:
        """SIGTERM/SIGINT: the running job gives itself back (RQ retry) and the worker exits."""
        tasks.shutdown.set()
        super().request_stop(signum, frame)


class Reaper(threading.Thread):
    """Every few seconds, retry or fail the jobs of workers that stopped sending heartbeats."""

    def __init__(self, queues: list[Queue], every: float = 5.0) -> None:
        super().__init__(name="reaper", daemon=True)
        self.queues, self.every = queues, every
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.every):
            for queue in self.queues:
                try:
                    StartedJobRegistry(queue=queue).cleanup()
                except Exception:
                    log.exception("reaping abandoned jobs failed")
