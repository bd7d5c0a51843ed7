"""Planners from plugins: one signature, checked plans, and fallbacks to the rules planner."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from sof_core import UIF, BaseSkillModule, ConfigError, SOFConfig, hookimpl
from sof_core.planning.planners import Planner
from sof_core.testing import make_engine


class Answer(BaseSkillModule):
    skill_name = "Answer"
    skill_description = "answers"
    required_inputs = ["input_query"]
    output_keys = ["final_response"]

    def execute(self, uif: UIF) -> UIF:
        uif.final_response = "ok"
        return uif


class Raising:
    name = "raising"

    def plan(self, query: str, context: Any) -> list[str]:
        raise RuntimeError("planner service down")


class Exiting:
    """Calls sys.exit: a plugin's planner must not end the host (a skill's call does not)."""

    name = "exiting"

    def plan(self, query: str, context: Any) -> list[str]:
        raise SystemExit(3)


class Odd(BaseException):
    """Derived from BaseException, as some libraries' errors are: still the planner's fault."""


class Oddly:
    name = "oddly"

    def plan(self, query: str, context: Any) -> list[str]:
        raise Odd("not an Exception")


class Invalid:
    name = "invalid"

    def plan(self, query: str, context: Any) -> list[str]:
        return ["NoSuchSkill", "Answer"]


class Sees:
    """Returns what it was given, to check the context a planner gets."""

    name = "sees"
    seen: dict[str, Any] = {}

    def plan(self, query: str, context: Any) -> list[str]:
        Sees.seen = {"default_plan": context.config.default_plan, "profile": context.profile,
                     "skills": context.registry.skill_names()}
        return ["Answer"]


class Hung:
    name = "hung"

    def plan(self, query: str, context: Any) -> list[str]:
        threading.Event().wait()  # never returns
        return []


class Planners:
    @hookimpl
    def sof_register_planners(self) -> list[Any]:
        return [Raising(), Exiting(), Oddly(), Invalid(), Sees(), Hung()]


def engine(**config: Any) -> Any:
    return make_engine([Answer], plugins=[("planners", Planners())], default_plan=["Answer"],
                       **config)


def test_a_plugin_planner_keeps_the_one_documented_signature() -> None:
    assert isinstance(Sees(), Planner)
    result = engine().planning.plan("q", planner="sees", profile="legal",
                                    config=SOFConfig(default_plan=["Answer"]))
    assert result.plan == ["Answer"] and result.planner == "sees"
    assert Sees.seen == {"default_plan": ["Answer"], "profile": "legal", "skills": ["Answer"]}


@pytest.mark.parametrize(("name", "why"), [
    ("raising", "planner raised RuntimeError: planner service down"),
    ("exiting", "planner raised SystemExit: 3"),
    ("oddly", "planner raised Odd: not an Exception"),
    ("invalid", "its plan ['NoSuchSkill', 'Answer'] is invalid"),
])
def test_a_failing_planner_falls_back_to_rules_and_is_counted(name: str, why: str) -> None:
    made = engine()
    result = made.planning.plan("q", planner=name)
    assert result.planner == "rules" and result.plan == ["Answer"]
    (fallback,) = result.fallbacks
    assert (fallback.planner, fallback.to) == (name, "rules")
    assert fallback.reason.startswith(why)
    stats = made.stats()["planning"]
    assert stats["fallbacks"] == {f"{name}->rules": 1} and stats["fallbacks_total"] == 1


def test_a_plan_made_after_a_fallback_is_not_cached() -> None:
    made = engine()
    made.planning.plan("q", planner="raising")
    again = made.planning.plan("q", planner="raising")
    assert not again.cache_hit and again.fallbacks


def test_the_fallback_reaches_the_report_and_the_trace() -> None:
    report = engine(planner="raising").run_query("q")
    assert report.status == "success"
    assert report.planning is not None and report.planning["fallbacks"][0]["planner"] == "raising"
    assert any(w.startswith("planner raising fell back to rules") for w in report.uif.warnings)


def test_a_fallback_names_the_plugin_whose_planner_failed(
        caplog: pytest.LogCaptureFixture) -> None:
    """Two plugins may ship planners with similar names: the report, the trace and the log
    say which plugin's planner failed, so its author can be told."""
    with caplog.at_level("WARNING", logger="sof"):
        report = engine(planner="raising").run_query("q")
    assert report.planning is not None
    assert report.planning["fallbacks"][0]["plugin"] == "planners"
    (warning,) = [w for w in report.uif.warnings if w.startswith("planner raising fell back")]
    assert warning.endswith("(planner of plugin 'planners')")
    assert any("'raising' (plugin 'planners') failed" in r.getMessage() for r in caplog.records)


def test_an_unknown_planner_and_a_bad_rules_option_are_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"unknown planner 'oracle'.*installed planners"):
        engine().planning.plan("q", planner="oracle")
    bad = SOFConfig(default_plan=["Answer"], planner_options={"rules": {"treshold": 0.3}})
    with pytest.raises(ConfigError, match=r"unknown option\(s\) \['treshold'\]"):
        engine().planning.plan("q", config=bad)


def test_an_unknown_llm_option_falls_back_to_rules_naming_it() -> None:
    # configuration.md: an unknown `llm` option makes the llm planner fail; rules plans.
    made = engine(planner_options={"llm": {"bogus": 1}})
    result = made.planning.plan("q", planner="llm")
    assert result.planner == "rules" and result.plan == ["Answer"]
    (fallback,) = result.fallbacks
    assert fallback.planner == "llm"
    assert "unknown option(s) ['bogus'] in planner_options.llm" in fallback.reason


def test_a_hung_plugin_planner_is_given_up_on_at_its_timeout() -> None:
    made = engine(planner_options={"hung": {"timeout": 0.2}})
    started = time.monotonic()
    result = made.planning.plan("q", planner="hung")
    assert time.monotonic() - started < 2
    assert result.planner == "rules" and result.plan == ["Answer"]
    assert result.fallbacks[0].reason == (
        "planner 'hung' did not answer within 0.2s (planner_options.hung.timeout)")


class NeedsKey:
    """A planner whose constructor raises until its API key is there."""

    name = "needskey"
    key: str | None = None

    def __init__(self) -> None:
        if NeedsKey.key is None:
            raise RuntimeError("SOF_LLM_API_KEY is not set")

    def plan(self, query: str, context: Any) -> list[str]:
        return ["Answer"]


def test_a_planner_whose_constructor_raises_falls_back_and_is_tried_again_later() -> None:
    """Before: the constructor's error came out of every query (no fallback, untyped)."""

    class Registers:
        @hookimpl
        def sof_register_planners(self) -> list[Any]:
            return [NeedsKey]

    made = make_engine([Answer], plugins=[("keyed", Registers())], default_plan=["Answer"])
    result = made.planning.plan("q", planner="needskey")
    assert result.planner == "rules" and result.plan == ["Answer"]
    (fallback,) = result.fallbacks
    assert fallback.reason == ("planner could not be constructed: RuntimeError: "
                               "SOF_LLM_API_KEY is not set")
    NeedsKey.key = "set"
    try:
        again = made.planning.plan("q", planner="needskey")
    finally:
        NeedsKey.key = None
    assert again.planner == "needskey" and not again.fallbacks


def test_a_planner_whose_constructor_calls_sys_exit_falls_back() -> None:
    class Quits:
        name = "quits"

        def __init__(self) -> None:
            raise SystemExit("no model configured")

        def plan(self, query: str, context: Any) -> list[str]:
            return ["Answer"]

    class Registers:
        @hookimpl
        def sof_register_planners(self) -> list[Any]:
            return [Quits]

    made = make_engine([Answer], plugins=[("quits", Registers())], default_plan=["Answer"])
    result = made.planning.plan("q", planner="quits")
    assert result.planner == "rules" and result.plan == ["Answer"]
    assert result.fallbacks[0].reason == ("planner could not be constructed: SystemExit: "
                                          "no model configured")


class HungConstructor:
    """A planner whose constructor never returns (it dials a model server that is down)."""

    name = "hungctor"

    def __init__(self) -> None:
        threading.Event().wait(30)

    def plan(self, query: str, context: Any) -> list[str]:
        return ["Answer"]


def test_a_planner_whose_constructor_hangs_is_given_up_on_at_its_timeout(within: Any) -> None:
    """Before: the constructor ran in the query's thread, holding the planning lock: that
    query, and every later one of the engine, waited for it."""

    class Registers:
        @hookimpl
        def sof_register_planners(self) -> list[Any]:
            return [HungConstructor]

    made = make_engine([Answer], plugins=[("hung", Registers())], default_plan=["Answer"],
                       planner_options={"hungctor": {"timeout": 0.2}})
    for _ in range(2):  # the second query is not held by the first one's constructor
        result = within(lambda: made.planning.plan("q", planner="hungctor", use_cache=False),
                        what="planning")
        assert result.planner == "rules" and result.plan == ["Answer"]
        assert result.fallbacks[0].reason == (
            "planner 'hungctor' did not answer within 0.2s (planner_options.hungctor.timeout)")


class IgnoresDeadline:
    """An LLM backend from a plugin that knows nothing of deadlines, on a server that never
    answers (its ``generate`` blocks)."""

    name = "stuck"

    def generate(self, messages: Any, stream: bool = False) -> Any:
        threading.Event().wait(30)
        return "never"


def test_the_llm_planner_is_bounded_even_when_its_backend_ignores_the_deadline(
        within: Any) -> None:
    """Before: SOF's own LLM planner was asked in the query's thread, trusting its backend
    to honour the deadline; one that did not held the query forever."""

    class Backends:
        @hookimpl
        def sof_register_llm_backends(self) -> list[Any]:
            return [IgnoresDeadline()]

    made = make_engine([Answer], plugins=[("stuck", Backends())], default_plan=["Answer"],
                       planner_options={"llm": {"backend": "stuck", "timeout": 0.2,
                                                "base_url": "http://127.0.0.1:9/v1"}})
    result = within(lambda: made.planning.plan("q", planner="llm", use_cache=False),
                    what="planning")
    assert result.planner == "rules" and result.plan == ["Answer"]
    assert result.fallbacks[0].reason == (
        "planner 'llm' did not answer within 1.2s (planner_options.llm.timeout)")


def test_a_plugin_planner_sees_the_callers_context_variables() -> None:
    import contextvars

    request = contextvars.ContextVar("request", default="none")
    seen: list[str] = []

    class Reads:
        name = "reads"

        def plan(self, query: str, context: Any) -> list[str]:
            seen.append(request.get())
            return ["Answer"]

    class Registers:
        @hookimpl
        def sof_register_planners(self) -> list[Any]:
            return [Reads()]

    made = make_engine([Answer], plugins=[("reads", Registers())], default_plan=["Answer"])
    token = request.set("req-7")
    try:
        result = made.planning.plan("q", planner="reads", use_cache=False)
    finally:
        request.reset(token)
    assert result.planner == "reads" and seen == ["req-7"]


def test_a_planner_whose_constructor_needs_the_main_thread_is_made_there() -> None:
    import signal

    previous = signal.getsignal(signal.SIGUSR2)

    class Signals:
        name = "signals"

        def __init__(self) -> None:
            signal.signal(signal.SIGUSR2, lambda *a: None)

        def plan(self, query: str, context: Any) -> list[str]:
            return ["Answer"]

    class Registers:
        @hookimpl
        def sof_register_planners(self) -> list[Any]:
            return [Signals]

    try:
        made = make_engine([Answer], plugins=[("signals", Registers())],
                           default_plan=["Answer"])
        result = made.planning.plan("q", planner="signals", use_cache=False)
        assert result.planner == "signals" and not result.fallbacks
    finally:
        signal.signal(signal.SIGUSR2, previous)
