"""Claims of docs/plugins/response.md that no other test checked.

Every server here is a real HTTP server on 127.0.0.1 (the ``chat_server`` fixture, or the
small one below for the answers that fixture does not give); the skill runs for real.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sof_response import (
    GenerationResult,
    LLMAuthError,
    LLMBackendError,
    LLMConnectionError,
    LLMHTTPError,
    LLMProtocolError,
    LLMResponseTooLargeError,
    LLMTimeoutError,
    OpenAICompatibleBackend,
    ResponseConfigError,
    ResponseGenerationSkill,
    ResponseInputError,
    ResponseSettings,
)
from sof_response import plugin as response_plugin
from sof_response.protocols import as_messages
from sof_response.settings import ENV_VARS

from sof_core import UIF, SkillExecutionError, SkillSpec, SOFConfig, hookimpl
from sof_core.testing import SofCLI, check_skill_contract, make_engine

MESSAGES = [{"role": "user", "content": "What does SOF do?"}]
MEMORY = [{"id": "m1", "text": "The memory stores documents as embeddings.",
           "source": "notes/memory.md", "score": 0.9}]
CLEAN = ("Tides explained\nTides are caused mainly by the pull of the Moon.\n"
         "Spring tides happen at new and full moon.\nNeap tides happen at the quarter moons.")


def answer(query: str, skill: ResponseGenerationSkill | None = None, **data: Any) -> UIF:
    uif = UIF(input_query=query)
    uif.intermediate_data.update(data)
    return (skill or ResponseGenerationSkill()).execute(uif)


def vetted(*sources: dict[str, Any]) -> dict[str, Any]:
    return {"version": 1, "verdict": "pass", "sources": list(sources), "withheld": [],
            "detectors": []}


def web_source(url: str, text: str) -> dict[str, Any]:
    return {"index": 0, "source": url, "title": "Tides", "verdict": "pass", "text": text,
            "reasons": [], "detectors": [], "error": None, "metadata": {"url": url}}


# --- the skill's declarations and settings ---------------------------------------------------


def test_the_skill_declares_the_documented_inputs_and_outputs() -> None:
    spec = SkillSpec.from_skill_class(ResponseGenerationSkill)

    assert spec.name == "ResponseGenerationSkill"
    assert spec.required_inputs == ("input_query",)
    assert spec.optional_inputs == (
        "memory_results", "conflicts", "tool_results", "calculation_result",
        "calculation_steps", "vetted_content", "user_context", "active_profile")
    assert spec.key_types["memory_results"] is list
    assert spec.key_types["conflicts"] is list
    assert spec.key_types["tool_results"] is list
    assert spec.output_keys == ("final_response", "confidence_score", "response_context")
    assert spec.output_types == {"final_response": str, "confidence_score": float,
                                 "response_context": dict}
    assert spec.max_execution_time is None  # "the skill sets no max_execution_time of its own"


def test_the_settings_table_defaults() -> None:
    settings = ResponseSettings.resolve({}, environ={})

    assert settings.backend == "extractive"
    assert (settings.base_url, settings.model, settings.api_key) == (None, None, None)
    assert settings.timeout == 60
    assert settings.max_response_bytes == 8388608
    assert (settings.temperature, settings.max_tokens) == (None, None)
    assert settings.stream is False
    assert settings.use_tpv_control is False
    assert settings.controller == "stop"
    assert settings.tpv_max_tokens == 512
    assert (settings.tpv_max_repeats, settings.tpv_ngram) == (3, 4)
    assert (settings.max_passages, settings.max_passage_chars) == (8, 1200)
    assert settings.max_sentences == 3
    assert settings.fallback_to_extractive is True
    assert settings.system_prompt is None  # built in


def test_the_settings_table_environment_variables() -> None:
    assert ENV_VARS == {
        "SOF_RESPONSE_BACKEND": "backend", "SOF_LLM_BASE_URL": "base_url",
        "SOF_LLM_MODEL": "model", "SOF_LLM_API_KEY": "api_key", "SOF_LLM_TIMEOUT": "timeout",
        "SOF_LLM_MAX_RESPONSE_BYTES": "max_response_bytes", "SOF_RESPONSE_STREAM": "stream",
        "SOF_USE_TPV_CONTROL": "use_tpv_control", "SOF_TPV_CONTROLLER": "controller",
        "SOF_TPV_MAX_TOKENS": "tpv_max_tokens",
    }
    settings = ResponseSettings.resolve({}, environ={
        "SOF_RESPONSE_STREAM": "true", "SOF_TPV_CONTROLLER": "sam-tpv",
        "SOF_TPV_MAX_TOKENS": "256", "SOF_LLM_MODEL": "llama3.2"})
    assert (settings.stream, settings.controller, settings.tpv_max_tokens, settings.model) == (
        True, "sam-tpv", 256, "llama3.2")


def test_skill_arguments_win_over_the_environment_which_wins_over_the_config(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = SOFConfig(plugin_settings={"response": {"stream": False, "tpv_max_tokens": 100}})
    monkeypatch.setenv("SOF_RESPONSE_STREAM", "true")
    monkeypatch.setenv("SOF_TPV_MAX_TOKENS", "200")

    from_config_and_env = ResponseGenerationSkill(config=config).settings()
    with_arguments = ResponseGenerationSkill(
        settings={"stream": False, "tpv_max_tokens": 300}, config=config).settings()

    assert (from_config_and_env.stream, from_config_and_env.tpv_max_tokens) == (True, 200)
    assert (with_arguments.stream, with_arguments.tpv_max_tokens) == (False, 300)


def test_the_timeout_may_be_at_most_a_million_seconds() -> None:
    assert ResponseSettings.resolve({"timeout": 1_000_000}, environ={}).timeout == 1_000_000
    with pytest.raises(ResponseConfigError, match="timeout"):
        ResponseSettings.resolve({"timeout": 1_000_001}, environ={})


def test_a_bad_variable_gives_the_documented_message() -> None:
    backend = OpenAICompatibleBackend()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SOF_LLM_BASE_URL", "http://127.0.0.1:1/v1")
        patch.setenv("SOF_LLM_TIMEOUT", "soon")
        with pytest.raises(ResponseConfigError) as caught:
            backend.generate(MESSAGES)

    assert str(caught.value) == ("response setting 'timeout' (from environment variable "
                                 "SOF_LLM_TIMEOUT) must be a number, got 'soon'")


def test_a_bad_argument_is_refused_when_the_backend_is_built() -> None:
    with pytest.raises(ResponseConfigError, match="max_response_bytes"):
        OpenAICompatibleBackend(base_url="http://127.0.0.1:1/v1", max_response_bytes=0)


# --- what the answer does ----------------------------------------------------------------------


def test_with_no_evidence_the_extractive_confidence_is_0_05() -> None:
    uif = answer("What is the capital of France?")

    assert uif.final_response.startswith("I found nothing in memory that matches this question")
    assert uif.confidence_score == 0.05


def test_the_skill_never_reads_external_content() -> None:
    page = [{"text": "The capital of France is Paris.", "url": "http://a.test/fr"}]

    uif = answer("What is the capital of France?", external_content=page)

    assert "Paris" not in uif.final_response
    assert "Paris" not in uif.intermediate_data["response_context"]["prompt"]
    assert uif.confidence_score == 0.05


def test_sources_are_numbered_memory_then_tools_then_calculation_then_web() -> None:
    uif = answer(
        "What does the memory store?",
        memory_results=[MEMORY[0], dict(MEMORY[0], id="m2", source="second.md", score=0.5)],
        tool_results=[{"tool": "search", "content": "The memory stores tool output.",
                       "source": "tool-src"}],
        calculation_result=36, calculation_steps=["15% of 240 = 36"],
        vetted_content=vetted(web_source("http://a.test/t", "The memory stores web pages.")),
    )
    context = uif.intermediate_data["response_context"]

    assert [(s["number"], s["kind"]) for s in context["sources"]] == [
        (1, "memory"), (2, "memory"), (3, "tool"), (4, "calculation"), (5, "web")]
    assert [s["id"] for s in context["sources"][:2]] == ["m1", "m2"]  # rank order
    user = context["messages"][1]["content"]
    for number in range(1, 6):  # the same numbers in the prompt
        assert f"[{number}] (" in user
    assert "[4] CalculatorTool" in uif.final_response


@pytest.mark.parametrize("query", ["tl;dr http://a.test/t", "What is http://a.test/t about?"])
def test_other_ways_to_ask_for_a_summary_give_the_opening_sentences(query: str) -> None:
    uif = answer(query, vetted_content=vetted(web_source("http://a.test/t", CLEAN)))

    assert uif.final_response.split("\n\n")[0] == (
        "Tides are caused mainly by the pull of the Moon [1]. Spring tides happen at new and "
        "full moon [1]. Neap tides happen at the quarter moons [1].")


def test_words_of_a_url_in_the_question_do_not_pick_sentences() -> None:
    page = ("Neap tides happen at the quarter moons.\nCats sleep most of the day.\n"
            "Dogs bark at strangers.")

    uif = answer("When do cats sleep? http://a.test/neap-tides-dogs",
                 vetted_content=vetted(web_source("http://a.test/neap-tides-dogs", page)))

    assert uif.final_response.split("\n\n")[0] == "Cats sleep most of the day [1]."


def test_a_malformed_input_names_the_key_and_the_item_index() -> None:
    with pytest.raises(ResponseInputError) as caught:
        answer("q", memory_results=[MEMORY[0], {"id": "m2"}])

    assert caught.value.key == "memory_results"
    assert "input 'memory_results': item 1 has no 'text' string" in str(caught.value)


@pytest.mark.parametrize("data", [
    {},
    {"memory_results": MEMORY},
    {"memory_results": MEMORY * 8, "conflicts": [{"subject": "x", "values": ["1", "2"],
                                                  "passages": [], "description": "d"}]},
    {"calculation_result": 36},
    {"tool_results": [{"tool": "t", "content": "Memory stores memory " * 50}]},
])
def test_confidence_is_always_within_zero_and_one(data: dict[str, Any]) -> None:
    uif = answer("What does the memory store?", **data)

    assert 0.0 <= uif.confidence_score <= 1.0


# --- the openai backend against real servers -------------------------------------------------


class _Answers(BaseHTTPRequestHandler):
    """``/forbidden`` answers 403; ``/sse-fields`` streams with ``event:``/``id:`` fields
    and a usage-only chunk, as some servers do."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path.startswith("/forbidden"):
            data = json.dumps({"error": {"message": "model access denied"}}).encode()
            self.send_response(403)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        events = [
            "event: message\nid: 1\n"
            'data: {"choices": [{"index": 0, "delta": {"content": "Hello "}}]}\n\n',
            "id: 2\n"
            'data: {"choices": [{"index": 0, "delta": {"content": "there."},'
            ' "finish_reason": "stop"}]}\n\n',
            'data: {"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 2,'
            ' "total_tokens": 7}}\n\n',
            "data: [DONE]\n\n",
        ]
        body = "".join(events).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def answers_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answers)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01},
                              daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_http_403_is_an_auth_error(answers_server: str) -> None:
    backend = OpenAICompatibleBackend(base_url=f"{answers_server}/forbidden/v1", timeout=5)

    with pytest.raises(LLMAuthError) as caught:
        backend.generate(MESSAGES)

    assert caught.value.reason == "auth"
    assert "SOF_LLM_API_KEY" in str(caught.value)


def test_event_and_id_fields_and_usage_only_chunks_are_accepted(answers_server: str) -> None:
    backend = OpenAICompatibleBackend(base_url=f"{answers_server}/sse-fields/v1", timeout=5)

    result = backend.generate(MESSAGES, stream=True)

    assert result.text == "Hello there."


def test_the_backend_errors_derive_from_one_skill_execution_error() -> None:
    for error in (LLMConnectionError, LLMTimeoutError, LLMResponseTooLargeError, LLMHTTPError,
                  LLMAuthError, LLMProtocolError):
        assert issubclass(error, LLMBackendError)
    assert issubclass(LLMBackendError, SkillExecutionError)
    assert not issubclass(ResponseInputError, LLMBackendError)


def test_the_skill_does_not_fall_back_on_a_messages_input_error() -> None:
    class Picky:
        name = "picky"

        def generate(self, messages: Any, *, stream: bool = False,
                     controller: Any = None) -> GenerationResult:
            as_messages(42, self.name)  # type: ignore[arg-type]
            raise AssertionError("not reached")

    with pytest.raises(ResponseInputError) as caught:
        answer("What does the memory store?", ResponseGenerationSkill(Picky()),
               memory_results=MEMORY)

    assert caught.value.key == "messages"


def test_as_messages_turns_a_string_into_one_user_message_and_refuses_the_rest() -> None:
    assert list(as_messages("What is SOF?", "mine")) == [
        {"role": "user", "content": "What is SOF?"}]
    assert list(as_messages(tuple(MESSAGES), "mine")) == MESSAGES
    for bad in (42, b"bytes", MESSAGES[0], [{"content": "no role"}]):
        with pytest.raises(ResponseInputError) as caught:
            as_messages(bad, "mine")  # type: ignore[arg-type]
        assert caught.value.key == "messages"


# --- adding a backend or a controller ---------------------------------------------------------


def test_a_backend_with_uses_evidence_and_uses_deadline_gets_both() -> None:
    seen: dict[str, Any] = {}

    class Informed:
        name = "informed"
        uses_evidence = True
        uses_deadline = True

        def generate(self, messages: Sequence[Any], *, stream: bool = False,
                     controller: Any = None, evidence: Any = None,
                     deadline: float | None = None) -> GenerationResult:
            seen.update(evidence=evidence, deadline=deadline)
            return GenerationResult(text="The memory stores documents [1].")

    class Plain:
        name = "plain"

        def generate(self, messages: Sequence[Any], *, stream: bool = False,
                     controller: Any = None) -> GenerationResult:
            return GenerationResult(text="plain [1].")

    before = time.monotonic()
    report = check_skill_contract(ResponseGenerationSkill(Informed()),
                                  query="What does the memory store?",
                                  inputs={"memory_results": MEMORY})

    assert report.uif.final_response.startswith("The memory stores documents [1].")
    assert seen["evidence"] is not None
    assert seen["evidence"].query == "What does the memory store?"
    assert seen["deadline"] is not None and seen["deadline"] > before
    # a backend that does not ask is not given either keyword
    check_skill_contract(ResponseGenerationSkill(Plain()), query="q",
                         inputs={"memory_results": MEMORY})


class _Budget:
    """A registered controller that takes its budget from the response settings."""

    name = "budget"

    def __init__(self, limit: int = 1000) -> None:
        self.limit = limit
        self.count = 0

    def with_settings(self, settings: ResponseSettings) -> _Budget:
        return _Budget(settings.tpv_max_tokens)

    def fresh(self) -> _Budget:
        return _Budget(self.limit)

    def on_start(self, context: Any) -> None:
        pass

    def on_token(self, token: str, text_so_far: str) -> bool:
        self.count += 1
        return self.count <= self.limit

    def on_end(self, result: GenerationResult) -> None:
        pass


class _BudgetPlugin:
    @hookimpl
    def sof_register_generation_controllers(self) -> list[Any]:
        return [_Budget()]


def test_a_registered_controllers_with_settings_receives_the_response_settings() -> None:
    engine = make_engine(plugins=[("response", response_plugin), ("budget", _BudgetPlugin())],
                         plugin_settings={"response": {"use_tpv_control": True,
                                                       "controller": "budget",
                                                       "tpv_max_tokens": 2}})
    response_plugin.sof_configure(engine.config, engine.registry)

    report = engine.execute_plan(["ResponseGenerationSkill"], UIF(
        input_query="What does the memory store?",
        intermediate_data={"memory_results": MEMORY}))

    assert report.status == "success", report.errors
    generation = report.uif.intermediate_data["response_context"]["generation"]
    assert generation["controller"] == "budget"
    assert generation["tokens"] == 2 and generation["stopped_by_controller"] is True
    assert "(answer cut short by generation controller 'budget'" in report.uif.final_response


def test_a_controller_given_to_the_skill_skips_the_registry() -> None:
    skill = ResponseGenerationSkill(controller=_Budget(3))

    report = check_skill_contract(skill, query="What does the memory store?",
                                  inputs={"memory_results": MEMORY})

    generation = report.uif.intermediate_data["response_context"]["generation"]
    assert generation["controller"] == "budget"
    assert generation["finish_reason"] == "controller" and generation["tokens"] == 3


# --- the page's opening example ----------------------------------------------------------------


def test_the_opening_example_with_the_sample_memory(tmp_path: Any) -> None:
    pytest.importorskip("sof_memory", reason="the memory plugin (plugins/sof-memory)")
    pytest.importorskip("sof_conflict", reason="the conflict plugin (plugins/sof-conflict)")
    sof = SofCLI(tmp_path)
    assert sof("memory", "import", "--sample").ok

    result = sof("run", "When was the SAM memory system redesigned, and what does it store?",
                 "--plan", "MemoryRetrievalSkill", "ConflictDetectorSkill",
                 "ResponseGenerationSkill")

    assert result.ok, result
    printed = result.stdout.split("\n\nRetrieved documents:")[0]
    assert printed == (
        "Release notes for SAM 2.0: the SAM memory system was redesigned in 2024 [1]. The "
        "redesigned memory system stores episodic memories of past conversations and knowledge "
        "capsules alongside the documents a user uploads [1]. The SAM memory system was "
        "redesigned in 2023 [2].\n\n"
        'Note: sources disagree on the date in "the SAM memory system was redesigned in …": '
        "release-notes/sam-2.0.md says 2024, while sam-wiki/memory-history.md says 2023 "
        "[1][2].\n\n"
        "(extractive answer: no language model configured)\n\n"
        "Sources:\n"
        "[1] release-notes/sam-2.0.md (id 6e569726c13ff7e8d0d03e51)\n"
        "[2] sam-wiki/memory-history.md (id 22d6505f3bd5d8fa542434a7)"
    )
