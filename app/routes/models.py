"""Model discovery and plain predictions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from app.deps import ServiceDep
from app.schemas import ERROR_RESPONSES, ModelInfo, ModelList, PredictRequest, PredictResponse

router = APIRouter(tags=["models"], responses=ERROR_RESPONSES)


@router.get("/models", operation_id="list_models", response_model=ModelList)
def list_models(service: ServiceDep) -> dict[str, Any]:
    return {"models": service.models_info()}


@router.get("/models/{model_id}", operation_id="get_model", response_model=ModelInfo)
def get_model(model_id: str, service: ServiceDep) -> dict[str, Any]:
    return service.model_info(model_id)


@router.post("/models/{model_id}/predict", operation_id="predict", response_model=PredictResponse)
async def predict(model_id: str, body: PredictRequest, service: ServiceDep) -> dict[str, Any]:
    payload = body.input.model_dump(exclude_none=True)
    return await run_in_threadpool(service.predict, model_id, payload, body.top_k)
