"""The error responses a route declares in the spec."""

from __future__ import annotations

from typing import Any

from app.schemas.responses import ErrorBody

_ERROR_TEXT = {400: "bad input (not JSON, an undecodable image, a bad Content-Length)",
               401: "an API key is needed (keys on) or the key is not valid",
               403: "the API key lacks the scope this route needs", 404: "unknown model, method, job or file",
               409: "the job has not finished", 413: "payload too large", 415: "unsupported media type",
               422: "invalid params, target, input or query",
               429: "the key's rate limit or job cap is reached (see Retry-After)",
               503: "backend unavailable (queue, model server)"}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The error responses a route can give, each with the contract's error body."""
    return {code: {"model": ErrorBody, "description": _ERROR_TEXT[code]} for code in codes}


AUTH = (401, 403, 429)  # what any route behind keys can answer
ERROR_RESPONSES = error_responses(400, *AUTH, 404, 413, 415, 422, 503)  # what POST /explain can answer
