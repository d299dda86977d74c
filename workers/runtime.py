"""Building the worker's explanation service from the shared XAI_* settings."""

from __future__ import annotations

from explainers.service import ExplanationService
from jobqueue.settings import SharedSettings
from jobqueue.wiring import build_explanations


def build_service(settings: SharedSettings | None = None) -> ExplanationService:
    return build_explanations(settings or SharedSettings())
