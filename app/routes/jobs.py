"""Jobs of async methods: the caller's own (another key's job is a 404), state and progress, cancellation,
result files."""

from __future__ import annotations

import base64
import io
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from app.auth import JobsCaller
from app.deps import ServiceDep
from app.jobs import JobNotFinished, JobNotFound
from app.schemas import AUTH, JobList, JobState, error_responses

router = APIRouter(tags=["jobs"])
JobStatusName = Literal["queued", "started", "finished", "failed", "canceled"]


async def _finished(service: ServiceDep, job_id: str, owner: str | None) -> dict[str, Any]:
    state = await run_in_threadpool(service.job_client().state, job_id, owner)
    if state["status"] != "finished":
        raise JobNotFinished(f"job {job_id} is {state['status']}", details={"status": state["status"]})
    if state["kind"] != "explanation":
        raise JobNotFound(f"job {job_id} computed {state['kind']}: it has no overlay or attribution",
                          code="not_an_explanation")
    return state["result"]  # type: ignore[no-any-return]


@router.get("/jobs", operation_id="list_jobs", response_model=JobList, responses=error_responses(*AUTH, 422, 503))
async def list_jobs(service: ServiceDep, caller: JobsCaller,
                    limit: int = Query(50, ge=1, le=1000, description="jobs per page, newest first"),
                    offset: int = Query(0, ge=0, le=1_000_000, description="jobs to skip (`next_offset`)"),
                    status: Annotated[JobStatusName | None, Query(description="only jobs in this status")] = None
                    ) -> dict[str, Any]:
    """The caller's jobs of every status (without their results), newest first, a page at a time.

    An admin key sees every key's jobs; without keys, every job is the anonymous caller's."""
    return await run_in_threadpool(service.job_client().page, caller.owner_filter, status=status, limit=limit,
                                   offset=offset)


@router.get("/jobs/{job_id}", operation_id="get_job", response_model=JobState,
            responses=error_responses(*AUTH, 404, 503))
async def get_job(job_id: str, service: ServiceDep, caller: JobsCaller) -> dict[str, Any]:
    return await run_in_threadpool(service.job_client().state, job_id, caller.owner_filter)


@router.delete("/jobs/{job_id}", operation_id="cancel_job", response_model=JobState,
               responses=error_responses(*AUTH, 404, 503))
async def cancel_job(job_id: str, service: ServiceDep, caller: JobsCaller) -> dict[str, Any]:
    return await run_in_threadpool(service.job_client().cancel, job_id, caller.owner_filter)


@router.get("/jobs/{job_id}/overlay.png", operation_id="get_job_overlay", response_class=Response,
            responses={200: {"content": {"image/png": {}}, "description": "the overlay"},
                       **error_responses(*AUTH, 404, 409, 503)})
async def get_job_overlay(job_id: str, service: ServiceDep, caller: JobsCaller) -> Response:
    result = await _finished(service, job_id, caller.owner_filter)
    if not result.get("overlay_png"):
        raise JobNotFound(f"job {job_id} has no overlay (output.overlay was false)", code="no_overlay")
    return Response(base64.b64decode(result["overlay_png"]), media_type="image/png")


@router.get("/jobs/{job_id}/attribution.npy", operation_id="get_job_attribution", response_class=Response,
            responses={200: {"content": {"application/octet-stream": {}}, "description": "a NumPy .npy file"},
                       **error_responses(*AUTH, 404, 409, 503)})
async def get_job_attribution(job_id: str, service: ServiceDep, caller: JobsCaller) -> Response:
    import numpy as np

    from explainers.serialize import decode_array

    result = await _finished(service, job_id, caller.owner_filter)
    if not result.get("attribution"):
        raise JobNotFound(f"job {job_id} kept no attribution (output.attribution was 'none')",
                          code="no_attribution")
    buf = io.BytesIO()
    np.save(buf, decode_array(result["attribution"]), allow_pickle=False)
    return Response(buf.getvalue(), media_type="application/octet-stream",
                    headers={"Content-Disposition": f'attachment; filename="{job_id}.npy"'})
