"""A small Prometheus text-format registry: request counts and latencies."""

from __future__ import annotations

import threading
from collections import defaultdict

_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, str, str], int] = defaultdict(int)
        self._hist: dict[str, list[int]] = defaultdict(lambda: [0] * (len(_BUCKETS) + 1))
        self._sum: dict[str, float] = defaultdict(float)

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        with self._lock:
            self._requests[(route, method, str(status))] += 1
            counts = self._hist[route]
            for i, bound in enumerate(_BUCKETS):
                if seconds <= bound:
                    counts[i] += 1
            counts[-1] += 1
            self._sum[route] += seconds

    def render(self) -> str:
        lines = ["# HELP xai_requests_total HTTP requests by route, method and status.",
                 "# TYPE xai_requests_total counter"]
        with self._lock:
            for (route, method, status), n in sorted(self._requests.items()):
                lines.append(f'xai_requests_total{{route="{route}",method="{method}",status="{status}"}} {n}')
            lines += ["# HELP xai_request_duration_seconds HTTP request latency by route.",
                      "# TYPE xai_request_duration_seconds histogram"]
            for route, counts in sorted(self._hist.items()):
                for bound, n in zip(_BUCKETS, counts):
                    lines.append(f'xai_request_duration_seconds_bucket{{route="{route}",le="{bound}"}} {n}')
                lines.append(f'xai_request_duration_seconds_bucket{{route="{route}",le="+Inf"}} {counts[-1]}')
                lines.append(f'xai_request_duration_seconds_sum{{route="{route}"}} {self._sum[route]:.6f}')
                lines.append(f'xai_request_duration_seconds_count{{route="{route}"}} {counts[-1]}')
        return "\n".join(lines) + "\n"
