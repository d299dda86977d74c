"""One handler turns every error into the contract's error body (and JSON that UTF-8 can always carry)."""

from __future__ import annotations

import json
import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Mount

from explainers.errors import ServiceError

log = logging.getLogger(__name__)

HTTP_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "payload_too_large",
              415: "unsupported_media_type"}


class SafeJSONResponse(JSONResponse):
    """JSON with non-ASCII escaped (`\\u00e9`): any string, even one UTF-8 cannot carry, renders."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode("ascii")


def error_response(status: int, code: str, message: str, details: Any = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    return SafeJSONResponse({"error": {"code": code, "message": message, "details": details}},
                            status_code=status, headers=headers)


STANDARD_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route of this path takes (for a 405's Allow header)."""
    found: set[str] = set()
    scope = {k: v for k, v in request.scope.items() if k not in ("route", "endpoint", "path_params")}
    scope["root_path"] = request.scope.get("app_root_path", "")  # as the app's router saw it (not a mount's)
    for route in request.app.router.routes:
        if isinstance(route, Mount):  # the static files: they take GET and HEAD
            if route.matches(scope)[0] is not Match.NONE:
                found.add("GET")
            continue
        for method in STANDARD_METHODS:
            if route.matches({**scope, "method": method})[0] is Match.FULL:
                found.add(method)
    if "GET" in found:
        found.add("HEAD")
    return sorted(found)


def _headers(exc: ServiceError) -> dict[str, str] | None:
    if exc.status == HTTPStatus.SERVICE_UNAVAILABLE:
        return {"Retry-After": "5"}
    if exc.status == HTTPStatus.TOO_MANY_REQUESTS:
        retry = exc.details.get("retry_after_s", 5) if isinstance(exc.details, dict) else 5
        return {"Retry-After": str(int(retry))}
    if exc.status == HTTPStatus.UNAUTHORIZED:
        return {"WWW-Authenticate": 'Bearer realm="xai"'}
    return None


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def _service_error(_: Request, exc: ServiceError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.details, _headers(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        raw = exc.errors()
        errors = [{"loc": [str(p) for p in e.get("loc", ())], "message": e.get("msg", "")} for e in raw]
        if any(e.get("type") == "json_invalid" for e in raw):
            return error_response(400, "invalid_json", "the request body is not valid JSON", errors)
        if any(e.get("type") == "invalid_unicode" for e in raw):
            return error_response(422, "invalid_unicode", "the request holds text that is not valid Unicode "
                                  "(a lone surrogate, which UTF-8 cannot carry)", errors)
        return error_response(422, "invalid_request", "the request does not match the schema", errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(allowed_methods(request))
        message = str(exc.detail) if exc.status_code != 405 else \
            f"{request.method[:32]!r} is not allowed here; allowed: {headers['Allow']}"
        return error_response(exc.status_code, HTTP_CODES.get(exc.status_code, "http_error"), message,
                              headers=headers or None)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return error_response(500, "internal_error", "an unexpected error occurred")
