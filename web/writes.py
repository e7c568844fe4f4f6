"""Store writes from request handlers, in one writer lane.

Writes to the store are serialised (one transaction at a time). If each waiting writer held one of
the server's request threads, a burst of reports would take them all and every read would queue
behind the writers. Write routes are ``async`` and hand the write to :func:`run_write`: it waits
for the lane in the event loop (holding no thread) and then runs the write in a worker thread.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import anyio.to_thread

T = TypeVar("T")
WRITE_LANES = 1  # writes run one at a time in the store anyway: more lanes only add waiting threads
_limiters: dict[int, anyio.CapacityLimiter] = {}


def _limiter() -> anyio.CapacityLimiter:
    loop = id(asyncio.get_running_loop())  # a limiter belongs to one event loop (tests start several)
    lim = _limiters.get(loop)
    if lim is None:
        lim = _limiters[loop] = anyio.CapacityLimiter(WRITE_LANES)
    return lim


async def run_write(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` in the writer lane (a worker thread, at most WRITE_LANES at once)."""
    return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs), limiter=_limiter())
