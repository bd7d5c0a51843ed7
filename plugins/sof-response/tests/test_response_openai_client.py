"""The OpenAI-compatible backend against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import socket

import pytest
from sof_response import (
    LLMAuthError,
    LLMBackendError,
    LLMConnectionError,
    LLMHTTPError,
    LLMProtocolError,
    LLMTimeoutError,
    OpenAICompatibleBackend,
    ResponseConfigError,
    ResponseSettings,
    StopController,
)

from sof_core import SkillExecutionError, SOFError

MESSAGES = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "What does SOF do?"},
]


def backend_for(server, scenario: str, **kwargs) -> OpenAICompatibleBackend:
    kwargs.setdefault("model", "test-model")
    kwargs.setdefault("timeout", 5.0)
    return OpenAICompatibleBackend(base_url=server.url(scenario), **kwargs)


def test_a_plain_request_returns_the_reply_with_usage_and_model(chat_server):
    result = backend_for(chat_server, "ok").generate(MESSAGES)

    assert result.text == chat_server.reply
    assert result.finish_reason == "stop"
    assert result.usage["completion_tokens"] == 9
    assert result.tokens == 9
    assert result.model == "test-model"
    assert result.metadata["streamed"] is False
    assert result.metadata["url"] == chat_server.url("ok") + "/chat/completions"
    sent = chat_server.requests[-1]
    assert sent["path"] == "/ok/v1/chat/completions"
    assert sent["body"] == {"messages": MESSAGES, "stream": False, "model": "test-model"}
    assert "Authorization" not in sent["headers"]


def test_the_api_key_is_sent_as_a_bearer_token(chat_server):
    result = backend_for(chat_server, "auth", api_key="s3cret").generate(MESSAGES)

    assert result.text == chat_server.reply
    assert chat_server.requests[-1]["headers"]["Authorization"] == "Bearer s3cret"


def test_optional_generation_parameters_are_sent_only_when_set(chat_server):
    backend_for(chat_server, "ok", temperature=0.2, max_tokens=64).generate(MESSAGES)

    body = chat_server.requests[-1]["body"]
    assert body["temperature"] == 0.2
    assert body["max_tokens"] == 64


def test_a_streamed_reply_is_assembled_from_sse_deltas(chat_server):
    result = backend_for(chat_server, "ok").generate(MESSAGES, stream=True)

    assert result.text == chat_server.reply
    assert result.finish_reason == "stop"
    assert result.metadata["streamed"] is True
    assert result.tokens == result.metadata["chunks"] == len(chat_server.reply.split(" "))
    assert chat_server.requests[-1]["body"]["stream"] is True
    assert chat_server.requests[-1]["headers"]["Accept"] == "text/event-stream"


def test_a_server_that_ignores_stream_true_is_still_understood(chat_server):
    result = backend_for(chat_server, "jsonforstream").generate(MESSAGES, stream=True)

    assert result.text == chat_server.reply
    assert result.metadata["streamed"] is False


@pytest.mark.parametrize("stream", [False, True])
def test_http_500_raises_a_typed_error_naming_url_status_and_server_message(
    chat_server, stream
):
    backend = backend_for(chat_server, "error500")

    with pytest.raises(LLMHTTPError) as caught:
        backend.generate(MESSAGES, stream=stream)

    error = caught.value
    assert isinstance(error, SkillExecutionError) and isinstance(error, SOFError)
    assert error.status == 500
    assert error.server_message == "model crashed while loading"
    assert error.url == chat_server.url("error500") + "/chat/completions"
    assert "HTTP 500" in str(error) and error.url in str(error)
    assert "model crashed while loading" in str(error)


@pytest.mark.parametrize("stream", [False, True])
def test_http_401_is_an_auth_error_that_says_which_variable_to_set(chat_server, stream):
    with pytest.raises(LLMAuthError) as caught:
        backend_for(chat_server, "auth", api_key="wrong").generate(MESSAGES, stream=stream)

    assert caught.value.status == 401
    assert "Invalid API key provided" in str(caught.value)
    assert "SOF_LLM_API_KEY" in str(caught.value)


def test_a_slow_server_raises_a_timeout_error_within_the_timeout(chat_server):
    backend = backend_for(chat_server, "slow", timeout=0.2)

    with pytest.raises(LLMTimeoutError) as caught:
        backend.generate(MESSAGES)

    assert "0.2s" in str(caught.value)
    assert "SOF_LLM_TIMEOUT" in str(caught.value)


def test_malformed_json_raises_a_protocol_error(chat_server):
    with pytest.raises(LLMProtocolError, match="not valid JSON"):
        backend_for(chat_server, "badjson").generate(MESSAGES)


def test_json_without_choices_raises_a_protocol_error(chat_server):
    with pytest.raises(LLMProtocolError, match="no 'choices' list"):
        backend_for(chat_server, "nochoices").generate(MESSAGES)


def test_malformed_sse_raises_a_protocol_error_naming_the_line(chat_server):
    with pytest.raises(LLMProtocolError, match="stream line 3 is not valid JSON"):
        backend_for(chat_server, "badsse").generate(MESSAGES, stream=True)


def test_a_stream_that_ends_without_done_raises_a_protocol_error(chat_server):
    with pytest.raises(LLMProtocolError, match=r"ended before 'data: \[DONE\]'"):
        backend_for(chat_server, "nodone").generate(MESSAGES, stream=True)


def test_an_error_event_in_the_stream_raises_with_the_server_message(chat_server):
    with pytest.raises(LLMBackendError, match="out of memory"):
        backend_for(chat_server, "midstream_error").generate(MESSAGES, stream=True)


def test_nothing_listening_raises_a_connection_error():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    backend = OpenAICompatibleBackend(base_url=f"http://127.0.0.1:{port}/v1", timeout=2.0)

    with pytest.raises(LLMConnectionError, match="is the server running"):
        backend.generate(MESSAGES)


def test_no_base_url_is_a_config_error_naming_the_variable():
    with pytest.raises(ResponseConfigError, match="SOF_LLM_BASE_URL"):
        OpenAICompatibleBackend().generate(MESSAGES)


def test_a_base_url_naming_the_endpoint_is_used_as_is(chat_server):
    backend = OpenAICompatibleBackend(base_url=chat_server.url("ok") + "/chat/completions/")

    assert backend.generate(MESSAGES).text == chat_server.reply


def test_settings_configure_a_copy_of_the_backend(chat_server):
    settings = ResponseSettings(
        backend="openai", base_url=chat_server.url("ok"), model="llama3", api_key="k",
        timeout=3.0,
    )

    configured = OpenAICompatibleBackend().with_settings(settings)

    assert (configured.base_url, configured.model, configured.api_key, configured.timeout) == (
        chat_server.url("ok"), "llama3", "k", 3.0,
    )
    configured.generate(MESSAGES)
    assert chat_server.requests[-1]["body"]["model"] == "llama3"


def test_a_controller_stops_the_stream_early_and_the_connection_is_dropped(chat_server):
    controller = StopController(max_tokens=5)

    result = backend_for(chat_server, "endless").generate(
        MESSAGES, stream=True, controller=controller
    )

    assert result.stopped_by_controller is True
    assert result.finish_reason == "controller"
    assert result.tokens == 5
    assert result.text == "again " * 5
    assert controller.stop_reason == "max_tokens (5) reached"
    assert chat_server.disconnected.wait(5), "the server never saw the client hang up"


def test_a_controller_sees_a_non_streamed_answer_word_by_word(chat_server):
    controller = StopController(max_tokens=3)

    result = backend_for(chat_server, "ok").generate(MESSAGES, controller=controller)

    assert result.stopped_by_controller is True
    assert result.text == "SOF routes each "
