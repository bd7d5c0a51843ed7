"""A plugin skill's planner predicate that hangs never hangs the query.

The rules planner asks every skill whose trigger matched its ``can_handle_query`` (and
``planning_score``). Called inline, one plugin whose predicate never returned froze every
query that reached it: ``sof run "What is 15% of 240?"`` hung with a plugin whose trigger is
``.``. Now the call is bounded: it scores 0, the plan says why (skill and plugin), the hung
call is not asked again until it returns, and the query answers.
"""

from __future__ import annotations

import contextvars
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from queue import SimpleQueue
from typing import Any, ClassVar

import pytest
from sof_test_support import wait_until

from sof_core import UIF, BaseSkillModule
from sof_core.planning import triggers
from sof_core.testing import make_engine

from .conftest import DistFactory, run_sof

#: Generous: the query should finish in about the predicate limit; the bug was never.
DEADLINE = 30.0


class Answer(BaseSkillModule):
    skill_name = "Answer"
    skill_description = "answers"
    required_inputs = ["input_query"]
    optional_inputs = ["tool_results"]
    output_keys = ["final_response"]

    def execute(self, uif: UIF) -> UIF:
        uif.final_response = "answered"
        return uif


class Stuck(BaseSkillModule):
    """Its predicate blocks until the test releases it, counting its calls."""

    skill_name = "Stuck"
    skill_description = "a predicate that hangs"
    required_inputs = ["input_query"]
    output_keys = ["tool_results"]
    triggers: ClassVar[tuple[str, ...]] = (".",)
    release = threading.Event()
    calls = 0

    def can_handle_query(self, query: str) -> bool:
        type(self).calls += 1
        type(self).release.wait()
        return True

    def execute(self, uif: UIF) -> UIF:
        uif.intermediate_data["tool_results"] = []
        return uif


@pytest.fixture
def stuck(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[Stuck]]:
    monkeypatch.setattr(triggers, "PREDICATE_TIMEOUT", 0.2, raising=False)
    Stuck.release = threading.Event()
    Stuck.calls = 0
    yield Stuck
    Stuck.release.set()  # the hung call returns and its worker ends


def within_deadline(fn: Any) -> Any:
    """``fn()`` in a thread, failing the test if it has not returned by ``DEADLINE``."""
    out: list[Any] = []
    worker = threading.Thread(target=lambda: out.append(fn()), daemon=True)
    worker.start()
    worker.join(DEADLINE)
    assert out, f"still running after {DEADLINE}s: a hung predicate hung the query"
    return out[0]


def test_a_hung_predicate_scores_0_is_named_is_not_asked_again_and_the_query_answers(
    stuck: type[Stuck],
) -> None:
    engine = make_engine([Answer, stuck], default_plan=["Answer"])

    first = within_deadline(lambda: engine.planning.plan("hello", use_cache=False))
    assert first.plan == ["Answer"]
    assert first.skipped["Stuck"] == (
        "can_handle_query of skill 'Stuck' (plugin 'test-skills') did not return within "
        "0.2s (not asked again until that call returns)")

    report = within_deadline(lambda: engine.run_query("What is 15% of 240?"))
    assert report.final_response == "answered"
    assert report.planning["skipped"]["Stuck"].startswith(
        "can_handle_query of skill 'Stuck' (plugin 'test-skills') is not asked: its call "
        "from an earlier query has not returned")
    assert stuck.calls == 1  # the hung call was not asked again

    stuck.release.set()  # it returns: asked again from then on, and now it is chosen
    end = time.monotonic() + DEADLINE
    while "Stuck" not in engine.planning.plan("hello", use_cache=False).plan:
        assert time.monotonic() < end, "the predicate returned but is still skipped"
        time.sleep(0.01)
    assert stuck.calls == 2


def test_a_plan_made_while_a_predicate_hung_is_not_cached(stuck: type[Stuck]) -> None:
    """With the plan cache on (the default), the plan that left the hung skill out must not
    stand for that query for plan_cache_ttl once the predicate answers again."""
    engine = make_engine([Answer, stuck], default_plan=["Answer"])

    first = within_deadline(lambda: engine.planning.plan("hello"))
    assert first.plan == ["Answer"] and not first.cache_hit
    again = within_deadline(lambda: engine.planning.plan("hello"))
    assert not again.cache_hit  # made afresh: still without the skill, said why

    stuck.release.set()
    end = time.monotonic() + DEADLINE
    while "Stuck" not in engine.planning.plan("hello").plan:
        assert time.monotonic() < end, "the plan made while it hung is still used"
        time.sleep(0.01)
    assert engine.planning.plan("hello").cache_hit  # a plan that heard from all: cached


def _watched(stuck: type[Stuck], ran_in: list[threading.Thread],
             then: Callable[[], object] = lambda: None) -> type[Stuck]:
    """``stuck`` as skill "Watched", whose predicate records the thread it runs in, calls
    ``then()`` and hangs like ``stuck``'s."""

    class Watched(stuck):  # type: ignore[valid-type,misc]
        skill_name = "Watched"

        def can_handle_query(self, query: str) -> bool:
            ran_in.append(threading.current_thread())
            then()
            return super().can_handle_query(query)

    return Watched


def test_ctrl_c_while_waiting_for_a_predicate_strands_no_worker(stuck: type[Stuck]) -> None:
    """Ctrl-C (a real SIGINT to the main thread, sent by the predicate once it runs, so it
    lands in the wait and not in whatever the main thread happens to run) propagates, and
    the worker that ran the predicate ends once it returns instead of waiting for a call
    that never comes."""
    import signal

    ran_in: list[threading.Thread] = []
    main = threading.main_thread().ident
    assert main is not None
    watched = _watched(stuck, ran_in, lambda: signal.pthread_kill(main, signal.SIGINT))

    engine = make_engine([Answer, watched], default_plan=["Answer"])
    # SIGINT as a foreground process handles it (a background job of a shell without job
    # control starts with it ignored, and the test run may be one).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            engine.planning.plan("hello", use_cache=False)
    finally:
        signal.signal(signal.SIGINT, previous)
    (worker,) = ran_in
    assert worker is not threading.current_thread() and worker.is_alive()
    stuck.release.set()
    worker.join(DEADLINE)
    assert not worker.is_alive(), "the worker was left waiting for a call that never comes"


class _InterruptedAfterPut(SimpleQueue):  # type: ignore[type-arg]
    """A worker's inbox whose first ``put`` is followed by a Ctrl-C, as if the user pressed
    it just after the call was handed over and before the wait for it began."""

    interrupted = False

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        super().put(item, block, timeout)
        if not _InterruptedAfterPut.interrupted:
            _InterruptedAfterPut.interrupted = True
            raise KeyboardInterrupt


def test_ctrl_c_just_after_the_hand_off_strands_no_worker(
    stuck: type[Stuck], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The window between handing a call to a worker and waiting for it: a Ctrl-C there
    used to leave the worker, its call returned, waiting for another that never came."""
    monkeypatch.setattr(triggers, "SimpleQueue", _InterruptedAfterPut)
    monkeypatch.setattr(triggers, "_workers", triggers._Workers())  # no idle worker: a new one
    _InterruptedAfterPut.interrupted = False
    ran_in: list[threading.Thread] = []

    engine = make_engine([Answer, _watched(stuck, ran_in)], default_plan=["Answer"])
    with pytest.raises(KeyboardInterrupt):
        engine.planning.plan("hello", use_cache=False)
    stuck.release.set()  # the call may have started, or not yet: either way it can end
    wait_until(lambda: ran_in, DEADLINE)
    (worker,) = ran_in
    worker.join(DEADLINE)
    assert not worker.is_alive(), "the worker was left waiting for a call that never comes"


class SlowScore(BaseSkillModule):
    """Its ``planning_score`` blocks until the test releases it."""

    skill_name = "SlowScore"
    skill_description = "a scoring method that hangs"
    required_inputs = ["input_query"]
    output_keys = ["tool_results"]
    release = threading.Event()

    def planning_score(self, query: str) -> float:
        SlowScore.release.wait()
        return 1.0

    def execute(self, uif: UIF) -> UIF:
        return uif


def test_a_hung_planning_score_scores_0_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(triggers, "PREDICATE_TIMEOUT", 0.2, raising=False)
    SlowScore.release = threading.Event()
    engine = make_engine([Answer, SlowScore], default_plan=["Answer"])
    try:
        result = within_deadline(lambda: engine.planning.plan("hello", use_cache=False))
    finally:
        SlowScore.release.set()
    assert result.plan == ["Answer"]
    assert result.skipped["SlowScore"].startswith(
        "planning_score of skill 'SlowScore' (plugin 'test-skills') did not return")


class Quick(BaseSkillModule):
    """A plugin's predicate that answers at once: the common case."""

    skill_name = "Quick"
    skill_description = "a quick predicate"
    required_inputs = ["input_query"]
    output_keys = ["tool_results"]
    triggers: ClassVar[tuple[str, ...]] = (".",)
    threads: ClassVar[list[int | None]] = []
    seen: ClassVar[list[str]] = []

    def can_handle_query(self, query: str) -> bool:
        Quick.threads.append(threading.get_ident())
        Quick.seen.append(REQUEST.get())
        return True

    def execute(self, uif: UIF) -> UIF:
        uif.intermediate_data["tool_results"] = []
        return uif


REQUEST: contextvars.ContextVar[str] = contextvars.ContextVar("request", default="none")


def test_a_quick_plugin_predicate_reuses_one_worker_thread_in_the_callers_context() -> None:
    engine = make_engine([Answer, Quick], default_plan=["Answer"])
    Quick.threads.clear()
    Quick.seen.clear()
    for number in range(5):
        REQUEST.set(f"r{number}")
        assert engine.planning.plan("hello", use_cache=False).plan == ["Quick", "Answer"]

    assert len(set(Quick.threads)) == 1  # one reusable worker, not a thread per call
    assert Quick.threads[0] != threading.get_ident()
    assert Quick.seen == ["r0", "r1", "r2", "r3", "r4"]


def test_the_bundled_plugins_predicates_are_asked_in_place() -> None:
    sof_calculator = pytest.importorskip("sof_calculator")
    assert triggers._bundled(sof_calculator.CalculatorTool().can_handle_query)
    assert not triggers._bundled(Quick().can_handle_query)


def test_sof_run_answers_while_a_plugins_predicate_sleeps(dists: DistFactory,
                                                           tmp_path: Path) -> None:
    dists.add("sof-sleepy", """
        import time

        from sof_core import BaseSkillModule, hookimpl

        class Sleepy(BaseSkillModule):
            skill_name = "Sleepy"
            skill_description = "a predicate that sleeps two minutes"
            required_inputs = ["input_query"]
            output_keys = ["sleepy_notes"]
            triggers = (".",)

            def can_handle_query(self, query):
                time.sleep(120)
                return True

            def execute(self, uif):
                return uif

        @hookimpl
        def sof_register_skills():
            return [Sleepy]
    """, entry_name="sleepy")
    env = dists.env()
    env["SOF_CONFIG"] = str(tmp_path / "none.json")

    done = run_sof("run", "What is 15% of 240?", "--json", env=env, timeout=DEADLINE)

    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert "36" in data["final_response"]
    assert data["planning"]["skipped"]["Sleepy"].startswith(
        "can_handle_query of skill 'Sleepy' (plugin 'sleepy') did not return within 1s")
