"""Running the app on uvicorn in a background thread (tests, benchmarks, embedding hosts).

``BackgroundServer`` starts uvicorn on 127.0.0.1 and a free port unless told otherwise,
waits until it accepts connections, and stops it on exit, so a caller never races the
server's startup or leaves it running.
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
import time
from types import TracebackType
from typing import Any

from sof_serve.settings import ServeSettings

#: Seconds to wait for uvicorn to start or stop before giving up (a hang guard only).
START_TIMEOUT = 30.0
#: Seconds open connections (event streams never end by themselves) get to finish when
#: the server stops, before they are closed.
GRACEFUL_SHUTDOWN = 2
#: The largest request head served: h11 refuses a head still arriving past it (its
#: buffer), ``protocol_class`` a whole one (``head_size``); either is answered 431.
MAX_HEAD_BYTES = 16 * 1024
#: After answering a request it could not read (400, 431), how long the server goes on
#: reading and discarding what the client still sends, and how much of it at most, before
#: closing: closing a socket with unread data makes the kernel reset the connection, and
#: the client then gets the reset instead of the answer ("lingering close", as nginx does).
LINGER_SECONDS = 2.0
LINGER_MAX_BYTES = 4 * 1024 * 1024


def head_size(request: Any) -> int:
    """The bytes of an ``h11.Request``'s head as sent: its request line, one
    ``name: value`` line per header and the blank line ending it (whitespace around a
    value, which h11 strips, is not counted)."""
    line = (len(request.method) + 1 + len(request.target) + 1 + len(b"HTTP/")
            + len(request.http_version) + 2)
    fields = sum(len(name) + 2 + len(value) + 2 for name, value in request.headers.raw_items())
    return line + fields + 2


def _raw_error(status: int, reason: str, code: str, message: str) -> bytes:
    body = json.dumps({"error": {"status": status, "code": code, "message": message}})
    return (f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n"
            + ("retry-after: 1\r\n" if status == 503 else "") + f"\r\n{body}").encode()


def protocol_class(settings: ServeSettings) -> type[asyncio.Protocol]:
    """uvicorn's h11 protocol with the two guards uvicorn lacks against slow or idle
    clients (slowloris): a connection that has not sent a whole request head within
    ``header_timeout`` seconds of connecting (or of its previous answer) is answered 408
    and closed, and past ``max_connections`` open connections a new one is answered 503
    and closed at once, so idle sockets cannot use up the process's file descriptors.

    A request h11 cannot read is answered with the service's JSON error (431 for a head
    past ``MAX_HEAD_BYTES``, else 400) and closed only after the rest of what the client
    sent was read (uvicorn closed at once: the client got a connection reset)."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    header_timeout = float(settings.header_timeout)
    max_connections = settings.max_connections

    class _Connection(h11.Connection):
        """Remembers the status h11 suggests for the request it could not read, and
        refuses a whole head past ``MAX_HEAD_BYTES`` as h11 refuses one still arriving."""

        error_status = 400

        def next_event(self) -> Any:
            try:
                event = super().next_event()
                if isinstance(event, h11.Request) and head_size(event) > MAX_HEAD_BYTES:
                    # h11 checks only its unparsed buffer: a whole head that arrived in
                    # one piece passed whatever its size.
                    raise h11.RemoteProtocolError("request head too large",
                                                  error_status_hint=431)
            except h11.RemoteProtocolError as exc:
                self.error_status = exc.error_status_hint
                raise
            return event

    class GuardedH11Protocol(H11Protocol):
        _head_timer: asyncio.TimerHandle | None = None
        _linger_timer: asyncio.TimerHandle | None = None
        _discarded: int | None = None  # bytes read since the error answer (None: none)

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.conn = _Connection(h11.SERVER, MAX_HEAD_BYTES)

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if len(self.connections) > max_connections:
                transport.write(_raw_error(
                    503, "Service Unavailable", "busy",
                    f"more than {max_connections} connections are open "
                    "(plugin_settings.serve.max_connections); retry shortly"))
                transport.close()
                return
            self._arm_head_timer()

        def _arm_head_timer(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
            self._head_timer = self.loop.call_later(header_timeout, self._head_timed_out)

        def _head_timed_out(self) -> None:
            self._head_timer = None
            if self.transport.is_closing():
                return
            between_requests = self.cycle is None or self.cycle.response_complete
            if between_requests and self.conn.their_state is h11.IDLE:
                self.transport.write(_raw_error(
                    408, "Request Timeout", "header_timeout",
                    f"no complete request head within {header_timeout:g} s "
                    "(plugin_settings.serve.header_timeout)"))
                self.transport.close()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm_head_timer()

        def data_received(self, data: bytes) -> None:
            if self._discarded is None:
                super().data_received(data)
                return
            self._discarded += len(data)  # the rest of a request already answered
            if self._discarded > LINGER_MAX_BYTES:
                self.transport.close()

        def send_400_response(self, msg: str) -> None:
            # uvicorn's only call: the request could not be read (h11 raised).
            if getattr(self.conn, "error_status", 400) == 431:
                answer = _raw_error(431, "Request Header Fields Too Large", "header_too_large",
                                   f"the request head is larger than {MAX_HEAD_BYTES} bytes; "
                                   "send fewer or smaller headers (cookies, tokens)")
            else:
                answer = _raw_error(400, "Bad Request", "bad_request",
                                   f"not a valid HTTP/1.1 request ({msg.rstrip('.')})")
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None
            self.transport.write(answer)
            self._discarded = 0
            if self.transport.can_write_eof():
                self.transport.write_eof()  # the answer, then the end of it: the client sees both
            self._linger_timer = self.loop.call_later(LINGER_SECONDS, self.transport.close)

        def connection_lost(self, exc: Exception | None) -> None:
            for timer in (self._head_timer, self._linger_timer):
                if timer is not None:
                    timer.cancel()
            self._head_timer = self._linger_timer = None
            super().connection_lost(exc)

    return GuardedH11Protocol


def uvicorn_config(app: Any, settings: ServeSettings, *, host: str, port: int,
                   log_level: str) -> Any:
    """The uvicorn configuration of ``app``: the connection guards of ``settings``."""
    import uvicorn

    return uvicorn.Config(app, host=host, port=port, log_level=log_level, lifespan="off",
                          http=protocol_class(settings),
                          timeout_keep_alive=max(1, math.ceil(settings.keep_alive_timeout)),
                          backlog=settings.backlog,
                          h11_max_incomplete_event_size=MAX_HEAD_BYTES,
                          timeout_graceful_shutdown=GRACEFUL_SHUTDOWN)


class BackgroundServer:
    """``with BackgroundServer(app) as server: httpx.get(server.url + "/healthz")``."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0,
                 log_level: str = "warning") -> None:
        import uvicorn

        self.app = app
        service = getattr(getattr(app, "state", None), "sof", None)
        settings = getattr(service, "settings", None)
        if not isinstance(settings, ServeSettings):
            settings = ServeSettings()
        self.server = uvicorn.Server(uvicorn_config(app, settings, host=host, port=port,
                                                    log_level=log_level))
        self.thread = threading.Thread(target=self.server.run, name="sof-serve", daemon=True)
        self.host = host
        self.port = port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> BackgroundServer:
        self.thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn did not start on {self.host}:{self.port}")
            time.sleep(0.01)
        for listener in self.server.servers:
            for sock in listener.sockets:
                self.port = sock.getsockname()[1]
        return self

    def stop(self) -> None:
        service = getattr(getattr(self.app, "state", None), "sof", None)
        closing = getattr(service, "closing", None)
        if closing is not None:  # end event streams now rather than at the grace period
            closing.set()
        self.server.should_exit = True
        self.thread.join(START_TIMEOUT)

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.stop()
