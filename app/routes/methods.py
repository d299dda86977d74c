"""Method discovery, read from the method registry."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app.auth import require
from app.deps import ServiceDep
from app.schemas import AUTH, MethodList, error_responses

router = APIRouter(tags=["methods"])


@router.get("/methods", operation_id="list_methods", response_model=MethodList, responses=error_responses(*AUTH),
            dependencies=[require("explain")])
def list_methods(service: ServiceDep) -> dict[str, Any]:
    return {"methods": service.methods_info()}
