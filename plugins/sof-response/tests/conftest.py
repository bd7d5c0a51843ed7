"""Fixtures for sof-response: a real OpenAI-compatible chat server on 127.0.0.1.

The server is stdlib ``http.server`` in a thread on an ephemeral port, speaking HTTP/1.1 with
chunked streaming like the real servers do. The first path segment picks its behaviour, so
one server serves every scenario: ``http://127.0.0.1:PORT/<scenario>/v1/chat/completions``.
It also answers requests in absolute form (``POST http://host/<scenario>/...``), which is how
a client talks to an HTTP proxy, so the same server can stand in for a proxy.

Hostile scenarios (a server dripping bytes, streaming forever, a gzip bomb) are bounded by
``MAX_SECONDS`` so no test can hang, and notice the client hanging up.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest
from sof_response.settings import ENV_VARS

REPLY = "SOF routes each query through a validated plan [1]."
#: Bound on how long a scenario may keep a connection busy, so no test can hang.
MAX_SECONDS = 5.0
#: A dripping server sends one byte this often: far below any read timeout, so only a deadline
#: on the whole call can stop it.
DRIP_INTERVAL = 0.2
#: What the gzip bombs expand to (the compressed body is about 1/1000 of it).
BOMB_BYTES = 100 * 1024 * 1024
_BOMBS: dict[bool, bytes] = {}


def gzip_bomb(stream: bool) -> bytes:
    """A valid completion (JSON, or one SSE event) whose answer is BOMB_BYTES of "A", gzipped."""
    if stream not in _BOMBS:
        if stream:
            head = b'data: {"choices": [{"index": 0, "delta": {"content": "'
            tail = b'"}, "finish_reason": "stop"}]}\n\ndata: [DONE]\n\n'
        else:
            head = (b'{"model": "test-model", "choices": [{"index": 0, "message": '
                    b'{"role": "assistant", "content": "')
            tail = b'"}, "finish_reason": "stop"}]}'
        packer = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        block = b"A" * (1024 * 1024)
        parts = [packer.compress(head)]
        parts += [packer.compress(block) for _ in range(BOMB_BYTES // len(block))]
        parts += [packer.compress(tail), packer.flush()]
        _BOMBS[stream] = b"".join(parts)
    return _BOMBS[stream]


@dataclass
class ChatServer:
    """The running server and what it observed."""

    host: str
    port: int
    requests: list[dict[str, Any]] = field(default_factory=list)
    disconnected: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    chunks_sent: int = 0
    #: What the "ok" scenario answers.
    reply: str = REPLY
    #: Client ports of the requests, in order (one port = one reused connection).
    client_ports: list[int] = field(default_factory=list)
    #: What the "content" scenario answers: ``message.content`` (any JSON value) when not
    #: streamed; streamed, one event per item of ``deltas`` (the ``delta`` objects), then
    #: ``data: [DONE]``.
    content: Any = REPLY
    deltas: list[Any] = field(default_factory=list)
    #: How deeply the "deep..." scenarios nest their JSON arrays.
    depth: int = 100_000

    def url(self, scenario: str) -> str:
        return f"http://{self.host}:{self.port}/{scenario}/v1"


class ChatHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_state: ChatServer

    def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
        pass

    # --- helpers ---------------------------------------------------------------------------

    def _json(self, status: int, body: Any, raw: bytes | None = None) -> None:
        data = raw if raw is not None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _start_stream(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()

    def _chunk(self, text: str) -> None:
        data = text.encode()
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _event(self, payload: Any) -> None:
        self._chunk(f"data: {json.dumps(payload)}\n\n")

    def _end_stream(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    @staticmethod
    def _delta(content: str | None, finish: str | None = None) -> dict[str, Any]:
        delta = {"content": content} if content is not None else {}
        return {
            "id": "chatcmpl-test",
            "object": "chat.completion.chunk",
            "model": "test-model",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }

    # --- the endpoint ------------------------------------------------------------------------

    def do_POST(self) -> None:
        state = self.server_state
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        absolute = "://" in self.path  # absolute form: we are being used as a proxy
        path = urlsplit(self.path).path if absolute else self.path
        scenario = path.strip("/").split("/")[0]
        state.requests.append(
            {"path": path, "headers": dict(self.headers), "body": body, "scenario": scenario,
             "proxied": absolute, "target": self.path}
        )
        state.client_ports.append(self.client_address[1])
        stream = bool(body.get("stream"))
        handler = getattr(self, f"scenario_{scenario}", None)
        if handler is None:
            self._json(404, {"error": {"message": f"no scenario {scenario!r}"}})
            return
        handler(body, stream)

    def scenario_ok(self, body: dict[str, Any], stream: bool) -> None:
        if not stream:
            self._json(200, {
                "id": "chatcmpl-test",
                "object": "chat.completion",
                "model": "test-model",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": REPLY},
                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 40, "completion_tokens": 9, "total_tokens": 49},
            })
            return
        self._start_stream()
        self._chunk(": keep-alive comment\n\n")
        self._event(self._delta(""))  # role-only first chunk, as OpenAI sends
        for word in REPLY.split(" "):
            self._event(self._delta(word if word.endswith(".") else word + " "))
        self._event(self._delta(None, "stop"))
        self._chunk("data: [DONE]\n\n")
        self._end_stream()

    def scenario_auth(self, body: dict[str, Any], stream: bool) -> None:
        if self.headers.get("Authorization") != "Bearer s3cret":
            self._json(401, {"error": {"message": "Invalid API key provided",
                                       "type": "invalid_request_error"}})
            return
        self.scenario_ok(body, stream)

    def scenario_error500(self, body: dict[str, Any], stream: bool) -> None:
        self._json(500, {"error": {"message": "model crashed while loading",
                                   "type": "server_error"}})

    def scenario_slow(self, body: dict[str, Any], stream: bool) -> None:
        self.server_state.release.wait(MAX_SECONDS)
        with contextlib.suppress(OSError):  # the client gave up long ago
            self.scenario_ok(body, stream)

    def scenario_badjson(self, body: dict[str, Any], stream: bool) -> None:
        self._json(200, None, raw=b'{"choices": [ {"message": oops')

    def scenario_nochoices(self, body: dict[str, Any], stream: bool) -> None:
        self._json(200, {"id": "x", "object": "chat.completion"})

    def scenario_badsse(self, body: dict[str, Any], stream: bool) -> None:
        self._start_stream()
        self._event(self._delta("Hello "))
        self._chunk('data: {"choices": [{"delta": {"content": "wor\n\n')
        self._end_stream()

    def scenario_nodone(self, body: dict[str, Any], stream: bool) -> None:
        self._start_stream()
        self._event(self._delta("cut "))
        self._event(self._delta("off"))
        self._end_stream()

    def scenario_midstream_error(self, body: dict[str, Any], stream: bool) -> None:
        self._start_stream()
        self._event(self._delta("Partial "))
        self._event({"error": {"message": "out of memory"}})
        self._end_stream()

    def scenario_jsonforstream(self, body: dict[str, Any], stream: bool) -> None:
        self.scenario_ok(body, False)  # a server that ignores "stream": true

    def scenario_endless(self, body: dict[str, Any], stream: bool) -> None:
        """Streams "again " until the client hangs up (or MAX_SECONDS pass)."""
        state = self.server_state
        self._start_stream()
        deadline = time.monotonic() + MAX_SECONDS
        try:
            while time.monotonic() < deadline:
                self._event(self._delta("again "))
                state.chunks_sent += 1
                time.sleep(0.002)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            state.disconnected.set()
            return
        self._end_stream()


    def scenario_content(self, body: dict[str, Any], stream: bool) -> None:
        """Answers ``content`` (or, streamed, the events of ``deltas``) exactly as given."""
        state = self.server_state
        if not stream:
            self._json(200, {
                "model": "test-model",
                "choices": [{"index": 0, "message": {"role": "assistant",
                                                     "content": state.content},
                             "finish_reason": "stop"}],
            })
            return
        self._start_stream()
        for delta in state.deltas:
            self._event({"model": "test-model",
                         "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
        self._chunk("data: [DONE]\n\n")
        self._end_stream()

    def scenario_htmlerror(self, body: dict[str, Any], stream: bool) -> None:
        """HTTP 502 with the HTML page a reverse proxy sends."""
        data = b"<html><body>502 Bad Gateway</body></html>"
        self.send_response(502)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _nested(self) -> str:
        depth = self.server_state.depth
        return "[" * depth + "]" * depth

    def scenario_deep(self, body: dict[str, Any], stream: bool) -> None:
        """Valid JSON nested ``depth`` arrays deep: the body, or one ``data:`` line."""
        if not stream:
            self._json(200, None, raw=self._nested().encode())
            return
        self._start_stream()
        self._chunk(f"data: {self._nested()}\n\n")
        self._chunk("data: [DONE]\n\n")
        self._end_stream()

    def scenario_deeperror(self, body: dict[str, Any], stream: bool) -> None:
        """HTTP 500 whose body is JSON arrays nested ``depth`` deep."""
        self._json(500, None, raw=self._nested().encode())

    def scenario_deepevent(self, body: dict[str, Any], stream: bool) -> None:
        """A stream whose second event is an error nesting ``depth`` arrays deep."""
        self._start_stream()
        self._event(self._delta("Partial "))
        self._chunk('data: {"error": ' + self._nested() + "}\n\n")
        self._end_stream()

    # --- hostile servers ---------------------------------------------------------------------

    def _drip(self, data: bytes) -> None:
        """Send ``data`` one byte per DRIP_INTERVAL until done, MAX_SECONDS, or a hang-up."""
        deadline = time.monotonic() + MAX_SECONDS
        self.close_connection = True
        try:
            for byte in data:
                if time.monotonic() > deadline:
                    return
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(DRIP_INTERVAL)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            self.server_state.disconnected.set()

    @staticmethod
    def _completion(text: str) -> bytes:
        return json.dumps({
            "model": "test-model",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "finish_reason": "stop"}],
        }).encode()

    def scenario_drip(self, body: dict[str, Any], stream: bool) -> None:
        """Headers at once, then a valid body one byte at a time."""
        data = self._completion(REPLY * 4)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self._drip(data)

    def scenario_driphead(self, body: dict[str, Any], stream: bool) -> None:
        """Even the status line and headers arrive one byte at a time."""
        data = self._completion(REPLY)
        head = (f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(data)}\r\nX-Padding: {'p' * 200}\r\n\r\n").encode()
        self._drip(head + data)

    def scenario_gzipbomb(self, body: dict[str, Any], stream: bool) -> None:
        """A small gzip body that expands to BOMB_BYTES (a JSON answer or one SSE event)."""
        data = gzip_bomb(stream)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream" if stream else "application/json")
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            self.wfile.write(data)

    def scenario_gzipempty(self, body: dict[str, Any], stream: bool) -> None:
        """Empty gzip members without end: many bytes on the wire that decode to nothing."""
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        batch = gzip.compress(b"") * 500
        deadline = time.monotonic() + MAX_SECONDS
        try:
            while time.monotonic() < deadline:
                self.wfile.write(f"{len(batch):x}\r\n".encode() + batch + b"\r\n")
                self.wfile.flush()
                time.sleep(0.001)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            self.server_state.disconnected.set()
            return
        self.close_connection = True

    def scenario_gzipped(self, body: dict[str, Any], stream: bool) -> None:
        self._compressed(stream, "gzip")

    def scenario_deflated(self, body: dict[str, Any], stream: bool) -> None:
        self._compressed(stream, "deflate")

    def scenario_rawdeflated(self, body: dict[str, Any], stream: bool) -> None:
        self._compressed(stream, "rawdeflate")

    def scenario_twomembers(self, body: dict[str, Any], stream: bool) -> None:
        self._compressed(stream, "gzip2")

    def _compressed(self, stream: bool, encoding: str) -> None:
        """The "ok" answer (SSE with CRLF line ends when streamed), compressed."""
        if stream:
            events = [self._delta(w if w.endswith(".") else w + " ") for w in REPLY.split(" ")]
            plain = "".join(f"data: {json.dumps(e)}\r\n\r\n" for e in events)
            plain += "data: [DONE]\r\n\r\n"
            data, kind = plain.encode(), "text/event-stream"
        else:
            data, kind = self._completion(REPLY), "application/json"
        if encoding == "gzip":
            data = gzip.compress(data)
        elif encoding == "deflate":  # zlib-wrapped, as RFC 9110 says
            data = zlib.compress(data)
        elif encoding == "rawdeflate":  # what some servers send as "deflate"
            packer = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
            data = packer.compress(data) + packer.flush()
            encoding = "deflate"
        elif encoding == "gzip2":  # two members, as concatenated gzip files are
            half = len(data) // 2
            data = gzip.compress(data[:half]) + gzip.compress(data[half:])
            encoding = "gzip"
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Encoding", encoding)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def scenario_donehang(self, body: dict[str, Any], stream: bool) -> None:
        """A whole answer up to ``data: [DONE]``, then the body is held open (no last chunk)."""
        self._start_stream()
        self._event(self._delta(REPLY, "stop"))
        self._chunk("data: [DONE]\n\n")
        self.server_state.release.wait(MAX_SECONDS)
        self.close_connection = True

    def scenario_brotli(self, body: dict[str, Any], stream: bool) -> None:
        data = b"\x0b\x02\x80{}\x03"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Encoding", "br")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients hanging up (what some tests are about) is not a server error."""
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@pytest.fixture
def chat_server() -> Iterator[ChatServer]:
    """A real chat-completions server on an ephemeral 127.0.0.1 port."""
    state = ChatServer(host="127.0.0.1", port=0)
    handler = type("BoundChatHandler", (ChatHandler,), {"server_state": state})
    server = QuietServer(("127.0.0.1", 0), handler)
    state.port = server.server_address[1]
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.01}, name="chat-server", daemon=True
    )
    thread.start()
    try:
        yield state
    finally:
        state.release.set()
        server.shutdown()
        server.server_close()
        thread.join(MAX_SECONDS)


class Probe:
    """What this process holds: open sockets and threads, to check nothing is left behind."""

    @staticmethod
    def sockets() -> int:
        """Open sockets of this process (client and server side), from /proc."""
        count = 0
        for fd in os.listdir("/proc/self/fd"):
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                    count += 1
        return count

    @staticmethod
    def threads() -> int:
        return threading.active_count()

    @staticmethod
    def settles(condition: Any, within: float = 2.0) -> bool:
        """Whether ``condition()`` becomes true within ``within`` seconds (a hang bound)."""
        end = time.monotonic() + within
        while time.monotonic() < end:
            if condition():
                return True
            time.sleep(0.02)
        return bool(condition())


@pytest.fixture
def probe() -> Probe:
    if not os.path.isdir("/proc/self/fd"):
        pytest.skip("counting open sockets needs /proc (Linux)")
    return Probe()


@pytest.fixture(autouse=True)
def clean_response_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests see only the environment they set themselves."""
    for var in ENV_VARS:
        monkeypatch.delenv(var, raising=False)
