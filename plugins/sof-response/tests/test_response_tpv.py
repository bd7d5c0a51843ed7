"""Generation control (SAM's TPV): the stop controller, and controllers inside the skill."""

from __future__ import annotations

from sof_response import (
    GenerationController,
    GenerationResult,
    ResponseGenerationSkill,
    StopController,
)
from sof_response import plugin as response_plugin
from sof_response.protocols import feed_tokens, word_pieces

from sof_core import UIF, hookimpl
from sof_core.testing import check_skill_contract, make_engine

QUERY = "What does the memory system store and when was it redesigned?"
MEMORY = [{"id": "m1", "source": "notes/memory.md", "score": 0.9,
           "text": "The memory system stores conversations and documents. "
                   "The memory system was redesigned in 2023."}]


def answer(skill, inputs=None):
    report = check_skill_contract(skill, query=QUERY, inputs=inputs or {"memory_results": MEMORY})
    return report.uif, report.uif.intermediate_data["response_context"]["generation"]


# --- the shipped controller -----------------------------------------------------------------


def test_stop_controller_allows_exactly_max_tokens():
    controller = StopController(max_tokens=3)

    text, count, stopped = feed_tokens(controller, word_pieces("one two three four five"))

    assert (text, count, stopped) == ("one two three ", 3, True)
    assert controller.stop_reason == "max_tokens (3) reached"


def test_stop_controller_lets_ordinary_text_through():
    controller = StopController(max_tokens=100)
    text = "SOF plans, validates and runs skills; each skill declares its inputs and outputs."

    assert feed_tokens(controller, word_pieces(text)) == (text, 13, False)
    assert controller.stop_reason is None


def test_stop_controller_stops_a_looping_answer():
    controller = StopController(max_tokens=1000, max_repeats=3, ngram=3)
    looping = "I think that " + "the answer is yes, " * 10

    text, _, stopped = feed_tokens(controller, word_pieces(looping))

    assert stopped
    # The token that would complete the third "the answer is" is refused.
    assert text.endswith("yes, the answer ")
    assert text.count("the answer is") == 2
    assert controller.stop_reason.startswith("repetition:")


def test_fresh_controllers_do_not_share_counters():
    prototype = StopController(max_tokens=2)
    first, second = prototype.fresh(), prototype.fresh()

    feed_tokens(first, ["a ", "b ", "c "])

    assert first.stop_reason and second.stop_reason is None
    assert feed_tokens(second, ["x ", "y "]) == ("x y ", 2, False)
    assert isinstance(prototype, GenerationController)


def test_on_end_records_why_generation_stopped():
    controller = StopController(max_tokens=1)
    feed_tokens(controller, ["a ", "b "])
    result = GenerationResult(text="a ")

    controller.on_end(result)

    assert result.metadata["controller_stop_reason"] == "max_tokens (1) reached"


# --- inside the skill -------------------------------------------------------------------------


def test_tpv_control_stops_the_extractive_answer_and_says_so():
    full, full_generation = answer(ResponseGenerationSkill())
    skill = ResponseGenerationSkill(settings={"use_tpv_control": True, "tpv_max_tokens": 4})

    uif, generation = answer(skill)

    assert generation["stopped_by_controller"] is True
    assert generation["controller"] == "stop"
    assert generation["controller_stop_reason"] == "max_tokens (4) reached"
    assert generation["streamed"] is True
    assert generation["tokens"] == 4
    assert uif.final_response.startswith("The memory system stores\n\n(answer cut short")
    assert "(answer cut short by generation controller 'stop': max_tokens (4) reached)" in (
        uif.final_response
    )
    assert uif.confidence_score < full.confidence_score
    assert full_generation["stopped_by_controller"] is False


def test_tpv_control_is_switched_on_by_environment_variables(monkeypatch):
    monkeypatch.setenv("SOF_USE_TPV_CONTROL", "1")
    monkeypatch.setenv("SOF_TPV_MAX_TOKENS", "2")

    _, generation = answer(ResponseGenerationSkill())

    assert generation["stopped_by_controller"] is True
    assert generation["tokens"] == 2


def test_tpv_control_stops_an_openai_stream_and_the_server_sees_the_client_leave(chat_server):
    skill = ResponseGenerationSkill(settings={
        "backend": "openai", "base_url": chat_server.url("endless"),
        "use_tpv_control": True, "tpv_max_tokens": 10_000,
    })

    uif, generation = answer(skill)

    # "again again again ..." is a loop: the repetition rule ends it long before the budget.
    assert generation["stopped_by_controller"] is True
    assert generation["controller_stop_reason"].startswith("repetition:")
    assert generation["finish_reason"] == "controller"
    assert generation["tokens"] < 10
    assert chat_server.disconnected.wait(5)
    assert "(answer cut short by generation controller 'stop'" in uif.final_response


class NoDigitsController:
    """A third-party controller: stop before any digit is generated."""

    name = "no-digits"

    def __init__(self):
        self.started_with = None
        self.ended_with = None

    def on_start(self, context):
        self.started_with = context

    def on_token(self, token, text_so_far):
        return not any(ch.isdigit() for ch in token)

    def on_end(self, result):
        self.ended_with = result


class NoDigitsPlugin:
    controller = NoDigitsController()

    @hookimpl
    def sof_register_generation_controllers(self):
        return [self.controller]


def test_controllers_of_other_plugins_are_chosen_by_name():
    plugin = NoDigitsPlugin()
    engine = make_engine(
        plugins=[("response", response_plugin), ("nodigits", plugin)],
        plugin_settings={"response": {"use_tpv_control": True, "controller": "no-digits"}},
    )
    response_plugin.sof_configure(engine.config, engine.registry)

    report = engine.execute_plan(
        ["ResponseGenerationSkill"],
        UIF(input_query="When was the memory system redesigned?",
            intermediate_data={"memory_results": MEMORY}),
    )

    assert report.status == "success", report.errors
    generation = report.uif.intermediate_data["response_context"]["generation"]
    assert generation["controller"] == "no-digits"
    assert generation["stopped_by_controller"] is True
    assert "2023" not in report.uif.final_response.split("(answer cut short")[0]
    assert plugin.controller.started_with.backend == "extractive"
    assert plugin.controller.ended_with.stopped_by_controller is True


def test_an_unknown_controller_name_lists_the_installed_ones():
    engine = make_engine([ResponseGenerationSkill(settings={"use_tpv_control": True,
                                                            "controller": "tpv-v2"})])

    report = engine.execute_plan(
        ["ResponseGenerationSkill"], UIF(input_query=QUERY, intermediate_data={})
    )

    assert "unknown generation controller 'tpv-v2'" in " ".join(report.errors)
    assert "installed: ['stop']" in " ".join(report.errors)


class BrokenController:
    name = "broken"

    def on_start(self, context):
        pass

    def on_token(self, token, text_so_far):
        raise RuntimeError("tpv model not loaded")

    def on_end(self, result):
        pass


def test_a_broken_controller_ends_control_not_the_answer():
    uif, generation = answer(ResponseGenerationSkill(controller=BrokenController()))

    assert "stores conversations and documents" in uif.final_response
    assert generation["stopped_by_controller"] is False
    assert generation["controller_error"] == (
        "broken.on_token raised RuntimeError: tpv model not loaded"
    )
