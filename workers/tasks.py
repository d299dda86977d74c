"""The tasks RQ runs: thin. The worker process holds the loaded service; a task reads its typed
payload (`jobqueue.contract`), runs it with progress, stores the result once and says why it failed."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http import HTTPStatus
from typing import Any

import redis
from rq import get_current_job
from rq.job import Job
from rq.timeouts import JobTimeoutException

from explainers.errors import ServiceError
from explainers.evaluation.faithfulness import FaithfulnessOptions
from explainers.serialize import OutputOptions
from explainers.service import ExplanationService
from jobqueue import job_metrics
from jobqueue.cache import ExplanationCache
from jobqueue.contract import (
    BatchExplanationJob,
    EvaluationJob,
    ExplanationJob,
    GlobalJob,
    MultiExplanationJob,
    PatternsJob,
    SanityJob,
    parse_payload,
)
from jobqueue.keys import cancel_key
from jobqueue.settings import SharedSettings

log = logging.getLogger(__name__)

_service: ExplanationService | None = None
_settings: SharedSettings | None = None
shutdown = threading.Event()  # set on SIGTERM: the running job gives itself back to the queue


class JobCanceled(Exception):
    """The client canceled the job."""


class WorkerShutdown(Exception):
    """The worker is stopping; the worker puts the job back on the queue without spending a retry."""


class ResultTooLarge(ServiceError):
    code, status = "result_too_large", HTTPStatus.UNPROCESSABLE_ENTITY


def set_service(service: ExplanationService, settings: SharedSettings | None = None) -> None:
    global _service, _settings
    _service, _settings = service, settings


def settings() -> SharedSettings:
    global _settings
    if _settings is None:
        _settings = SharedSettings()
    return _settings


def service() -> ExplanationService:
    """The process's service, built from the XAI_* settings on first use (when run by `rq worker`)."""
    global _service
    if _service is None:
        from jobqueue.wiring import build_explanations

        _service = build_explanations(settings())
    return _service


class JobProgress:
    """Progress callback: writes job.meta['progress'] (throttled), honours cancel and shutdown.

    A Redis that stops answering mid-job does not stop the job: progress is skipped until it is back.
    """

    wants_error = True  # the method's current error estimate comes with the fraction, where it has one

    def __init__(self, job: Job, interval: float = 0.25) -> None:
        self.job = job
        self.interval = interval
        self._last = 0.0
        self._start = time.monotonic()
        self._cancel_key = cancel_key(job.id)

    def __call__(self, fraction: float, error: float | None = None) -> None:
        if shutdown.is_set():
            raise WorkerShutdown()
        now = time.monotonic()
        if now - self._last < self.interval and fraction < 1.0:
            return
        self._last = now
        try:
            if self.job.connection.exists(self._cancel_key):
                raise JobCanceled()
            done = max(float(self.job.meta.get("progress", 0.0)), min(fraction, 1.0))
            self.job.meta["progress"] = round(done, 4)
            self.job.meta["eta_s"] = round((now - self._start) * (1 - done) / done, 1) if done > 0 else None
            if error is not None:
                self.job.meta["error_estimate"] = round(float(error), 6)
            self.job.save_meta()
        except redis.RedisError as exc:
            log.warning("job %s: progress not saved, Redis does not answer: %s", self.job.id, exc)


def _fail(job: Job, error: dict[str, Any]) -> None:
    job.retries_left = None  # deterministic: retrying cannot help
    job.meta["error"] = error
    job.save_meta()


def _run(job: Job, work: Callable[[JobProgress], dict[str, Any]]) -> dict[str, Any]:
    """Run a job's work with progress; record why it failed on the job, and whether to retry."""
    job.meta["progress"] = 0.0
    job.save_meta()
    try:
        return work(JobProgress(job))
    except JobCanceled:
        _fail(job, {"code": "canceled", "message": "canceled by the client", "details": None})
        job.meta["canceled"] = True
        job.save_meta()
        raise
    except ServiceError as exc:
        _fail(job, exc.to_dict())
        raise
    except JobTimeoutException:  # it would time out again: no retry
        _fail(job, {"code": "job_timeout", "message": f"the job ran past its limit of {job.timeout} s",
                    "details": {"timeout_s": job.timeout}})
        raise


def _current() -> Job:
    job = get_current_job()
    assert job is not None, "tasks run inside an RQ job"
    return job


def explain_job(payload: dict[str, Any]) -> dict[str, Any]:
    """Run one explanation; the result is the contract's Explanation, its attribution in the encoding asked for."""
    spec = parse_payload(payload)
    assert isinstance(spec, ExplanationJob)
    job = _current()
    options = OutputOptions.from_dict(spec.output)
    with _recorded(job, spec.method, spec.model_id) as tally:
        result = _run(job, lambda progress: service().explain(
            spec.method, spec.model_id, spec.input.as_request(), target=spec.target, params=spec.params,
            output=options, top_k=spec.top_k, progress=progress, region=spec.region, in_job=True))
        tally.evaluations = int(result["details"].get("model_evaluations", 0))
        result["details"]["cached"] = False
        _sized(job, result)
        if spec.cache_key and settings().cache_async:
            _cache(job).put(spec.cache_key, result)
        tally.status = "finished"
        return result


class _Tally:
    """What a job's explanation metrics record: its status and model evaluations."""

    status, evaluations = "failed", 0


@contextmanager
def _recorded(job: Job, method: str, model_id: str) -> Iterator[_Tally]:
    """Record the explanation metrics of the block's job when it ends (not when it was canceled)."""
    t0, tally = time.perf_counter(), _Tally()
    try:
        yield tally
    except (JobCanceled, WorkerShutdown):
        tally.status = "canceled"
        raise
    finally:
        if tally.status != "canceled":
            _record(job, method, model_id, tally.status, time.perf_counter() - t0, tally.evaluations)


def patterns_job(payload: dict[str, Any]) -> dict[str, Any]:
    """Compute and store a model's patterns from the payload's inputs (else the bundle's samples)."""
    spec = parse_payload(payload)
    assert isinstance(spec, PatternsJob)
    job = _current()
    return _run(job, lambda progress: service().compute_patterns(spec.model_id, spec.inputs, progress))


def multi_job(payload: dict[str, Any]) -> dict[str, Any]:
    """Several methods on one input, with their agreement (the contract's MultiExplanation)."""
    spec = parse_payload(payload)
    assert isinstance(spec, MultiExplanationJob)
    job = _current()
    options = OutputOptions.from_dict(spec.output)
    return _sized(job, _run(job, lambda progress: service().explain_many(
        spec.methods, spec.model_id, spec.input.as_request(), params=spec.params, target=spec.target,
        output=options, top_k=spec.top_k, top_percent=spec.top_percent, region=spec.region, progress=progress,
        in_job=True)))


def batch_job(payload: dict[str, Any]) -> dict[str, Any]:
    """Several inputs with one method (the contract's BatchExplanation); each input's explanation is cached
    under its own single-input key, so a later request of that input alone finds it."""
    spec = parse_payload(payload)
    assert isinstance(spec, BatchExplanationJob)
    job = _current()
    options = OutputOptions.from_dict(spec.output)
    with _recorded(job, spec.method, spec.model_id) as tally:
        result = _sized(job, _run(job, lambda progress: service().explain_inputs(
            spec.method, spec.model_id, [i.as_request() for i in spec.inputs], target=spec.target,
            params=spec.params, output=options, top_k=spec.top_k, progress=progress, regions=spec.regions,
            in_job=True)))
        for body in result["explanations"]:
            body["details"]["cached"] = False
            tally.evaluations += int(body["details"].get("model_evaluations", 0))
        if spec.cache_keys and settings().cache_async:
            cache = _cache(job)
            for key, body in zip(spec.cache_keys, result["explanations"]):
                cache.put(key, {**body, "details": {k: v for k, v in body["details"].items() if k != "batched"}})
        tally.status = "finished"
        return result


def sanity_job(payload: dict[str, Any]) -> dict[str, Any]:
    """The model randomisation test of methods on a model (the contract's SanityResult)."""
    spec = parse_payload(payload)
    assert isinstance(spec, SanityJob)
    job = _current()
    return _run(job, lambda progress: service().studies.sanity(
        spec.model_id, spec.methods, spec.params, spec.inputs, spec.n_inputs, spec.stages, spec.seed, progress))


def evaluation_job(payload: dict[str, Any]) -> dict[str, Any]:
    """The evaluation table of methods over a sample set (the contract's EvaluationResult)."""
    spec = parse_payload(payload)
    assert isinstance(spec, EvaluationJob)
    job = _current()
    quality = FaithfulnessOptions.from_request(spec.quality or True)
    return _sized(job, _run(job, lambda progress: service().studies.evaluate(
        spec.model_id, spec.methods, spec.params, spec.inputs, spec.n_inputs, quality, spec.pointing_tolerance,
        progress)))


def _sized(job: Job, result: dict[str, Any]) -> dict[str, Any]:
    """The result, unless it is over the result limit (the job then fails with result_too_large)."""
    size = len(json.dumps(result, separators=(",", ":")))
    limit = settings().max_result_bytes
    if size > limit:
        error = ResultTooLarge(f"the result is {size} bytes, more than the limit of {limit}: ask for "
                               "output.attribution 'none' or 'base64', or a smaller output.size",
                               details={"bytes": size, "max_bytes": limit})
        _fail(job, error.to_dict())
        raise error
    return result


def global_job(payload: dict[str, Any]) -> dict[str, Any]:
    """Run a global method on a model; the result is the contract's GlobalExplanation."""
    spec = parse_payload(payload)
    assert isinstance(spec, GlobalJob)
    job = _current()
    return _sized(job, _run(job, lambda progress: service().explain_model(
        spec.method, spec.model_id, spec.model_dump(mode="json"), progress)))


def _cache(job: Job) -> ExplanationCache:
    s = settings()
    return ExplanationCache(job.connection, job.origin, ttl=s.cache_ttl, max_bytes=s.cache_max_bytes,
                            max_item_bytes=s.cache_max_item_bytes)


def _record(job: Job, method: str, model: str, status: str, seconds: float, evaluations: int) -> None:
    try:
        job_metrics.record(job.connection, job.origin, method=method, model=model, status=status,
                           seconds=seconds, evaluations=evaluations)
    except redis.RedisError as exc:
        log.warning("job metrics not recorded: %s", exc)
    log.info("explanation job", extra={"job_id": job.id, "model": model, "method": method, "status": status,
                                       "evaluations": evaluations, "duration_ms": round(seconds * 1e3, 1)})
