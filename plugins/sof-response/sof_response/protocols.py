"""The two small contracts other plugins implement: LLM backends and generation controllers.

A backend turns chat messages into text. A generation controller (SAM's TPV) watches the
tokens as they are produced and may stop generation early. Both are plain objects with a
``name``, contributed through ``sof_register_llm_backends()`` and
``sof_register_generation_controllers()``; nothing here needs subclassing.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, cast, runtime_checkable

#: One chat message as the OpenAI chat-completions API spells it: ``{"role", "content"}``.
Message = Mapping[str, str]

_MESSAGES_HELP = (
    "pass a list of chat messages such as [{'role': 'user', 'content': 'What is SOF?'}], "
    "or a plain string (sent as one user message)"
)


def as_messages(messages: str | Sequence[Message], backend: str) -> Sequence[Message]:
    """``messages`` as a list of chat messages; a plain string becomes one user message.

    Anything else (a number, bytes, one message on its own, a list holding something other
    than messages with a string ``role``) raises ``ResponseInputError`` with key "messages".
    """
    from sof_response.errors import ResponseInputError

    def bad(problem: str) -> ResponseInputError:
        return ResponseInputError(
            "messages",
            f"LLM backend {backend!r}, generate(): {problem}; {_MESSAGES_HELP}",
            skill=None,
        )

    if isinstance(messages, str):
        return [{"role": "user", "content": messages}]
    if isinstance(messages, (bytes, bytearray, Mapping)) or not isinstance(messages, Sequence):
        raise bad(f"got {type(messages).__name__} {_short(messages)}")
    for index, message in enumerate(messages):
        if not isinstance(message, Mapping):
            raise bad(
                f"messages[{index}] must be a mapping with 'role' and 'content', got "
                f"{type(message).__name__} {_short(message)}"
            )
        if not isinstance(message.get("role"), str):
            raise bad(f"messages[{index}] has no string 'role': {_short(message)}")
    return cast("Sequence[Message]", messages)  # checked above (str is a Sequence too)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


@dataclass
class GenerationResult:
    """What a backend produced, and how generation ended.

    ``finish_reason`` is the server's own word ("stop", "length", ...) or "controller" when a
    generation controller stopped it. ``tokens`` counts generated tokens (server usage when it
    reports one, streamed chunks or words otherwise).
    """

    text: str
    finish_reason: str | None = None
    usage: dict[str, int] = field(default_factory=dict)
    tokens: int = 0
    model: str | None = None
    stopped_by_controller: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class GenerationContext:
    """What a controller is told when a generation starts."""

    backend: str
    model: str | None
    query: str
    messages: Sequence[Message]
    stream: bool
    settings: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class GenerationController(Protocol):
    """SAM's TPV hook: sees every token and says whether generation may go on.

    ``on_token`` returns True to continue and False to stop; the backend then stops reading
    (closing the HTTP stream) and marks the result ``stopped_by_controller``. A controller that
    keeps per-generation state should offer ``fresh() -> GenerationController``; the skill calls
    it once per generation so that concurrent runs never share state. An optional
    ``with_settings(settings)`` receives the response plugin's settings.
    """

    name: str

    def on_start(self, context: GenerationContext) -> None: ...

    def on_token(self, token: str, text_so_far: str) -> bool: ...

    def on_end(self, result: GenerationResult) -> None: ...


@runtime_checkable
class LLMBackend(Protocol):
    """Turns chat messages into a ``GenerationResult``.

    With ``stream=True`` the backend reads the answer incrementally and calls
    ``controller.on_token`` for each piece (when a controller is given); with ``stream=False``
    it may still feed the finished text to the controller. Failures raise
    ``sof_response.errors.LLMBackendError`` subclasses. Optional extras the response skill
    uses when present: ``with_settings(settings) -> LLMBackend`` (configure from
    ``ResponseSettings``), ``uses_evidence = True`` (also pass ``evidence=`` with the
    structured passages), ``model`` (for metadata).
    """

    name: str

    def generate(
        self,
        messages: Sequence[Message],
        *,
        stream: bool = False,
        controller: GenerationController | None = None,
    ) -> GenerationResult: ...


@functools.cache
def _piece() -> re.Pattern[str]:
    return re.compile(r"\s*\S+\s*")  # at first use: every sof process loads the plugin


def word_pieces(text: str) -> list[str]:
    """``text`` as the whitespace-delimited pieces an embedded backend "streams"."""
    return _piece().findall(text)


def feed_tokens(
    controller: GenerationController | None, pieces: Iterable[str]
) -> tuple[str, int, bool]:
    """Pass ``pieces`` to ``controller`` one by one; return (text, count, stopped).

    The piece the controller refused is not part of the text: generation stopped before it.
    """
    text = ""
    count = 0
    for piece in pieces:
        if controller is not None and not controller.on_token(piece, text + piece):
            return text, count, True
        text += piece
        count += 1
    return text, count, False


__all__ = [
    "GenerationContext",
    "GenerationController",
    "GenerationResult",
    "LLMBackend",
    "Message",
    "as_messages",
    "feed_tokens",
    "word_pieces",
]
