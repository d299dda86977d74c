"""Building the worker's explanation service from the shared XAI_* settings."""

from __future__ import annotations

from app.settings import Settings
from explainers.models.registry import ModelRegistry
from explainers.service import ExplanationService, Limits


def build_service(settings: Settings | None = None) -> ExplanationService:
    settings = settings or Settings()
    if settings.torch_threads:
        import torch

        torch.set_num_threads(settings.torch_threads)
    registry = ModelRegistry(settings.model_dir, settings.device)
    return ExplanationService(registry, Limits(max_image_pixels=settings.max_image_pixels,
                                               max_text_chars=settings.max_text_chars))
