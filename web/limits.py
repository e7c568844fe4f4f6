"""A cap on request bodies, enforced while they stream in (before anything is parsed or spooled)."""

from __future__ import annotations

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
