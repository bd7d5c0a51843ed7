"""sof-response: the answer-writing end of a SOF plan.

``ResponseGenerationSkill`` turns retrieved memory, tool results and detected conflicts into
a cited answer through a pluggable LLM backend: ``openai`` (any OpenAI-compatible server:
Ollama, llama.cpp, vLLM) or the embedded ``extractive`` default that needs no model.
Generation controllers (SAM's TPV) can watch the tokens and stop generation early.
"""

from __future__ import annotations

from sof_response.controllers import StopController
from sof_response.errors import (
    LLMAuthError,
    LLMBackendError,
    LLMConnectionError,
    LLMEmptyAnswerError,
    LLMHTTPError,
    LLMProtocolError,
    LLMResponseTooLargeError,
    LLMTimeoutError,
    ResponseConfigError,
    ResponseInputError,
)
from sof_response.extractive import ExtractiveBackend
from sof_response.openai_backend import OpenAICompatibleBackend
from sof_response.protocols import (
    GenerationContext,
    GenerationController,
    GenerationResult,
    LLMBackend,
)
from sof_response.settings import ResponseSettings
from sof_response.skill import ResponseGenerationSkill

__version__ = "0.1.0"

__all__ = [
    "ExtractiveBackend",
    "GenerationContext",
    "GenerationController",
    "GenerationResult",
    "LLMAuthError",
    "LLMBackend",
    "LLMBackendError",
    "LLMConnectionError",
    "LLMEmptyAnswerError",
    "LLMHTTPError",
    "LLMProtocolError",
    "LLMResponseTooLargeError",
    "LLMTimeoutError",
    "OpenAICompatibleBackend",
    "ResponseConfigError",
    "ResponseGenerationSkill",
    "ResponseInputError",
    "ResponseSettings",
    "StopController",
    "__version__",
]
