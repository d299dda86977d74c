"""Jobs of async methods: state and progress, cancellation, result files."""

from __future__ import annotations

import base64
import io
from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from app.deps import ServiceDep
from app.jobs import JobNotFinished, JobNotFound
from app.schemas import JobList, JobState, error_responses

router = APIRouter(tags=["jobs"])


def public_state(state: dict[str, Any]) -> dict[str, Any]:
    """The stored job as the client asked for it (the attribution in its chosen encoding)."""
    state = dict(state)
    encoding = state.pop("attribution_encoding", "base64")
    result = state.get("result")
    if result and result.get("attribution") and encoding != "base64":
        from explainers.serialize import decode_array, encode_array

        result = dict(result)
        result["attribution"] = encode_array(decode_array(result["attribution"]), encoding)
        state["result"] = result
    return state


async def _finished(service: ServiceDep, job_id: str) -> dict[str, Any]:
    state = await run_in_threadpool(service.job_client().state, job_id)
    if state["status"] != "finished":
        raise JobNotFinished(f"job {job_id} is {state['status']}", details={"status": state["status"]})
    if state["kind"] != "explanation":
        raise JobNotFound(f"job {job_id} computed {state['kind']}: it has no overlay or attribution",
                          code="not_an_explanation")
    return state["result"]


@router.get("/jobs", operation_id="list_jobs", response_model=JobList, responses=error_responses(422, 503))
async def list_jobs(service: ServiceDep,
                    limit: int = Query(50, ge=1, le=1000, description="jobs listed, newest first")) -> dict[str, Any]:
    """Recent jobs of every status (without their results), newest first."""
    return {"jobs": await run_in_threadpool(service.job_client().recent, limit)}


@router.get("/jobs/{job_id}", operation_id="get_job", response_model=JobState, responses=error_responses(404, 503))
async def get_job(job_id: str, service: ServiceDep) -> dict[str, Any]:
    return public_state(await run_in_threadpool(service.job_client().state, job_id))


@router.delete("/jobs/{job_id}", operation_id="cancel_job", response_model=JobState,
               responses=error_responses(404, 503))
async def cancel_job(job_id: str, service: ServiceDep) -> dict[str, Any]:
    return public_state(await run_in_threadpool(service.job_client().cancel, job_id))


@router.get("/jobs/{job_id}/overlay.png", operation_id="get_job_overlay", response_class=Response,
            responses={200: {"content": {"image/png": {}}, "description": "the overlay"},
                       **error_responses(404, 409, 503)})
async def get_job_overlay(job_id: str, service: ServiceDep) -> Response:
    result = await _finished(service, job_id)
    if not result.get("overlay_png"):
        raise JobNotFound(f"job {job_id} has no overlay (output.overlay was false)", code="no_overlay")
    return Response(base64.b64decode(result["overlay_png"]), media_type="image/png")


@router.get("/jobs/{job_id}/attribution.npy", operation_id="get_job_attribution", response_class=Response,
            responses={200: {"content": {"application/octet-stream": {}}, "description": "a NumPy .npy file"},
                       **error_responses(404, 409, 503)})
async def get_job_attribution(job_id: str, service: ServiceDep) -> Response:
    import numpy as np

    from explainers.serialize import decode_array

    result = await _finished(service, job_id)
    buf = io.BytesIO()
    np.save(buf, decode_array(result["attribution"]), allow_pickle=False)
    return Response(buf.getvalue(), media_type="application/octet-stream",
                    headers={"Content-Disposition": f'attachment; filename="{job_id}.npy"'})
