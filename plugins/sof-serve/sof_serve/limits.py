"""Request limits as ASGI middleware: body size, requests in flight, time per request.

Each limit answers with its own status and a JSON body naming the limit and the setting
that sets it, so a client (or the person reading its log) knows what to change:
413 ``body_too_large`` (``max_body_bytes``, checked on ``Content-Length`` and again while
the body streams in), 503 ``busy`` with ``Retry-After`` (``max_concurrency`` answered at
once plus ``max_queue`` waiting), 504
``timeout`` (``request_timeout``). Health checks are never refused for being busy, and the
event stream is long-lived by design, so neither counts against the limits; only the
routes that run work (``WORKLOAD``) take a place among the requests in flight.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from sof_serve.settings import ServeSettings

Scope = dict[str, Any]
Message = dict[str, Any]

#: Paths (suffixes, so the routes may be mounted under a prefix) outside the limits.
UNLIMITED = ("/healthz", "/readyz", "/v1/runs/stream")
#: The paths that run queries, plans and validations: only they take a place among
#: ``max_concurrency`` + ``max_queue``. Watching the server (the page, ``/metrics``,
#: ``/v1/stats``, runs, alerts) and operating it (the admin routes) never waits behind
#: them or gets 503 ``busy``: that is when an operator needs them most.
WORKLOAD = ("/v1/query", "/v1/plan", "/v1/validate")


def error_body(status: int, code: str, message: str) -> bytes:
    return json.dumps({"error": {"status": status, "code": code, "message": message}}).encode()


class _BodyTooLarge(Exception):
    pass


class LimitsMiddleware:
    """Wraps an ASGI app with the limits of ``settings``."""

    def __init__(self, app: Any, settings: ServeSettings) -> None:
        self.app = app
        self.settings = settings
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"].endswith(UNLIMITED):
            await self.app(scope, receive, send)
            return
        limit = self.settings.max_body_bytes
        length = _content_length(scope)
        if length is not None and length > limit:
            await _answer(send, 413, "body_too_large",
                          f"request body of {length} bytes exceeds the limit of {limit} bytes "
                          "(plugin_settings.serve.max_body_bytes)")
            return
        settings = self.settings
        counted = scope["path"].endswith(WORKLOAD)
        if counted and self.in_flight >= settings.max_concurrency + settings.max_queue:
            await _answer(send, 503, "busy",
                          f"{self.in_flight} requests are being answered or waiting, the limit "
                          f"is {settings.max_concurrency} at once "
                          f"(plugin_settings.serve.max_concurrency) plus {settings.max_queue} "
                          "waiting (plugin_settings.serve.max_queue); retry shortly",
                          headers=[(b"retry-after", b"1")])
            return
        started = False
        received = 0

        async def counted_receive() -> Message:
            nonlocal received
            message: Message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _BodyTooLarge
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        if counted:
            self.in_flight += 1
        timeout = self.settings.request_timeout
        try:
            await asyncio.wait_for(self.app(scope, counted_receive, watched_send), timeout)
        except _BodyTooLarge:
            if not started:
                await _answer(send, 413, "body_too_large",
                              f"request body exceeds the limit of {limit} bytes "
                              "(plugin_settings.serve.max_body_bytes)")
        except asyncio.TimeoutError:
            if not started:
                await _answer(send, 504, "timeout",
                              f"no answer within {timeout:g} s "
                              "(plugin_settings.serve.request_timeout); the run may still "
                              "finish and appear in /v1/runs")
        finally:
            if counted:
                self.in_flight -= 1


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _answer(send: Any, status: int, code: str, message: str,
                  headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = error_body(status, code, message)
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()), *(headers or [])]})
    await send({"type": "http.response.body", "body": body})
