"""The API process's service: the explanation service (composed, not inherited), start-up loading, the
job queue, the cache and readiness. The only module of `app` that imports torch (through `jobqueue.wiring`)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

import redis

from app.embedded import EmbeddedRedis, WorkerSupervisor
from app.jobs import JobClient
from app.keys import Caller
from app.settings import Settings
from app.submit import Submitted, Submitter, job_input
from app.waiting import Waiter
from explainers.errors import ServiceError
from explainers.methods import get_method
from explainers.serialize import OutputOptions
from explainers.service import ExplanationService
from explainers.types import Target
from jobqueue.cache import ExplanationCache
from jobqueue.connection import QueueUnavailable, connect
from jobqueue.reaper import Reaper
from jobqueue.wiring import build_explanations

log = logging.getLogger(__name__)


class NoSample(ServiceError):
    code, status = "no_sample", HTTPStatus.NOT_FOUND


class ApiService:
    """What the routes call: discovery, sync explanations, async submissions, jobs, readiness."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.explanations: ExplanationService = build_explanations(settings)
        self.registry = self.explanations.registry
        self._loaded = threading.Event()
        self.jobs: JobClient | None = None
        self.cache: ExplanationCache | None = None
        self.waiter: Waiter | None = None
        self.submitter: Submitter | None = None
        self.embedded: EmbeddedRedis | None = None
        self.supervisor: WorkerSupervisor | None = None
        self.reaper: Reaper | None = None

    # -- life cycle ----------------------------------------------------------------------------
    def start(self) -> None:
        mode = self.settings.preload
        if mode == "startup":
            self._preload()
        elif mode == "background":
            self.registry.mark_loading(self.registry.ids())  # listed as loading from the first request on
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
        connection = connect(url)
        self.jobs = JobClient(connection, s.queue_name, job_timeout=s.job_timeout, result_ttl=s.result_ttl,
                              failure_ttl=s.failure_ttl, retries=s.job_retries)
        self.cache = ExplanationCache(connection, s.queue_name, ttl=s.cache_ttl, max_bytes=s.cache_max_bytes,
                                      max_item_bytes=s.cache_max_item_bytes)
        self.submitter = Submitter(self.explanations, self.jobs, self.cache, cache_async=s.cache_async,
                                   join_ttl=2 * s.job_timeout)
        self.waiter = Waiter(url, s.max_waiting)
        # Jobs of killed workers are retried or failed even when no other worker is left to notice.
        self.reaper = Reaper([self.jobs.queue])
        self.reaper.start()

    def stop(self) -> None:
        if self.reaper is not None:
            self.reaper.stop()
        if self.supervisor is not None:
            self.supervisor.stop()
        if self.embedded is not None:
            self.embedded.stop()

    def _preload(self) -> None:
        self.registry.load_all()  # each failure is logged and kept as the bundle's state
        self._loaded.set()

    def redis(self) -> redis.Redis | None:
        return self.jobs.connection if self.jobs is not None else None

    # -- discovery and sync requests -------------------------------------------------------------
    def methods_info(self) -> list[dict[str, Any]]:
        return self.explanations.methods_info()

    def model_info(self, model_id: str) -> dict[str, Any]:
        return self.explanations.model_info(model_id)

    def models_info(self) -> list[dict[str, Any]]:
        return self.explanations.models_info()

    def execution(self, method: str) -> str:
        return get_method(method).execution.value

    def predict(self, model_id: str, payload: Mapping[str, Any], top_k: int = 5) -> dict[str, Any]:
        return self.explanations.predict(model_id, payload, top_k)

    def explain(self, method: str, model_id: str, payload: Mapping[str, Any], *, target: Target = None,
                params: Mapping[str, Any] | None = None, output: Mapping[str, Any] | None = None,
                top_k: int = 5, region: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """A sync explanation; from the cache when `XAI_CACHE_SYNC` is on and it has it."""
        out = dict(output or {})
        options = OutputOptions.from_dict(out)
        key = None
        if self.settings.cache_sync and self.cache is not None and self.submitter is not None:
            checked = self.explanations.check(method, model_id, payload, params, target)
            key = self.submitter.key_of(checked, model_id, out, top_k, job_input(checked)[1], region)
            hit = self.cache.get(key)
            if hit is not None:
                return hit
        body = self.explanations.explain(method, model_id, payload, target=target, params=params, output=options,
                                         top_k=top_k, region=region)
        body["details"]["cached"] = False
        if key is not None and self.cache is not None:
            self.cache.put(key, body)
        return body

    def explain_inputs(self, method: str, model_id: str, payloads: list[dict[str, Any]], *,
                       target: int | str | None = None, params: Mapping[str, Any] | None = None,
                       output: Mapping[str, Any] | None = None, top_k: int = 5,
                       regions: list[dict[str, Any] | None] | None = None) -> dict[str, Any]:
        """Several inputs, one method, in shared batches; from the cache when `XAI_CACHE_SYNC` is on and it has
        every input's explanation (each entry is cached under its single-input key)."""
        out = dict(output or {})
        keys: list[str] | None = None
        if self.settings.cache_sync and self.cache is not None and self.submitter is not None:
            checked = self.explanations.check_inputs(method, model_id, payloads, params, target, regions)
            keys = [self.submitter.key_of(c, model_id, out, top_k, job_input(c)[1], regions[i] if regions else None)
                    for i, c in enumerate(checked)]
            hits = self.submitter.cached(keys, use=True)
            if hits is not None:
                return {"model_id": model_id, "method": method, "explanations": hits, "timing_ms": {"total": 0.0}}
        body = self.explanations.explain_inputs(method, model_id, payloads, target=target, params=params,
                                                output=OutputOptions.from_dict(out), top_k=top_k, regions=regions)
        for i, entry in enumerate(body["explanations"]):
            entry["details"]["cached"] = False
            if keys is not None and self.cache is not None:
                self.cache.put(keys[i], {**entry, "details": {k: v for k, v in entry["details"].items()
                                                              if k != "batched"}})
        return body

    def submit_inputs(self, caller: Caller, method: str, model_id: str, payloads: list[dict[str, Any]], *,
                      target: int | str | None, params: Mapping[str, Any] | None, output: Mapping[str, Any],
                      top_k: int, regions: list[dict[str, Any] | None] | None = None) -> Submitted:
        self.job_client()
        assert self.submitter is not None
        return self.submitter.submit_inputs(caller, method, model_id, payloads, target=target, params=params,
                                            output=output, top_k=top_k, regions=regions)

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

    def submit(self, caller: Caller, method: str, model_id: str, payload: Mapping[str, Any], *,
               target: Target, params: Mapping[str, Any] | None, output: Mapping[str, Any],
               top_k: int, region: Mapping[str, Any] | None = None) -> Submitted:
        self.job_client()
        assert self.submitter is not None
        return self.submitter.submit(caller, method, model_id, payload, target=target, params=params,
                                     output=output, top_k=top_k, region=region)

    def submit_patterns(self, caller: Caller, model_id: str, inputs: list[dict[str, Any]] | None) -> str:
        self.job_client()
        assert self.submitter is not None
        return self.submitter.submit_patterns(caller, model_id, inputs)

    def explain_many(self, methods: list[str], model_id: str, payload: Mapping[str, Any], *,
                     target: Target, params: Mapping[str, Mapping[str, Any]], output: Mapping[str, Any],
                     top_k: int, top_percent: float, region: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return self.explanations.explain_many(methods, model_id, payload, params=params, target=target,
                                              output=OutputOptions.from_dict(output), top_k=top_k,
                                              top_percent=top_percent, region=region)

    def submit_multi(self, caller: Caller, methods: list[str], model_id: str, payload: Mapping[str, Any], *,
                     target: Target, params: Mapping[str, Mapping[str, Any]], output: Mapping[str, Any],
                     top_k: int, top_percent: float, region: Mapping[str, Any] | None = None) -> str:
        self.job_client()
        assert self.submitter is not None
        return self.submitter.submit_multi(caller, methods, model_id, payload, target=target, params=params,
                                           output=output, top_k=top_k, top_percent=top_percent, region=region)

    def submit_sanity(self, caller: Caller, model_id: str, body: Mapping[str, Any]) -> str:
        self.job_client()
        assert self.submitter is not None
        return self.submitter.submit_sanity(caller, model_id, body)

    def submit_global(self, caller: Caller, method: str, model_id: str, body: Mapping[str, Any]) -> str:
        self.job_client()
        assert self.submitter is not None
        return self.submitter.submit_global(caller, method, model_id, body)

    def submit_evaluation(self, caller: Caller, model_id: str, body: Mapping[str, Any]) -> str:
        self.job_client()
        assert self.submitter is not None
        return self.submitter.submit_evaluation(caller, model_id, body)

    def workers_alive(self) -> int:
        try:
            return len(self.job_client().workers())
        except ServiceError:
            return 0

    # -- readiness -------------------------------------------------------------------------------
    def readiness(self) -> dict[str, Any]:
        """Ready: the queue answers, a worker is alive, a model is servable; with per-model and per-worker state."""
        reasons: dict[str, Any] = {}
        queue: dict[str, Any] = {"status": "ok"}
        workers: list[dict[str, Any]] = []
        try:
            client = self.job_client()
            client.ping()
            workers = [{"name": w["name"], "state": w.get("state"), "host": w.get("host"), "device": w.get("device"),
                        "job": w.get("job"), "seen_s_ago": round(time.time() - float(w.get("at", 0)), 1)}
                       for w in client.workers()]
            queue["depth"] = client.queue.count
        except ServiceError as exc:
            queue = {"status": "unavailable", "error": exc.message}
            reasons["queue"] = exc.message
        if queue["status"] == "ok" and not workers:
            reasons["workers"] = "no worker is alive: async methods would wait in the queue"
        models = self.registry.states()
        if not any(m["status"] == "ready" for m in models.values()):
            if not models:
                reasons["models"] = f"no model bundles in the registry folder ({self.registry.folder.name})"
            elif not self._loaded.is_set() or any(m["status"] == "loading" for m in models.values()):
                reasons["models"] = "loading"
            elif self.settings.preload == "lazy" and not any(m["status"] == "error" for m in models.values()):
                pass  # lazy: models load on first use; servable unless broken
            else:
                reasons["models"] = "no model is servable"
        return {"ready": not reasons, "reasons": reasons or None, "queue": queue, "workers": workers,
                "models": models}


def build_service(settings: Settings) -> ApiService:
    return ApiService(settings)
