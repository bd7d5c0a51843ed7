"""HTTP plumbing of the ``openai`` backend: a deadline on every socket operation, bounded bodies.

httpx only knows per-operation timeouts (connect, each read, each write), so a server that
sends one byte a second, or streams without end, is never timed out by it. Here every
connection is opened through a network backend that clamps each connect, read and write to the
time left before the deadline of the generation running in the calling thread (a context
variable, so one pooled client serves any number of threads, each with its own deadline).
Bodies are read raw and decompressed here, in bounded steps, so both the bytes on the wire and
the bytes they expand to are counted against a limit as they arrive: a gzip bomb stops at the
limit instead of becoming a string of hundreds of megabytes.

This module imports httpx and httpcore; the backend imports it on its first request, so loading
the plugin stays cheap.
"""

from __future__ import annotations

import codecs
import time
import urllib.request
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import httpcore
import httpx

#: The monotonic time by which the generation running in this context must be done.
_DEADLINE: ContextVar[float | None] = ContextVar("sof_response_deadline", default=None)
#: Largest piece a decompressor may produce per step; bounds the memory one step can take.
_PIECE = 64 * 1024


class DeadlineExceeded(Exception):
    """The generation's deadline passed while a request or its body was in flight."""


class ResponseTooLarge(Exception):
    """More than the allowed bytes arrived; ``which`` is "raw" (on the wire) or "decoded"."""

    def __init__(self, which: str, count: int, limit: int) -> None:
        self.which = which
        self.count = count
        self.limit = limit
        super().__init__(f"{count} {which} bytes > {limit}")


class UnsupportedEncoding(Exception):
    """The server used a Content-Encoding we did not offer and cannot decode."""


@contextmanager
def deadline_scope(deadline: float | None) -> Iterator[None]:
    """Every socket operation of this thread's requests inside the block ends by ``deadline``."""
    token = _DEADLINE.set(deadline)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def check_deadline() -> None:
    deadline = _DEADLINE.get()
    if deadline is not None and time.monotonic() >= deadline:
        raise DeadlineExceeded


def _clamp(timeout: float | None, expired: type[Exception]) -> float | None:
    """``timeout`` shortened to the time left before the deadline; past it, ``expired``."""
    deadline = _DEADLINE.get()
    if deadline is None:
        return timeout
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise expired("the generation's deadline has passed")
    return remaining if timeout is None else min(timeout, remaining)


class _DeadlineStream(httpcore.NetworkStream):
    """A connection whose every read and write ends by the deadline of its current user."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _clamp(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _clamp(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        return _DeadlineStream(
            self._inner.start_tls(
                ssl_context, server_hostname, _clamp(timeout, httpcore.ConnectTimeout)
            )
        )

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    def __init__(self) -> None:
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        return _DeadlineStream(
            self._inner.connect_tcp(
                host, port, _clamp(timeout, httpcore.ConnectTimeout), local_address,
                socket_options,
            )
        )

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        return _DeadlineStream(
            self._inner.connect_unix_socket(
                path, _clamp(timeout, httpcore.ConnectTimeout), socket_options
            )
        )

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


# httpcore's exceptions as httpx's, most specific first (what httpx's own transport does).
_ERRORS: tuple[tuple[type[Exception], type[httpx.HTTPError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.ProxyError, httpx.ProxyError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
)


@contextmanager
def _as_httpx_errors() -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        for source, target in _ERRORS:
            if isinstance(exc, source):
                raise target(str(exc)) from exc
        raise


class _BodyStream(httpx.SyncByteStream):
    def __init__(self, inner: Iterable[bytes]) -> None:
        self._inner = inner

    def __iter__(self) -> Iterator[bytes]:
        with _as_httpx_errors():
            yield from self._inner

    def close(self) -> None:
        close = getattr(self._inner, "close", None)
        if callable(close):
            with _as_httpx_errors():
                close()


class DeadlineTransport(httpx.BaseTransport):
    """httpx's HTTP/1.1 transport over connections that honour ``deadline_scope``.

    A transport given to ``httpx.Client`` turns off httpx's own environment proxies, so the
    proxy the environment names for ``url`` (``HTTP_PROXY``/``HTTPS_PROXY``/``ALL_PROXY``,
    minus ``NO_PROXY``) is applied here, through the same deadline-bound connections.
    """

    def __init__(self, url: str) -> None:
        ssl_context = httpx.create_ssl_context()
        backend = _DeadlineBackend()
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=20,
                              keepalive_expiry=5.0)
        common: dict[str, Any] = {
            "ssl_context": ssl_context,
            "max_connections": limits.max_connections,
            "max_keepalive_connections": limits.max_keepalive_connections,
            "keepalive_expiry": limits.keepalive_expiry,
            "network_backend": backend,
        }
        proxy = environment_proxy(url)
        self.proxy = proxy
        self._pool: httpcore.ConnectionPool | httpcore.HTTPProxy | httpcore.SOCKSProxy
        if proxy is None:
            self._pool = httpcore.ConnectionPool(**common)
            return
        target = httpx.Proxy(proxy)
        proxy_url = httpcore.URL(
            scheme=target.url.raw_scheme,
            host=target.url.raw_host,
            port=target.url.port,
            target=target.url.raw_path,
        )
        if target.url.scheme in ("http", "https"):
            self._pool = httpcore.HTTPProxy(
                proxy_url=proxy_url, proxy_auth=target.raw_auth,
                proxy_headers=target.headers.raw, **common,
            )
        else:  # socks5, socks5h (needs the socksio package, as with httpx itself)
            self._pool = httpcore.SOCKSProxy(
                proxy_url=proxy_url, proxy_auth=target.raw_auth, **common
            )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.SyncByteStream)
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
        with _as_httpx_errors():
            response = self._pool.handle_request(core_request)
        assert isinstance(response.stream, Iterable)
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_BodyStream(response.stream),
            extensions=response.extensions,
        )

    def close(self) -> None:
        self._pool.close()


def environment_proxy(url: str) -> str | None:
    """The proxy the environment names for ``url``, or None (also when NO_PROXY exempts it)."""
    parsed = httpx.URL(url)
    proxies = urllib.request.getproxies()
    proxy = proxies.get(parsed.scheme) or proxies.get("all")
    if not proxy:
        return None
    host = parsed.host if parsed.port is None else f"{parsed.host}:{parsed.port}"
    if urllib.request.proxy_bypass(host):
        return None
    if "://" not in proxy:
        proxy = f"http://{proxy}"
    scheme = proxy.split("://", 1)[0].lower()
    if scheme not in ("http", "https", "socks5", "socks5h"):
        return None  # not a proxy httpx could use either (e.g. ftp://)
    return proxy


# --- bounded bodies ----------------------------------------------------------------------------


class _Inflate:
    """One gzip or deflate layer, decompressed ``_PIECE`` bytes at a time."""

    def __init__(self, encoding: str) -> None:
        self.gzip = encoding in ("gzip", "x-gzip")
        self._raw_deflate = False
        self._started = False
        self._make()

    def _make(self) -> None:
        wbits = 16 + zlib.MAX_WBITS if self.gzip else (
            -zlib.MAX_WBITS if self._raw_deflate else zlib.MAX_WBITS
        )
        self._zlib = zlib.decompressobj(wbits)

    def feed(self, data: bytes) -> Iterator[bytes]:
        while True:
            try:
                out = self._zlib.decompress(data, _PIECE)
            except zlib.error:
                if self.gzip or self._started or self._raw_deflate:
                    raise
                # "deflate" is zlib-wrapped by the RFC, raw deflate by some servers.
                self._raw_deflate = True
                self._make()
                out = self._zlib.decompress(data, _PIECE)
            self._started = True
            data = self._zlib.unconsumed_tail
            if self._zlib.eof and self._zlib.unused_data:
                data = self._zlib.unused_data
                if not self.gzip:
                    data = b""  # bytes after a deflate stream end are ignored
                else:
                    self._make()  # the next member of a multi-member gzip body
            if out:
                yield out
            if not data and len(out) < _PIECE:
                return

    def flush(self) -> Iterator[bytes]:
        out = self._zlib.flush()
        if out:
            yield out


class ContentDecoder:
    """Undoes a ``Content-Encoding`` chain (gzip, deflate, identity) step by bounded step."""

    def __init__(self, header: str) -> None:
        layers = [e.strip().lower() for e in header.split(",") if e.strip()]
        layers = [e for e in layers if e != "identity"]
        for layer in layers:
            if layer not in ("gzip", "x-gzip", "deflate"):
                raise UnsupportedEncoding(layer)
        # Encodings are listed in the order they were applied: undo the last first.
        self._stages = [_Inflate(e) for e in reversed(layers)]

    def feed(self, data: bytes) -> Iterator[bytes]:
        pieces: Iterable[bytes] = (data,)
        for stage in self._stages:
            pieces = _through(stage, pieces)
        return iter(pieces)

    def flush(self) -> Iterator[bytes]:
        for index, stage in enumerate(self._stages):
            pieces: Iterable[bytes] = stage.flush()
            for later in self._stages[index + 1:]:
                pieces = _through(later, pieces)
            yield from pieces


def _through(stage: _Inflate, pieces: Iterable[bytes]) -> Iterator[bytes]:
    for piece in pieces:
        yield from stage.feed(piece)


def read_body(response: httpx.Response, limit: int, counts: dict[str, int]) -> Iterator[bytes]:
    """The decoded body of ``response`` piece by piece, stopping past ``limit`` bytes.

    Both the bytes received and the bytes they decode to are counted (in ``counts``, so a
    caller can report progress) and each is held to ``limit``; ``ResponseTooLarge`` says which
    ran over. The deadline is checked after every piece.
    """
    decoder = ContentDecoder(response.headers.get("content-encoding", ""))
    for chunk in response.iter_raw():
        counts["raw"] += len(chunk)
        if counts["raw"] > limit:
            raise ResponseTooLarge("raw", counts["raw"], limit)
        for piece in decoder.feed(chunk):
            counts["decoded"] += len(piece)
            if counts["decoded"] > limit:
                raise ResponseTooLarge("decoded", counts["decoded"], limit)
            yield piece
            check_deadline()
        check_deadline()
    for piece in decoder.flush():
        counts["decoded"] += len(piece)
        if counts["decoded"] > limit:
            raise ResponseTooLarge("decoded", counts["decoded"], limit)
        yield piece


def drain(pieces: Iterator[Any], seconds: float = 0.05) -> None:
    """Read what is left of a finished answer for a moment, so its connection can be reused.

    Servers end a stream with ``data: [DONE]`` and then the end of the chunked body; reading
    that end lets the pool keep the connection. A server that keeps the body open after
    ``[DONE]`` costs at most ``seconds`` (or what is left before the deadline), then the
    connection is dropped instead.
    """
    current = _DEADLINE.get()
    end = time.monotonic() + seconds
    if current is not None:
        end = min(end, current)
    try:
        with deadline_scope(end):
            for _ in pieces:
                pass
    except (httpx.HTTPError, DeadlineExceeded, ResponseTooLarge, UnsupportedEncoding,
            zlib.error):
        pass


def read_text(pieces: Iterable[bytes], charset: str = "utf-8") -> Iterator[str]:
    """Bytes as text, decoded incrementally (a character split across pieces stays whole)."""
    try:
        decoder = codecs.getincrementaldecoder(charset)(errors="replace")
    except LookupError:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    for piece in pieces:
        text = decoder.decode(piece)
        if text:
            yield text
    tail = decoder.decode(b"", final=True)
    if tail:
        yield tail


def iter_lines(texts: Iterable[str]) -> Iterator[str]:
    """Lines split at ``\\r\\n``, ``\\n`` or ``\\r`` (as server-sent events define them).

    Unlike ``str.splitlines`` it never splits at the Unicode separators JSON strings may
    contain, and a long line costs time linear in its length however it is chunked.
    """
    partial: list[str] = []
    carriage = False
    for text in texts:
        if carriage:
            text = "\r" + text
            carriage = False
        if text.endswith("\r"):
            text = text[:-1]
            carriage = True
        parts = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        if len(parts) == 1:
            partial.append(parts[0])
            continue
        partial.append(parts[0])
        yield "".join(partial)
        yield from parts[1:-1]
        partial = [parts[-1]]
    if carriage:
        partial.append("")
        yield "".join(partial)
        partial = []
    rest = "".join(partial)
    if rest:
        yield rest


__all__ = [
    "ContentDecoder",
    "DeadlineExceeded",
    "DeadlineTransport",
    "ResponseTooLarge",
    "UnsupportedEncoding",
    "check_deadline",
    "deadline_scope",
    "drain",
    "environment_proxy",
    "iter_lines",
    "read_body",
    "read_text",
]
