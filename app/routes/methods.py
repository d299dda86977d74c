"""Method discovery, read from the method registry."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app.deps import ServiceDep
from app.schemas import MethodList

router = APIRouter(tags=["methods"])


@router.get("/methods", operation_id="list_methods", response_model=MethodList)
def list_methods(service: ServiceDep) -> dict[str, Any]:
    return {"methods": service.methods_info()}
