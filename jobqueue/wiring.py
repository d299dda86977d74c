"""Building the explanation service from the shared settings (the one module here that imports torch)."""

from __future__ import annotations

from explainers.models.registry import ModelRegistry
from explainers.service import ExplanationService, Limits
from jobqueue.settings import SharedSettings


def limits_of(settings: SharedSettings) -> Limits:
    return Limits(max_image_pixels=settings.max_image_pixels, max_text_chars=settings.max_text_chars,
                  max_map_side=settings.max_map_side, max_batch_elements=settings.max_batch_elements,
                  max_sync_quality_evaluations=settings.max_sync_quality_evaluations,
                  max_inputs_pixels=settings.max_image_pixels, max_inputs_chars=settings.max_text_chars)


def build_explanations(settings: SharedSettings) -> ExplanationService:
    """Apply the torch thread setting; the registry and limits the settings describe, as a service.

    The API process and the workers build their explanation services alike.
    """
    if settings.torch_threads:
        import torch

        torch.set_num_threads(settings.torch_threads)
    registry = ModelRegistry(settings.model_dir, settings.device, state_dir=settings.state_dir)
    return ExplanationService(registry, limits_of(settings))
