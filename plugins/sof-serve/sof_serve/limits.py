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
import contextlib
import json
import math
import threading
from collections.abc import Callable
from typing import Any

import anyio

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


class WorkerSlots:
    """``max_concurrency`` places for the worker threads that run queries, plans and
    validations. A place is held until its thread really returns: a request answered 504
    at ``request_timeout`` leaves its thread running (Python cannot stop a thread), and
    that thread keeps its place (``hung`` counts them), so threads never outnumber
    ``max_concurrency`` however many requests time out."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._limiter = anyio.CapacityLimiter(size)
        #: The thread pool's own bound is ours; anyio's default (40) must not cap it.
        self._threads = anyio.CapacityLimiter(math.inf)
        self._lock = threading.Lock()
        #: Threads still running whose request has been answered (timed out, gone).
        self.hung = 0

    @property
    def busy(self) -> int:
        """Places held (by running work, hung work included)."""
        return int(self._limiter.borrowed_tokens)

    async def run(self, work: Callable[[], Any]) -> Any:
        """``work()`` on a worker thread once a place is free; abandoned (not waited for)
        if the request is cancelled, its place then freed only when ``work`` returns."""
        limiter = self._limiter
        borrower = object()
        await limiter.acquire_on_behalf_of(borrower)
        loop = asyncio.get_running_loop()
        state = {"started": False, "done": False, "abandoned": False}

        def release() -> None:
            limiter.release_on_behalf_of(borrower)

        def thread() -> Any:
            with self._lock:
                if state["abandoned"]:  # cancelled before it began: nothing to run
                    return None
                state["started"] = True
            try:
                return work()
            finally:
                with self._lock:
                    state["done"] = True
                    if state["abandoned"]:
                        self.hung -= 1
                with contextlib.suppress(RuntimeError):  # the loop has closed: nothing
                    loop.call_soon_threadsafe(release)     # left to free

        try:
            return await anyio.to_thread.run_sync(thread, abandon_on_cancel=True,
                                                  limiter=self._threads)
        except BaseException:
            with self._lock:
                if state["done"]:  # work raised: its place is being freed already
                    raise
                state["abandoned"] = True
                if state["started"]:  # still running: it keeps its place until it returns
                    self.hung += 1
                    raise
            release()  # never began: no thread will free it
            raise


class LimitsMiddleware:
    """Wraps an ASGI app with the limits of ``settings``."""

    def __init__(self, app: Any, settings: ServeSettings,
                 slots: WorkerSlots | None = None,
                 closing: threading.Event | None = None) -> None:
        self.app = app
        self.settings = settings
        self.slots = slots
        #: Set when the server stops: a request cut then is answered, not dropped.
        self.closing = closing
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
        hung = self.slots.hung if self.slots is not None else 0
        if counted and hung >= settings.max_concurrency:
            await _answer(send, 503, "busy",
                          f"all {settings.max_concurrency} worker places "
                          "(plugin_settings.serve.max_concurrency) are held by requests that "
                          "timed out and whose work has not returned yet (a hung skill or "
                          "legacy pipeline); retry shortly",
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
        except asyncio.CancelledError:
            # The server stopping cancels what is still running after its grace period:
            # the request gets the API's JSON error (uvicorn would send a plain-text 500
            # and log a traceback), and the stop goes on.
            if started or self.closing is None or not self.closing.is_set():
                raise
            with contextlib.suppress(Exception):
                await _answer(send, 503, "shutting_down",
                              "the server stopped before this request was answered; the run "
                              "may still finish; retry once it is back",
                              headers=[(b"retry-after", b"1"), (b"connection", b"close")])
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
