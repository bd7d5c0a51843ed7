"""Fixtures for sof-response: a real OpenAI-compatible chat server on 127.0.0.1.

The server is stdlib ``http.server`` in a thread on an ephemeral port, speaking HTTP/1.1 with
chunked streaming like the real servers do. The first path segment picks its behaviour, so
one server serves every scenario: ``http://127.0.0.1:PORT/<scenario>/v1/chat/completions``.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sof_response.settings import ENV_VARS

REPLY = "SOF routes each query through a validated plan [1]."
#: Bound on how long a scenario may keep a connection busy, so no test can hang.
MAX_SECONDS = 5.0


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
        scenario = self.path.strip("/").split("/")[0]
        state.requests.append(
            {"path": self.path, "headers": dict(self.headers), "body": body, "scenario": scenario}
        )
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


@pytest.fixture(autouse=True)
def clean_response_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests see only the environment they set themselves."""
    for var in ENV_VARS:
        monkeypatch.delenv(var, raising=False)
