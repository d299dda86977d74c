"""The task RQ runs: thin. The worker process holds the loaded service; this only calls it."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from rq import get_current_job
from rq.job import Job
from rq.timeouts import JobTimeoutException

from app.jobs import CANCEL_KEY  # the API sets it to stop a running job
from explainers.errors import ServiceError
from explainers.serialize import OutputOptions
from explainers.service import ExplanationService

log = logging.getLogger(__name__)

_service: ExplanationService | None = None
shutdown = threading.Event()  # set on SIGTERM: the running job gives itself back to the queue


class JobCanceled(Exception):
    """The client canceled the job."""


class WorkerShutdown(Exception):
    """The worker is stopping; RQ's retry puts the job back on the queue."""


def set_service(service: ExplanationService) -> None:
    global _service
    _service = service


def service() -> ExplanationService:
    """The process's service, built from the XAI_* settings on first use (when run by `rq worker`)."""
    global _service
    if _service is None:
        from workers.runtime import build_service

        _service = build_service()
    return _service


class JobProgress:
    """Progress callback: writes job.meta['progress'] (throttled), honours cancel and shutdown."""

    def __init__(self, job: Job, interval: float = 0.25) -> None:
        self.job = job
        self.interval = interval
        self._last = 0.0
        self._cancel_key = CANCEL_KEY.format(job.id)

    def __call__(self, fraction: float) -> None:
        now = time.monotonic()
        if now - self._last < self.interval and fraction < 1.0:
            return
        self._last = now
        if self.job.connection.exists(self._cancel_key):
            raise JobCanceled()
        if shutdown.is_set():
            raise WorkerShutdown()
        self.job.meta["progress"] = round(max(float(self.job.meta.get("progress", 0.0)), min(fraction, 1.0)), 4)
        self.job.save_meta()


def _run(work: Callable[[JobProgress], dict[str, Any]]) -> dict[str, Any]:
    """Run a job's work with progress; record why it failed on the job, and whether to retry."""
    job = get_current_job()
    assert job is not None, "tasks run inside an RQ job"
    job.meta["progress"] = 0.0
    job.save_meta()
    try:
        return work(JobProgress(job))
    except JobCanceled:
        job.retries_left = None  # a canceled job is not retried
        job.meta.update({"canceled": True, "error": {"code": "canceled", "message": "canceled by the client",
                                                     "details": None}})
        job.save_meta()
        raise
    except ServiceError as exc:  # deterministic: retrying cannot help
        job.retries_left = None
        job.meta["error"] = exc.to_dict()
        job.save_meta()
        raise
    except JobTimeoutException:  # it would time out again: no retry
        job.retries_left = None
        job.meta["error"] = {"code": "job_timeout", "message": f"the job ran past its limit of {job.timeout} s",
                             "details": {"timeout_s": job.timeout}}
        job.save_meta()
        raise


def explain_job(payload: dict[str, Any]) -> dict[str, Any]:
    """Run one explanation; the result is the contract's Explanation (attribution as base64)."""
    options = OutputOptions.from_dict(payload.get("output") or {}, attribution="base64")
    return _run(lambda progress: service().explain(
        payload["method"], payload["model_id"], payload["input"], target=payload.get("target"),
        params=payload.get("params"), output=options, top_k=payload.get("top_k", 5), progress=progress))


def patterns_job(payload: dict[str, Any]) -> dict[str, Any]:
    """Compute and store a model's patterns from the payload's inputs (else the bundle's samples)."""
    return _run(lambda progress: service().compute_patterns(payload["model_id"], payload.get("inputs"), progress))
