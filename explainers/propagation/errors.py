"""Errors of the propagation engine: a model it cannot explain, a rule that does not apply."""

from __future__ import annotations

from http import HTTPStatus

from explainers.errors import ServiceError


class UnsupportedModel(ServiceError):
    """The model has a layer or an operation the engine cannot propagate relevance through."""

    code, status = "unsupported_model", HTTPStatus.UNPROCESSABLE_ENTITY


class RuleNotSupported(ServiceError):
    """A rule that does not apply to the model (z-box needs bounded pixel inputs)."""

    code, status = "rule_not_supported", HTTPStatus.UNPROCESSABLE_ENTITY


class PatternsMissing(ServiceError):
    """PatternNet / PatternAttribution on a model whose patterns are not computed yet."""

    code, status = "patterns_missing", HTTPStatus.CONFLICT
