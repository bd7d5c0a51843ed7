"""The monitor counts how a query was planned for a host calling the engine itself
(``run_query`` / ``arun_query``), not only for queries routed through ``QueryRouter``."""

from __future__ import annotations

import asyncio
import sys

import pytest

S = sys.modules["sof_serve_tests_observe_support"]  # loaded by conftest.py


@pytest.mark.parametrize("asynchronous", [False, True])
def test_a_query_run_on_the_engine_counts_its_planner_and_plan_cache_lookup(
    asynchronous: bool
) -> None:
    # The report sof_after_plan was given had no `planning` yet (set after observers were
    # told): runs were counted, planner choices and plan-cache lookups never were.
    S.fresh_observers()
    engine = S.engine_with_monitor(["FlakySkill"])
    S.FlakySkill.calls, S.FlakySkill.fail_after = 0, 5
    reports = [asyncio.run(engine.arun_query("q")) if asynchronous else engine.run_query("q")
               for _ in range(2)]
    planner = reports[0].planning["planner"]
    parsed = S.samples()
    assert S.value(parsed, "sof_planner_choices_total", planner=planner) == 2
    assert (S.value(parsed, "sof_plan_cache_lookups_total", result="hit")
            + S.value(parsed, "sof_plan_cache_lookups_total", result="miss")) == 2
    assert S.value(parsed, "sof_plan_cache_lookups_total", result="hit") == sum(
        bool(r.planning.get("cache_hit")) for r in reports)
