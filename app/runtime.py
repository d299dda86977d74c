"""Wiring of the explanation service for the API process (imports torch)."""

from __future__ import annotations

import logging
import threading
from typing import Any

from app.settings import Settings
from explainers.models.registry import ModelRegistry
from explainers.service import ExplanationService, Limits

log = logging.getLogger(__name__)


class ApiService(ExplanationService):
    """The explanation service plus start-up loading and readiness."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(ModelRegistry(settings.model_dir, settings.device),
                         Limits(max_image_pixels=settings.max_image_pixels, max_text_chars=settings.max_text_chars))
        self.settings = settings
        self._loaded = threading.Event()
        self._failures: dict[str, str] = {}

    def start(self) -> None:
        mode = self.settings.preload
        if mode == "startup":
            self._preload()
        elif mode == "background":
            threading.Thread(target=self._preload, name="model-preload", daemon=True).start()
        else:
            self._loaded.set()

    def _preload(self) -> None:
        self._failures = self.registry.load_all()
        for model_id, reason in self._failures.items():
            log.error("model %s failed to load: %s", model_id, reason)
        self._loaded.set()

    def readiness(self) -> dict[str, Any]:
        reasons: dict[str, Any] = {}
        if not self._loaded.is_set():
            reasons["models"] = "loading"
        elif self._failures:
            reasons["models"] = {"failed": self._failures}
        if not self.registry.ids():
            reasons["registry"] = f"no model bundles in {self.registry.folder}"
        return {"ready": not reasons, "reasons": reasons or None}


def build_service(settings: Settings) -> ApiService:
    if settings.torch_threads:
        import torch

        torch.set_num_threads(settings.torch_threads)
    return ApiService(settings)
