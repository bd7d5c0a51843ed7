"""Which backend answers: settings, environment, constructor, registry; and what if it fails."""

from __future__ import annotations

import pytest
from sof_response import (
    GenerationResult,
    OpenAICompatibleBackend,
    ResponseConfigError,
    ResponseGenerationSkill,
    ResponseSettings,
)
from sof_response import plugin as response_plugin

from sof_core import UIF, hookimpl
from sof_core.testing import check_skill_contract, make_engine

QUERY = "What does SOF route?"
MEMORY = [{"id": "p1", "text": "SOF routes each query through a validated plan.",
           "source": "docs/concepts.md", "score": 0.8}]
CONFLICT = {"subject": "plan size", "values": ["32", "16"],
            "passages": [{"id": "p1", "source": "docs/concepts.md", "text": "..."}],
            "description": "two limits"}


class EchoBackend:
    """A third-party backend: answers with the last message, cites nothing."""

    name = "echo"
    model = "echo-1"

    def generate(self, messages, *, stream=False, controller=None):
        return GenerationResult(text="echo: " + messages[-1]["content"][-20:], tokens=3,
                                finish_reason="stop")


class EchoPlugin:
    @hookimpl
    def sof_register_llm_backends(self):
        return [EchoBackend()]


def answer(skill, inputs=None, **config):
    report = check_skill_contract(skill, query=QUERY, inputs=inputs or {"memory_results": MEMORY},
                                  **config)
    return report.uif, report.uif.intermediate_data["response_context"]


def failed_run(skill, inputs=None):
    engine = make_engine([skill])
    report = engine.execute_plan(
        ["ResponseGenerationSkill"],
        UIF(input_query=QUERY, intermediate_data=inputs or {"memory_results": MEMORY}),
    )
    assert report.status == "failure"
    return " ".join(report.errors)


# --- settings and names ---------------------------------------------------------------------


def test_the_default_backend_is_extractive():
    assert ResponseSettings().backend == "extractive"
    _, context = answer(ResponseGenerationSkill())
    assert context["generation"]["backend"] == "extractive"


def test_an_unknown_backend_name_is_an_error_naming_the_installed_ones():
    errors = failed_run(ResponseGenerationSkill(settings={"backend": "gpt-9"}))

    assert "unknown LLM backend 'gpt-9'" in errors
    assert "installed: ['extractive', 'openai']" in errors
    assert "SOF_RESPONSE_BACKEND" in errors


def test_select_backend_raises_a_config_error():
    skill = ResponseGenerationSkill()
    with pytest.raises(ResponseConfigError) as caught:
        skill.select_backend(ResponseSettings(backend="nope"))
    assert caught.value.key == "plugin_settings.response.backend"


def test_the_environment_picks_the_backend_and_its_server(monkeypatch, chat_server):
    monkeypatch.setenv("SOF_RESPONSE_BACKEND", "openai")
    monkeypatch.setenv("SOF_LLM_BASE_URL", chat_server.url("auth"))
    monkeypatch.setenv("SOF_LLM_MODEL", "llama3.2")
    monkeypatch.setenv("SOF_LLM_API_KEY", "s3cret")
    monkeypatch.setenv("SOF_LLM_TIMEOUT", "4.5")

    uif, context = answer(ResponseGenerationSkill())

    assert uif.final_response.startswith(chat_server.reply)
    assert context["generation"]["backend"] == "openai"
    assert context["generation"]["model"] == "test-model"  # as the server reports it
    assert chat_server.requests[-1]["body"]["model"] == "llama3.2"
    assert chat_server.requests[-1]["headers"]["Authorization"] == "Bearer s3cret"


def test_environment_wins_over_plugin_settings(monkeypatch):
    monkeypatch.setenv("SOF_LLM_TIMEOUT", "7")
    settings = ResponseSettings.resolve({"timeout": 3, "backend": "openai"})
    assert (settings.timeout, settings.backend) == (7.0, "openai")


def test_unknown_or_bad_settings_are_config_errors_naming_key_and_source(monkeypatch):
    with pytest.raises(ResponseConfigError, match="unknown response setting 'modle'"):
        ResponseSettings.resolve({"modle": "x"})
    monkeypatch.setenv("SOF_USE_TPV_CONTROL", "maybe")
    with pytest.raises(ResponseConfigError, match=r"SOF_USE_TPV_CONTROL.*true or false"):
        ResponseSettings.resolve({})
    monkeypatch.delenv("SOF_USE_TPV_CONTROL")
    with pytest.raises(ResponseConfigError, match=r"'timeout'.*positive"):
        ResponseSettings.resolve({"timeout": 0})
    with pytest.raises(ResponseConfigError, match="must start with http"):
        ResponseSettings.resolve({"base_url": "localhost:11434"})


def test_secrets_are_masked_in_public_settings():
    assert ResponseSettings(api_key="s3cret").public()["api_key"] == "***"


def test_a_backend_given_to_the_constructor_wins():
    uif, context = answer(ResponseGenerationSkill(backend=EchoBackend()))

    assert uif.final_response.startswith("echo: ")
    assert context["generation"]["backend"] == "echo"
    assert context["generation"]["model"] == "echo-1"
    assert context["generation"]["extractive"] is False


def test_something_that_is_not_a_backend_is_rejected_at_construction():
    with pytest.raises(ResponseConfigError, match="is not an LLM backend"):
        ResponseGenerationSkill(backend=object())


def test_backends_of_other_plugins_are_found_through_the_registry():
    engine = make_engine(plugins=[("response", response_plugin), ("echo", EchoPlugin())],
                         plugin_settings={"response": {"backend": "echo"}})
    response_plugin.sof_configure(engine.config, engine.registry)

    report = engine.execute_plan(
        ["ResponseGenerationSkill"], UIF(input_query=QUERY, intermediate_data={})
    )

    assert report.status == "success", report.errors
    assert report.uif.final_response.startswith("echo: ")


def test_with_a_registry_an_unknown_name_lists_every_installed_backend():
    engine = make_engine(plugins=[("response", response_plugin), ("echo", EchoPlugin())],
                         plugin_settings={"response": {"backend": "nope"}})
    response_plugin.sof_configure(engine.config, engine.registry)

    report = engine.execute_plan(
        ["ResponseGenerationSkill"], UIF(input_query=QUERY, intermediate_data={})
    )

    assert "installed: ['echo', 'extractive', 'openai']" in " ".join(report.errors)


class BuggyBackend:
    """A third-party backend with a bug: a plain ValueError, not an LLMBackendError."""

    name = "buggy"

    def generate(self, messages, *, stream=False, controller=None):
        raise ValueError("temperature must be a float")


class WrongTypeBackend:
    name = "wrongtype"

    def generate(self, messages, *, stream=False, controller=None):
        return "just a string"


class BuggyPlugin:
    @hookimpl
    def sof_register_llm_backends(self):
        return [BuggyBackend(), WrongTypeBackend()]


@pytest.mark.parametrize(("backend", "why"), [
    ("buggy", "generate() raised ValueError: temperature must be a float"),
    ("wrongtype", "generate() returned str"),
])
def test_a_buggy_plugin_backend_is_named_and_the_extractive_answer_stands(backend, why):
    """One broken plugin must not cost the user the answer, and its author must be findable:
    the warning names the backend and the plugin that registered it."""
    engine = make_engine(plugins=[("response", response_plugin), ("acme-llm", BuggyPlugin())],
                         plugin_settings={"response": {"backend": backend}})
    response_plugin.sof_configure(engine.config, engine.registry)

    report = engine.execute_plan(
        ["ResponseGenerationSkill"],
        UIF(input_query=QUERY, intermediate_data={"memory_results": MEMORY}),
    )

    assert report.status == "success", report.errors
    assert "SOF routes each query" in report.uif.final_response
    generation = report.uif.intermediate_data["response_context"]["generation"]
    assert (generation["backend"], generation["fallback_from"]) == ("extractive", backend)
    assert generation["fallback_reason"] == "error"
    assert why in generation["fallback_error"]
    assert "a backend of plugin 'acme-llm'" in generation["fallback_error"]
    assert any("a backend of plugin 'acme-llm'" in w for w in report.uif.warnings)


def test_a_buggy_backend_given_to_the_constructor_is_named_as_such():
    uif, context = answer(ResponseGenerationSkill(backend=BuggyBackend()))
    assert "SOF routes each query" in uif.final_response
    assert "the backend passed to ResponseGenerationSkill(backend=...)" in (
        context["generation"]["fallback_error"])


# --- the openai backend inside the skill ----------------------------------------------------


def test_a_model_answer_gets_the_conflict_note_and_sources_it_left_out(chat_server):
    skill = ResponseGenerationSkill(settings={"backend": "openai",
                                              "base_url": chat_server.url("ok")})

    uif, context = answer(skill, {"memory_results": MEMORY, "conflicts": [CONFLICT]})

    assert uif.final_response.startswith(chat_server.reply)
    assert "Note: sources disagree about plan size" in uif.final_response
    assert uif.final_response.endswith("Sources:\n[1] docs/concepts.md (id p1)")
    assert "extractive" not in uif.final_response
    assert context["generation"]["extractive"] is False
    assert context["generation"]["tokens"] == 9
    sent = chat_server.requests[-1]["body"]["messages"]
    assert sent == context["messages"]
    assert "Sources that disagree" in sent[1]["content"]


def test_a_model_answer_without_memory_says_it_comes_from_the_model_alone(chat_server):
    skill = ResponseGenerationSkill(settings={"backend": "openai",
                                              "base_url": chat_server.url("ok")})

    uif, _ = answer(skill, {"memory_results": []})

    assert "No stored memory matched this question" in uif.final_response
    assert uif.confidence_score <= 0.2


def test_when_the_model_fails_the_skill_answers_extractively_and_warns(chat_server):
    skill = ResponseGenerationSkill(settings={"backend": "openai",
                                              "base_url": chat_server.url("error500")})

    uif, context = answer(skill)

    assert "validated plan [1]." in uif.final_response
    assert "(extractive answer: language model 'openai' failed with LLMHTTPError)" in (
        uif.final_response
    )
    assert context["generation"]["fallback_from"] == "openai"
    assert "HTTP 500" in context["generation"]["fallback_error"]
    assert any("HTTP 500" in w and "extractively" in w for w in uif.warnings)


def test_without_fallback_the_typed_model_error_fails_the_skill(chat_server):
    skill = ResponseGenerationSkill(settings={
        "backend": "openai", "base_url": chat_server.url("error500"),
        "fallback_to_extractive": False,
    })

    errors = failed_run(skill)

    assert "LLM backend 'openai'" in errors
    assert "HTTP 500: model crashed while loading" in errors
    assert chat_server.url("error500") in errors


def test_a_configured_backend_is_reused_while_settings_stay_the_same(chat_server):
    skill = ResponseGenerationSkill(settings={"backend": "openai",
                                              "base_url": chat_server.url("ok")})
    settings = skill.settings()

    first = skill.select_backend(settings)

    assert isinstance(first, OpenAICompatibleBackend)
    assert skill.select_backend(settings) is first
    assert skill.select_backend(skill.settings()) is first
