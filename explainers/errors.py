"""One error root for the whole service: a stable code plus an HTTP status.

`explainers` never imports FastAPI; the app turns these into error bodies.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any


class ServiceError(Exception):
    """Root of every expected error: carries a machine-readable code and a status."""

    code: str = "internal_error"
    status: HTTPStatus = HTTPStatus.INTERNAL_SERVER_ERROR

    def __init__(self, message: str, *, details: Any = None, code: str | None = None,
                 status: HTTPStatus | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}


class UnknownModel(ServiceError):
    code, status = "unknown_model", HTTPStatus.NOT_FOUND


class UnknownMethod(ServiceError):
    code, status = "unknown_method", HTTPStatus.NOT_FOUND


class MethodNotSupported(ServiceError):
    code, status = "method_not_supported_for_model", HTTPStatus.UNPROCESSABLE_ENTITY


class WrongScope(ServiceError):
    """A global method asked to explain one input (`global_method`), or a local one asked to explain
    a model (`local_method`)."""

    code, status = "global_method", HTTPStatus.UNPROCESSABLE_ENTITY


class InvalidParams(ServiceError):
    code, status = "invalid_params", HTTPStatus.UNPROCESSABLE_ENTITY


class InvalidInput(ServiceError):
    code, status = "invalid_input", HTTPStatus.UNPROCESSABLE_ENTITY


class InvalidImage(ServiceError):
    code, status = "invalid_image", HTTPStatus.BAD_REQUEST


class PayloadTooLarge(ServiceError):
    code, status = "payload_too_large", HTTPStatus.REQUEST_ENTITY_TOO_LARGE


class InvalidTarget(ServiceError):
    code, status = "invalid_target", HTTPStatus.UNPROCESSABLE_ENTITY


class ModelLoadError(ServiceError):
    code, status = "model_unavailable", HTTPStatus.SERVICE_UNAVAILABLE
