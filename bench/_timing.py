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
