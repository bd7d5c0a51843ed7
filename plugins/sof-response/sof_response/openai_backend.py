"""An OpenAI-compatible chat-completions client over httpx.

Works with anything that speaks ``POST {base_url}/chat/completions``: Ollama
(``http://127.0.0.1:11434/v1``), the llama.cpp server (``http://127.0.0.1:8080/v1``), vLLM,
OpenAI itself. Non-streaming requests parse one JSON body; streaming requests read
server-sent events (``data: {...}`` lines carrying ``choices[0].delta.content``, ending with
``data: [DONE]``). Every failure becomes a typed ``LLMBackendError`` naming the URL, and for
HTTP errors the status and the server's own message.

A server is not trusted to be quick or brief: each generation has one deadline for all of it
(connect, send, every byte of the answer), the sooner of ``timeout`` and the caller's deadline
(the skill's remaining time), and the answer is read under ``max_response_bytes``, counted on
the wire and after decompression. One pooled HTTP client per backend serves every thread.
"""

from __future__ import annotations

import json
import os
import threading
import time
import weakref
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sof_core
from sof_response.errors import (
    LLMAuthError,
    LLMBackendError,
    LLMConnectionError,
    LLMHTTPError,
    LLMProtocolError,
    LLMResponseTooLargeError,
    LLMTimeoutError,
    ResponseConfigError,
)
from sof_response.protocols import (
    GenerationController,
    GenerationResult,
    Message,
    as_messages,
    feed_tokens,
    word_pieces,
)
from sof_response.settings import DEFAULT_MAX_RESPONSE_BYTES, ResponseSettings, check_timeout

if TYPE_CHECKING:
    import httpx

_DONE = "[DONE]"
#: How much of an HTTP error body is read for its message.
_ERROR_BODY_BYTES = 64 * 1024
_BASE_URL_HINT = "check SOF_LLM_BASE_URL (plugin_settings.response.base_url)"


@dataclass
class _Progress:
    """How far one generation got, for the message when it is cut."""

    counts: dict[str, int] = field(default_factory=lambda: {"raw": 0, "decoded": 0})
    reading: bool = False

    def where(self) -> str:
        if self.reading:
            return f"while reading the answer, after {self.counts['raw']} bytes"
        return "while waiting for the response"


def core_deadline() -> float | None:
    """The running skill's deadline from ``sof_core.current_deadline()``, where the core has it."""
    current = getattr(sof_core, "current_deadline", None)
    if not callable(current):
        return None
    value = current()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


class OpenAICompatibleBackend:
    """Chat completions over HTTP; configure with arguments, the environment or ``with_settings``.

    ``base_url``, ``model``, ``api_key``, ``timeout`` and ``max_response_bytes`` not given as
    arguments come from ``SOF_LLM_BASE_URL``, ``SOF_LLM_MODEL``, ``SOF_LLM_API_KEY``,
    ``SOF_LLM_TIMEOUT`` and ``SOF_LLM_MAX_RESPONSE_BYTES``, read the way the response skill
    reads them (``ResponseSettings.for_backend``), else from the defaults. They are read
    when first needed (the first ``generate()`` or look at one of those attributes), so
    building a backend never fails on a bad variable; using it then raises
    ``ResponseConfigError`` naming the variable. Setting one of those attributes later counts
    as passing that argument (None: not given); they are all resolved again at the next use.
    ``with_settings`` makes a copy configured by ``ResponseSettings`` alone: those
    already include the environment.

    Holds one ``httpx.Client`` (made on first use, shared by all threads, replaced in a forked
    child): connections are pooled and kept alive between generations. ``close()`` (or leaving
    a ``with`` block) releases it; so does dropping the backend, and so does interpreter exit.
    """

    name = "openai"
    uses_evidence = False
    #: The response skill passes ``deadline=`` (its remaining time) to backends that say so.
    uses_deadline = True

    def __init__(
        self,
        base_url: str | None = None,
        model: str | None = None,
        api_key: str | None = None,
        timeout: float | None = None,
        *,
        temperature: float | None = None,
        max_tokens: int | None = None,
        max_response_bytes: int | None = None,
        name: str = "openai",
    ) -> None:
        self.name = name
        given = {"base_url": base_url, "model": model, "api_key": api_key, "timeout": timeout,
                 "max_response_bytes": max_response_bytes}
        for key in ("timeout", "max_response_bytes"):
            if given[key] is not None:
                _check_given(name, key, given[key])
        #: The settings given as arguments (None: not given) and whether the environment
        #: fills the others; ``_resolved`` holds all of them once read.
        self._given: dict[str, Any] = given
        self._read_environment = True
        self._resolved: dict[str, Any] | None = None
        self.temperature = temperature
        self.max_tokens = max_tokens
        #: Sent as the request's ``response_format`` when set (e.g. a JSON schema, for
        #: callers such as SOF's LLM planner that need structured output).
        self.response_format: dict[str, Any] | None = None
        self._lock = threading.Lock()
        self._client: httpx.Client | None = None
        self._client_pid = 0
        self._finalizer: weakref.finalize[Any, Any] | None = None

    def with_settings(self, settings: ResponseSettings) -> OpenAICompatibleBackend:
        """A copy configured from the response settings (base URL, model, key, limits).

        The settings win; this backend's own arguments fill what they leave unset. The
        environment is not read again: settings from ``ResponseSettings.resolve`` include it.
        """
        given = self._given
        configured = OpenAICompatibleBackend(
            base_url=settings.base_url or given["base_url"],
            model=settings.model or given["model"],
            api_key=settings.api_key or given["api_key"],
            timeout=settings.timeout,
            temperature=settings.temperature if settings.temperature is not None
            else self.temperature,
            max_tokens=settings.max_tokens or self.max_tokens,
            max_response_bytes=settings.max_response_bytes,
            name=self.name,
        )
        configured._read_environment = False
        return configured

    # --- settings: arguments, else SOF_LLM_* variables, else defaults ---------------------

    def _setting(self, key: str) -> Any:
        resolved = self._resolved
        if resolved is None:
            # One resolution for the skill and a bare backend alike (see ResponseSettings).
            settings = ResponseSettings.for_backend(
                None if self._read_environment else {}, **self._given
            )
            resolved = {k: getattr(settings, k) for k in _FROM_ENVIRONMENT}
            self._resolved = resolved
        return resolved[key]

    def _set(self, key: str, value: Any) -> None:
        if value is not None and key in ("timeout", "max_response_bytes"):
            _check_given(self.name, key, value)
        # A new dict, never changed in place: shallow copies (the LLM planner's) share it.
        self._given = {**self._given, key: value}
        self._resolved = None  # resolved again, the new value included, at the next use

    @property
    def base_url(self) -> str | None:
        """The server's base URL (``SOF_LLM_BASE_URL``), e.g. http://127.0.0.1:11434/v1."""
        return self._setting("base_url")  # type: ignore[no-any-return]

    @base_url.setter
    def base_url(self, value: str | None) -> None:
        self._set("base_url", value)

    @property
    def model(self) -> str | None:
        """The model asked for (``SOF_LLM_MODEL``); None sends none."""
        return self._setting("model")  # type: ignore[no-any-return]

    @model.setter
    def model(self, value: str | None) -> None:
        self._set("model", value)

    @property
    def api_key(self) -> str | None:
        """Sent as a Bearer token (``SOF_LLM_API_KEY``); None sends none."""
        return self._setting("api_key")  # type: ignore[no-any-return]

    @api_key.setter
    def api_key(self, value: str | None) -> None:
        self._set("api_key", value)

    @property
    def timeout(self) -> float:
        """Seconds one whole generation may take (``SOF_LLM_TIMEOUT``, default 60)."""
        return self._setting("timeout")  # type: ignore[no-any-return]

    @timeout.setter
    def timeout(self, value: float) -> None:
        self._set("timeout", value)

    @property
    def max_response_bytes(self) -> int:
        """Most bytes an answer may have (``SOF_LLM_MAX_RESPONSE_BYTES``, default 8 MiB)."""
        return self._setting("max_response_bytes")  # type: ignore[no-any-return]

    @max_response_bytes.setter
    def max_response_bytes(self, value: int) -> None:
        self._set("max_response_bytes", value)

    # --- the shared client ---------------------------------------------------------------

    def client(self) -> httpx.Client:
        """This backend's HTTP client, made on first use; safe to share between threads.

        httpx is imported here, not at module level, so loading the plugin stays cheap.
        """
        client = self._client
        pid = os.getpid()
        if client is not None and self._client_pid == pid and not client.is_closed:
            return client
        with self._lock:
            client = self._client
            if client is None or self._client_pid != pid or client.is_closed:
                if self._finalizer is not None and self._client_pid != pid:
                    # A forked child: those connections belong to the parent; leave them be.
                    self._finalizer.detach()
                client = self._new_client()
                self._client, self._client_pid = client, pid
                # Closes the client when the backend is dropped, or at interpreter exit.
                self._finalizer = weakref.finalize(self, client.close)
            return client

    def _new_client(self) -> httpx.Client:
        import httpx

        from sof_response.httpio import DeadlineTransport

        return httpx.Client(
            transport=DeadlineTransport(self.url), timeout=httpx.Timeout(self.timeout)
        )

    def close(self) -> None:
        """Close the pooled connections; a later generation opens a new client."""
        with self._lock:
            finalizer, self._finalizer, self._client = self._finalizer, None, None
            ours = self._client_pid == os.getpid()
        if finalizer is not None:
            if ours:
                finalizer()
            else:
                finalizer.detach()

    def __enter__(self) -> OpenAICompatibleBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        """Settings travel (to a worker process, a Dask worker); the client stays here."""
        state = dict(self.__dict__)
        for key in ("_lock", "_client", "_client_pid", "_finalizer"):
            state.pop(key, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
        self._client = None
        self._client_pid = 0
        self._finalizer = None

    # --- plumbing ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The chat-completions endpoint (a base URL that already names it is kept)."""
        if not self.base_url:
            raise ResponseConfigError(
                f"LLM backend {self.name!r} has no base URL; set SOF_LLM_BASE_URL or "
                'plugin_settings["response"]["base_url"], e.g. http://127.0.0.1:11434/v1 '
                "for Ollama",
                key="plugin_settings.response.base_url",
            )
        base = self.base_url.rstrip("/")
        return base if base.endswith("/chat/completions") else f"{base}/chat/completions"

    def _headers(self, stream: bool) -> dict[str, str]:
        headers = {
            "Content-Type": "application/json",
            "Accept": "text/event-stream" if stream else "application/json",
            # Only what we decode ourselves, under the size limit (httpx would offer more).
            "Accept-Encoding": "gzip, deflate",
        }
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    def payload(self, messages: Sequence[Message], stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {"messages": [dict(m) for m in messages], "stream": stream}
        if self.model:
            body["model"] = self.model
        if self.temperature is not None:
            body["temperature"] = self.temperature
        if self.max_tokens is not None:
            body["max_tokens"] = self.max_tokens
        if self.response_format is not None:
            body["response_format"] = dict(self.response_format)
        return body

    def deadline(self, now: float, deadline: float | None = None) -> tuple[float, str]:
        """When this generation must end and why: ("timeout" | "deadline").

        The sooner of ``now + timeout``, the caller's ``deadline`` and the core's deadline
        for the running skill.
        """
        own = now + self.timeout
        others = [d for d in (deadline, core_deadline()) if d is not None]
        if others and min(others) < own:
            return min(others), "deadline"
        return own, "timeout"

    # --- generation ----------------------------------------------------------------------

    def generate(
        self,
        messages: str | Sequence[Message],
        *,
        stream: bool = False,
        controller: GenerationController | None = None,
        deadline: float | None = None,
    ) -> GenerationResult:
        """Ask the server; with ``stream`` the controller may stop the stream early.

        ``messages`` is a list of chat messages (``{"role": ..., "content": ...}``) or a plain
        string, sent as one user message; anything else raises ``ResponseInputError``.
        ``deadline`` (a ``time.monotonic()`` value) ends the whole generation if it comes
        before ``timeout`` does.
        """
        import httpx

        from sof_response import httpio

        messages = as_messages(messages, self.name)
        url = self.url
        started = time.monotonic()
        until, reason = self.deadline(started, deadline)
        allowed = until - started
        progress = _Progress()
        if allowed <= 0:
            raise self._timeout_error(url, reason, allowed, progress, started=False)
        try:
            with httpio.deadline_scope(until):
                client = self.client()
                if stream:
                    result = self._stream(client, url, messages, controller, allowed, progress)
                else:
                    result = self._complete(client, url, messages, controller, allowed, progress)
        except (httpx.TimeoutException, httpio.DeadlineExceeded) as exc:
            raise self._timeout_error(url, reason, allowed, progress) from exc
        except httpio.ResponseTooLarge as exc:
            what = ("bytes received on the wire" if exc.which == "raw"
                    else "decompressed bytes")
            raise LLMResponseTooLargeError(
                f"the answer passed max_response_bytes = {exc.limit} ({what}); reading "
                "stopped there. Raise SOF_LLM_MAX_RESPONSE_BYTES "
                "(plugin_settings.response.max_response_bytes) if answers this long are "
                "expected",
                backend=self.name,
                url=url,
                which=exc.which,
                limit=exc.limit,
            ) from exc
        except httpio.UnsupportedEncoding as exc:
            raise self._protocol_error(url)(
                f"the body uses Content-Encoding {str(exc)!r}, which was not offered "
                "(Accept-Encoding: gzip, deflate)"
            ) from exc
        except zlib.error as exc:
            raise self._protocol_error(url)(
                f"the body could not be decompressed ({exc})"
            ) from exc
        except httpx.ConnectError as exc:
            raise LLMConnectionError(
                f"cannot connect ({exc}); is the server running? check SOF_LLM_BASE_URL",
                backend=self.name,
                url=url,
            ) from exc
        except httpx.HTTPError as exc:  # RemoteProtocolError, ReadError, ...
            raise LLMConnectionError(
                f"the connection failed: {type(exc).__name__}: {exc}", backend=self.name, url=url
            ) from exc
        result.metadata.setdefault("url", url)
        result.metadata["latency_ms"] = round((time.monotonic() - started) * 1000, 3)
        result.metadata["deadline_s"] = round(allowed, 3)
        result.metadata["response_bytes"] = progress.counts["raw"]
        return result

    def _timeout_error(
        self, url: str, reason: str, allowed: float, progress: _Progress, *, started: bool = True
    ) -> LLMTimeoutError:
        if reason == "timeout":
            message = (
                f"no complete answer within timeout = {self.timeout:g}s ({progress.where()}); "
                "raise SOF_LLM_TIMEOUT (plugin_settings.response.timeout) or check that the "
                "server is not overloaded"
            )
        else:
            fix = (
                "raise the skill's time limit (its max_execution_time, or skill_timeout / "
                "SOF_SKILL_TIMEOUT for skills that set none) or use a faster model"
            )
            if started:
                message = (
                    f"no complete answer within the {allowed:.2f}s left before the skill's "
                    f"deadline ({progress.where()}); {fix}"
                )
            else:
                message = f"no time left before the skill's deadline, so it was not asked; {fix}"
        return LLMTimeoutError(
            message, backend=self.name, url=url, reason=reason, limit=round(max(allowed, 0), 3)
        )

    def _send(
        self,
        client: httpx.Client,
        url: str,
        messages: Sequence[Message],
        stream: bool,
        allowed: float,
        progress: _Progress,
    ) -> httpx.Response:
        import httpx

        request = client.build_request(
            "POST",
            url,
            json=self.payload(messages, stream),
            headers=self._headers(stream),
            # Waiting for a pooled connection counts too; sockets are held to the deadline.
            timeout=httpx.Timeout(allowed),
        )
        response = client.send(request, stream=True)
        progress.reading = True
        return response

    def _complete(
        self,
        client: httpx.Client,
        url: str,
        messages: Sequence[Message],
        controller: GenerationController | None,
        allowed: float,
        progress: _Progress,
    ) -> GenerationResult:
        response = self._send(client, url, messages, False, allowed, progress)
        try:
            if response.status_code >= 400:
                raise self._http_error(url, response, self._error_text(response, progress))
            text = self._read_all(response, progress)
        finally:
            response.close()
        return self._from_body(url, text, controller)

    def _read_all(self, response: httpx.Response, progress: _Progress) -> str:
        from sof_response import httpio

        body = b"".join(httpio.read_body(response, self.max_response_bytes, progress.counts))
        return body.decode(response.charset_encoding or "utf-8", errors="replace")

    def _error_text(self, response: httpx.Response, progress: _Progress) -> str:
        """The start of an error body, enough for its message; the rest is not read."""
        from sof_response import httpio

        pieces: list[bytes] = []
        size = 0
        try:
            for piece in httpio.read_body(response, self.max_response_bytes, progress.counts):
                pieces.append(piece)
                size += len(piece)
                if size >= _ERROR_BODY_BYTES:
                    break
        except (httpio.ResponseTooLarge, httpio.UnsupportedEncoding, zlib.error):
            pass
        data = b"".join(pieces)[:_ERROR_BODY_BYTES]
        return data.decode(response.charset_encoding or "utf-8", errors="replace")

    def _from_body(
        self, url: str, body_text: str, controller: GenerationController | None
    ) -> GenerationResult:
        """A whole (non-streamed) completion; a controller sees its words afterwards."""
        body = self._json(url, body_text, "response body")
        choice = _first_choice(body, self._protocol_error(url))
        message = choice.get("message")
        content = message.get("content") if isinstance(message, Mapping) else None
        if not isinstance(content, str):
            raise self._protocol_error(url)(
                "choices[0].message.content is missing or not a string in the response body"
            )
        usage = _usage(body.get("usage"))
        finish = choice.get("finish_reason")
        finish_reason = finish if isinstance(finish, str) else None
        stopped = False
        if controller is not None:
            content, _count, stopped = feed_tokens(controller, word_pieces(content))
        return GenerationResult(
            text=content,
            finish_reason="controller" if stopped else finish_reason,
            usage=usage,
            tokens=usage.get("completion_tokens") or len(word_pieces(content)),
            model=body.get("model") if isinstance(body.get("model"), str) else self.model,
            stopped_by_controller=stopped,
            metadata={"extractive": False, "streamed": False},
        )

    def _stream(
        self,
        client: httpx.Client,
        url: str,
        messages: Sequence[Message],
        controller: GenerationController | None,
        allowed: float,
        progress: _Progress,
    ) -> GenerationResult:
        from sof_response import httpio

        response = self._send(client, url, messages, True, allowed, progress)
        try:
            if response.status_code >= 400:
                raise self._http_error(url, response, self._error_text(response, progress))
            content_type = response.headers.get("content-type", "")
            if "text/event-stream" not in content_type and "json" in content_type:
                # Some servers ignore "stream": true and answer in one JSON body.
                result = self._from_body(url, self._read_all(response, progress), controller)
                result.metadata["streamed"] = False
                return result
            body = httpio.read_body(response, self.max_response_bytes, progress.counts)
            lines = httpio.iter_lines(httpio.read_text(body))
            result = self._read_events(url, lines, controller)
            if not result.stopped_by_controller:
                httpio.drain(lines)
            return result
        finally:
            # Closing an unfinished stream drops the connection: the server sees the client go.
            response.close()

    def _read_events(
        self, url: str, lines: Iterator[str], controller: GenerationController | None
    ) -> GenerationResult:
        text = ""
        chunks = 0
        finish: str | None = None
        model = self.model
        usage: dict[str, int] = {}
        done = stopped = False
        fail = self._protocol_error(url)
        for number, line in enumerate(lines, start=1):
            if not line or line.startswith(":"):
                continue  # event separator or SSE comment (keep-alive)
            field, _, value = line.partition(":")
            if field != "data":
                if field in ("event", "id", "retry"):
                    continue
                raise fail(f"stream line {number} is not server-sent events: {line[:120]!r}")
            data = value[1:] if value.startswith(" ") else value
            if data.strip() == _DONE:
                done = True
                break
            event = self._json(url, data, f"stream line {number}")
            if "error" in event and "choices" not in event:
                raise LLMBackendError(
                    f"the server reported an error mid-stream: {_server_message(event)}",
                    backend=self.name,
                    url=url,
                )
            if isinstance(event.get("model"), str):
                model = event["model"]
            usage = _usage(event.get("usage")) or usage
            choices = event.get("choices")
            if not isinstance(choices, list):
                raise fail(f"stream line {number} has no 'choices' list: {data[:120]!r}")
            if not choices:
                continue  # e.g. the usage-only chunk some servers send last
            choice = choices[0]
            if not isinstance(choice, Mapping):
                raise fail(f"stream line {number}: choices[0] is not an object")
            delta = choice.get("delta")
            if delta is None:
                delta = {}
            if not isinstance(delta, Mapping):
                raise fail(f"stream line {number}: choices[0].delta is not an object "
                           f"({type(delta).__name__})")
            piece = delta.get("content")
            if piece is not None and not isinstance(piece, str):
                # null is "no text in this chunk" (role-only, tool calls); anything else is
                # as malformed as a non-string message.content in a whole answer.
                raise fail(f"stream line {number}: choices[0].delta.content is not a string "
                           f"({type(piece).__name__})")
            if piece:
                if controller is not None and not controller.on_token(piece, text + piece):
                    stopped = True
                    break
                text += piece
                chunks += 1
            if isinstance(choice.get("finish_reason"), str):
                finish = choice["finish_reason"]
        if not (done or stopped or finish):
            raise fail("the stream ended before 'data: [DONE]' or a finish_reason")
        return GenerationResult(
            text=text,
            finish_reason="controller" if stopped else finish or "stop",
            usage=usage,
            # After an early stop the server's usage (if any) counts tokens we never read.
            tokens=chunks if stopped else usage.get("completion_tokens") or chunks,
            model=model,
            stopped_by_controller=stopped,
            metadata={"extractive": False, "streamed": True, "chunks": chunks},
        )

    # --- errors --------------------------------------------------------------------------

    def _json(self, url: str, text: str, what: str) -> dict[str, Any]:
        try:
            data = _loads(text)
        except _TooDeep:
            raise self._protocol_error(url)(
                f"{what} is JSON nested too deeply to read: {text[:120]!r}"
            ) from None
        except json.JSONDecodeError as exc:
            raise self._protocol_error(url)(
                f"{what} is not valid JSON ({exc.msg} at char {exc.pos}): {text[:120]!r}"
            ) from exc
        if not isinstance(data, dict):
            raise self._protocol_error(url)(f"{what} is JSON but not an object: {text[:120]!r}")
        return data

    def _protocol_error(self, url: str) -> Any:
        def make(message: str) -> LLMProtocolError:
            return LLMProtocolError(
                f"{message}; is this an OpenAI-compatible chat-completions endpoint? "
                f"{_BASE_URL_HINT}",
                backend=self.name,
                url=url,
            )

        return make

    def _http_error(self, url: str, response: httpx.Response, text: str) -> LLMHTTPError:
        try:
            server = _server_message(_loads(text))
        except ValueError:  # not JSON, or nested too deeply to read (_TooDeep)
            server = text.strip()[:300] or response.reason_phrase
        status = response.status_code
        cls = LLMAuthError if status in (401, 403) else LLMHTTPError
        hint = (
            "; set SOF_LLM_API_KEY (sent as a Bearer token)" if cls is LLMAuthError
            else "; check the model name (SOF_LLM_MODEL)" if status == 404
            else ""
        )
        return cls(
            f"HTTP {status}: {server}{hint}",
            backend=self.name,
            url=url,
            status=status,
            server_message=server,
        )


#: The settings a backend built directly takes from ``SOF_LLM_*`` when not given.
_FROM_ENVIRONMENT = ("base_url", "model", "api_key", "timeout", "max_response_bytes")


def _check_given(backend: str, key: str, value: Any) -> None:
    """Refuse a bad ``timeout`` or ``max_response_bytes`` argument when it is given."""
    if key == "timeout":
        problem = check_timeout(value)
        if problem:
            raise ResponseConfigError(
                f"LLM backend {backend!r}: timeout {problem}",
                key="plugin_settings.response.timeout",
            )
    elif isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ResponseConfigError(
            f"LLM backend {backend!r}: max_response_bytes must be a positive integer, got "
            f"{value!r}",
            key="plugin_settings.response.max_response_bytes",
        )


def _first_choice(body: Mapping[str, Any], fail: Any) -> Mapping[str, Any]:
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], Mapping):
        if "error" in body:
            raise fail(f"the server returned an error object: {_server_message(body)}")
        raise fail("the response body has no 'choices' list")
    choice: Mapping[str, Any] = choices[0]
    return choice


def _usage(raw: Any) -> dict[str, int]:
    if not isinstance(raw, Mapping):
        return {}
    return {k: int(v) for k, v in raw.items() if isinstance(v, int) and not isinstance(v, bool)}


class _TooDeep(ValueError):
    """JSON nested past what the parser's recursion can follow."""


def _loads(text: str) -> Any:
    """``json.loads``; JSON nested too deeply to parse raises ``_TooDeep``, not RecursionError.

    Python's parser recurses once per level of nesting, so ``[[[...]]]`` a few thousand
    levels deep (a few kilobytes, well under any size limit) exhausts the interpreter's
    recursion limit.
    """
    try:
        return json.loads(text)
    except RecursionError:
        raise _TooDeep("JSON nested too deeply to read") from None


def _server_message(body: Any) -> str:
    """The human part of an error body in the shapes OpenAI, Ollama and vLLM use."""
    if isinstance(body, Mapping):
        error = body.get("error", body.get("detail", body.get("message")))
        if isinstance(error, Mapping):
            error = error.get("message") or error
        if error is not None:
            return _quote(error)
    return _quote(body)


def _quote(value: Any) -> str:
    """A server's JSON value as text: a string as it is, anything else as (short) JSON.

    Never fails: a value the parser could read may still be nested too deeply for the encoder
    where this runs (both recurse once per level); it is described instead of shown.
    """
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value)[:300]
    except (RecursionError, ValueError, TypeError):
        return f"(a JSON {type(value).__name__} nested too deeply to show)"


__all__ = ["DEFAULT_MAX_RESPONSE_BYTES", "OpenAICompatibleBackend", "core_deadline"]
