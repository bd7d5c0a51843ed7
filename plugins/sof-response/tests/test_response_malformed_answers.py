"""Answers a server may give that are not a usable answer, against the real 127.0.0.1 server.

JSON nested too deeply to parse, an empty answer, a streamed piece that is not text, an answer
that cites nothing, an error event mid-stream: each costs the run its model answer (with the
cause recorded in ``fallback_reason`` and a warning), never the run itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from sof_response import (
    GenerationResult,
    LLMBackendError,
    LLMEmptyAnswerError,
    LLMHTTPError,
    LLMProtocolError,
    OpenAICompatibleBackend,
    ResponseGenerationSkill,
)

from sof_core import UIF
from sof_core.testing import make_engine

QUERY = "What does SOF route?"
MEMORY = [{"id": "p1", "text": "SOF routes each query through a validated plan.",
           "source": "docs/concepts.md", "score": 0.8}]
EXTRACTIVE = "SOF routes each query through a validated plan [1]."
MESSAGES = [{"role": "user", "content": QUERY}]


def backend_for(server: Any, scenario: str) -> OpenAICompatibleBackend:
    return OpenAICompatibleBackend(base_url=server.url(scenario), timeout=5)


def run_plan(server: Any, scenario: str, memory: list[Any] = MEMORY, **settings: Any) -> Any:
    skill = ResponseGenerationSkill(settings={
        "backend": "openai", "base_url": server.url(scenario), "timeout": 5, **settings})
    return make_engine([skill]).execute_plan(
        ["ResponseGenerationSkill"],
        UIF(input_query=QUERY, intermediate_data={"memory_results": list(memory)}),
    )


def generation(report: Any) -> dict[str, Any]:
    return report.uif.intermediate_data["response_context"]["generation"]  # type: ignore[no-any-return]


def assert_extractive_fallback(report: Any, reason: str, error: type[Exception]) -> str:
    """The run succeeded with the extractive answer; returns the fallback warning."""
    assert report.status == "success", report.errors
    info = generation(report)
    assert (info["backend"], info["fallback_from"], info["fallback_reason"]) == (
        "extractive", "openai", reason)
    answer = report.uif.final_response
    assert answer.startswith(EXTRACTIVE)
    assert f"(extractive answer: language model 'openai' failed with {error.__name__})" in answer
    return next(w for w in report.uif.warnings if "answered extractively instead" in w)


# --- JSON nested too deeply to parse -----------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
def test_json_nested_too_deeply_is_a_protocol_error(chat_server: Any, stream: bool) -> None:
    with pytest.raises(LLMProtocolError, match="nested too deeply"):
        backend_for(chat_server, "deep").generate(MESSAGES, stream=stream)


@pytest.mark.parametrize("stream", [False, True])
def test_json_nested_too_deeply_gets_the_extractive_answer(chat_server: Any, stream: bool) -> None:
    report = run_plan(chat_server, "deep", stream=stream)

    warning = assert_extractive_fallback(report, "protocol", LLMProtocolError)
    assert "nested too deeply" in warning and "SOF_LLM_BASE_URL" in warning


@pytest.mark.parametrize("stream", [False, True])
def test_an_error_body_nested_too_deeply_is_still_the_http_error(
    chat_server: Any, stream: bool
) -> None:
    with pytest.raises(LLMHTTPError) as caught:
        backend_for(chat_server, "deeperror").generate(MESSAGES, stream=stream)

    assert caught.value.status == 500
    assert caught.value.server_message == "[" * 300  # quoted as text, as a non-JSON body is


def test_an_error_event_nested_too_deeply_is_a_protocol_error(chat_server: Any) -> None:
    with pytest.raises(LLMProtocolError, match="stream line 3 is JSON nested too deeply"):
        backend_for(chat_server, "deepevent").generate(MESSAGES, stream=True)


def test_quoting_a_server_error_never_fails_however_deep_it_nests() -> None:
    """What a server sent is quoted in error messages; JSON the parser could read may still be
    too deep for ``json.dumps`` or ``repr`` a few frames further down the stack."""
    from sof_response.openai_backend import _server_message

    deep: list[Any] = []
    for _ in range(100_000):
        deep = [deep]

    assert _server_message({"error": deep}) == "(a JSON list nested too deeply to show)"
    assert _server_message({"error": {"message": deep}}) == (
        "(a JSON list nested too deeply to show)")
    assert _server_message(deep) == "(a JSON list nested too deeply to show)"
    assert _server_message({"error": {"message": "out of memory"}}) == "out of memory"
    assert _server_message({"detail": ["bad", 1]}) == '["bad", 1]'


@pytest.mark.parametrize("stream", [False, True])
def test_an_error_body_that_is_not_json_is_quoted_as_text(chat_server: Any, stream: bool) -> None:
    with pytest.raises(LLMHTTPError) as caught:
        backend_for(chat_server, "htmlerror").generate(MESSAGES, stream=stream)

    assert caught.value.status == 502
    assert caught.value.server_message == "<html><body>502 Bad Gateway</body></html>"


def test_a_whole_answer_whose_content_is_not_a_string_is_a_protocol_error(
    chat_server: Any,
) -> None:
    chat_server.content = 123

    with pytest.raises(LLMProtocolError, match=r"message\.content is missing or not a string"):
        backend_for(chat_server, "content").generate(MESSAGES)


# --- an empty answer ---------------------------------------------------------------------------


@pytest.mark.parametrize(("stream", "content", "deltas"), [
    (False, "", []),
    (False, "   \n ", []),
    (True, None, []),                                  # just data: [DONE]
    (True, None, [{"content": None}]),
    (True, None, [{"role": "assistant"}, {"content": " "}, {"content": "\n"}]),
])
def test_an_empty_answer_gets_the_extractive_answer(
    chat_server: Any, stream: bool, content: Any, deltas: list[Any]
) -> None:
    chat_server.content, chat_server.deltas = content, deltas

    report = run_plan(chat_server, "content", stream=stream)

    warning = assert_extractive_fallback(report, "empty", LLMEmptyAnswerError)
    assert "the answer was empty" in warning


class Blank:
    """A third-party backend whose answer is only whitespace."""

    name = "blank"

    def generate(self, messages: Sequence[Any], *, stream: bool = False,
                 controller: Any = None) -> GenerationResult:
        return GenerationResult(text=" \n", finish_reason="stop")


def test_an_empty_answer_from_any_backend_gets_the_extractive_answer() -> None:
    uif = ResponseGenerationSkill(Blank()).execute(
        UIF(input_query=QUERY, intermediate_data={"memory_results": list(MEMORY)}))

    info = uif.intermediate_data["response_context"]["generation"]
    assert (info["backend"], info["fallback_from"], info["fallback_reason"]) == (
        "extractive", "blank", "empty")
    assert uif.final_response is not None and uif.final_response.startswith(EXTRACTIVE)
    assert any("LLM backend 'blank': the answer was empty (nothing but whitespace; "
               "finish_reason 'stop')" in w for w in uif.warnings)


class Silence:
    """A generation controller that stops before the first token."""

    name = "silence"
    stop_reason = "nothing to say"

    def on_token(self, token: str, text_so_far: str) -> bool:
        return False


def test_an_answer_a_controller_cut_before_its_first_word_is_kept(chat_server: Any) -> None:
    skill = ResponseGenerationSkill(controller=Silence(), settings={
        "backend": "openai", "base_url": chat_server.url("ok"), "timeout": 5})

    uif = skill.execute(UIF(input_query=QUERY, intermediate_data={"memory_results": MEMORY}))

    info = uif.intermediate_data["response_context"]["generation"]
    assert (info["backend"], info["fallback_reason"], info["finish_reason"]) == (
        "openai", None, "controller")
    assert uif.final_response is not None and uif.final_response.startswith(
        "(answer cut short by generation controller 'silence': nothing to say)")
    assert not uif.warnings


def test_the_backend_itself_returns_an_empty_answer_as_it_came(chat_server: Any) -> None:
    chat_server.content = "  "

    assert backend_for(chat_server, "content").generate(MESSAGES).text == "  "


def test_without_fallback_an_empty_answer_fails_the_skill(chat_server: Any) -> None:
    chat_server.content = ""
    skill = ResponseGenerationSkill(settings={
        "backend": "openai", "base_url": chat_server.url("content"), "timeout": 5,
        "fallback_to_extractive": False})

    with pytest.raises(LLMEmptyAnswerError) as caught:
        skill.execute(UIF(input_query=QUERY, intermediate_data={"memory_results": MEMORY}))

    assert caught.value.reason == "empty"
    assert isinstance(caught.value, LLMBackendError)
    assert caught.value.url == chat_server.url("content") + "/chat/completions"


# --- a streamed piece that is not text ---------------------------------------------------------


@pytest.mark.parametrize(("deltas", "what"), [
    ([{"content": 5}], "choices[0].delta.content is not a string (int)"),
    ([{"content": "Hi "}, {"content": ["a"]}], "choices[0].delta.content is not a string (list)"),
    ([{"content": {"text": "x"}}], "choices[0].delta.content is not a string (dict)"),
    ([5], "choices[0].delta is not an object (int)"),
])
def test_a_streamed_piece_that_is_not_text_is_a_protocol_error(
    chat_server: Any, deltas: list[Any], what: str
) -> None:
    chat_server.deltas = deltas

    with pytest.raises(LLMProtocolError) as caught:
        backend_for(chat_server, "content").generate(MESSAGES, stream=True)

    assert what in str(caught.value)


def test_a_streamed_piece_that_is_not_text_gets_the_extractive_answer(chat_server: Any) -> None:
    chat_server.deltas = [{"content": 5}]

    report = run_plan(chat_server, "content", stream=True)

    assert_extractive_fallback(report, "protocol", LLMProtocolError)


def test_null_content_in_a_streamed_piece_is_no_text_not_an_error(chat_server: Any) -> None:
    chat_server.deltas = [{"role": "assistant", "content": None}, {},
                          {"content": "It routes plans [1]."}]

    assert backend_for(chat_server, "content").generate(MESSAGES, stream=True).text == (
        "It routes plans [1].")


# --- an answer that cites nothing ---------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
def test_an_answer_citing_nothing_lists_the_sources_it_was_given(
    chat_server: Any, stream: bool
) -> None:
    chat_server.content = "It runs fast."
    chat_server.deltas = [{"content": "It runs "}, {"content": "fast."}]

    memory = [*MEMORY, {"id": "p2", "text": "Plans are validated first.",
                        "source": "docs/plans.md", "score": 0.5}]

    report = run_plan(chat_server, "content", memory, stream=stream)

    assert report.status == "success", report.errors
    assert report.uif.final_response == (
        "It runs fast.\n\n"
        "Sources provided (none cited in the answer):\n[1] docs/concepts.md (id p1)\n"
        "[2] docs/plans.md (id p2)"
    )
    context = report.uif.intermediate_data["response_context"]
    assert context["cited"] == []
    assert generation(report)["fallback_reason"] is None


def test_the_conflict_note_does_not_make_an_answer_citing_nothing_look_cited(
    chat_server: Any
) -> None:
    # The skill's own "Note: sources disagree ... [1][2]" names both passages; the model's
    # text cites neither, so the answer is reported uncited (and its confidence lowered).
    memory = [{"id": "a", "text": "SOF 2 shipped in 2023.", "source": "wiki", "score": 0.9},
              {"id": "b", "text": "SOF 2 shipped in 2024.", "source": "notes", "score": 0.8}]
    conflict = {"subject": "SOF 2 shipped", "values": ["2023", "2024"], "description": "",
                "passages": [{"id": "a", "source": "wiki"}, {"id": "b", "source": "notes"}]}

    def answered(content: str) -> Any:
        chat_server.content = content
        skill = ResponseGenerationSkill(settings={
            "backend": "openai", "base_url": chat_server.url("content"), "timeout": 5})
        return make_engine([skill]).execute_plan(["ResponseGenerationSkill"], UIF(
            input_query="When did SOF 2 ship?",
            intermediate_data={"memory_results": memory, "conflicts": [conflict]})).uif

    uncited, cited = answered("It shipped a while ago."), answered("It shipped in 2023 [1].")

    assert "Note: sources disagree" in uncited.final_response
    assert uncited.final_response.endswith(
        "Sources provided (none cited in the answer):\n[1] wiki (id a)\n[2] notes (id b)")
    assert uncited.intermediate_data["response_context"]["cited"] == []
    assert uncited.confidence_score < cited.confidence_score
    assert cited.intermediate_data["response_context"]["cited"] == [1, 2]  # note's [2] listed
    assert cited.final_response.endswith("Sources:\n[1] wiki (id a)\n[2] notes (id b)")


def test_an_answer_citing_nothing_gets_a_lower_confidence(chat_server: Any) -> None:
    chat_server.content = "It runs fast."
    uncited = run_plan(chat_server, "content").uif.confidence_score
    chat_server.content = "It runs fast [1]."
    cited = run_plan(chat_server, "content").uif.confidence_score

    assert uncited < cited


def test_an_answer_with_its_own_sources_list_gets_no_second_one(chat_server: Any) -> None:
    chat_server.content = "It runs fast.\n\nSources:\n- the docs"

    report = run_plan(chat_server, "content")

    assert report.uif.final_response == "It runs fast.\n\nSources:\n- the docs"


# --- an error event mid-stream ----------------------------------------------------------------


def test_an_error_event_mid_stream_gets_the_extractive_answer_with_reason_error(
    chat_server: Any,
) -> None:
    report = run_plan(chat_server, "midstream_error", stream=True)

    warning = assert_extractive_fallback(report, "error", LLMBackendError)
    assert "the server reported an error mid-stream: out of memory" in warning
