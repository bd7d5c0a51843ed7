"""More claims of docs/plugins/response.md that no other test checked.

The servers are the real chat-completions server of ``conftest.py`` on 127.0.0.1; the skill
and the engine run for real. Backends defined here are what the page's "Adding a backend"
section describes: any object with ``name`` and ``generate()``.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from typing import Any

import pytest
from sof_response import (
    GenerationResult,
    OpenAICompatibleBackend,
    ResponseConfigError,
    ResponseGenerationSkill,
    ResponseInputError,
    ResponseSettings,
)
from sof_response import plugin as response_plugin

from sof_core import UIF, SOFConfig, hookimpl
from sof_core.testing import make_engine

QUERY = "What does the memory store?"
#: What the "ok" scenario of the conftest server answers.
REPLY = "SOF routes each query through a validated plan [1]."
MEMORY = [{"id": "m1", "text": "The memory stores documents as embeddings.",
           "source": "notes/memory.md", "score": 0.9}]
CONFLICT = {"subject": "x", "values": ["1", "2"],
            "passages": [{"id": "m1", "source": "notes/memory.md", "text": "t"}],
            "description": "d"}


def answer(query: str, skill: ResponseGenerationSkill | None = None, **data: Any) -> UIF:
    uif = UIF(input_query=query)
    uif.intermediate_data.update(data)
    return (skill or ResponseGenerationSkill()).execute(uif)


def context_of(uif: UIF) -> dict[str, Any]:
    return uif.intermediate_data["response_context"]  # type: ignore[no-any-return]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Fixed:
    """A backend that always answers ``text`` with ``finish_reason``."""

    name = "fixed"

    def __init__(self, text: str, finish_reason: str = "stop") -> None:
        self.text = text
        self.finish_reason = finish_reason

    def generate(self, messages: Sequence[Any], *, stream: bool = False,
                 controller: Any = None) -> GenerationResult:
        return GenerationResult(text=self.text, finish_reason=self.finish_reason)


# --- settings ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("make", "where"), [
    (lambda: ResponseGenerationSkill(settings={"bogus": 1}), "arguments"),
    (lambda: ResponseGenerationSkill(
        config=SOFConfig(plugin_settings={"response": {"bogus": 1}})),
     'plugin_settings["response"]'),
])
def test_an_unknown_key_names_the_key_and_where_it_came_from(make: Any, where: str) -> None:
    with pytest.raises(ResponseConfigError) as caught:
        make().settings()

    assert f"unknown response setting 'bogus' (from {where})" in str(caught.value)


def test_the_unknown_backend_message_is_the_documented_one() -> None:
    with pytest.raises(ResponseConfigError) as caught:
        answer(QUERY, ResponseGenerationSkill(settings={"backend": "gpt-9"}))

    assert ("unknown LLM backend 'gpt-9' (setting 'backend' / SOF_RESPONSE_BACKEND); installed: "
            "['extractive', 'openai']. Pick one of those or install the plugin that provides "
            "'gpt-9'") in str(caught.value)


def test_system_prompt_replaces_the_built_in_one() -> None:
    built_in = context_of(answer(QUERY, memory_results=MEMORY))["messages"][0]["content"]
    context = context_of(answer(QUERY, ResponseGenerationSkill(
        settings={"system_prompt": "Be brief."}), memory_results=MEMORY))

    assert built_in != "Be brief."
    assert context["messages"][0] == {"role": "system", "content": "Be brief."}
    assert context["prompt"].startswith("SYSTEM:\nBe brief.\n\nUSER:\n")


def test_max_passage_chars_limits_what_of_a_passage_goes_into_the_prompt() -> None:
    context = context_of(answer(QUERY, ResponseGenerationSkill(
        settings={"max_passage_chars": 20}), memory_results=MEMORY))

    assert len(context["sources"][0]["text"]) <= 20
    assert MEMORY[0]["text"] not in context["prompt"]


def test_the_top_level_use_tpv_control_turns_control_on_and_the_plugin_setting_wins() -> None:
    def controller(**config: Any) -> Any:
        engine = make_engine(plugins=[("response", response_plugin)], **config)
        response_plugin.sof_configure(engine.config, engine.registry)
        report = engine.execute_plan(["ResponseGenerationSkill"], UIF(
            input_query=QUERY, intermediate_data={"memory_results": MEMORY}))
        assert report.status == "success", report.errors
        return report.uif.intermediate_data["response_context"]["generation"]["controller"]

    assert controller() is None
    assert controller(use_tpv_control=True) == "stop"
    assert controller(use_tpv_control=True,
                      plugin_settings={"response": {"use_tpv_control": False}}) is None


# --- inputs ------------------------------------------------------------------------------------


def test_only_text_and_content_are_required_in_each_item() -> None:
    uif = answer(QUERY, memory_results=[{"text": "The memory stores documents."}],
                 tool_results=[{"content": "The memory stores tool output."}])

    assert [s["kind"] for s in context_of(uif)["sources"]] == ["memory", "tool"]


def test_tool_content_may_be_json_data() -> None:
    uif = answer(QUERY, tool_results=[{"tool": "api", "content": {"stores": "documents"}}])

    [source] = context_of(uif)["sources"]
    assert source["kind"] == "tool"
    assert "documents" in source["text"]


@pytest.mark.parametrize(("tool_results", "message"), [
    ([{"tool": "t", "content": "x"}, 5], "item 1 is a int, expected a dict"),
    ([{"tool": "t"}], "item 0 has no 'content'"),
])
def test_a_malformed_tool_result_names_the_key_and_the_index(
    tool_results: list[Any], message: str,
) -> None:
    with pytest.raises(ResponseInputError) as caught:
        answer(QUERY, tool_results=tool_results)

    assert caught.value.key == "tool_results"
    assert message in str(caught.value)


@pytest.mark.parametrize(("conflicts", "message"), [
    ("x", "input 'conflicts': must be a list of dicts, got str"),
    ([5], "input 'conflicts': item 0 is a int, expected a dict"),
])
def test_malformed_conflicts_name_the_key_and_the_index(conflicts: Any, message: str) -> None:
    with pytest.raises(ResponseInputError) as caught:
        answer(QUERY, memory_results=MEMORY, conflicts=conflicts)

    assert caught.value.key == "conflicts"
    assert message in str(caught.value)


def test_vetted_content_of_another_shape_names_the_key() -> None:
    with pytest.raises(ResponseInputError) as caught:
        answer(QUERY, vetted_content=42)

    assert caught.value.key == "vetted_content"


# --- confidence --------------------------------------------------------------------------------


def test_confidence_is_lowered_when_sources_disagree() -> None:
    calm = answer(QUERY, memory_results=MEMORY).confidence_score
    disputed = answer(QUERY, memory_results=MEMORY, conflicts=[CONFLICT]).confidence_score

    assert calm is not None and disputed is not None
    assert disputed < calm


def test_confidence_is_lowered_when_generation_hit_length() -> None:
    text = "The memory stores documents as embeddings [1]."
    done = answer(QUERY, ResponseGenerationSkill(Fixed(text)), memory_results=MEMORY)
    cut = answer(QUERY, ResponseGenerationSkill(Fixed(text, "length")), memory_results=MEMORY)

    assert done.confidence_score is not None and cut.confidence_score is not None
    assert cut.confidence_score < done.confidence_score


def test_confidence_is_lowered_when_nothing_was_cited() -> None:
    cited = answer(QUERY, ResponseGenerationSkill(
        Fixed("The memory stores documents as embeddings [1].")), memory_results=MEMORY)
    uncited = answer(QUERY, ResponseGenerationSkill(
        Fixed("The memory stores documents as embeddings.")), memory_results=MEMORY)

    assert cited.confidence_score is not None and uncited.confidence_score is not None
    assert context_of(uncited)["cited"] == []
    assert uncited.confidence_score < cited.confidence_score


def test_confidence_is_lowered_for_extractive_answers() -> None:
    text = "The memory stores documents as embeddings [1]."
    model = answer(QUERY, ResponseGenerationSkill(Fixed(text)), memory_results=MEMORY)
    extractive = answer(QUERY, memory_results=MEMORY)

    assert extractive.final_response is not None
    assert extractive.final_response.startswith(text)  # the same sentence, the same citation
    assert model.confidence_score is not None and extractive.confidence_score is not None
    assert extractive.confidence_score < model.confidence_score


def test_a_model_answer_gets_the_conflict_note_once() -> None:
    silent = answer(QUERY, ResponseGenerationSkill(Fixed("It stores documents [1].")),
                    memory_results=MEMORY, conflicts=[CONFLICT])
    said = answer(QUERY, ResponseGenerationSkill(
        Fixed("It stores documents [1].\n\nNote: sources disagree about x [1].")),
        memory_results=MEMORY, conflicts=[CONFLICT])

    assert silent.final_response is not None and said.final_response is not None
    assert silent.final_response.startswith("It stores documents [1].\n\nNote: sources disagree")
    assert said.final_response.count("sources disagree") == 1


# --- the openai backend and the fallback -------------------------------------------------------


def test_a_base_url_ending_in_chat_completions_is_used_as_it_is(chat_server: Any) -> None:
    url = chat_server.url("ok") + "/chat/completions"

    result = OpenAICompatibleBackend(base_url=url, timeout=5).generate("What does SOF do?")

    assert result.text == REPLY
    assert chat_server.requests[-1]["path"] == "/ok/v1/chat/completions"


def test_the_messages_error_is_the_documented_one(chat_server: Any) -> None:
    backend = OpenAICompatibleBackend(base_url=chat_server.url("ok"), timeout=5)

    with pytest.raises(ResponseInputError) as caught:
        backend.generate(42)  # type: ignore[arg-type]

    assert ("input 'messages': LLM backend 'openai', generate(): got int 42; pass a list of chat "
            "messages such as [{'role': 'user', 'content': 'What is SOF?'}], or a plain string "
            "(sent as one user message)") in str(caught.value)
    assert chat_server.requests == []


def test_the_model_is_omitted_when_unset(chat_server: Any) -> None:
    OpenAICompatibleBackend(base_url=chat_server.url("ok"), timeout=5).generate("q")

    assert "model" not in chat_server.requests[-1]["body"]


def test_streaming_is_always_on_while_a_controller_is_active(chat_server: Any) -> None:
    skill = ResponseGenerationSkill(settings={
        "backend": "openai", "base_url": chat_server.url("ok"), "timeout": 5,
        "stream": False, "use_tpv_control": True})

    uif = answer(QUERY, skill, memory_results=MEMORY)

    assert chat_server.requests[-1]["body"]["stream"] is True
    generation = context_of(uif)["generation"]
    assert (generation["controller"], generation["streamed"]) == ("stop", True)


def test_a_failing_server_gives_the_documented_fallback() -> None:
    skill = ResponseGenerationSkill(settings={
        "backend": "openai", "base_url": f"http://127.0.0.1:{closed_port()}/v1", "timeout": 5})

    uif = answer(QUERY, skill, memory_results=MEMORY)

    assert uif.final_response is not None
    assert ("(extractive answer: language model 'openai' failed with LLMConnectionError)"
            in uif.final_response)
    generation = context_of(uif)["generation"]
    assert generation["requested_backend"] == "openai"
    assert generation["fallback_from"] == "openai"
    assert generation["fallback_reason"] == "connection"
    assert "cannot connect" in (generation["fallback_error"] or "")  # the error's message
    assert uif.warnings


def test_deadline_s_is_none_for_an_answer_no_model_wrote() -> None:
    assert context_of(answer(QUERY, memory_results=MEMORY))["generation"]["deadline_s"] is None


def test_the_backend_deadline_is_recorded_for_a_model_answer(chat_server: Any) -> None:
    skill = ResponseGenerationSkill(settings={
        "backend": "openai", "base_url": chat_server.url("ok"), "timeout": 5})

    generation = context_of(answer(QUERY, skill, memory_results=MEMORY))["generation"]

    assert generation["backend"] == "openai"
    assert generation["deadline_s"] is not None and 0 < generation["deadline_s"] <= 5


def test_with_settings_gives_a_copy_that_does_not_read_the_variables(
    chat_server: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = ResponseSettings.resolve({"base_url": chat_server.url("ok"), "timeout": 5},
                                        environ={})
    copy = OpenAICompatibleBackend().with_settings(settings)
    monkeypatch.setenv("SOF_LLM_TIMEOUT", "soon")
    monkeypatch.setenv("SOF_LLM_BASE_URL", "not a url")

    assert copy.generate("q").text == REPLY


# --- with_settings: for components picked by name only ------------------------------------------


class Configurable(Fixed):
    """A backend and controller that records the settings ``with_settings`` was given."""

    def __init__(self, text: str = "configured answer") -> None:
        super().__init__(text)
        self.given: list[ResponseSettings] = []

    def with_settings(self, settings: ResponseSettings) -> Configurable:
        self.given.append(settings)
        return self

    def on_token(self, token: str, text_so_far: str) -> bool:
        return True


def test_a_backend_picked_by_name_is_configured_with_the_response_settings() -> None:
    backend = Configurable()

    class Provides:
        @hookimpl
        def sof_register_llm_backends(self) -> list[Any]:
            return [backend]

    engine = make_engine(plugins=[("response", response_plugin), ("fixed", Provides())],
                         plugin_settings={"response": {"backend": "fixed"}})
    response_plugin.sof_configure(engine.config, engine.registry)
    report = engine.execute_plan(["ResponseGenerationSkill"],
                                 UIF(input_query=QUERY, intermediate_data={}))

    assert report.status == "success", report.errors
    assert [s.backend for s in backend.given] == ["fixed"]


def test_a_backend_or_controller_passed_directly_is_used_as_given() -> None:
    backend, controller = Configurable(), Configurable()
    skill = ResponseGenerationSkill(backend=backend, controller=controller,
                                    settings={"use_tpv_control": True})

    uif = answer(QUERY, skill, memory_results=MEMORY)

    assert uif.final_response is not None and "configured answer" in uif.final_response
    assert backend.given == [] and controller.given == []
