"""Giving memory back after a job: the image's allocator settings keep freed memory in the process
(faster batches), so a worker that ran one huge job would keep its peak; `malloc_trim` returns it."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging

log = logging.getLogger(__name__)

_libc: ctypes.CDLL | None = None
try:
    _name = ctypes.util.find_library("c")
    _libc = ctypes.CDLL(_name) if _name else None
    if _libc is not None and not hasattr(_libc, "malloc_trim"):
        _libc = None
except OSError:  # not glibc
    _libc = None


def rss_bytes() -> int:
    """The process's resident memory now (Linux), else 0."""
    try:
        with open("/proc/self/statm") as f:
            import os

            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def give_back() -> int:
    """Collect garbage and hand free heap pages back to the kernel; returns the bytes released."""
    before = rss_bytes()
    gc.collect()
    if _libc is not None:
        _libc.malloc_trim(0)
    released = max(0, before - rss_bytes())
    if released > 64 * 2**20:
        log.info("returned %.0f MB to the system after the job", released / 2**20)
    return released
