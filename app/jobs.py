"""The job client: enqueue explanations on RQ, read their state, cancel them (no torch here)."""

from __future__ import annotations

import time
import uuid
from datetime import datetime
from http import HTTPStatus
from typing import Any

import redis
from rq import Queue, Retry
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.registry import StartedJobRegistry
from rq.serializers import JSONSerializer

from explainers.errors import ServiceError

TASK = "workers.tasks.explain_job"
TASKS = {"explanation": TASK, "patterns": "workers.tasks.patterns_job"}  # job kind -> the task that runs it
CANCEL_KEY = "xai:cancel:{}"
_STATUS = {JobStatus.QUEUED: "queued", JobStatus.DEFERRED: "queued", JobStatus.SCHEDULED: "queued",
           JobStatus.STARTED: "started", JobStatus.FINISHED: "finished", JobStatus.FAILED: "failed",
           JobStatus.STOPPED: "canceled", JobStatus.CANCELED: "canceled"}


class QueueUnavailable(ServiceError):
    code, status = "queue_unavailable", HTTPStatus.SERVICE_UNAVAILABLE


class JobNotFound(ServiceError):
    code, status = "job_not_found", HTTPStatus.NOT_FOUND


class JobNotFinished(ServiceError):
    code, status = "job_not_finished", HTTPStatus.CONFLICT


def connect(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=10, health_check_interval=30)


class JobClient:
    """One RQ queue of explanation jobs with JSON payloads, TTLs and retries."""

    def __init__(self, connection: redis.Redis, queue_name: str, *, job_timeout: int, result_ttl: int,
                 failure_ttl: int, retries: int) -> None:
        self.connection = connection
        self.queue = Queue(queue_name, connection=connection, serializer=JSONSerializer)
        self.job_timeout, self.result_ttl = job_timeout, result_ttl
        self.failure_ttl, self.retries = failure_ttl, retries

    def ping(self) -> None:
        try:
            self.connection.ping()
        except redis.RedisError as exc:
            raise QueueUnavailable(f"the job queue is unreachable: {exc}") from None

    def submit(self, payload: dict[str, Any], kind: str = "explanation") -> str:
        """Enqueue a job of a kind (an explanation; patterns of a model); returns its id."""
        job_id = uuid.uuid4().hex
        method = payload.get("method", kind)
        try:
            self.queue.enqueue(TASKS[kind], payload, job_id=job_id, job_timeout=self.job_timeout,
                               result_ttl=self.result_ttl, failure_ttl=self.failure_ttl,
                               retry=Retry(max=self.retries) if self.retries else None,
                               meta={"progress": 0.0, "kind": kind, "method": method, "model_id": payload["model_id"],
                                     "attribution": payload.get("attribution_encoding", "base64")},
                               description=f"{method} on {payload['model_id']}")
        except redis.RedisError as exc:
            raise QueueUnavailable(f"the job queue is unreachable: {exc}") from None
        return job_id

    def fetch(self, job_id: str) -> Job:
        try:
            return Job.fetch(job_id, connection=self.connection, serializer=JSONSerializer)
        except NoSuchJobError:
            raise JobNotFound(f"no job {job_id!r} (unknown or expired)") from None
        except redis.RedisError as exc:
            raise QueueUnavailable(f"the job queue is unreachable: {exc}") from None

    def state(self, job_id: str) -> dict[str, Any]:
        """The contract's job body."""
        job = self.fetch(job_id)
        summary = self._summary(job)
        meta = job.meta or {}
        result, error = None, None
        if summary["status"] == "finished":
            result = job.return_value()
        elif summary["status"] == "failed":
            error = meta.get("error") or _failure_reason(job)
        return {**summary, "attempts": (self.retries + 1 - (job.retries_left or 0)) if self.retries else 1,
                "result": result, "error": error, "attribution_encoding": meta.get("attribution", "base64")}

    def recent(self, limit: int = 50) -> list[dict[str, Any]]:
        """Summaries (no results) of the newest `limit` jobs the queue and its registries know."""
        q = self.queue
        try:
            ids = set(q.get_job_ids())
            for registry in (q.started_job_registry, q.finished_job_registry, q.failed_job_registry,
                             q.canceled_job_registry, q.deferred_job_registry, q.scheduled_job_registry):
                ids.update(registry.get_job_ids(cleanup=False))
            jobs = [j for j in Job.fetch_many(sorted(ids), connection=self.connection, serializer=JSONSerializer)
                    if j is not None]
        except redis.RedisError as exc:
            raise QueueUnavailable(f"the job queue is unreachable: {exc}") from None
        jobs.sort(key=lambda j: (j.created_at.timestamp() if j.created_at else 0.0, j.id), reverse=True)
        return [self._summary(job) for job in jobs[:limit]]

    def _summary(self, job: Job) -> dict[str, Any]:
        status = _STATUS.get(job.get_status(refresh=False), "queued")
        meta = job.meta or {}
        if meta.get("canceled") and status in ("failed", "started"):
            status = "canceled"
        progress = 1.0 if status == "finished" else float(meta.get("progress", 0.0))
        return {"job_id": job.id, "kind": meta.get("kind", "explanation"), "status": status, "progress": progress,
                "method": meta.get("method"),
                "model_id": meta.get("model_id"), "created_at": _iso(job.created_at),
                "started_at": _iso(job.started_at), "ended_at": _iso(job.ended_at)}

    def cancel(self, job_id: str) -> dict[str, Any]:
        """Cancel a queued job at once; ask a running one to stop (it does at its next batch)."""
        job = self.fetch(job_id)
        status = job.get_status(refresh=False)
        try:
            if status in (JobStatus.QUEUED, JobStatus.DEFERRED, JobStatus.SCHEDULED):
                job.cancel()
            elif status == JobStatus.STARTED:
                self.connection.set(CANCEL_KEY.format(job_id), 1, ex=max(self.job_timeout, 60))
                job.meta["canceled"] = True
                job.save_meta()
        except redis.RedisError as exc:
            raise QueueUnavailable(f"the job queue is unreachable: {exc}") from None
        return self.state(job_id)

    def reap(self) -> None:
        """Retry or fail jobs whose worker stopped sending heartbeats (died mid-job)."""
        StartedJobRegistry(queue=self.queue).cleanup()

    def wait(self, job_id: str, seconds: float) -> dict[str, Any]:
        """Poll until the job ends or `seconds` pass (called from a worker thread)."""
        deadline = time.monotonic() + seconds
        while True:
            state = self.state(job_id)
            if state["status"] in ("finished", "failed", "canceled") or time.monotonic() >= deadline:
                return state
            time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _failure_reason(job: Job) -> dict[str, Any]:
    result = job.latest_result()
    text = (result.exc_string if result is not None else None) or "the job failed"
    if "AbandonedJobError" in text:
        return {"code": "worker_lost", "message": "the worker running this job stopped (killed or crashed) "
                "and no retries were left", "details": None}
    if "JobTimeoutException" in text:
        return {"code": "job_timeout", "message": "the job ran past its time limit", "details": None}
    return {"code": "job_failed", "message": text.strip().splitlines()[-1][:500], "details": None}
