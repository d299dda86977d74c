"""Model discovery, sample inputs and plain predictions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from app.auth import AdminCaller, ExplainCaller, require
from app.deps import ServiceDep, SettingsDep
from app.routes.accepted import WAIT_QUERY, accepted
from app.schemas import (
    AUTH,
    EvaluateRequest,
    EvaluationResult,
    JobAccepted,
    ModelInfo,
    ModelList,
    PatternsRequest,
    PatternsResult,
    PredictRequest,
    PredictResponse,
    Sample,
    SanityRequest,
    SanityResult,
    error_responses,
)

router = APIRouter(tags=["models"])


@router.get("/models", operation_id="list_models", response_model=ModelList, responses=error_responses(*AUTH),
            dependencies=[require("explain")])
def list_models(service: ServiceDep) -> dict[str, Any]:
    """Every bundle, the ones that failed to load too (`status: "error"` with the reason)."""
    return {"models": service.models_info()}


@router.get("/models/{model_id}", operation_id="get_model", response_model=ModelInfo,
            responses=error_responses(*AUTH, 404), dependencies=[require("explain")])
def get_model(model_id: str, service: ServiceDep) -> dict[str, Any]:
    return service.model_info(model_id)


@router.get("/models/{model_id}/sample", operation_id="get_model_sample", response_model=Sample,
            response_model_exclude_none=True,
            responses=error_responses(*AUTH, 404, 422, 503), dependencies=[require("explain")])
async def get_model_sample(model_id: str, service: ServiceDep,
                           index: int = Query(0, ge=0, description="row of the background sample")) -> dict[str, Any]:
    """A row of a tabular model's background sample, as `{"features": {name: value}}` ready to explain."""
    return await run_in_threadpool(service.sample, model_id, index)


@router.post("/models/{model_id}/predict", operation_id="predict", response_model=PredictResponse,
             responses=error_responses(400, *AUTH, 404, 413, 415, 422, 503), dependencies=[require("explain")])
async def predict(model_id: str, body: PredictRequest, service: ServiceDep) -> dict[str, Any]:
    payload = body.input.model_dump(exclude_none=True)
    return await run_in_threadpool(service.predict, model_id, payload, body.top_k)


@router.post("/models/{model_id}/patterns", operation_id="compute_patterns", response_model=PatternsResult,
             status_code=202, responses={202: {"model": JobAccepted, "description": "the patterns job"},
                                         200: {"model": PatternsResult, "description": "with ?wait, the job's result"},
                                         **error_responses(400, *AUTH, 404, 413, 415, 422, 503)})
async def compute_patterns(model_id: str, service: ServiceDep, settings: SettingsDep, caller: AdminCaller,
                           body: PatternsRequest | None = None, wait: float | None = WAIT_QUERY) -> Any:
    """A job that computes PatternNet's patterns of a local model from a sample set and stores them.

    The sample set is `inputs`, else the bundle's own; the patterns are kept in the state folder under
    the weights' hash, where `patternnet` and `pattern_attribution` find them. With keys on it needs the
    `admin` scope: the patterns serve every caller.
    """
    inputs = [i.model_dump(exclude_none=True) for i in body.inputs] if body and body.inputs else None
    job_id = await run_in_threadpool(service.submit_patterns, caller, model_id, inputs)
    return await accepted(service, settings, job_id, wait, caller)


@router.post("/models/{model_id}/sanity", operation_id="sanity_check", response_model=SanityResult,
             status_code=202, responses={202: {"model": JobAccepted, "description": "the sanity-check job"},
                                         200: {"model": SanityResult, "description": "with ?wait, the job's result"},
                                         **error_responses(400, *AUTH, 404, 413, 415, 422, 503)})
async def sanity_check(model_id: str, service: ServiceDep, settings: SettingsDep, caller: ExplainCaller,
                       body: SanityRequest | None = None, wait: float | None = WAIT_QUERY) -> Any:
    """A job that runs the model randomisation test (Adebayo et al. 2018) of methods on a local model.

    The model's weighted layers are re-initialised from the top down, cumulatively; each method explains
    the same inputs at every stage, and its maps are compared with the trained model's (Spearman rank
    correlation, SSIM). A method `passes` when its maps change. Results are kept per weights hash: the
    same check on the same weights is answered from the store (`cached: true`), and `GET /methods` shows
    the verdicts.
    """
    data = (body or SanityRequest()).model_dump(exclude_none=True)
    if body is not None and body.inputs:
        data["inputs"] = [i.model_dump(exclude_none=True) for i in body.inputs]
    job_id = await run_in_threadpool(service.submit_sanity, caller, model_id, data)
    return await accepted(service, settings, job_id, wait, caller)


@router.post("/models/{model_id}/evaluate", operation_id="evaluate_methods", response_model=EvaluationResult,
             status_code=202, responses={202: {"model": JobAccepted, "description": "the evaluation job"},
                                         200: {"model": EvaluationResult,
                                               "description": "with ?wait, the job's result"},
                                         **error_responses(400, *AUTH, 404, 413, 415, 422, 503)})
async def evaluate_methods(model_id: str, service: ServiceDep, settings: SettingsDep, caller: ExplainCaller,
                           body: EvaluateRequest | None = None, wait: float | None = WAIT_QUERY) -> Any:
    """A job that evaluates methods over a sample set: deletion and insertion AUC, MoRF and LeRF AOPC (and
    a random map's, for reference), the pointing game and the energy inside the object where the inputs
    have regions (the shapes bundle's samples carry object masks), time and model evaluations per
    explanation; each a mean with its standard error, and the table as a chart."""
    data = (body or EvaluateRequest()).model_dump(exclude_none=True)
    if body is not None and body.inputs:
        data["inputs"] = [i.model_dump(exclude_none=True) for i in body.inputs]
    job_id = await run_in_threadpool(service.submit_evaluation, caller, model_id, data)
    return await accepted(service, settings, job_id, wait, caller)
