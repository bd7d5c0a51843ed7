"""Fetching one URL with every guard on: the SSRF guard before each hop, redirects followed
here (so each target is checked), time and size limits while streaming, allowed content
types only, and the body turned into text.

``Fetcher.fetch`` never raises for anything a server or a URL can do: it returns a
``FetchResult`` whose ``error``/``error_code`` say which guard refused or what failed.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from sof_web.addresses import (
    METADATA_ADDRESSES,
    METADATA_HOSTS,
    AllowList,
    HostSyntaxError,
    IPAddress,
    literal_address,
    normalise_host,
    why_blocked,
)
from sof_web.extract import ExtractionError, ExtractionTimeout, extract
from sof_web.settings import WebSettings
from sof_web.transport import PinnedBackend, PinnedTransport

#: A resolver: ``(host, port, timeout) -> addresses`` (strings). The default asks the
#: system (getaddrinfo); tests and callers with their own DNS pass another.
Resolver = Callable[[str, int, float], Sequence[str]]
Clock = Callable[[], float]

#: The content types fetched; anything else is refused before its body is read.
ALLOWED_TYPES = ("text/html", "text/plain", "application/json")
MAX_URL_CHARS = 2048
REDIRECTS = (301, 302, 303, 307, 308)
_ALLOWED_SETTING = "SOF_WEB_ALLOWED_HOSTS or plugin_settings.web.web_allowed_hosts"
_CHUNK = 64 * 1024


class FetchFailure(Exception):
    """Why one URL gave no content: ``code`` (one word) and a one-sentence message."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(message)


@dataclass
class FetchResult:
    """One ``external_content`` entry (see docs/plugins/web.md for every key)."""

    url: str
    final_url: str | None = None
    status: int | None = None
    title: str | None = None
    content_type: str | None = None
    charset: str | None = None
    text: str = ""
    html: str | None = None
    fetched_at: str = ""
    truncated: bool = False
    bytes: int = 0
    redirects: list[str] = field(default_factory=list)
    error: str | None = None
    error_code: str | None = None
    source: str = "web"
    tool: str = "AgentZeroWebBrowserTool"
    #: Remarks for the UIF's warnings (not part of the entry).
    notes: list[str] = field(default_factory=list)
    #: Addresses connected to, per hop (not part of the entry; for logs and tests).
    connected: list[str] = field(default_factory=list)

    def as_entry(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("notes")
        data.pop("connected")
        return data


@dataclass(frozen=True)
class Target:
    """A checked destination: where the request for ``url`` may connect."""

    url: httpx.URL
    host: str
    port: int
    addresses: tuple[IPAddress, ...]


# --- resolving and checking ----------------------------------------------------------------------


def system_resolver(host: str, port: int, timeout: float) -> list[str]:
    """The system's answer for ``host`` (getaddrinfo), waiting at most ``timeout`` seconds.

    getaddrinfo cannot be interrupted, so it runs in a daemon thread that is left behind
    (and finishes on its own) when the time is up.
    """
    box: dict[str, Any] = {}

    def lookup() -> None:
        try:
            box["answer"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            box["error"] = exc

    thread = threading.Thread(target=lookup, name="sof-web-dns", daemon=True)
    thread.start()
    thread.join(max(timeout, 0.0))
    if thread.is_alive():
        raise TimeoutError(f"no DNS answer for {host!r} within {timeout:.1f}s")
    if "error" in box:
        raise box["error"]
    return [str(info[4][0]) for info in box["answer"]]


class Guard:
    """The SSRF guard: resolves a URL's host once and says where it may connect, or why not."""

    def __init__(self, allow: AllowList, resolver: Resolver, clock: Clock) -> None:
        self.allow = allow
        self.resolver = resolver
        self.clock = clock

    def check(self, url: httpx.URL, deadline: float) -> Target:
        raw = url.raw_host.decode("ascii").lower()
        port = url.port or (443 if url.scheme == "https" else 80)
        try:
            literal = literal_address(raw)
        except HostSyntaxError as exc:
            raise FetchFailure("invalid_url", f"{exc}") from None
        if literal is not None:
            shown = raw if str(literal) == raw else f"{raw} (= {literal})"
            self._judge(shown, literal, None, str(literal))
            return Target(url, raw, port, (literal,))
        name = normalise_host(raw)
        listed = self.allow.host_entry(name)
        if name in METADATA_HOSTS and name not in self.allow.hosts:
            raise FetchFailure(
                "blocked_address",
                f"refused {name}: it is a cloud metadata service (SSRF guard); only an "
                f"entry naming exactly {name!r} in {_ALLOWED_SETTING} allows it",
            )
        addresses = self._resolve(name, port, deadline)
        for address in addresses:
            self._judge(f"{name} (resolves to {address})", address, listed, name)
        return Target(url, raw, port, addresses)

    def _judge(self, shown: str, address: IPAddress, listed: str | None, suggest: str) -> None:
        metadata = address in METADATA_ADDRESSES
        if metadata and not self.allow.names_exactly(address):
            raise FetchFailure(
                "blocked_address",
                f"refused {shown}: a cloud metadata address (SSRF guard); only an entry "
                f"naming exactly {address} in {_ALLOWED_SETTING} allows it",
            )
        if listed is not None or self.allow.network_entry(address) is not None:
            return
        reason = why_blocked(address)
        if reason is not None:
            raise FetchFailure(
                "blocked_address",
                f"refused {shown}: {reason} (SSRF guard); to allow it, add {suggest!r} to "
                f"{_ALLOWED_SETTING}",
            )

    def _resolve(self, name: str, port: int, deadline: float) -> tuple[IPAddress, ...]:
        left = deadline - self.clock()
        if left <= 0:
            raise FetchFailure("deadline", f"no time left to resolve {name}")
        try:
            answer = list(self.resolver(name, port, left))
        except TimeoutError as exc:
            raise FetchFailure("dns", f"could not resolve {name}: {exc}") from None
        except (OSError, UnicodeError) as exc:
            raise FetchFailure("dns", f"could not resolve {name}: {exc}") from None
        addresses: dict[IPAddress, None] = {}
        for text in answer:
            try:
                address = ipaddress.ip_address(str(text).split("%")[0])
            except ValueError:
                raise FetchFailure(
                    "dns", f"the resolver answered {text!r} for {name}, which is no address"
                ) from None
            addresses[address] = None
        if not addresses:
            raise FetchFailure("dns", f"{name} has no address")
        return tuple(addresses)


# --- fetching ------------------------------------------------------------------------------------


def parse_url(text: str) -> httpx.URL:
    """``text`` as an http(s) URL the tool will fetch, or ``FetchFailure("invalid_url")``."""
    if len(text) > MAX_URL_CHARS:
        raise FetchFailure("invalid_url", f"the URL is longer than {MAX_URL_CHARS} characters")
    try:
        url = httpx.URL(text)
    except (httpx.InvalidURL, ValueError, TypeError) as exc:
        canonical = _canonical_ipv4_url(text)
        if canonical is None:
            raise FetchFailure("invalid_url", f"not a valid URL ({exc})") from None
        url = canonical
    if url.scheme not in ("http", "https"):
        raise FetchFailure(
            "invalid_url", f"only http and https URLs are fetched, not {url.scheme or 'none'!r}"
        )
    if not url.raw_host:
        raise FetchFailure("invalid_url", "the URL has no host")
    if url.userinfo:
        raise FetchFailure(
            "invalid_url", "URLs with a user name or password are not fetched"
        )
    return url.copy_with(fragment=None)


def _canonical_ipv4_url(text: str) -> httpx.URL | None:
    """``text`` with its host written as a dotted quad, when httpx refuses a four-part IPv4
    spelling a browser accepts (``0177.0.0.1``: leading zeros are octal), so the allow-list
    and the guard judge the address it is; None when that is not why the URL was refused."""
    try:
        parts = urlsplit(text)
        host = parts.hostname
        address = literal_address(host) if host else None
        if not isinstance(address, ipaddress.IPv4Address):
            return None
        netloc = str(address) if parts.port is None else f"{address}:{parts.port}"
        if "@" in parts.netloc:
            netloc = parts.netloc.rpartition("@")[0] + "@" + netloc
        return httpx.URL(urlunsplit(parts._replace(netloc=netloc)))
    except (HostSyntaxError, httpx.InvalidURL, ValueError, TypeError):
        return None


def _redirect_target(current: httpx.URL, location: str) -> httpx.URL:
    """Where a redirect from ``current`` to ``location`` goes, or ``FetchFailure("invalid_url")``:
    another scheme (``data:``, ``javascript:``, ``file:``), credentials, or a Location that
    browsers and httpx read differently (a backslash, which browsers take for a slash in
    ``http:\\\\host\\path``) is refused rather than guessed at."""
    shown = location[:200]
    location = location.strip()
    if "\\" in location.split("?", 1)[0].split("#", 1)[0]:
        raise FetchFailure(
            "invalid_url", f"the redirect to {shown!r} is not a valid URL (a backslash, which "
            "browsers read as a slash)"
        )
    try:
        joined = current.join(location)
    except (httpx.InvalidURL, ValueError, TypeError) as exc:
        raise FetchFailure(
            "invalid_url", f"the redirect to {shown!r} is not a valid URL ({exc})"
        ) from None
    try:
        return parse_url(str(joined))
    except FetchFailure as failure:
        raise FetchFailure(
            "invalid_url", f"the redirect to {shown!r} was refused: {failure.message}"
        ) from None


class _Decoder:
    """Content-Encoding undone with a bound on the output of every step (no gzip bombs)."""

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        self._first = True
        if encoding in ("", "identity"):
            self._z: Any = None
        elif encoding in ("gzip", "x-gzip"):
            self._z = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            self._z = zlib.decompressobj()
        else:
            raise FetchFailure(
                "protocol", f"the server used Content-Encoding {encoding[:40]!r}; only gzip "
                "and deflate are read"
            )

    def feed(self, data: bytes, limit: int) -> bytes:
        """At most ``limit`` bytes of output for ``data`` (more pending means cut)."""
        if self._z is None:
            return data[:limit]
        try:
            out: bytes = self._z.decompress(data, limit)
        except zlib.error:
            if self.encoding == "deflate" and self._first:  # raw deflate, no zlib header
                self._z = zlib.decompressobj(-zlib.MAX_WBITS)
                self._first = False
                return self.feed(data, limit)
            raise FetchFailure(
                "decode", f"the {self.encoding} body is corrupt"
            ) from None
        self._first = False
        return out


def _media_type(header: str | None) -> tuple[str | None, str | None]:
    if not header:
        return None, None
    media, _, rest = header.partition(";")
    charset = None
    for param in rest.split(";"):
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            charset = value.strip().strip("\"'") or None
    return media.strip().lower() or None, charset


def _now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _ssl_cause(exc: BaseException) -> ssl.SSLError | None:
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return None
        if isinstance(seen, ssl.SSLError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


_SSL_LOCK = threading.Lock()
_SSL_CONTEXTS: dict[str | None, ssl.SSLContext] = {}


def default_ssl_context(ca_bundle: str | None) -> ssl.SSLContext:
    """A verifying client context on ``ca_bundle`` (certifi's CAs when None), built once per
    bundle: loading the CAs takes ~90 ms, and a context is safe to share between
    connections."""
    with _SSL_LOCK:
        context = _SSL_CONTEXTS.get(ca_bundle)
        if context is None:
            import certifi

            context = ssl.create_default_context(cafile=ca_bundle or certifi.where())
            _SSL_CONTEXTS[ca_bundle] = context
        return context


class Fetcher:
    """Fetches URLs under ``settings``; ``resolver``/``ssl_context``/``clock`` are for callers
    with their own DNS, CA or time (tests use them)."""

    def __init__(
        self,
        settings: WebSettings,
        *,
        resolver: Resolver | None = None,
        ssl_context: ssl.SSLContext | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.guard = Guard(settings.allow_list, resolver or system_resolver, clock)
        self._ssl = ssl_context

    def ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = default_ssl_context(self.settings.ca_bundle)
        return self._ssl

    def fetch(self, url: str, deadline: float | None = None) -> FetchResult:
        """Fetch ``url``; ``deadline`` (``clock()`` seconds) ends it sooner than its own
        ``fetch_timeout`` would."""
        result = FetchResult(url=url)
        end = self.clock() + self.settings.fetch_timeout
        if deadline is not None:
            end = min(end, deadline)
        try:
            self._fetch(result, end)
        except FetchFailure as failure:
            result.error, result.error_code = failure.message, failure.code
            result.text, result.html, result.title = "", None, None
        result.fetched_at = _now_iso()
        return result

    def _fetch(self, result: FetchResult, end: float) -> None:
        settings = self.settings
        current = parse_url(result.url)
        backend = PinnedBackend(deadline=end, clock=self.clock)
        timeout = httpx.Timeout(
            connect=settings.connect_timeout, read=settings.read_timeout,
            write=settings.read_timeout, pool=settings.connect_timeout,
        )
        headers = {
            "User-Agent": settings.user_agent,
            "Accept": "text/html, text/plain;q=0.9, application/json;q=0.9",
            "Accept-Encoding": "gzip, deflate",
        }
        transport = PinnedTransport(backend, self.ssl_context())
        held: dict[str, str] = {}

        def hold_location(response: httpx.Response) -> None:
            # httpx builds the next request of every redirect itself, even when it does not
            # follow redirects, and raises InvalidURL out of send() for a Location it cannot
            # build one from ('data:...', 'http:\\host'). The Location is taken off the
            # response before httpx sees it; the redirect is judged here, below.
            held.clear()
            if "location" in response.headers:
                held["location"] = response.headers["location"]
                del response.headers["location"]

        with httpx.Client(transport=transport, trust_env=False, follow_redirects=False,
                          timeout=timeout, headers=headers,
                          event_hooks={"response": [hold_location]}) as client:
            for _hop in range(settings.max_redirects + 1):
                target = self.guard.check(current, end)
                backend.pin(target.host, target.addresses)
                before = len(backend.connections)
                try:
                    response = client.send(client.build_request("GET", current), stream=True)
                except httpx.HTTPError as exc:
                    raise self._failure(exc, current, end) from None
                except httpx.InvalidURL as exc:
                    raise FetchFailure("invalid_url", f"not a valid URL ({exc})") from None
                finally:
                    result.connected += [c.address for c in backend.connections[before:]]
                try:
                    result.final_url, result.status = str(response.url), response.status_code
                    location = held.get("location")
                    if response.status_code in REDIRECTS and location:
                        result.redirects.append(str(current))
                        current = _redirect_target(current, location)
                        continue
                    self._read(response, result, end)
                    return
                except httpx.HTTPError as exc:
                    raise self._failure(exc, current, end) from None
                finally:
                    response.close()
        raise FetchFailure(
            "too_many_redirects",
            f"more than {settings.max_redirects} redirects (max_redirects); last: {current}",
        )

    def _read(self, response: httpx.Response, result: FetchResult, end: float) -> None:
        settings = self.settings
        status = response.status_code
        if not 200 <= status < 300:
            raise FetchFailure(
                "http_status", f"the server answered HTTP {status} {response.reason_phrase}"
            )
        media, declared = _media_type(response.headers.get("content-type"))
        if media not in ALLOWED_TYPES:
            sent = f"{media[:80]!r}" if media else "no Content-Type"
            raise FetchFailure(
                "content_type",
                f"the server sent {sent}; only " + ", ".join(ALLOWED_TYPES) + " are fetched",
            )
        decoder = _Decoder(response.headers.get("content-encoding", "").strip().lower())
        body = bytearray()
        raw = 0
        for chunk in response.iter_raw(_CHUNK):
            raw += len(chunk)
            body += decoder.feed(chunk, settings.max_bytes - len(body) + 1)
            if len(body) > settings.max_bytes or raw > 2 * settings.max_bytes:
                del body[settings.max_bytes:]
                result.truncated = True
                result.notes.append(
                    f"{result.url}: the body was cut at {settings.max_bytes} bytes (max_bytes)"
                )
                break
            if self.clock() >= end:
                raise FetchFailure("deadline", self._deadline_message(end))
        result.content_type, result.bytes = media, len(body)
        try:
            extracted, cut = extract(
                bytes(body), media, declared,
                max_text_chars=settings.max_text_chars, max_html_chars=settings.max_html_chars,
                deadline=end, clock=self.clock,
            )
        except ExtractionTimeout as exc:
            raise FetchFailure("deadline", f"{self._deadline_message(end)}: {exc}") from None
        except ExtractionError as exc:
            raise FetchFailure(exc.code, str(exc)) from None
        result.text, result.title, result.html = extracted.text, extracted.title, extracted.html
        result.charset = extracted.charset
        result.truncated = result.truncated or cut
        result.notes += [f"{result.url}: {note}" for note in extracted.notes]

    def _deadline_message(self, end: float) -> str:
        return (
            f"the fetch did not finish in its time (fetch_timeout {self.settings.fetch_timeout:g}s "
            "or the skill's deadline, whichever came first)"
        )

    def _failure(self, exc: httpx.HTTPError, url: httpx.URL, end: float) -> FetchFailure:
        where = url.host
        if isinstance(exc, httpx.TimeoutException):
            if self.clock() >= end - 0.01 or "deadline" in str(exc):
                return FetchFailure("deadline", self._deadline_message(end))
            which = (
                f"connect_timeout {self.settings.connect_timeout:g}s"
                if isinstance(exc, httpx.ConnectTimeout)
                else f"read_timeout {self.settings.read_timeout:g}s"
            )
            return FetchFailure("timeout", f"{where} did not answer within {which}")
        cause = _ssl_cause(exc)
        if cause is not None:
            return FetchFailure("tls", f"TLS with {where} failed: {cause}")
        if isinstance(exc, httpx.ConnectError):
            return FetchFailure("connect", f"could not connect to {where}: {exc}")
        if isinstance(exc, httpx.NetworkError):
            return FetchFailure("network", f"the connection to {where} failed: {exc}")
        if isinstance(exc, httpx.InvalidURL):
            return FetchFailure("invalid_url", f"not a valid URL ({exc})")
        return FetchFailure("protocol", f"{where} broke the HTTP protocol: {exc}")


__all__ = [
    "ALLOWED_TYPES",
    "FetchFailure",
    "FetchResult",
    "Fetcher",
    "Guard",
    "Resolver",
    "Target",
    "parse_url",
    "system_resolver",
]
