"""Every request runs under one correlation id: the caller's ``X-Correlation-ID`` when it is a safe id
(at most 128 characters of letters, digits and ``._:-``), else a new one; the answer carries it back.

A malformed value is replaced, and only its length is logged: a header is never copied into a log raw.
The outermost middleware, so everything the request does (other middlewares, handlers, the Temporal
calls it makes, its outbound HTTP) runs under the id.
"""

from __future__ import annotations

import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from activities.observability import correlation

log = logging.getLogger("simpletuner.api.correlation")
_HEADER = correlation.HEADER.lower().encode("latin-1")


class CorrelationIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        given = [value for name, value in scope["headers"] if name == _HEADER]
        raw = given[0].decode("latin-1") if given else None
        value = correlation.accept(raw)
        token = correlation.set_correlation_id(value)
        try:
            if raw is not None and raw != value:
                log.warning("replaced a malformed %s header (%d characters) with %s", correlation.HEADER, len(raw), value)
            header = (_HEADER, value.encode("latin-1"))

            async def send_with_id(message: Message) -> None:
                if message["type"] == "http.response.start":
                    message["headers"] = [*[(k, v) for k, v in message.get("headers", []) if k.lower() != _HEADER],
                                          header]
                await send(message)

            await self.app(scope, receive, send_with_id)
        finally:
            correlation.reset(token)
