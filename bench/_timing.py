"""Timing shared by the benchmark scripts (run as ``python bench/<name>.py``, so this imports as ``_timing``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def best_of(fn: Callable[[], Any], repeat: int = 1) -> tuple[float, Any]:
    """The best wall time in seconds over ``repeat`` calls, and the last call's result."""
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def _status_mb(key: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) / 1024
    return float("nan")


def peak_rise(fn: Callable[[], Any]) -> tuple[Any, float]:
    """Call ``fn``; return its result and how far the resident memory peaked above where it started (MB).

    The peak (VmHWM) is reset first through /proc/self/clear_refs (Linux), so two calls in one process
    each get their own peak; elsewhere the figure is NaN.
    """
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return fn(), float("nan")
    base = _status_mb("VmRSS")
    out = fn()
    return out, _status_mb("VmHWM") - base
