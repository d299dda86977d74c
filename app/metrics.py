"""A small Prometheus text-format registry: requests, sync explanations, and at scrape time the queue's
jobs, workers, models and cache, read from Redis and the registry.

Labels stay bounded: routes are templates (`/jobs/{job_id}`, `unmatched`), HTTP methods the standard
ones (others count as `OTHER`), methods and models the registered names.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from typing import Any

from jobqueue import job_metrics

log = logging.getLogger(__name__)
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})


def _labels(names: tuple[str, ...], values: tuple[str, ...]) -> str:
    return ",".join(f'{n}="{_escape(v)}"' for n, v in zip(names, values))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Histogram:
    def __init__(self, name: str, help_: str, labels: tuple[str, ...], buckets: tuple[float, ...] = BUCKETS) -> None:
        self.name, self.help, self.labels, self.buckets = name, help_, labels, buckets
        self.counts: dict[tuple[str, ...], list[int]] = defaultdict(lambda: [0] * (len(buckets) + 1))
        self.sums: dict[tuple[str, ...], float] = defaultdict(float)

    def observe(self, values: tuple[str, ...], seconds: float) -> None:
        counts = self.counts[values]
        for i, bound in enumerate(self.buckets):
            if seconds <= bound:
                counts[i] += 1
        counts[-1] += 1
        self.sums[values] += seconds

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        for values, counts in sorted(self.counts.items()):
            base = _labels(self.labels, values)
            for bound, n in zip(self.buckets, counts):
                lines.append(f'{self.name}_bucket{{{base},le="{bound}"}} {n}')
            lines.append(f'{self.name}_bucket{{{base},le="+Inf"}} {counts[-1]}')
            lines.append(f"{self.name}_sum{{{base}}} {self.sums[values]:.6f}")
            lines.append(f"{self.name}_count{{{base}}} {counts[-1]}")
        return lines


def _family(name: str, kind: str, help_: str, samples: dict[tuple[str, ...], float],
            labels: tuple[str, ...]) -> list[str]:
    lines = [f"# HELP {name} {help_}", f"# TYPE {name} {kind}"]
    for values, value in sorted(samples.items()):
        lines.append(f"{name}{{{_labels(labels, values)}}} {value:g}" if labels else f"{name} {value:g}")
    return lines


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, ...], float] = defaultdict(float)
        self._latency = Histogram("xai_request_duration_seconds", "HTTP request latency by route.", ("route",))
        self._explained: dict[tuple[str, ...], float] = defaultdict(float)
        self._evaluations: dict[tuple[str, ...], float] = defaultdict(float)
        self._explain_time = Histogram("xai_explanation_duration_seconds",
                                       "Sync explanations in the API process by method and model.", ("method", "model"))

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        verb = method if method in HTTP_METHODS else "OTHER"
        with self._lock:
            self._requests[(route, verb, str(status))] += 1
            self._latency.observe((route,), seconds)

    def explained(self, method: str, model: str, status: str, seconds: float, evaluations: int) -> None:
        with self._lock:
            self._explained[(method, model, status)] += 1
            if status == "ok":
                self._explain_time.observe((method, model), seconds)
            if evaluations:
                self._evaluations[(method, model, "api")] += evaluations

    def render(self, service: Any = None) -> str:
        with self._lock:
            lines = _family("xai_requests_total", "counter", "HTTP requests by route, method and status.",
                            dict(self._requests), ("route", "method", "status"))
            lines += self._latency.render()
            lines += _family("xai_explanations_total", "counter", "Sync explanations by method, model and outcome.",
                             dict(self._explained), ("method", "model", "status"))
            lines += self._explain_time.render()
            evaluations = dict(self._evaluations)
        if service is not None:
            lines += self._service_lines(service, evaluations)
        else:
            lines += _family("xai_model_evaluations_total", "counter", "Model evaluations by method, model and "
                             "process.", evaluations, ("method", "model", "process"))
        return "\n".join(lines) + "\n"

    def _service_lines(self, service: Any, evaluations: dict[tuple[str, ...], float]) -> list[str]:
        states = service.registry.states()
        loaded: dict[tuple[str, ...], float] = {(str(m), str(s["status"])): 1.0 for m, s in states.items()}
        lines = _family("xai_model_state", "gauge", "1 for each model's load state.", loaded, ("model", "state"))
        try:
            client = service.job_client()
            counts = client.counts()
            workers = client.workers()
            data = job_metrics.read(client.connection, client.name)
            cache = service.cache.stats() if service.cache is not None else {}
        except Exception as exc:  # the queue is away: report what the API knows
            log.debug("metrics without the queue: %s", exc)
            return lines + _family("xai_model_evaluations_total", "counter", "Model evaluations by method, model "
                                   "and process.", evaluations, ("method", "model", "process"))
        for labels, n in data.get("evaluations", {}).items():
            evaluations[(*labels, "workers")] = n
        lines += _family("xai_jobs", "gauge", "Jobs in the queue and its registries by status.",
                         {(str(k),): float(v) for k, v in counts.items()}, ("status",))
        lines += _family("xai_queue_depth", "gauge", "Jobs waiting for a worker.", {(): float(counts["queued"])}, ())
        lines += _family("xai_workers_alive", "gauge", "Workers with a heartbeat in the last 15 s.",
                         {(): float(len(workers))}, ())
        lines += _family("xai_jobs_total", "counter", "Jobs run by workers by method, model and outcome.",
                         data.get("count", {}), ("method", "model", "status"))
        lines += self._job_durations(data)
        lines += _family("xai_model_evaluations_total", "counter", "Model evaluations by method, model and process.",
                         evaluations, ("method", "model", "process"))
        lines += _family("xai_cache_total", "counter", "Cache lookups and stores: hits, misses, stores, evictions.",
                         {(k,): float(cache.get(k, 0)) for k in ("hits", "misses", "stores", "evictions")}, ("event",))
        lines += _family("xai_cache_bytes", "gauge", "Bytes of explanations in the cache.",
                         {(): float(cache.get("bytes", 0))}, ())
        return lines

    @staticmethod
    def _job_durations(data: dict[str, dict[tuple[str, ...], float]]) -> list[str]:
        name = "xai_job_duration_seconds"
        lines = [f"# HELP {name} Job run time on the workers by method and model.", f"# TYPE {name} histogram"]
        buckets = data.get("bucket", {})
        for (method, model), total in sorted(data.get("sum", {}).items()):
            base = _labels(("method", "model"), (method, model))
            for bound in (*job_metrics.BUCKETS, "+Inf"):
                lines.append(f'{name}_bucket{{{base},le="{bound}"}} {buckets.get((method, model, str(bound)), 0):g}')
            lines.append(f"{name}_sum{{{base}}} {total:.6f}")
            lines.append(f"{name}_count{{{base}}} {buckets.get((method, model, '+Inf'), 0):g}")
        return lines
