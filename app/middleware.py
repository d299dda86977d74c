"""ASGI middleware: a request id and request metrics around everything, and a request body limit."""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.metrics import Metrics
from explainers.errors import PayloadTooLarge
from jobqueue.logs import request_id

SANE_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


class BodyLimit:
    """Refuse bodies over `max_bytes` with 413, from Content-Length or while streaming; a Content-Length that
    is not a plain decimal number is a 400 `bad_content_length`."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        lengths = [v for k, v in scope.get("headers") or [] if k == b"content-length"]
        if lengths:
            if len(set(lengths)) > 1 or not re.fullmatch(rb"[0-9]{1,19}", lengths[0]):
                await _json_error(send, 400, "bad_content_length", "the Content-Length header is not one plain "
                                  "decimal number", None)
                return
            if int(lengths[0]) > self.max_bytes:
                await _too_large(send, self.max_bytes)
                return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise PayloadTooLarge(f"the request body is larger than {self.max_bytes} bytes",
                                          details={"max_bytes": self.max_bytes})
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except PayloadTooLarge:
            if started:
                raise
            await _too_large(send, self.max_bytes)


async def _json_error(send: Send, status: int, code: str, message: str, details: Any) -> None:
    body = json.dumps({"error": {"code": code, "message": message, "details": details}}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def _too_large(send: Send, max_bytes: int) -> None:
    await _json_error(send, 413, "payload_too_large", f"the request body is larger than {max_bytes} bytes",
                      {"max_bytes": max_bytes})


class RequestContext:
    """A request id on every response (`X-Request-ID`, the client's if it is sane) and in every log line of
    the request; requests counted and timed by route template (not raw path: ids would explode the labels)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        rid = sent if SANE_ID.match(sent) else uuid.uuid4().hex
        token = request_id.set(rid)
        scope.setdefault("state", {})["request_id"] = rid
        start = time.perf_counter()
        status = 500

        async def identified_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, identified_send)
        finally:
            route: Any = scope.get("route")
            template = getattr(route, "path", "unmatched")
            self.metrics.observe(template, scope.get("method", ""), status, time.perf_counter() - start)
            request_id.reset(token)
