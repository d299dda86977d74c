"""Liveness, readiness and metrics."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse

from app.deps import MetricsDep, ServiceDep
from app.schemas import Status

router = APIRouter(tags=["health"])


@router.get("/healthz", operation_id="healthz", response_model=Status)
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", operation_id="readyz", response_model=Status,
            responses={503: {"model": Status, "description": "not ready, with the reasons"}})
def readyz(service: ServiceDep) -> JSONResponse:
    state = service.readiness()
    if state["ready"]:
        return JSONResponse({"status": "ready", "reasons": None})
    return JSONResponse({"status": "not_ready", "reasons": state["reasons"]}, status_code=503,
                        headers={"Retry-After": "5"})


@router.get("/metrics", operation_id="metrics", response_class=PlainTextResponse)
def metrics(registry: MetricsDep) -> PlainTextResponse:
    return PlainTextResponse(registry.render(), media_type="text/plain; version=0.0.4")
