"""A text progress bar for jobs, on stderr: `[#######-------]  50%  ETA 3s`."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from xai_client.types import Job


def eta_seconds(progress: float, elapsed: float) -> float | None:
    """Seconds left at this pace (None before any progress)."""
    if progress <= 0.0 or elapsed <= 0.0:
        return None
    return max(0.0, elapsed * (1.0 - progress) / progress)


def bar(progress: float, width: int = 30) -> str:
    filled = round(max(0.0, min(1.0, progress)) * width)
    return "[" + "#" * filled + "-" * (width - filled) + "]"


class ProgressBar:
    """Called with each polled Job: redraws in place on a terminal, else a line per tenth of the way."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.start: float | None = None
        self._last_step = -1
        self._ended = False

    def __call__(self, job: Job) -> None:
        now = time.monotonic()
        if job.status == "started" and self.start is None:
            self.start = now
        elapsed = 0.0 if self.start is None else now - self.start
        eta = eta_seconds(job.progress, elapsed)
        line = f"{bar(job.progress)} {job.progress * 100:5.1f}%  {job.status:<8}"
        if eta is not None and not job.done:
            line += f"  ETA {eta:4.0f}s"
        line += f"  job {job.job_id[:8]}"
        step = int(job.progress * 10)
        if self.tty:
            self.stream.write("\r" + line.ljust(78))
            if job.done:
                self.stream.write("\n")
        elif step != self._last_step or (job.done and not self._ended):
            self.stream.write(line + "\n")
        self._last_step = step
        self._ended = self._ended or job.done
        self.stream.flush()
