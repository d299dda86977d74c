"""POST /explain/{method}: JSON with a base64 image, or multipart/form-data with a file part."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from app.auth import ExplainCaller
from app.deps import MetricsDep, ServiceDep, SettingsDep, Submission
from app.routes.accepted import WAIT_QUERY, accepted, sized
from app.schemas import (
    ERROR_RESPONSES,
    BatchExplanation,
    ExplainRequest,
    Explanation,
    JobAccepted,
    MultiExplainRequest,
    MultiExplanation,
    TargetsExplanation,
)
from app.schemas.requests import ExplainInput, TargetObject, target_value
from explainers.errors import InvalidInput, InvalidTarget, ServiceError

router = APIRouter(tags=["explain"])
log = logging.getLogger("app.explain")
DECIMAL = re.compile(r"^-?[0-9]{1,18}$")  # a plain decimal integer, ASCII digits only
ASYNC_QUERY = Query(False, alias="async", description="run the method as a job even if it is synchronous "
                    "(202 and a job to poll): for costly faithfulness figures or a long request")

_MULTIPART_SCHEMA = {
    "type": "object",
    "required": ["model_id", "file"],
    "properties": {
        "file": {"type": "string", "format": "binary", "description": "the image file"},
        "model_id": {"type": "string", "minLength": 1, "maxLength": 200},
        "target": {"type": "string", "description": "class index (ASCII decimal digits) or label; empty for the "
                   "top-1 class"},
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


def _integer_field(name: str, value: str) -> int:
    if not DECIMAL.match(value):
        raise RequestValidationError([{"type": "int_parsing", "loc": ("body", name),
                                       "msg": f"{name} must be a plain decimal integer (ASCII digits)"}])
    return int(value)


async def _from_multipart(request: Request, max_bytes: int) -> tuple[ExplainRequest, bytes]:
    async with request.form(max_files=1, max_fields=16, max_part_size=max_bytes) as form:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise InvalidInput("multipart requests need a 'file' part with the image", code="missing_file")
        image = await upload.read()
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
    target: Any = fields.get("target") or None
    if target is not None and DECIMAL.match(target):
        target = int(target)
    data = {
        "model_id": fields.get("model_id", ""), "input": {"image": "-"}, "target": target,
        "params": _loads(fields["params"], "params") if fields.get("params") else {},
        "output": _loads(fields["output"], "output") if fields.get("output") else {},
    }
    if fields.get("top_k"):
        data["top_k"] = _integer_field("top_k", fields["top_k"])
    return _validate(data), image


@router.post("/explain/{method}", operation_id="explain",
             response_model=Explanation | BatchExplanation | TargetsExplanation,
             responses={**ERROR_RESPONSES, 202: {"model": JobAccepted, "description": "an async method's job"}},
             openapi_extra=_BODY)
async def explain(method: str, request: Request, service: ServiceDep, settings: SettingsDep, caller: ExplainCaller,
                  metrics: MetricsDep, wait: float | None = WAIT_QUERY, as_job: bool = ASYNC_QUERY) -> Any:
    """Explain one input (`input`), or several (`inputs`: a BatchExplanation). Sync methods answer 200 with the
    explanation; async ones (and any method with `?async=true`) 202 with a job (or 200 with the explanation
    when the cache has it)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        body, image = await _from_multipart(request, settings.max_body_bytes)
        payload: dict[str, Any] = {"image": image}
    elif content_type in ("application/json", ""):
        body = _validate(_loads(await request.body(), "the request body"))
        if (body.input is None) == (body.inputs is None):
            raise RequestValidationError([{"type": "missing" if body.input is None else "extra_forbidden",
                                           "loc": ("body", "input"), "msg": "send exactly one of `input` (one "
                                           "input) and `inputs` (a list of inputs)"}])
        if body.inputs is not None:
            return await _explain_inputs(method, body, body.inputs, service, settings, caller, metrics, wait, as_job)
        assert body.input is not None
        payload = body.input.payload()
    else:
        raise UnsupportedMediaType(f"content type {content_type[:100]!r} is not accepted; "
                                   "send application/json or multipart/form-data")
    output = body.output.model_dump()
    assert body.input is not None
    region, target = body.input.region(), target_value(body.target)
    return await _answer(
        method, body.model_id, as_job or service.execution(method) == "async",
        lambda: service.submit(caller, method, body.model_id, payload, target=target, params=body.params,
                               output=output, top_k=body.top_k, region=region),
        lambda: service.explain(method, body.model_id, payload, target=target, params=body.params, output=output,
                                top_k=body.top_k, region=region),
        service, settings, caller, metrics, wait)


async def _answer(method: str, model_id: str, queued: bool, submit: Callable[[], Submission],
                  run: Callable[[], dict[str, Any]], service: ServiceDep, settings: SettingsDep,
                  caller: ExplainCaller, metrics: MetricsDep, wait: float | None) -> Any:
    """A job when `queued` (202, or the cache's result at once), else the explanation now, measured and logged."""
    if queued:
        submitted = await run_in_threadpool(submit)
        if submitted.result is not None:
            return sized(submitted.result, settings.max_result_bytes)
        assert submitted.job_id is not None
        return await accepted(service, settings, submitted.job_id, wait, caller, joined=submitted.joined)
    t0 = time.perf_counter()
    status, evaluations = "ok", 0
    result: dict[str, Any] | None = None
    try:
        result = await run_in_threadpool(run)
        evaluations = _evaluations(result)
        return sized(result, settings.max_result_bytes)
    except ServiceError as exc:
        status = exc.code
        raise
    except Exception:
        status = "internal_error"
        raise
    finally:
        seconds = time.perf_counter() - t0
        metrics.explained(method, model_id if status != "unknown_model" else "unknown", status, seconds, evaluations)
        log.info("explanation", extra={"model": model_id[:200], "method": method[:64], "status": status,
                                       "evaluations": evaluations, "duration_ms": round(seconds * 1e3, 1),
                                       "cached": bool(result and result.get("details", {}).get("cached"))})


def _evaluations(result: dict[str, Any]) -> int:
    """The model evaluations an answer ran: its own, or its explanations' (several inputs)."""
    if "explanations" in result:
        return sum(int(e["details"].get("model_evaluations", 0)) for e in result["explanations"])
    return int(result.get("details", {}).get("model_evaluations", 0))


async def _explain_inputs(method: str, body: ExplainRequest, inputs: list[ExplainInput], service: ServiceDep,
                          settings: SettingsDep, caller: ExplainCaller, metrics: MetricsDep, wait: float | None,
                          as_job: bool) -> Any:
    """Several inputs with one method: one job for the list (async methods, `?async=true`), else at once."""
    if isinstance(body.target, TargetObject | list):
        raise InvalidTarget("several inputs share one class (an index, a label or null): a list of targets, a "
                            "versus or a region explains one input; send it with `input`, not `inputs`")
    target = body.target
    payloads = [i.payload() for i in inputs]
    given = [i.region() for i in inputs]
    regions = given if any(r is not None for r in given) else None
    output = body.output.model_dump()
    return await _answer(
        method, body.model_id, as_job or service.execution(method) == "async",
        lambda: service.submit_inputs(caller, method, body.model_id, payloads, target=target, params=body.params,
                                      output=output, top_k=body.top_k, regions=regions),
        lambda: service.explain_inputs(method, body.model_id, payloads, target=target, params=body.params,
                                       output=output, top_k=body.top_k, regions=regions),
        service, settings, caller, metrics, wait)


@router.post("/explain", operation_id="explain_many", response_model=MultiExplanation,
             responses={**ERROR_RESPONSES, 202: {"model": JobAccepted, "description": "the job, when a method is "
                                                 "async or with ?async=true"}})
async def explain_many(body: MultiExplainRequest, service: ServiceDep, settings: SettingsDep, caller: ExplainCaller,
                       wait: float | None = WAIT_QUERY, as_job: bool = ASYNC_QUERY) -> Any:
    """Several methods on one input: each method's explanation of the same target (one forward pass finds
    it) and how much their maps agree (pairwise Spearman correlation and top-`top_percent` % overlap). A job
    (202) when any method is async, or with `?async=true`."""
    methods = list(body.methods)
    params = {name: dict(p) for name, p in body.params.items()}
    payload, region, output = body.input.payload(), body.input.region(), body.output.model_dump()
    target = target_value(body.target)
    if as_job or any(service.execution(m) == "async" for m in methods):
        job_id = await run_in_threadpool(service.submit_multi, caller, methods, body.model_id, payload,
                                         target=target, params=params, output=output, top_k=body.top_k,
                                         top_percent=body.top_percent, region=region)
        return await accepted(service, settings, job_id, wait, caller)
    result = await run_in_threadpool(service.explain_many, methods, body.model_id, payload, target=target,
                                     params=params, output=output, top_k=body.top_k, top_percent=body.top_percent,
                                     region=region)
    return sized(result, settings.max_result_bytes)
