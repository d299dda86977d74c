"""POST /explain/{method}: JSON with a base64 image, or multipart/form-data with a file part."""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from app.deps import ServiceDep, SettingsDep
from app.routes.jobs import public_state
from app.schemas import ERROR_RESPONSES, ExplainRequest, Explanation, JobAccepted
from explainers.errors import InvalidInput, ServiceError
from explainers.serialize import OutputOptions

router = APIRouter(tags=["explain"])

_MULTIPART_SCHEMA = {
    "type": "object",
    "required": ["model_id", "file"],
    "properties": {
        "file": {"type": "string", "format": "binary", "description": "the image file"},
        "model_id": {"type": "string"},
        "target": {"type": "string", "description": "class index or label; empty for the top-1 class"},
        "params": {"type": "string", "description": "the method's params as a JSON object"},
        "output": {"type": "string", "description": "output options as a JSON object"},
        "top_k": {"type": "integer", "minimum": 1, "maximum": 100},
    },
}

_BODY = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": {"$ref": "#/components/schemas/ExplainRequest"}},
    "multipart/form-data": {"schema": _MULTIPART_SCHEMA},
}}}


class InvalidJson(ServiceError):
    code, status = "invalid_json", HTTPStatus.BAD_REQUEST


class UnsupportedMediaType(ServiceError):
    code, status = "unsupported_media_type", HTTPStatus.UNSUPPORTED_MEDIA_TYPE


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON")


def _loads(text: str | bytes, what: str) -> Any:
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise InvalidJson(f"{what} is not valid JSON: {exc}") from None


def _validate(data: Any) -> ExplainRequest:
    try:
        return ExplainRequest.model_validate(data)
    except ValidationError as exc:  # the app's handler turns it into the invalid_request body
        raise RequestValidationError(exc.errors(include_url=False)) from None


async def _from_multipart(request: Request, max_bytes: int) -> tuple[ExplainRequest, bytes]:
    async with request.form(max_files=1, max_fields=16, max_part_size=max_bytes) as form:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise InvalidInput("multipart requests need a 'file' part with the image", code="missing_file")
        image = await upload.read()
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
    target: Any = fields.get("target") or None
    if target is not None and target.lstrip("-").isdigit():
        target = int(target)
    data = {
        "model_id": fields.get("model_id", ""), "input": {"image": "-"}, "target": target,
        "params": _loads(fields["params"], "params") if fields.get("params") else {},
        "output": _loads(fields["output"], "output") if fields.get("output") else {},
    }
    if fields.get("top_k"):
        data["top_k"] = fields["top_k"]
    return _validate(data), image


@router.post("/explain/{method}", operation_id="explain", response_model=Explanation,
             responses={**ERROR_RESPONSES, 202: {"model": JobAccepted, "description": "an async method's job"}},
             openapi_extra=_BODY)
async def explain(method: str, request: Request, service: ServiceDep, settings: SettingsDep,
                  wait: float | None = Query(None, ge=0, le=600, description="async methods: seconds to hold "
                                             "the request for the job to end")) -> Any:
    """Explain one input. Sync methods answer 200 with the explanation; async ones 202 with a job."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        body, image = await _from_multipart(request, settings.max_body_bytes)
        payload: dict[str, Any] = {"image": image}
    elif content_type in ("application/json", ""):
        body = _validate(_loads(await request.body(), "the request body"))
        payload = body.input.model_dump(exclude_none=True)
    else:
        raise UnsupportedMediaType(f"content type {content_type!r} is not accepted; "
                                   "send application/json or multipart/form-data")
    out = body.output
    if service.execution(method) == "async":
        job_id = await run_in_threadpool(service.submit, method, body.model_id, payload, target=body.target,
                                         params=body.params, output=out.model_dump(), top_k=body.top_k)
        state = {"status": "queued"}
        if wait:
            state = await run_in_threadpool(service.job_client().wait, job_id, min(wait, settings.max_wait))
            if state["status"] == "finished":
                return public_state(state)["result"]
        location = f"/jobs/{job_id}"
        return JSONResponse({"job_id": job_id, "status": state["status"], "links": {"self": location}},
                            status_code=202, headers={"Location": location})
    options = OutputOptions.from_dict(out.model_dump())
    return await run_in_threadpool(service.explain, method, body.model_id, payload, target=body.target,
                                   params=body.params, output=options, top_k=body.top_k)
