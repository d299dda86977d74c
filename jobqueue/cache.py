"""A content-addressed cache of explanations in Redis, with a TTL and a size cap.

The key is the SHA-256 of what decides the result: the bundle's weights hash, the method, its params
as parsed (defaults filled in), the target, the output options, `top_k` and the input's own hash. A
result is stored as zlib-compressed JSON; when the cache outgrows `max_bytes` the oldest entries go.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import zlib
from collections.abc import Mapping
from typing import Any

import redis

from jobqueue import keys
from jobqueue.connection import text

log = logging.getLogger(__name__)


def input_hash(kind: str, value: bytes | str | list[float]) -> str:
    digest = hashlib.sha256(kind.encode() + b"\0")
    if isinstance(value, bytes):
        digest.update(value)
    elif isinstance(value, str):
        digest.update(value.encode("utf-8"))
    else:
        digest.update(json.dumps([float(v) for v in value]).encode())
    return digest.hexdigest()


def cache_key(*, weights: str, method: str, params: Mapping[str, Any], target: Any,
              output: Mapping[str, Any], top_k: int, input_digest: str,
              region: Mapping[str, Any] | None = None) -> str:
    parts = {"weights": weights, "method": method, "params": params, "target": target, "output": output,
             "top_k": top_k, "input": input_digest}
    if region is not None:  # the localisation figures depend on it
        parts["region"] = region
    material = json.dumps(parts, sort_keys=True)
    return hashlib.sha256(material.encode()).hexdigest()


class ExplanationCache:
    def __init__(self, connection: redis.Redis, queue: str, *, ttl: int, max_bytes: int,
                 max_item_bytes: int) -> None:
        self.connection = connection
        self.item = keys.CACHE.replace("{queue}", queue)
        self.index = keys.CACHE_INDEX.format(queue=queue)
        self.sizes = keys.CACHE_SIZES.format(queue=queue)
        self.stats_key = keys.CACHE_STATS.format(queue=queue)
        self.ttl, self.max_bytes, self.max_item_bytes = ttl, max_bytes, max_item_bytes

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0 and self.max_item_bytes > 0

    def get(self, key: str) -> dict[str, Any] | None:
        """The cached explanation (`details.cached` set), or None; a Redis outage is a miss."""
        if not self.enabled:
            return None
        try:
            raw = self.connection.get(self.item.format(key=key))
            self.connection.hincrby(self.stats_key, "hits" if raw is not None else "misses", 1)
        except redis.RedisError as exc:
            log.warning("cache: Redis does not answer: %s", exc)
            return None
        if raw is None:
            return None
        body: dict[str, Any] = json.loads(zlib.decompress(raw if isinstance(raw, bytes) else raw.encode()))
        body["details"] = {**body.get("details", {}), "cached": True}
        return body

    def put(self, key: str, body: Mapping[str, Any]) -> bool:
        """Store a result (unless it is over `max_item_bytes`); evict the oldest past `max_bytes`."""
        if not self.enabled:
            return False
        data = zlib.compress(json.dumps(body, separators=(",", ":")).encode(), 3)
        if len(data) > self.max_item_bytes:
            return False
        try:
            now = time.time()
            pipe = self.connection.pipeline()
            pipe.set(self.item.format(key=key), data, ex=self.ttl)
            pipe.zadd(self.index, {key: now})
            pipe.hset(self.sizes, key, len(data))
            pipe.hincrby(self.stats_key, "stores", 1)
            pipe.execute()
            self._evict(now)
        except redis.RedisError as exc:
            log.warning("cache: could not store a result: %s", exc)
            return False
        return True

    def _evict(self, now: float) -> None:
        index, sizes = self.index, self.sizes
        expired = [text(k) for k in self.connection.zrangebyscore(index, 0, now - self.ttl)]
        if expired:
            self._drop(expired, evicted=False)
        total = sum(int(v) for v in self.connection.hvals(sizes))
        while total > self.max_bytes:
            oldest = self.connection.zrange(index, 0, 15)
            if not oldest:
                break
            names = [text(k) for k in oldest]
            freed = [int(v or 0) for v in self.connection.hmget(sizes, names)]
            self._drop(names, evicted=True)
            total -= sum(freed)

    def _drop(self, names: list[str], *, evicted: bool) -> None:
        pipe = self.connection.pipeline()
        pipe.delete(*[self.item.format(key=k) for k in names])
        pipe.zrem(self.index, *names)
        pipe.hdel(self.sizes, *names)
        if evicted:
            pipe.hincrby(self.stats_key, "evictions", len(names))
        pipe.execute()

    def stats(self) -> dict[str, int]:
        raw = self.connection.hgetall(self.stats_key)
        out = {text(k): int(v) for k, v in raw.items()}
        out["entries"] = int(self.connection.zcard(self.index))
        out["bytes"] = sum(int(v) for v in self.connection.hvals(self.sizes))
        return out
