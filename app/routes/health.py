"""Liveness, readiness and metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse
from starlette.concurrency import run_in_threadpool

from app.auth import access
from app.deps import MetricsDep, ServiceDep
from app.errors import SafeJSONResponse
from app.schemas import AUTH, Readiness, Status, error_responses

router = APIRouter(tags=["health"])


@router.get("/healthz", operation_id="healthz", response_model=Status)
async def healthz() -> dict[str, str]:
    """200 while the process is up (it runs on the event loop: no thread pool is in its way)."""
    return {"status": "ok"}


@router.get("/readyz", operation_id="readyz", response_model=Readiness,
            responses={503: {"model": Readiness, "description": "not ready, with the reasons"}})
async def readyz(service: ServiceDep) -> SafeJSONResponse:
    """Ready: the queue answers, at least one worker is alive, at least one model is servable."""
    state = await run_in_threadpool(service.readiness)
    body: dict[str, Any] = {"status": "ready" if state["ready"] else "not_ready", "reasons": state["reasons"],
                            "queue": state["queue"], "workers": state["workers"], "models": state["models"]}
    if state["ready"]:
        return SafeJSONResponse(body)
    return SafeJSONResponse(body, status_code=503, headers={"Retry-After": "5"})


@router.get("/metrics", operation_id="metrics", response_class=PlainTextResponse,
            responses=error_responses(*AUTH[:2]), dependencies=[access("metrics_access")])
async def metrics(registry: MetricsDep, service: ServiceDep) -> PlainTextResponse:
    text = await run_in_threadpool(registry.render, service)
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4")
