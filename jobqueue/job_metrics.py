"""Counters the workers keep in Redis for the API's /metrics: job durations and model evaluations.

One hash per queue; fields are `kind|label|label...` strings. Methods and models are registered
names the API checked before enqueueing, so the label set stays bounded.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import redis

from jobqueue import keys
from jobqueue.connection import text

BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0)


def record(connection: redis.Redis, queue: str, *, method: str, model: str, status: str, seconds: float,
           evaluations: int) -> None:
    key = keys.JOB_METRICS.format(queue=queue)
    pipe = connection.pipeline()
    pipe.hincrby(key, f"count|{method}|{model}|{status}", 1)
    pipe.hincrbyfloat(key, f"sum|{method}|{model}", seconds)
    for bound in BUCKETS:
        if seconds <= bound:
            pipe.hincrby(key, f"bucket|{method}|{model}|{bound}", 1)
    pipe.hincrby(key, f"bucket|{method}|{model}|+Inf", 1)
    if evaluations:
        pipe.hincrby(key, f"evaluations|{method}|{model}", evaluations)
    pipe.execute()


def read(connection: redis.Redis, queue: str) -> dict[str, dict[tuple[str, ...], float]]:
    """{"count": {(method, model, status): n}, "sum": ..., "bucket": {(method, model, le): n}, "evaluations": ...}"""
    out: dict[str, dict[tuple[str, ...], float]] = defaultdict(dict)
    for field, value in connection.hgetall(keys.JOB_METRICS.format(queue=queue)).items():
        kind, *labels = text(field).split("|")
        out[kind][tuple(labels)] = float(value)
    return out


def as_dict(data: dict[str, dict[tuple[str, ...], float]]) -> dict[str, Any]:
    return {kind: {"|".join(k): v for k, v in values.items()} for kind, values in data.items()}
