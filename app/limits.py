"""Per-key limits kept in Redis: requests per minute and queued-or-running jobs (429 with Retry-After).

A Redis that does not answer lets requests through (the sync methods keep working while the queue is
down); the job cap is then moot, since no job can be queued.
"""

from __future__ import annotations

import logging
import time
from http import HTTPStatus

import redis

from explainers.errors import ServiceError
from jobqueue import keys
from jobqueue.connection import text

log = logging.getLogger(__name__)


class RateLimited(ServiceError):
    code, status = "rate_limited", HTTPStatus.TOO_MANY_REQUESTS


class TooManyJobs(ServiceError):
    code, status = "too_many_jobs", HTTPStatus.TOO_MANY_REQUESTS


def check_rate(connection: redis.Redis | None, owner: str, per_minute: int) -> None:
    """Count one request of `owner` in the current minute; RateLimited past `per_minute`."""
    if not per_minute or connection is None:
        return
    now = time.time()
    window = int(now // 60)
    key = keys.RATE.format(owner=owner, window=window)
    try:
        pipe = connection.pipeline()
        pipe.incr(key)
        pipe.expire(key, 120)
        count = int(pipe.execute()[0])
    except redis.RedisError as exc:
        log.warning("rate limit not checked, Redis does not answer: %s", exc)
        return
    if count > per_minute:
        retry = max(1, int((window + 1) * 60 - now) + 1)
        raise RateLimited(f"more than {per_minute} requests this minute; retry in {retry} s",
                          details={"limit_per_minute": per_minute, "retry_after_s": retry})


def check_jobs(connection: redis.Redis, queue: str, owner: str, cap: int) -> None:
    """TooManyJobs when `owner` has `cap` queued or running jobs (the ended ones are dropped from the set)."""
    if not cap:
        return
    key = keys.ACTIVE_JOBS.format(queue=queue, owner=owner)
    ids = [text(i) for i in connection.smembers(key)]
    if not ids:
        return
    pipe = connection.pipeline()
    for job_id in ids:
        pipe.hget(f"rq:job:{job_id}", "status")
    ended = [i for i, s in zip(ids, pipe.execute()) if s is None or text(s) not in ("queued", "started",
                                                                                        "deferred", "scheduled")]
    if ended:
        connection.srem(key, *ended)
    active = len(ids) - len(ended)
    if active >= cap:
        raise TooManyJobs(f"{active} jobs of this key are queued or running, the most it may have; retry when "
                          "one ends", details={"max_jobs": cap, "active": active, "retry_after_s": 5})
