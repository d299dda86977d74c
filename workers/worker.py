"""The RQ worker: no fork per job (the models stay loaded, CUDA stays usable), heartbeats from a side
thread (a killed worker's job is noticed in seconds), jobs given back on SIGTERM without spending a
retry, canceled jobs stopped quietly, and only the service's own tasks run."""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

from rq import SimpleWorker
from rq.executions import Execution
from rq.job import Job, JobStatus
from rq.queue import Queue

from jobqueue import heartbeat
from jobqueue.contract import TASKS
from workers import memory, tasks

log = logging.getLogger(__name__)

ALLOWED = frozenset(TASKS.values())


class RefusedJob(Exception):
    """A job that names a function other than the service's tasks, or carries callbacks."""


class ExplanationWorker(SimpleWorker):
    """Runs jobs in-process; a heartbeat thread keeps the job's registry entry and the worker's beat alive."""

    heartbeat_ttl = 20  # seconds without a heartbeat before a job counts as abandoned
    heartbeat_every = heartbeat.EVERY_S
    device = "cpu"
    models: dict[str, str] = {}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._giving_back: str | None = None
        self._running: tuple[Job, Execution] | None = None
        self._beat = heartbeat.Heartbeat(self._send_beat, every=self.heartbeat_every)

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        return self.heartbeat_ttl

    # -- life cycle -------------------------------------------------------------------------------
    def bootstrap(self, *args: Any, **kwargs: Any) -> None:
        super().bootstrap(*args, **kwargs)
        if not self._beat.is_alive():
            self._beat.start()

    def teardown(self) -> None:
        self._beat.stop()
        try:
            heartbeat.forget(self.connection, self.queues[0].name, self.name)
        except Exception as exc:  # Redis may be away: the beat expires by itself
            log.debug("could not remove the worker's beat: %s", exc)
        super().teardown()

    def _send_beat(self) -> None:
        running = self._running
        if running is not None:
            self.maintain_heartbeats(*running)
        for queue in self.queues:
            heartbeat.beat(self.connection, queue.name, self.name, {
                "host": socket.gethostname(), "pid": os.getpid(), "device": self.device, "models": self.models,
                "state": "busy" if running else "idle", "job": running[0].id if running else None})

    # -- one job ----------------------------------------------------------------------------------
    def execute_job(self, job: Job, queue: Queue) -> None:
        callbacks = [getattr(job, f"_{kind}_callback_name", None) for kind in ("success", "failure", "stopped")]
        if job.func_name not in ALLOWED or any(callbacks):
            log.error("refusing job %s: it names %r (this worker runs only %s) or carries callbacks",
                      job.id, job.func_name, sorted(ALLOWED))
            self._refuse(job, queue)
            return
        execution = self.prepare_execution(job)
        self._running = (job, execution)
        try:
            self.perform_job(job, queue, execution)
        finally:
            self._running = None
            memory.give_back()
        self.set_state("idle")

    def _refuse(self, job: Job, queue: Queue) -> None:
        job.meta["error"] = {"code": "job_refused", "message": "the job names a function this worker does not run",
                             "details": None}
        job.save_meta()
        with self.connection.pipeline() as pipe:
            job.set_status(JobStatus.FAILED, pipeline=pipe)
            queue.failed_job_registry.add(job, ttl=job.failure_ttl, exc_string="refused", pipeline=pipe)
            pipe.execute()

    def handle_exception(self, job: Job, *exc_info: Any) -> None:
        exc = exc_info[1] if len(exc_info) > 1 else None
        if isinstance(exc, tasks.JobCanceled):
            log.info("job %s canceled by the client", job.id)
            self._stopped_job_id = job.id  # RQ marks it stopped, ends it, retries nothing
            return
        if isinstance(exc, tasks.WorkerShutdown):
            log.info("job %s given back to the queue: the worker is stopping", job.id)
            self._giving_back = job.id
            return
        super().handle_exception(job, *exc_info)

    def handle_job_failure(self, job: Job, queue: Queue, started_job_registry: Any = None, exc_string: str = "",
                           execution: Execution | None = None) -> None:
        if self._giving_back != job.id:
            super().handle_job_failure(job, queue, started_job_registry, exc_string, execution)
            return
        self._giving_back = None
        job.started_at = job.ended_at = None
        job.meta["progress"] = 0.0
        with self.connection.pipeline() as pipe:
            self.cleanup_execution(job, pipeline=pipe, execution=execution)
            job.set_status(JobStatus.QUEUED, pipeline=pipe)
            job.save(pipeline=pipe)
            queue.push_job_id(job.id, pipeline=pipe, at_front=True)
            pipe.execute()

    def request_stop(self, signum: Any, frame: Any) -> None:
        """SIGTERM/SIGINT: the running job gives itself back (no retry spent) and the worker exits."""
        tasks.shutdown.set()
        super().request_stop(signum, frame)
