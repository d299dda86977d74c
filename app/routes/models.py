"""Model discovery, sample inputs and plain predictions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from app.deps import ServiceDep
from app.schemas import ModelInfo, ModelList, PredictRequest, PredictResponse, Sample, error_responses

router = APIRouter(tags=["models"])


@router.get("/models", operation_id="list_models", response_model=ModelList)
def list_models(service: ServiceDep) -> dict[str, Any]:
    return {"models": service.models_info()}


@router.get("/models/{model_id}", operation_id="get_model", response_model=ModelInfo, responses=error_responses(404))
def get_model(model_id: str, service: ServiceDep) -> dict[str, Any]:
    return service.model_info(model_id)


@router.get("/models/{model_id}/sample", operation_id="get_model_sample", response_model=Sample,
            response_model_exclude_none=True,
            responses=error_responses(404, 422, 503))
async def get_model_sample(model_id: str, service: ServiceDep,
                           index: int = Query(0, ge=0, description="row of the background sample")) -> dict[str, Any]:
    """A row of a tabular model's background sample, as `{"features": {name: value}}` ready to explain."""
    return await run_in_threadpool(service.sample, model_id, index)


@router.post("/models/{model_id}/predict", operation_id="predict", response_model=PredictResponse,
             responses=error_responses(400, 404, 413, 422, 503))
async def predict(model_id: str, body: PredictRequest, service: ServiceDep) -> dict[str, Any]:
    payload = body.input.model_dump(exclude_none=True)
    return await run_in_threadpool(service.predict, model_id, payload, body.top_k)
