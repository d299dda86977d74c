"""Who is calling: `Authorization: Bearer <key>` or `X-API-Key: <key>` when keys are on, else anonymous.

Each route needs a scope (`explain`, `jobs`, `admin`); `require(scope)` is its dependency. It also
counts the request against the key's rate limit. With no keys configured every caller is anonymous
with every scope and no limits (embedded mode and the quick start stay keyless).
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Annotated, Any

from fastapi import Depends, Request

from app.keys import ANONYMOUS_CALLER, Caller, KeyRing
from app.limits import check_rate
from explainers.errors import ServiceError


class Unauthorized(ServiceError):
    code, status = "unauthorized", HTTPStatus.UNAUTHORIZED


class Forbidden(ServiceError):
    code, status = "insufficient_scope", HTTPStatus.FORBIDDEN


def presented_key(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    key = request.headers.get("x-api-key", "").strip()
    return key or None


def identify(request: Request) -> Caller:
    ring: KeyRing = request.app.state.keyring
    if not ring.enabled:
        return ANONYMOUS_CALLER
    key = presented_key(request)
    if key is None:
        raise Unauthorized("this service needs an API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
                           code="missing_api_key")
    caller = ring.caller(key)
    if caller is None:
        raise Unauthorized("the API key is not valid", code="invalid_api_key")
    return caller


def require(scope: str) -> Any:
    """A dependency: the caller, who must hold `scope` (keys on), counted against its rate limit."""
    def dependency(request: Request) -> Caller:
        caller = identify(request)
        if caller.keyed and scope not in caller.scopes:
            raise Forbidden(f"the key {caller.name!r} lacks the scope {scope!r}",
                            details={"needed": scope, "scopes": sorted(caller.scopes)})
        service = request.app.state.service
        check_rate(service.redis(), caller.name, caller.rate_limit)
        request.state.caller = caller
        return caller

    dependency.__name__ = f"require_{scope}"
    return Depends(dependency)


def access(setting: str) -> Any:
    """The dependency of a route whose access is a setting: `public`, `key` (any scope) or `admin`."""
    def dependency(request: Request) -> Caller:
        mode = getattr(request.app.state.settings, setting)
        if mode == "public" or not request.app.state.keyring.enabled:
            return ANONYMOUS_CALLER
        caller = identify(request)
        if mode == "admin" and not caller.admin:
            raise Forbidden(f"the key {caller.name!r} lacks the scope 'admin'", details={"needed": "admin"})
        return caller

    dependency.__name__ = f"access_{setting}"
    return Depends(dependency)


ExplainCaller = Annotated[Caller, require("explain")]
JobsCaller = Annotated[Caller, require("jobs")]
AdminCaller = Annotated[Caller, require("admin")]
