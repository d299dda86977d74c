"""Model-level explanations: POST /models/{model_id}/global/{method} queues a global method's job."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from app.auth import ExplainCaller
from app.deps import ServiceDep, SettingsDep
from app.routes.accepted import WAIT_QUERY, accepted
from app.schemas import AUTH, GlobalExplanation, GlobalRequest, JobAccepted, error_responses

router = APIRouter(tags=["global"])


@router.post("/models/{model_id}/global/{method}", operation_id="explain_model", response_model=GlobalExplanation,
             status_code=202, responses={202: {"model": JobAccepted, "description": "the global method's job"},
                                         200: {"model": GlobalExplanation, "description": "with ?wait, the result"},
                                         **error_responses(400, *AUTH, 404, 413, 415, 422, 503)})
async def explain_model(model_id: str, method: str, service: ServiceDep, settings: SettingsDep,
                        caller: ExplainCaller, body: GlobalRequest | None = None,
                        wait: float | None = WAIT_QUERY) -> Any:
    """Explain a model with a global method (see /methods, `scope: "global"`): always a job.

    The request is checked first (the method's scope, the model, params, the input or sample set the
    method takes, a layer or channel it names): a bad one is a 4xx at once. 202 with the job; with
    `?wait`, 200 with the `GlobalExplanation` once it is done.
    """
    data: dict[str, Any] = {"params": {}, "inputs": None, "input": None, "target": None}
    if body is not None:
        data.update(params=body.params, target=body.target,
                    input=body.input.model_dump(exclude_none=True) if body.input is not None else None,
                    inputs=[i.model_dump(exclude_none=True) for i in body.inputs] if body.inputs is not None else None)
    job_id = await run_in_threadpool(service.submit_global, caller, method, model_id, data)
    return await accepted(service, settings, job_id, wait, caller)
