"""Names of the Redis keys the service keeps next to RQ's own (all under `xai:`)."""

from __future__ import annotations

CANCEL = "xai:cancel:{job_id}"  # set by the API: the running job stops at its next batch
OWNER_JOBS = "xai:{queue}:jobs:{owner}"  # sorted set: the owner's job ids by creation time
ALL_JOBS = "xai:{queue}:jobs"  # sorted set: every job id by creation time
ACTIVE_JOBS = "xai:{queue}:active:{owner}"  # set: the owner's queued or running jobs (the concurrency cap)
WORKERS = "xai:{queue}:workers"  # hash: worker name -> its last beat (JSON)
INFLIGHT = "xai:{queue}:inflight:{owner}:{key}"  # a queued/running job of this cache key, to join
CACHE = "xai:{queue}:cache:{key}"  # a cached explanation (zlib JSON); one cache per queue (deployment)
CACHE_INDEX = "xai:{queue}:cache-index"  # sorted set: cache key -> stored at
CACHE_SIZES = "xai:{queue}:cache-sizes"  # hash: cache key -> bytes
CACHE_STATS = "xai:{queue}:cache-stats"  # hash: hits, misses, stores, evictions
JOB_METRICS = "xai:{queue}:metrics"  # hash: job durations and evaluations by method and model
RATE = "xai:rate:{owner}:{window}"  # requests of an owner in a minute window


def cancel_key(job_id: str) -> str:
    return CANCEL.format(job_id=job_id)
