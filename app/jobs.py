"""The job client: enqueue typed payloads on RQ, read their state, list an owner's jobs, cancel them.

No torch here. Every job is indexed by its owner (sorted sets by creation time), so that a key sees
its own jobs only and `GET /jobs` pages through them without scanning the queue.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from datetime import datetime, timezone
from http import HTTPStatus
from typing import Any

import redis
from rq import Queue, Retry
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer

from explainers.errors import ServiceError
from jobqueue import heartbeat, keys
from jobqueue.connection import QueueUnavailable, text
from jobqueue.contract import TASKS, Payload, job_meta

log = logging.getLogger(__name__)

JOB_ID = re.compile(r"^[0-9a-f]{32}$")
STATUS = {JobStatus.QUEUED: "queued", JobStatus.DEFERRED: "queued", JobStatus.SCHEDULED: "queued",
          JobStatus.STARTED: "started", JobStatus.FINISHED: "finished", JobStatus.FAILED: "failed",
          JobStatus.STOPPED: "canceled", JobStatus.CANCELED: "canceled"}
ENDED = ("finished", "failed", "canceled")
__all__ = ["ENDED", "JobClient", "JobNotFinished", "JobNotFound", "QueueUnavailable"]


class JobNotFound(ServiceError):
    code, status = "job_not_found", HTTPStatus.NOT_FOUND


class JobNotFinished(ServiceError):
    code, status = "job_not_finished", HTTPStatus.CONFLICT


def _down(exc: Exception) -> QueueUnavailable:
    return QueueUnavailable(f"the job queue is unreachable: {exc}")


class JobClient:
    """One RQ queue of jobs with JSON payloads, TTLs and retries, indexed by owner."""

    def __init__(self, connection: redis.Redis, queue_name: str, *, job_timeout: int, result_ttl: int,
                 failure_ttl: int, retries: int) -> None:
        self.connection = connection
        self.queue = Queue(queue_name, connection=connection, serializer=JSONSerializer)
        self.job_timeout, self.result_ttl = job_timeout, result_ttl
        self.failure_ttl, self.retries = failure_ttl, retries

    @property
    def name(self) -> str:
        return self.queue.name

    def ping(self) -> None:
        try:
            self.connection.ping()
        except redis.RedisError as exc:
            raise _down(exc) from None

    def submit(self, payload: Payload) -> str:
        """Enqueue a typed payload (serialized here, once); returns the job's id."""
        job_id = uuid.uuid4().hex
        try:
            self.queue.enqueue(TASKS[payload.kind], payload.model_dump(mode="json"), job_id=job_id,
                               job_timeout=self.job_timeout, result_ttl=self.result_ttl,
                               failure_ttl=self.failure_ttl, retry=Retry(max=self.retries) if self.retries else None,
                               meta=job_meta(payload), description=f"{payload.label} on {payload.model_id}")
            now, q = time.time(), self.name
            pipe = self.connection.pipeline()
            pipe.zadd(keys.ALL_JOBS.format(queue=q), {job_id: now})
            pipe.zadd(keys.OWNER_JOBS.format(queue=q, owner=payload.owner), {job_id: now})
            pipe.sadd(keys.ACTIVE_JOBS.format(queue=q, owner=payload.owner), job_id)
            pipe.execute()
        except redis.RedisError as exc:
            raise _down(exc) from None
        return job_id

    def fetch(self, job_id: str, owner: str | None = None) -> Job:
        """The job, if it exists and (unless `owner` is None: an admin) belongs to `owner`."""
        missing = JobNotFound(f"no job {job_id[:64]!r} (unknown or expired)")
        if not JOB_ID.match(job_id):
            raise missing
        try:
            job = Job.fetch(job_id, connection=self.connection, serializer=JSONSerializer)
        except NoSuchJobError:
            raise missing from None
        except redis.RedisError as exc:
            raise _down(exc) from None
        if owner is not None and (job.meta or {}).get("owner", "anonymous") != owner:
            raise missing
        return job

    def state(self, job_id: str, owner: str | None = None) -> dict[str, Any]:
        """The contract's job body."""
        job = self.fetch(job_id, owner)
        summary = self.summary(job)
        meta = job.meta or {}
        result, error = None, None
        try:
            if summary["status"] == "finished":
                result = job.return_value()
            elif summary["status"] == "failed":
                error = meta.get("error") or _failure_reason(job)
            elif summary["status"] == "canceled":
                error = {"code": "canceled", "message": "canceled by the client", "details": None}
        except redis.RedisError as exc:
            raise _down(exc) from None
        running = summary["status"] in ("queued", "started")
        return {**summary, "attempts": (self.retries + 1 - (job.retries_left or 0)) if self.retries else 1,
                "result": result, "error": error, "eta_s": meta.get("eta_s") if running else None,
                "error_estimate": meta.get("error_estimate")}

    def status_of(self, job_id: str) -> str | None:
        raw = self.connection.hget(f"rq:job:{job_id}", "status")
        return None if raw is None else STATUS.get(JobStatus(text(raw)), "queued")

    def page(self, owner: str | None, *, status: str | None = None, limit: int = 50,
             offset: int = 0) -> dict[str, Any]:
        """Summaries (no results) of an owner's jobs (None: everyone's), newest first, paged, by status."""
        index = keys.ALL_JOBS.format(queue=self.name) if owner is None else \
            keys.OWNER_JOBS.format(queue=self.name, owner=owner)
        out: list[dict[str, Any]] = []
        skipped, start, chunk = 0, 0, max(64, limit * 2)
        try:
            self.connection.zremrangebyscore(index, 0, time.time() - max(self.result_ttl, self.failure_ttl) - 60)
            while len(out) < limit + 1:
                ids = [text(i) for i in self.connection.zrevrange(index, start, start + chunk - 1)]
                if not ids:
                    break
                start += len(ids)
                jobs = Job.fetch_many(ids, connection=self.connection, serializer=JSONSerializer)
                gone = [i for i, j in zip(ids, jobs) if j is None]
                if gone:
                    self.connection.zrem(index, *gone)
                    start -= len(gone)
                for job in jobs:
                    if job is None:
                        continue
                    summary = self.summary(job)
                    if status is not None and summary["status"] != status:
                        continue
                    if skipped < offset:
                        skipped += 1
                        continue
                    out.append(summary)
        except redis.RedisError as exc:
            raise _down(exc) from None
        more = len(out) > limit
        return {"jobs": out[:limit], "next_offset": offset + limit if more else None}

    def summary(self, job: Job) -> dict[str, Any]:
        status = STATUS.get(job.get_status(refresh=False), "queued")
        meta = job.meta or {}
        if meta.get("canceled") and status in ("failed", "started"):
            status = "canceled"
        progress = 1.0 if status == "finished" else float(meta.get("progress", 0.0))
        ended = job.ended_at or (_parse(meta.get("canceled_at")) if status == "canceled" else None)
        return {"job_id": job.id, "kind": meta.get("kind", "explanation"), "status": status, "progress": progress,
                "method": meta.get("method"), "model_id": meta.get("model_id"),
                "owner": meta.get("owner", "anonymous"), "created_at": _iso(job.created_at),
                "started_at": _iso(job.started_at), "ended_at": _iso(ended)}

    def cancel(self, job_id: str, owner: str | None = None) -> dict[str, Any]:
        """Cancel a queued job at once; ask a running one to stop (it does at its next batch)."""
        job = self.fetch(job_id, owner)
        status = job.get_status(refresh=False)
        try:
            if status in (JobStatus.QUEUED, JobStatus.DEFERRED, JobStatus.SCHEDULED):
                job.cancel()
                job.meta.update({"canceled": True, "canceled_at": _iso(datetime.now(timezone.utc))})
                job.save_meta()
                log.info("job %s canceled while queued", job_id)
            elif status == JobStatus.STARTED:
                self.connection.set(keys.cancel_key(job_id), 1, ex=max(self.job_timeout, 60))
                job.meta.update({"canceled": True, "canceled_at": _iso(datetime.now(timezone.utc))})
                job.save_meta()
                log.info("job %s: the worker was asked to stop it", job_id)
        except redis.RedisError as exc:
            raise _down(exc) from None
        return self.state(job_id, owner)

    def workers(self) -> list[dict[str, Any]]:
        try:
            return heartbeat.workers(self.connection, self.name)
        except redis.RedisError as exc:
            raise _down(exc) from None

    def counts(self) -> dict[str, int]:
        """Jobs in the queue and in each registry (for /metrics)."""
        q = self.queue
        return {"queued": q.count, "started": q.started_job_registry.count, "finished": q.finished_job_registry.count,
                "failed": q.failed_job_registry.count, "canceled": q.canceled_job_registry.count}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _parse(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def _failure_reason(job: Job) -> dict[str, Any]:
    result = job.latest_result()
    text = (result.exc_string if result is not None else None) or "the job failed"
    if "AbandonedJobError" in text:
        return {"code": "worker_lost", "message": "the worker running this job stopped (killed or crashed) "
                "and no retries were left", "details": None}
    if "JobTimeoutException" in text:
        return {"code": "job_timeout", "message": "the job ran past its time limit", "details": None}
    return {"code": "job_failed", "message": text.strip().splitlines()[-1][:500], "details": None}
