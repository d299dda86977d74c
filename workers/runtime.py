"""Building the worker's explanation service from the shared XAI_* settings."""

from __future__ import annotations

from app.runtime import explanation_parts
from app.settings import Settings
from explainers.service import ExplanationService


def build_service(settings: Settings | None = None) -> ExplanationService:
    return ExplanationService(*explanation_parts(settings or Settings()))
