"""Async requests: checked once (manifest and input header, no weights), answered from the cache, joined
to an identical job in flight, or built into one typed payload and enqueued."""

from __future__ import annotations

import base64
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import redis

from app.jobs import JobClient
from app.keys import Caller
from app.limits import check_jobs
from explainers.errors import InvalidInput
from explainers.service import Checked, ExplanationService
from explainers.types import Target
from jobqueue import keys
from jobqueue.cache import ExplanationCache, cache_key, input_hash
from jobqueue.connection import text
from jobqueue.contract import (
    BatchExplanationJob,
    EvaluationJob,
    ExplanationJob,
    GlobalJob,
    JobInput,
    MultiExplanationJob,
    PatternsJob,
    SanityJob,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Submitted:
    """A queued (or joined) job, or the explanation itself when the cache had it."""

    job_id: str | None = None
    result: dict[str, Any] | None = None
    joined: bool = False


def job_input(checked: Checked) -> tuple[JobInput, str]:
    """The job's input (the image base64-encoded once) and the input's hash."""
    data = checked.input
    if "image" in data:
        return JobInput(image=base64.b64encode(data["image"]).decode("ascii")), input_hash("image", data["image"])
    if "text" in data:
        return JobInput(text=data["text"]), input_hash("text", data["text"])
    return JobInput(features=data["features"]), input_hash("features", data["features"])


class Submitter:
    def __init__(self, explanations: ExplanationService, jobs: JobClient, cache: ExplanationCache | None, *,
                 cache_async: bool, join_ttl: int) -> None:
        self.explanations, self.jobs, self.cache = explanations, jobs, cache
        self.cache_async, self.join_ttl = cache_async, join_ttl

    def key_of(self, checked: Checked, model_id: str, output: Mapping[str, Any], top_k: int,
               digest: str, region: Mapping[str, Any] | None = None) -> str:
        return cache_key(weights=self.explanations.registry.weights_hash(model_id), method=checked.method.name,
                         params=checked.params.model_dump(mode="json"), target=checked.target,
                         output=dict(output), top_k=top_k, input_digest=digest, region=region)

    def submit(self, caller: Caller, method: str, model_id: str, payload: Mapping[str, Any], *,
               target: Target, params: Mapping[str, Any] | None, output: Mapping[str, Any],
               top_k: int, region: Mapping[str, Any] | None = None) -> Submitted:
        checked = self.explanations.check(method, model_id, payload, params, target)
        if region is not None and checked.manifest.image is None:
            raise InvalidInput("a region (mask or box) applies to image inputs only", code="invalid_region")
        the_input, digest = job_input(checked)
        key = self.key_of(checked, model_id, output, top_k, digest, region)
        if self.cache_async and self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                return Submitted(result=hit)
        inflight = keys.INFLIGHT.format(queue=self.jobs.name, owner=caller.name, key=key)
        try:
            running = self.jobs.connection.get(inflight)
            if running is not None and self.jobs.status_of(text(running)) in ("queued", "started"):
                return Submitted(job_id=text(running), joined=True)
        except redis.RedisError as exc:
            log.warning("could not look for an identical job in flight: %s", exc)
        check_jobs(self.jobs.connection, self.jobs.name, caller.name, caller.max_jobs)
        job = ExplanationJob(method=method, model_id=model_id, input=the_input, target=target,
                             params=checked.params.model_dump(mode="json"), output=dict(output), top_k=top_k,
                             region=dict(region) if region is not None else None, owner=caller.name, cache_key=key)
        job_id = self.jobs.submit(job)
        try:
            self.jobs.connection.set(inflight, job_id, ex=self.join_ttl)
        except redis.RedisError as exc:
            log.warning("could not record the job for joining: %s", exc)
        return Submitted(job_id=job_id)

    def submit_inputs(self, caller: Caller, method: str, model_id: str, payloads: list[dict[str, Any]], *,
                      target: int | str | None, params: Mapping[str, Any] | None, output: Mapping[str, Any],
                      top_k: int, regions: list[dict[str, Any] | None] | None = None) -> Submitted:
        """Check every input, then answer from the cache when it has every input's explanation (each under its
        single-input key), else enqueue one job for the list."""
        checked = self.explanations.check_inputs(method, model_id, payloads, params, target, regions)
        each = [job_input(c) for c in checked]
        keys = [self.key_of(c, model_id, output, top_k, digest, regions[i] if regions else None)
                for i, (c, (_, digest)) in enumerate(zip(checked, each))]
        hits = self.cached(keys)
        if hits is not None:
            return Submitted(result={"model_id": model_id, "method": method, "explanations": hits,
                                     "timing_ms": {"total": 0.0}})
        check_jobs(self.jobs.connection, self.jobs.name, caller.name, caller.max_jobs)
        return Submitted(job_id=self.jobs.submit(BatchExplanationJob(
            method=method, model_id=model_id, inputs=[i for i, _ in each], target=target,
            params=checked[0].params.model_dump(mode="json"), output=dict(output), top_k=top_k,
            regions=[dict(r) if r is not None else None for r in regions] if regions else None, owner=caller.name,
            cache_keys=keys)))

    def cached(self, keys: list[str], *, use: bool | None = None) -> list[dict[str, Any]] | None:
        """Every key's cached explanation, or None when one is missing (or async results are not cached)."""
        if not (self.cache_async if use is None else use) or self.cache is None:
            return None
        hits = []
        for key in keys:
            hit = self.cache.get(key)
            if hit is None:
                return None
            hits.append(hit)
        return hits

    def submit_patterns(self, caller: Caller, model_id: str, inputs: list[dict[str, Any]] | None) -> str:
        """Check the sample set (the model, each input), then enqueue the patterns job; returns its id."""
        self.explanations.pattern_samples(model_id, inputs)
        check_jobs(self.jobs.connection, self.jobs.name, caller.name, caller.max_jobs)
        return self.jobs.submit(PatternsJob(model_id=model_id, inputs=inputs, owner=caller.name))

    def submit_multi(self, caller: Caller, methods: list[str], model_id: str, payload: Mapping[str, Any], *,
                     target: Target, params: Mapping[str, Mapping[str, Any]], output: Mapping[str, Any],
                     top_k: int, top_percent: float, region: Mapping[str, Any] | None = None) -> str:
        """Check every method and the input, then enqueue one job that runs them all; returns its id."""
        self.explanations.check_methods(methods, params)
        self.explanations.check_compared(target)
        checked = [self.explanations.check(m, model_id, payload, params.get(m), target) for m in methods]
        if region is not None and checked[0].manifest.image is None:
            raise InvalidInput("a region (mask or box) applies to image inputs only", code="invalid_region")
        check_jobs(self.jobs.connection, self.jobs.name, caller.name, caller.max_jobs)
        return self.jobs.submit(MultiExplanationJob(
            methods=methods, model_id=model_id, input=job_input(checked[0])[0], target=target,
            params={m: c.params.model_dump(mode="json") for m, c in zip(methods, checked)}, output=dict(output),
            top_k=top_k, top_percent=top_percent, region=dict(region) if region is not None else None,
            owner=caller.name))

    def submit_sanity(self, caller: Caller, model_id: str, body: Mapping[str, Any]) -> str:
        """Check the methods, their params and the inputs, then enqueue the sanity check."""
        methods = self.explanations.studies.check_sanity(model_id, body.get("methods"), body.get("params"),
                                                         body.get("inputs"))
        check_jobs(self.jobs.connection, self.jobs.name, caller.name, caller.max_jobs)
        return self.jobs.submit(SanityJob(model_id=model_id, methods=methods, params=dict(body.get("params") or {}),
                                          inputs=body.get("inputs"), n_inputs=body.get("n_inputs", 4),
                                          stages=body.get("stages", 8), seed=body.get("seed", 0), owner=caller.name))

    def submit_evaluation(self, caller: Caller, model_id: str, body: Mapping[str, Any]) -> str:
        """Check the methods, their params and the inputs, then enqueue the evaluation."""
        methods = self.explanations.studies.check_evaluation(model_id, body.get("methods"), body.get("params"),
                                                             body.get("inputs"))
        check_jobs(self.jobs.connection, self.jobs.name, caller.name, caller.max_jobs)
        return self.jobs.submit(EvaluationJob(
            model_id=model_id, methods=methods, params=dict(body.get("params") or {}), inputs=body.get("inputs"),
            n_inputs=body.get("n_inputs", 16), quality=dict(body.get("quality") or {}),
            pointing_tolerance=body.get("pointing_tolerance", 15), owner=caller.name))

    def submit_global(self, caller: Caller, method: str, model_id: str, body: Mapping[str, Any]) -> str:
        """Check a global method's request (scope, model, params, input or samples, target), then enqueue it."""
        prepared = self.explanations.prepare_global(method, model_id, body)
        check_jobs(self.jobs.connection, self.jobs.name, caller.name, caller.max_jobs)
        return self.jobs.submit(GlobalJob(method=method, model_id=model_id, inputs=body.get("inputs"),
                                          input=body.get("input"), target=body.get("target"),
                                          params=prepared.params.model_dump(mode="json"), owner=caller.name))
