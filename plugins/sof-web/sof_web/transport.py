"""The network layer under httpx: connections go only to addresses the guard checked.

A classic SSRF hole is the gap between checking a host and connecting to it: the checker
resolves ``evil.example`` to a public address, then the HTTP client resolves it again and DNS
(with a zero TTL) now answers 127.0.0.1. Here the HTTP client never resolves anything: its
httpcore network backend (``PinnedBackend``) connects to the addresses the guard pinned for
the request's host, as numeric literals, and refuses any host it was not given. The URL, the
``Host`` header, TLS's SNI and certificate check all keep the real host name.

Every stream the backend hands out is bounded by the fetch's deadline (``DeadlineStream``):
each read, write and TLS handshake may wait at most the time left, so a server that drips a
byte per second, always just inside the read timeout, is still cut off at the deadline.

``PinnedTransport`` is httpx's own ``HTTPTransport`` in miniature (httpx does not let one pass
a network backend): it speaks HTTP/1.1 through an ``httpcore.ConnectionPool`` on that backend,
keeps no connection alive (each hop connects to its own checked address), and maps httpcore's
errors to httpx's.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import ssl
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpcore
import httpx

from sof_web.addresses import IPAddress

Clock = Callable[[], float]


@dataclass
class Connection:
    """One connection the backend opened: the host asked for and the address reached."""

    host: str
    port: int
    address: str


@dataclass
class PinnedBackend(httpcore.NetworkBackend):
    """An httpcore network backend that connects only to pinned, already-checked addresses.

    ``pin(host, addresses)`` says where ``host`` may go for the next request; a host with no
    pin is refused, never resolved. ``deadline`` (``clock()`` seconds) bounds every operation.
    """

    deadline: float = float("inf")
    clock: Clock = time.monotonic
    pins: dict[str, tuple[IPAddress, ...]] = field(default_factory=dict)
    connections: list[Connection] = field(default_factory=list)
    _inner: httpcore.SyncBackend = field(default_factory=httpcore.SyncBackend)

    def pin(self, host: str, addresses: Sequence[IPAddress]) -> None:
        """Let the next request for ``host`` connect to ``addresses`` (and nowhere else)."""
        self.pins = {host.lower(): tuple(addresses)}

    def remaining(self, timeout: float | None, error: type[Exception]) -> float:
        """The time an operation may wait: its own timeout, cut to what the deadline leaves."""
        left = self.deadline - self.clock()
        if left <= 0:
            raise error("the fetch's deadline passed")
        return left if timeout is None else min(timeout, left)

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = self.pins.get(host.lower())
        if not addresses:
            raise httpcore.ConnectError(
                f"refused to connect to {host!r}: its address was not checked by the guard"
            )
        last: Exception | None = None
        for address in addresses:
            literal = str(address)  # numeric: socket.create_connection does no DNS lookup
            try:
                stream = self._inner.connect_tcp(
                    literal, port, self.remaining(timeout, httpcore.ConnectTimeout),
                    local_address=local_address, socket_options=list(socket_options or []),
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
                continue
            _check_peer(stream, address)
            self.connections.append(Connection(host, port, literal))
            return DeadlineStream(stream, self)
        assert last is not None
        raise last

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("the web tool does not connect to Unix sockets")

    def sleep(self, seconds: float) -> None:
        time.sleep(max(0.0, min(seconds, self.deadline - self.clock())))


def _check_peer(stream: httpcore.NetworkStream, address: IPAddress) -> None:
    """Belt and braces: the socket really is connected to the checked address."""
    sock = stream.get_extra_info("socket")
    if not isinstance(sock, socket.socket):
        return
    try:
        peer = ipaddress.ip_address(sock.getpeername()[0].split("%")[0])
    except (OSError, ValueError):
        return
    if peer != address:
        stream.close()
        raise httpcore.ConnectError(f"connected to {peer}, not the checked address {address}")


class DeadlineStream(httpcore.NetworkStream):
    """A network stream whose every wait is cut to the time the fetch has left."""

    def __init__(self, inner: httpcore.NetworkStream, backend: PinnedBackend) -> None:
        self._inner = inner
        self._backend = backend

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, self._backend.remaining(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, self._backend.remaining(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        wait = self._backend.remaining(timeout, httpcore.ConnectTimeout)
        return DeadlineStream(self._inner.start_tls(ssl_context, server_hostname, wait),
                              self._backend)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


# --- httpx on top ------------------------------------------------------------------------------

_ERRORS: tuple[tuple[type[Exception], type[httpx.TransportError]], ...] = (
    # most specific first
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
)


@contextlib.contextmanager
def _httpx_errors() -> Iterator[None]:
    try:
        yield
    except httpcore.ProxyError as exc:  # no proxy is ever configured; keep the type honest
        raise httpx.ProxyError(str(exc)) from exc
    except Exception as exc:
        for source, target in _ERRORS:
            if isinstance(exc, source):
                raise target(str(exc)) from exc
        raise


class _ResponseStream(httpx.SyncByteStream):
    def __init__(self, stream: Iterable[bytes]) -> None:
        self._stream = stream

    def __iter__(self) -> Iterator[bytes]:
        with _httpx_errors():
            yield from self._stream

    def close(self) -> None:
        close = getattr(self._stream, "close", None)
        if callable(close):
            close()


class PinnedTransport(httpx.BaseTransport):
    """An httpx transport over ``PinnedBackend``: HTTP/1.1, no keep-alive, no proxies."""

    def __init__(self, backend: PinnedBackend, ssl_context: ssl.SSLContext) -> None:
        self.backend = backend
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context,
            max_connections=2,
            max_keepalive_connections=0,
            http1=True,
            http2=False,
            retries=0,
            network_backend=backend,
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if not isinstance(request.stream, httpx.SyncByteStream):  # pragma: no cover
            raise TypeError("PinnedTransport is synchronous")
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _httpx_errors():
            response = self._pool.handle_request(core_request)
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_ResponseStream(response.stream),  # type: ignore[arg-type]
            extensions=response.extensions,
        )

    def close(self) -> None:
        self._pool.close()


__all__ = ["Connection", "DeadlineStream", "PinnedBackend", "PinnedTransport"]
