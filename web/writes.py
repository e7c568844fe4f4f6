"""Store writes from request handlers, in one writer lane, with group commit for reports.

Writes to the store are serialised (one transaction at a time). If each waiting writer held one of
the server's request threads, a burst of reports would take them all and every read would queue
behind the writers. Write routes are ``async`` and hand the write to the lane: they wait in the event
loop (holding no thread) and the write runs in a worker thread, at most :data:`WRITE_LANES` at once.

Reports are also *grouped*: :func:`run_batched` queues an item; while a batch is being written, the
items that arrive wait, and the next batch takes all of them (up to :data:`MAX_BATCH`) into one call
of the batch function, which writes them in one transaction (one commit, one fsync). Each caller is
answered only after that call returned, that is after its commit: an answer is never given for a row
that a crash could still take away.
"""

from __future__ import annotations

import asyncio
import functools
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio
import anyio.to_thread

T = TypeVar("T")
WRITE_LANES = 1  # writes run one at a time in the store anyway: more lanes only add waiting threads
MAX_BATCH = 256  # items written in one transaction at most
# A limiter and the batch queues belong to one event loop (tests start several). Keyed by the loop
# itself, weakly: a loop made later may get a dead loop's id(), and with it a limiter whose token a task
# of the dead loop still holds.
_limiters: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, anyio.CapacityLimiter] = \
    weakref.WeakKeyDictionary()


def _limiter() -> anyio.CapacityLimiter:
    loop = asyncio.get_running_loop()
    lim = _limiters.get(loop)
    if lim is None:
        lim = _limiters[loop] = anyio.CapacityLimiter(WRITE_LANES)
    return lim


async def run_write(fn: Callable[..., T], project: Any, /, *args: Any, **kwargs: Any) -> T:
    """``fn(project, *args, **kwargs)`` in the writer lane (a worker thread, at most WRITE_LANES at once)."""
    try:
        return await anyio.to_thread.run_sync(functools.partial(fn, project, *args, **kwargs), limiter=_limiter())
    finally:
        _checkpoint_soon(project)


IDLE_CHECKPOINT_S = 0.5  # writes paused this long: the log is folded into the file


@dataclass
class _Idle:
    last_write: float = 0.0
    task: asyncio.Task[None] | None = None


_idle: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, _Idle]] = weakref.WeakKeyDictionary()


def _checkpoint_soon(project: Any) -> None:
    """After a write: once the lane has written nothing for :data:`IDLE_CHECKPOINT_S`, fold the store's
    write-ahead log into its file (so a copy of the .gpkg alone, e.g. for QGIS on another machine, holds
    every answered write). The writer is answered without waiting for it, and a steady stream of reports
    is not held up by a checkpoint after each batch (SQLite's own auto-checkpoint bounds the log meanwhile)."""
    loop = asyncio.get_running_loop()
    state = _idle.setdefault(loop, {}).setdefault(id(project), _Idle())
    state.last_write = loop.time()
    if state.task is None or state.task.done():
        state.task = loop.create_task(_checkpoint_when_idle(project, state))


async def _checkpoint_when_idle(project: Any, state: _Idle) -> None:
    loop = asyncio.get_running_loop()
    lim = _limiter()
    while True:
        await asyncio.sleep(max(0.0, state.last_write + IDLE_CHECKPOINT_S - loop.time()))
        busy = lim.borrowed_tokens or any(q.pending for q in _queues.get(loop, {}).values())
        if not busy and loop.time() - state.last_write >= IDLE_CHECKPOINT_S:
            seen = state.last_write
            await anyio.to_thread.run_sync(project.store.checkpoint, limiter=lim)
            if state.last_write == seen:  # else a write came while it ran: wait for the next pause
                return
            continue
        if busy:
            state.last_write = loop.time()


BatchFn = Callable[[Any, Sequence[Any]], Sequence[Any]]


@dataclass
class _Queue:
    pending: list[tuple[Any, asyncio.Future[Any]]] = field(default_factory=list)
    draining: asyncio.Task[None] | None = None


_queues: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[BatchFn, int], _Queue]] = \
    weakref.WeakKeyDictionary()


async def run_batched(fn_many: BatchFn, owner: Any, item: Any) -> Any:
    """``fn_many(owner, items)[k]`` for this ``item``, ``items`` being every item queued with the same
    ``fn_many`` and ``owner`` meanwhile (a batch), run in the writer lane.

    ``fn_many`` returns one result per item, in order: a value, or an exception for that item alone
    (raised here). If it raises, it must have written nothing; each item of the batch is then tried
    alone, so one bad item cannot fail the others.
    """
    loop = asyncio.get_running_loop()
    queues = _queues.setdefault(loop, {})
    key = (fn_many, id(owner))  # an owner's id is not reused while its drain task holds it
    q = queues.get(key)
    if q is None:
        q = queues[key] = _Queue()
    fut: asyncio.Future[Any] = loop.create_future()
    q.pending.append((item, fut))
    if q.draining is None or q.draining.done():
        q.draining = loop.create_task(_drain(q, fn_many, owner))
    out = await fut
    if isinstance(out, BaseException):
        raise out
    return out


async def _drain(q: _Queue, fn_many: BatchFn, owner: Any) -> None:
    while q.pending:
        batch = [(item, fut) for item, fut in q.pending[:MAX_BATCH] if not fut.done()]  # not given up on
        del q.pending[:MAX_BATCH]
        if not batch:
            continue
        results: Sequence[Any] = []
        try:
            results = await anyio.to_thread.run_sync(
                _each, fn_many, owner, [item for item, _ in batch], limiter=_limiter())
        except BaseException as e:  # the lane itself failed (cancelled at shutdown): nobody is told "done"
            results = [e] * len(batch)
            raise
        finally:
            for (_, fut), r in zip(batch, results, strict=True):
                if not fut.done():
                    fut.set_result(r)
    _checkpoint_soon(owner)


def _each(fn_many: BatchFn, owner: Any, items: list[Any]) -> list[Any]:
    try:
        out = list(fn_many(owner, items))
    except Exception as e:
        if len(items) == 1:
            return [e]
        return [r for item in items for r in _each(fn_many, owner, [item])]
    if len(out) != len(items):
        raise RuntimeError(f"internal: {fn_many.__name__} gave {len(out)} results for {len(items)} items")
    return out
