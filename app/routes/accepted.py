"""The answer to a request that made a job: 202 with the job, or with ?wait the result once it is done.

Waiting holds no thread (see `app.waiting`); with no worker alive it answers at once with a hint.
Bodies over `XAI_MAX_RESULT_BYTES` are refused with `result_too_large` instead of sent.
"""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from fastapi import Query
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from app.deps import Service
from app.errors import SafeJSONResponse
from app.keys import Caller
from app.settings import Settings
from explainers.errors import ServiceError

WAIT_QUERY: Any = Query(None, ge=0, le=600, description="async methods: seconds to hold the request for the job "
                        "to end (at most XAI_MAX_WAIT)")


class ResultTooLarge(ServiceError):
    code, status = "result_too_large", HTTPStatus.UNPROCESSABLE_ENTITY


def sized(body: dict[str, Any], limit: int) -> Response:
    """The body as JSON, unless it is larger than `limit` bytes."""
    data = json.dumps(body, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode("ascii")
    if len(data) > limit:
        raise ResultTooLarge(f"the explanation is {len(data)} bytes, more than the limit of {limit}: ask for "
                             "output.attribution 'none' or 'base64', or a smaller output.size",
                             details={"bytes": len(data), "max_bytes": limit})
    return Response(data, media_type="application/json")


async def accepted(service: Service, settings: Settings, job_id: str, wait: float | None, caller: Caller, *,
                   joined: bool = False) -> Response:
    location = f"/jobs/{job_id}"
    body: dict[str, Any] = {"job_id": job_id, "status": "queued", "links": {"self": location}, "joined": joined,
                            "details": None}
    if wait:
        alive = await run_in_threadpool(service.workers_alive)
        if not alive:
            body["details"] = {"workers": 0, "hint": "no worker is alive: the job waits in the queue until one "
                               "starts (see /readyz)"}
        else:
            waiter = service.waiter
            if waiter is not None and await waiter.wait(job_id, min(wait, settings.max_wait)):
                state = await run_in_threadpool(service.job_client().state, job_id, caller.owner_filter)
                if state["status"] == "finished":
                    return sized(state["result"], settings.max_result_bytes)
                body["status"] = state["status"]
            else:
                body["status"] = await run_in_threadpool(_status, service, job_id)
    return SafeJSONResponse(body, status_code=202, headers={"Location": location})


def _status(service: Service, job_id: str) -> str:
    try:
        return service.job_client().status_of(job_id) or "queued"
    except Exception:  # the queue went away: the job was accepted, report it queued
        return "queued"
