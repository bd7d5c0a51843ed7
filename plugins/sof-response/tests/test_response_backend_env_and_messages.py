"""The OpenAI-compatible backend built directly: settings from the environment, and prompts.

A backend made with ``OpenAICompatibleBackend()`` takes each setting it was not given from the
same ``SOF_LLM_*`` variables the response skill reads, then from the defaults; and
``generate`` accepts a plain string as one user message. All against the real chat server.
"""

from __future__ import annotations

import pickle

import pytest
from sof_response import (
    ExtractiveBackend,
    LLMAuthError,
    LLMResponseTooLargeError,
    LLMTimeoutError,
    OpenAICompatibleBackend,
    ResponseConfigError,
    ResponseInputError,
    ResponseSettings,
)
from sof_response.settings import DEFAULT_MAX_RESPONSE_BYTES, LLM_ENV_VARS
from sof_response.skill import builtin_backends

MESSAGES = [{"role": "user", "content": "What does SOF do?"}]


@pytest.fixture
def llm_env(chat_server, monkeypatch):
    """The documented SOF_LLM_* variables, pointing at the real server's auth scenario."""
    values = {
        "SOF_LLM_BASE_URL": chat_server.url("auth"),
        "SOF_LLM_MODEL": "env-model",
        "SOF_LLM_API_KEY": "s3cret",
        "SOF_LLM_TIMEOUT": "7.5",
        "SOF_LLM_MAX_RESPONSE_BYTES": "65536",
    }
    for var, value in values.items():
        monkeypatch.setenv(var, value)
    return values


# --- settings from the environment ------------------------------------------------------------


def test_a_backend_built_with_no_arguments_uses_the_sof_llm_variables(chat_server, llm_env):
    backend = OpenAICompatibleBackend()

    result = backend.generate(MESSAGES)

    assert result.text == chat_server.reply
    request = chat_server.requests[-1]
    assert request["path"] == "/auth/v1/chat/completions"
    assert request["headers"]["Authorization"] == "Bearer s3cret"
    assert request["body"]["model"] == "env-model"
    assert (backend.base_url, backend.model, backend.api_key, backend.timeout,
            backend.max_response_bytes) == (chat_server.url("auth"), "env-model", "s3cret", 7.5,
                                            65536)


def test_the_direct_backend_and_the_skill_read_the_variables_the_same_way(llm_env):
    """One resolution: the skill's settings and a bare backend agree on every LLM value."""
    settings = ResponseSettings.resolve()
    backend = OpenAICompatibleBackend()

    for key in LLM_ENV_VARS.values():
        assert getattr(backend, key) == getattr(settings, key), key
    assert set(LLM_ENV_VARS) == set(llm_env)


def test_explicit_arguments_win_over_the_environment(chat_server, llm_env):
    backend = OpenAICompatibleBackend(
        base_url=chat_server.url("ok"), model="arg-model", api_key="arg-key", timeout=3.0
    )

    backend.generate(MESSAGES)

    request = chat_server.requests[-1]
    assert request["path"] == "/ok/v1/chat/completions"
    assert request["body"]["model"] == "arg-model"
    assert request["headers"]["Authorization"] == "Bearer arg-key"
    assert backend.timeout == 3.0
    assert backend.max_response_bytes == 65536  # not given: still from the environment


def test_an_api_key_from_the_environment_is_what_the_server_checks(chat_server, monkeypatch):
    monkeypatch.setenv("SOF_LLM_BASE_URL", chat_server.url("auth"))
    monkeypatch.setenv("SOF_LLM_API_KEY", "wrong")

    with pytest.raises(LLMAuthError):
        OpenAICompatibleBackend().generate(MESSAGES)


def test_the_timeout_from_the_environment_bounds_the_generation(chat_server, monkeypatch):
    monkeypatch.setenv("SOF_LLM_BASE_URL", chat_server.url("slow"))
    monkeypatch.setenv("SOF_LLM_TIMEOUT", "0.3")

    with pytest.raises(LLMTimeoutError, match=r"timeout = 0\.3s") as info:
        OpenAICompatibleBackend().generate(MESSAGES)
    assert info.value.reason == "timeout"


def test_the_size_limit_from_the_environment_is_applied(chat_server, monkeypatch):
    monkeypatch.setenv("SOF_LLM_BASE_URL", chat_server.url("ok"))
    monkeypatch.setenv("SOF_LLM_MAX_RESPONSE_BYTES", "64")

    with pytest.raises(LLMResponseTooLargeError) as info:
        OpenAICompatibleBackend().generate(MESSAGES)
    assert info.value.limit == 64


def test_without_arguments_or_variables_the_defaults_apply():
    backend = OpenAICompatibleBackend()

    assert (backend.base_url, backend.model, backend.api_key) == (None, None, None)
    assert backend.timeout == ResponseSettings().timeout
    assert backend.max_response_bytes == DEFAULT_MAX_RESPONSE_BYTES
    with pytest.raises(ResponseConfigError, match="set SOF_LLM_BASE_URL"):
        backend.generate(MESSAGES)


def test_a_bad_variable_is_reported_at_first_use_naming_it_not_at_construction(monkeypatch):
    monkeypatch.setenv("SOF_LLM_BASE_URL", "http://127.0.0.1:1/v1")
    monkeypatch.setenv("SOF_LLM_TIMEOUT", "soon")

    backend = OpenAICompatibleBackend()  # building (as loading the plugin does) never fails
    assert [b.name for b in builtin_backends()] == ["extractive", "openai"]

    with pytest.raises(ResponseConfigError, match="environment variable SOF_LLM_TIMEOUT"):
        backend.generate(MESSAGES)


def test_variables_of_the_skill_alone_do_not_affect_a_bare_backend(chat_server, monkeypatch):
    monkeypatch.setenv("SOF_LLM_BASE_URL", chat_server.url("ok"))
    monkeypatch.setenv("SOF_TPV_MAX_TOKENS", "many")  # the skill would refuse this one

    assert OpenAICompatibleBackend().generate(MESSAGES).text == chat_server.reply


def test_a_backend_configured_from_settings_does_not_read_the_environment(monkeypatch):
    """``with_settings`` takes the settings as they are: they already include the variables."""
    monkeypatch.setenv("SOF_LLM_MODEL", "env-model")
    settings = ResponseSettings(backend="openai", base_url="http://127.0.0.1:1/v1", timeout=2.0)

    configured = OpenAICompatibleBackend().with_settings(settings)

    assert configured.model is None
    assert configured.timeout == 2.0


def test_a_pickled_backend_carries_the_settings_it_resolved(chat_server, llm_env, monkeypatch):
    backend = OpenAICompatibleBackend()
    assert backend.model == "env-model"

    monkeypatch.setenv("SOF_LLM_MODEL", "other")
    copy = pickle.loads(pickle.dumps(backend))

    assert copy.model == "env-model"
    assert copy.generate(MESSAGES).text == chat_server.reply


def test_an_attribute_set_later_wins_like_an_argument(chat_server, llm_env):
    backend = OpenAICompatibleBackend()
    backend.model = "set-later"

    backend.generate(MESSAGES)

    assert chat_server.requests[-1]["body"]["model"] == "set-later"
    backend.model = None  # as an argument of None: not given, so the variable again
    assert backend.model == "env-model"
    backend.timeout = 2.0
    assert backend.timeout == 2.0
    backend.timeout = None  # type: ignore[assignment]
    assert backend.timeout == 7.5
    with pytest.raises(ResponseConfigError, match="timeout"):
        backend.timeout = -1


# --- what generate() accepts -------------------------------------------------------------------


def test_a_plain_string_is_sent_as_one_user_message(chat_server):
    backend = OpenAICompatibleBackend(base_url=chat_server.url("ok"), timeout=5.0)

    result = backend.generate("What does SOF do?")

    assert result.text == chat_server.reply
    assert chat_server.requests[-1]["body"]["messages"] == [
        {"role": "user", "content": "What does SOF do?"}
    ]


def test_a_plain_string_is_also_streamed_as_one_user_message(chat_server):
    backend = OpenAICompatibleBackend(base_url=chat_server.url("ok"), timeout=5.0)

    assert backend.generate("What does SOF do?", stream=True).text == chat_server.reply
    assert chat_server.requests[-1]["body"]["messages"] == [
        {"role": "user", "content": "What does SOF do?"}
    ]


@pytest.mark.parametrize(
    ("messages", "named"),
    [
        (42, "got int"),
        (None, "got NoneType"),
        (b"What does SOF do?", "got bytes"),
        ({"role": "user", "content": "hi"}, "got dict"),
        (["hi"], r"messages\[0\] must be a mapping"),
        ([{"content": "hi"}], r"messages\[0\] has no string 'role'"),
        ([MESSAGES[0], {"role": 3, "content": "x"}], r"messages\[1\] has no string 'role'"),
    ],
)
def test_anything_else_is_a_typed_error_naming_the_argument(chat_server, messages, named):
    backend = OpenAICompatibleBackend(base_url=chat_server.url("ok"), timeout=5.0)

    with pytest.raises(ResponseInputError, match=named) as info:
        backend.generate(messages)

    assert info.value.key == "messages"
    assert "'messages'" in str(info.value)
    assert "a plain string" in str(info.value)
    assert not chat_server.requests  # nothing was sent


def test_the_extractive_backend_takes_the_same_arguments():
    backend = ExtractiveBackend()

    assert backend.generate("What does SOF do?").text
    with pytest.raises(ResponseInputError, match="got int"):
        backend.generate(42)  # type: ignore[arg-type]
