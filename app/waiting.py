"""`?wait=SECONDS` without a thread: the request awaits the job's status with an asyncio Redis client.

Holding a request costs no thread of the pool that serves the sync routes (and /healthz); at most
`max_waiting` requests wait at once, the rest answer 202 at once.
"""

from __future__ import annotations

import asyncio
import logging
import time

import redis
import redis.asyncio as aioredis

log = logging.getLogger(__name__)
ENDED = {b"finished", b"failed", b"stopped", b"canceled"}


class Waiter:
    def __init__(self, url: str, max_waiting: int) -> None:
        self.url, self.max_waiting = url, max_waiting
        self.waiting = 0
        self._clients: dict[int, aioredis.Redis] = {}

    def _client(self) -> aioredis.Redis:
        loop = id(asyncio.get_running_loop())
        client = self._clients.get(loop)
        if client is None:
            client = aioredis.Redis.from_url(self.url, socket_connect_timeout=2, socket_timeout=10)
            self._clients[loop] = client
        return client

    async def wait(self, job_id: str, seconds: float, interval: float = 0.1) -> bool:
        """Await the job's end for up to `seconds`; True once it ended (finished, failed or canceled)."""
        if self.waiting >= self.max_waiting:
            return False
        self.waiting += 1
        deadline = time.monotonic() + seconds
        key = f"rq:job:{job_id}"
        try:
            client = self._client()
            while True:
                status = await client.hget(key, "status")
                if status is None or status in ENDED:  # ended, or gone
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                await asyncio.sleep(min(interval, left))
        except redis.RedisError as exc:
            log.warning("?wait stopped: Redis does not answer: %s", exc)
            return False
        finally:
            self.waiting -= 1

    async def close(self) -> None:
        for client in self._clients.values():
            try:
                await client.aclose()
            except Exception as exc:  # a loop already closed
                log.debug("closing a wait client: %s", exc)
        self._clients.clear()
