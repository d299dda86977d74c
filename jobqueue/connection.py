"""The Redis connection both sides use, and the one error for a queue that does not answer."""

from __future__ import annotations

from http import HTTPStatus

import redis

from explainers.errors import ServiceError


class QueueUnavailable(ServiceError):
    code, status = "queue_unavailable", HTTPStatus.SERVICE_UNAVAILABLE


def connect(url: str) -> redis.Redis:
    """A client that fails fast when Redis is down (2 s to connect) and checks idle connections."""
    return redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=10, health_check_interval=30,
                                retry_on_timeout=False)


def text(value: object) -> str:
    """A Redis reply as text (the client returns bytes)."""
    return value.decode() if isinstance(value, bytes) else str(value)
