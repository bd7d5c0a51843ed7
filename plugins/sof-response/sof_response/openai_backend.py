"""An OpenAI-compatible chat-completions client over httpx.

Works with anything that speaks ``POST {base_url}/chat/completions``: Ollama
(``http://127.0.0.1:11434/v1``), the llama.cpp server (``http://127.0.0.1:8080/v1``), vLLM,
OpenAI itself. Non-streaming requests parse one JSON body; streaming requests read
server-sent events (``data: {...}`` lines carrying ``choices[0].delta.content``, ending with
``data: [DONE]``). Every failure becomes a typed ``LLMBackendError`` naming the URL, and for
HTTP errors the status and the server's own message.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sof_response.errors import (
    LLMAuthError,
    LLMBackendError,
    LLMConnectionError,
    LLMHTTPError,
    LLMProtocolError,
    LLMTimeoutError,
    ResponseConfigError,
)
from sof_response.protocols import (
    GenerationController,
    GenerationResult,
    Message,
    feed_tokens,
    word_pieces,
)
from sof_response.settings import ResponseSettings

if TYPE_CHECKING:
    import httpx

_DONE = "[DONE]"


class OpenAICompatibleBackend:
    """Chat completions over HTTP; configure with arguments or ``with_settings``."""

    name = "openai"
    uses_evidence = False

    def __init__(
        self,
        base_url: str | None = None,
        model: str | None = None,
        api_key: str | None = None,
        timeout: float = 60.0,
        *,
        temperature: float | None = None,
        max_tokens: int | None = None,
        name: str = "openai",
    ) -> None:
        self.name = name
        self.base_url = base_url
        self.model = model
        self.api_key = api_key
        self.timeout = timeout
        self.temperature = temperature
        self.max_tokens = max_tokens

    def with_settings(self, settings: ResponseSettings) -> OpenAICompatibleBackend:
        """A copy configured from the response settings (base URL, model, key, timeout)."""
        return OpenAICompatibleBackend(
            base_url=settings.base_url or self.base_url,
            model=settings.model or self.model,
            api_key=settings.api_key or self.api_key,
            timeout=settings.timeout,
            temperature=settings.temperature if settings.temperature is not None
            else self.temperature,
            max_tokens=settings.max_tokens or self.max_tokens,
            name=self.name,
        )

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

    def client(self) -> httpx.Client:
        """A client for one generation: nothing to share between threads, nothing leaks.

        httpx is imported here, not at module level, so loading the plugin stays cheap.
        """
        import httpx

        return httpx.Client(timeout=httpx.Timeout(self.timeout))

    def _headers(self, stream: bool) -> dict[str, str]:
        headers = {
            "Content-Type": "application/json",
            "Accept": "text/event-stream" if stream else "application/json",
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
        return body

    # --- generation ----------------------------------------------------------------------

    def generate(
        self,
        messages: Sequence[Message],
        *,
        stream: bool = False,
        controller: GenerationController | None = None,
    ) -> GenerationResult:
        """Ask the server; with ``stream`` the controller may stop the stream early."""
        import httpx

        url = self.url
        started = time.perf_counter()
        try:
            if stream:
                result = self._stream(url, messages, controller)
            else:
                result = self._complete(url, messages, controller)
        except httpx.TimeoutException as exc:
            raise LLMTimeoutError(
                f"no answer within {self.timeout:g}s ({type(exc).__name__}); raise "
                "SOF_LLM_TIMEOUT or check that the server is not overloaded",
                backend=self.name,
                url=url,
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
        result.metadata["latency_ms"] = round((time.perf_counter() - started) * 1000, 3)
        return result

    def _complete(
        self, url: str, messages: Sequence[Message], controller: GenerationController | None
    ) -> GenerationResult:
        with self.client() as client:
            response = client.post(
                url, json=self.payload(messages, False), headers=self._headers(False)
            )
        if response.status_code >= 400:
            raise self._http_error(url, response)
        return self._from_body(url, response.text, controller)

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
        self, url: str, messages: Sequence[Message], controller: GenerationController | None
    ) -> GenerationResult:
        with self.client() as client:
            request = client.build_request(
                "POST", url, json=self.payload(messages, True), headers=self._headers(True)
            )
            response = client.send(request, stream=True)
            return self._read_response(url, response, controller)

    def _read_response(
        self, url: str, response: httpx.Response, controller: GenerationController | None
    ) -> GenerationResult:
        try:
            if response.status_code >= 400:
                response.read()
                raise self._http_error(url, response)
            content_type = response.headers.get("content-type", "")
            if "text/event-stream" not in content_type and "json" in content_type:
                # Some servers ignore "stream": true and answer in one JSON body.
                response.read()
                result = self._from_body(url, response.text, controller)
                result.metadata["streamed"] = False
                return result
            return self._read_events(url, response.iter_lines(), controller)
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
            delta = choice.get("delta") or {}
            piece = delta.get("content") if isinstance(delta, Mapping) else None
            if isinstance(piece, str) and piece:
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
            data = json.loads(text)
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
                f"{message}; is this an OpenAI-compatible chat-completions endpoint?",
                backend=self.name,
                url=url,
            )

        return make

    def _http_error(self, url: str, response: httpx.Response) -> LLMHTTPError:
        try:
            server = _server_message(response.json())
        except ValueError:
            server = response.text.strip()[:300] or response.reason_phrase
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


def _server_message(body: Any) -> str:
    """The human part of an error body in the shapes OpenAI, Ollama and vLLM use."""
    if isinstance(body, Mapping):
        error = body.get("error", body.get("detail", body.get("message")))
        if isinstance(error, Mapping):
            return str(error.get("message") or error)
        if error is not None:
            return str(error)
    return json.dumps(body)[:300]


__all__ = ["OpenAICompatibleBackend"]
