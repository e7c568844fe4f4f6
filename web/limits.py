"""A cap on request bodies, enforced while they stream in (before anything is parsed or spooled), and a
bound on the writes in progress at once."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.exceptions import HTTPException

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: room for the multipart framing and the form's other fields around a photo of the allowed size
FORM_OVERHEAD_BYTES = 64 * 1024


def too_large(limit: int) -> HTTPException:
    return HTTPException(413, f"请求过大: 上限 {limit / 1024 / 1024:.1f} MB (request body over {limit} bytes; "
                              "[web] photo_max_mb in sanigrid.toml)")


class BodyLimit:
    """Pure ASGI middleware: a request whose ``Content-Length`` is over ``max_bytes`` is refused at once
    (413); one without it (chunked) is counted as it arrives and cut off at ``max_bytes``."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await _refuse(send, self.max_bytes)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise too_large(self.max_bytes)
            return message

        await self.app(scope, counted, send)


async def _refuse(send: Send, limit: int) -> None:
    import json

    exc = too_large(limit)
    body = json.dumps({"detail": exc.detail}, ensure_ascii=False).encode("utf-8")
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


#: writes (POST, PUT, PATCH, DELETE) in progress at once; the others wait at the door, before their body is
#: read or parsed. Every request's parsing and answer run on the server's one event loop: with a hundred
#: reports in flight a read queued behind all of them (p95 212 ms); with 32 it did not (66 ms), and the
#: writer lane still commits them in groups (bench/bench_load.py)
WRITES_IN_FLIGHT = 32
_WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class WriteGate:
    """Pure ASGI middleware: at most ``limit`` write requests are past it at once (one gate per event loop);
    reads are never held."""

    def __init__(self, app: ASGIApp, *, limit: int = WRITES_IN_FLIGHT) -> None:
        self.app, self.limit = app, limit
        self._gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = \
            weakref.WeakKeyDictionary()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") not in _WRITE_METHODS:
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        gate = self._gates.get(loop)
        if gate is None:
            gate = self._gates[loop] = asyncio.Semaphore(self.limit)
        async with gate:
            await self.app(scope, receive, send)
