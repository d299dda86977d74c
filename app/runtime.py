"""Wiring of the explanation service for the API process (imports torch)."""

from __future__ import annotations

import base64
import logging
import threading
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from app.embedded import EmbeddedRedis, WorkerSupervisor
from app.jobs import JobClient, QueueUnavailable, connect
from app.settings import Settings
from explainers.base import resolve_target
from explainers.errors import ServiceError
from explainers.methods import get_method
from explainers.models.registry import ModelRegistry
from explainers.service import ExplanationService, Limits

log = logging.getLogger(__name__)


class NoSample(ServiceError):
    code, status = "no_sample", HTTPStatus.NOT_FOUND


class ApiService(ExplanationService):
    """The explanation service plus start-up loading, the job queue and readiness."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(*explanation_parts(settings))
        self.settings = settings
        self._loaded = threading.Event()
        self._failures: dict[str, str] = {}
        self.jobs: JobClient | None = None
        self.embedded: EmbeddedRedis | None = None
        self.supervisor: WorkerSupervisor | None = None
        self._stop = threading.Event()

    # -- life cycle ----------------------------------------------------------------------------
    def start(self) -> None:
        mode = self.settings.preload
        if mode == "startup":
            self._preload()
        elif mode == "background":
            threading.Thread(target=self._preload, name="model-preload", daemon=True).start()
        else:
            self._loaded.set()
        self._start_queue()

    def _start_queue(self) -> None:
        s = self.settings
        url = s.redis_url
        if url is None:
            self.embedded = EmbeddedRedis(s.state_dir)
            url = self.embedded.start()
            if s.embedded_workers:
                self.supervisor = WorkerSupervisor(url, s.embedded_workers, env={
                    "XAI_MODEL_DIR": str(s.model_dir), "XAI_STATE_DIR": str(s.state_dir)})
                self.supervisor.start()
        self.jobs = JobClient(connect(url), s.queue_name, job_timeout=s.job_timeout, result_ttl=s.result_ttl,
                              failure_ttl=s.failure_ttl, retries=s.job_retries)
        threading.Thread(target=self._reap, name="reaper", daemon=True).start()

    def _reap(self) -> None:
        """Jobs of killed workers are retried or failed even when no other worker is left to notice."""
        while not self._stop.wait(5.0):
            try:
                if self.jobs is not None:
                    self.jobs.reap()
            except Exception as exc:
                log.debug("reaper: %s", exc)

    def stop(self) -> None:
        self._stop.set()
        if self.supervisor is not None:
            self.supervisor.stop()
        if self.embedded is not None:
            self.embedded.stop()

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
        if self.registry.broken:
            reasons["bundles"] = {"unreadable": self.registry.broken}
        try:
            self.job_client().ping()
        except ServiceError as exc:
            reasons["queue"] = exc.message
        return {"ready": not reasons, "reasons": reasons or None}

    # -- sample inputs -------------------------------------------------------------------------
    def sample(self, model_id: str, index: int = 0) -> dict[str, Any]:
        """Row `index` of a tabular model's background sample, as a contract input."""
        manifest = self.registry.manifest(model_id)
        if manifest.tabular is None:
            raise NoSample(f"model {model_id!r} takes {manifest.modality.value} input: only tabular bundles carry "
                           "sample rows (see /examples for images and texts)", details={"count": 0})
        model = self.registry.get(model_id)
        background = model.background
        count = 0 if background is None else len(background)
        if background is None or index >= count:
            raise NoSample(f"model {model_id!r} has {count} sample rows; there is no row {index}",
                           details={"count": count})
        row = {name: float(f"{float(v):.7g}") for name, v in zip(model.feature_names, background[index])}
        return {"model_id": model_id, "index": index, "count": count, "input": {"features": row}}

    # -- async requests ------------------------------------------------------------------------
    def job_client(self) -> JobClient:
        if self.jobs is None:
            raise QueueUnavailable("the job queue is not started")
        return self.jobs

    def execution(self, method: str) -> str:
        return get_method(method).execution.value

    def submit(self, method: str, model_id: str, payload: Mapping[str, Any], *, target: int | str | None,
               params: Mapping[str, Any] | None, output: Mapping[str, Any], top_k: int) -> str:
        """Check the request as a sync call would, then enqueue it; returns the job id."""
        prepared = self.prepare(method, model_id, payload, params)
        if target is not None:
            resolve_target(target, prepared.model.labels, 0)
        data = dict(payload)
        if isinstance(data.get("image"), bytes):
            data["image"] = base64.b64encode(data["image"]).decode("ascii")
        return self.job_client().submit({
            "method": method, "model_id": model_id, "input": data, "target": target,
            "params": prepared.params.model_dump(mode="json"), "output": dict(output), "top_k": top_k,
            "attribution_encoding": output.get("attribution", "base64")})


    def submit_patterns(self, model_id: str, inputs: list[dict[str, Any]] | None) -> str:
        """Check the sample set (the model, each input), then enqueue the patterns job; returns its id."""
        self.pattern_samples(model_id, inputs)
        return self.job_client().submit({"model_id": model_id, "inputs": inputs}, kind="patterns")


def explanation_parts(settings: Settings) -> tuple[ModelRegistry, Limits]:
    """Apply the torch thread setting; the model registry and input limits the settings describe.

    The API process and the workers build their explanation services from these alike.
    """
    if settings.torch_threads:
        import torch

        torch.set_num_threads(settings.torch_threads)
    limits = Limits(max_image_pixels=settings.max_image_pixels, max_text_chars=settings.max_text_chars)
    return ModelRegistry(settings.model_dir, settings.device, state_dir=settings.state_dir), limits


def build_service(settings: Settings) -> ApiService:
    return ApiService(settings)
