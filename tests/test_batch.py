"""The batch API: many queries through one engine, results in order, errors per item."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from sof_core import BaseSkillModule, ConfigError, hookimpl
from sof_core.execution.batch import (
    BatchItem,
    arun_batch,
    format_summary,
    percentile,
    read_queries,
    run_batch,
)
from sof_core.testing import make_engine


class Echo(BaseSkillModule):
    skill_name = "Echo"
    skill_description = "answers with the query, fails on queries containing 'boom'"
    output_keys = ["final_response"]
    max_execution_time = None

    def execute(self, uif: Any) -> Any:
        if "boom" in uif.input_query:
            raise RuntimeError("asked to fail")
        uif.final_response = f"echo: {uif.input_query}"
        return uif


class Gate(BaseSkillModule):
    """Blocks until ``Gate.expected`` runs are inside at once (proves concurrency)."""

    skill_name = "Gate"
    skill_description = "waits until enough runs are in flight together"
    output_keys = ["final_response"]
    max_execution_time = None
    barrier: threading.Barrier | None = None

    def execute(self, uif: Any) -> Any:
        assert Gate.barrier is not None
        Gate.barrier.wait(timeout=10)
        uif.final_response = uif.input_query
        return uif


def test_results_come_back_in_input_order_with_a_summary() -> None:
    engine = make_engine([Echo], default_plan=["Echo"])
    queries = [f"question {i}" for i in range(20)]

    batch = run_batch(engine, queries, concurrency=4)

    assert [item.query for item in batch.items] == queries
    assert [item.report.final_response for item in batch.items] == [f"echo: {q}" for q in queries]
    summary = batch.summary
    assert summary.count == 20 and summary.succeeded == 20 and summary.errors == 0
    assert summary.statuses == {"success": 20}
    assert 0 <= summary.p50 <= summary.p95 <= summary.max


def test_a_failing_query_is_an_error_on_its_item_and_the_batch_goes_on() -> None:
    engine = make_engine([Echo])
    batch = run_batch(engine, ["fine", "boom now", "also fine"], ["Echo"], concurrency=2)

    assert [item.status for item in batch.items] == ["success", "failure", "success"]
    assert "asked to fail" in batch.items[1].report.errors[0]
    assert batch.summary.errors == 1 and batch.summary.statuses == {"failure": 1, "success": 2}


def test_a_plan_that_cannot_run_is_reported_per_item_not_raised() -> None:
    engine = make_engine([Echo])
    batch = run_batch(engine, ["a", "b"], ["NoSuchSkill"])

    assert [item.status for item in batch.items] == ["invalid", "invalid"]
    assert batch.items[0].error_type == "PlanValidationError"
    assert "NoSuchSkill" in batch.items[0].error
    assert batch.summary.errors == 2


def test_queries_really_run_concurrently_up_to_the_limit() -> None:
    Gate.barrier = threading.Barrier(4)
    engine = make_engine([Gate])
    batch = run_batch(engine, [f"q{i}" for i in range(8)], ["Gate"], concurrency=4)
    assert batch.summary.succeeded == 8  # a barrier of 4 only opens with 4 runs in flight


@pytest.mark.parametrize("on_loop", [False, True])
def test_without_a_plan_each_query_gets_the_planners_plan(on_loop: bool) -> None:
    # no plan became [] and every query failed with "plan is empty"
    engine = make_engine([Echo], default_plan=["Echo"])
    queries = ["one", "two"]
    batch = (asyncio.run(arun_batch(engine, queries)) if on_loop
             else run_batch(engine, queries))
    assert [item.status for item in batch.items] == ["success", "success"]
    assert [item.plan for item in batch.items] == [["Echo"], ["Echo"]]
    assert [item.report.planning is not None for item in batch.items] == [True, True]


def test_a_goal_the_uif_already_holds_stops_the_batch_before_it_starts() -> None:
    from sof_core import GoalResolutionError

    with pytest.raises(GoalResolutionError, match="needs no skill"):
        run_batch(make_engine([Echo]), ["x"], goal=["input_query"])


def test_goal_resolves_the_plan_once_for_every_query() -> None:
    engine = make_engine([Echo])
    batch = run_batch(engine, ["x", "y"], goal=["final_response"])
    assert [item.report.plan for item in batch.items] == [["Echo"], ["Echo"]]


def test_progress_is_called_once_per_query_in_the_callers_thread() -> None:
    engine = make_engine([Echo])
    seen: list[tuple[int, int, str]] = []
    caller = threading.get_ident()

    def progress(done: int, total: int, item: BatchItem) -> None:
        assert threading.get_ident() == caller
        seen.append((done, total, item.status))

    run_batch(engine, ["a", "b", "boom"], ["Echo"], concurrency=3, progress=progress)
    assert [(d, t) for d, t, _ in seen] == [(1, 3), (2, 3), (3, 3)]
    assert sorted(s for _, _, s in seen) == ["failure", "success", "success"]


def test_a_progress_callback_that_raises_stops_the_batch() -> None:
    engine = make_engine([Echo])

    def progress(done: int, total: int, item: BatchItem) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_batch(engine, ["a"] * 50, ["Echo"], concurrency=1, progress=progress)


def test_async_batch_gives_the_same_results() -> None:
    engine = make_engine([Echo])
    seen: list[int] = []
    batch = asyncio.run(
        arun_batch(engine, ["a", "boom", "c"], ["Echo"], concurrency=2,
                   progress=lambda done, total, item: seen.append(done))
    )
    assert [item.status for item in batch.items] == ["success", "failure", "success"]
    assert batch.items[2].report.final_response == "echo: c"
    assert seen == [1, 2, 3]


def test_an_empty_batch_has_an_empty_summary() -> None:
    batch = run_batch(make_engine([Echo]), [], ["Echo"])
    assert batch.items == [] and batch.summary.count == 0 and batch.summary.p95 == 0.0


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "4"])
def test_concurrency_must_be_a_positive_whole_number(bad: Any) -> None:
    with pytest.raises(ConfigError, match="concurrency") as info:
        run_batch(make_engine([Echo]), ["a"], ["Echo"], concurrency=bad)
    assert info.value.key == "concurrency"


def test_queries_must_be_a_list_of_strings() -> None:
    with pytest.raises(ConfigError, match="not one string"):
        run_batch(make_engine([Echo]), "one query", ["Echo"])
    with pytest.raises(ConfigError, match="query #1 is int"):
        run_batch(make_engine([Echo]), ["ok", 3], ["Echo"])  # type: ignore[list-item]


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 95) == 95.0
    assert percentile([7.0], 95) == 7.0
    assert percentile([], 50) == 0.0


def test_summary_formats_for_people_and_as_json() -> None:
    engine = make_engine([Echo])
    summary = run_batch(engine, ["a", "boom"], ["Echo"]).summary
    text = format_summary(summary)
    assert "count 2 queries: 1 succeeded, 1 error (failure 1, success 1)" in text
    assert "p50" in text and "p95" in text and "queries/s" in text
    data = summary.to_dict()
    assert data["count"] == 2 and set(data["latency_ms"]) == {"p50", "p95", "max", "mean"}
    # read as a mapping too, as the JSON it prints (before: "not subscriptable")
    assert (summary["count"], summary["errors"]) == (2, 1)
    assert summary["latency_ms"]["p95"] == data["latency_ms"]["p95"]


def test_read_queries_skips_blank_lines_and_comments(tmp_path: Path) -> None:
    path = tmp_path / "queries.txt"
    path.write_text("# header\nWhat is SOF?\n\n  Who wrote SAM?  \n#skip\n", encoding="utf-8")
    assert read_queries(path) == ["What is SOF?", "Who wrote SAM?"]
    with pytest.raises(ConfigError, match="does not exist"):
        read_queries(tmp_path / "missing.txt")


def test_sof_run_file_runs_every_line_and_prints_a_summary(
    tmp_path: Path, dists: Any, sof_cli: Any
) -> None:
    dists.add("sof-echo-plugin", '''
        from sof_core import BaseSkillModule, hookimpl

        class Echo(BaseSkillModule):
            skill_name = "Echo"
            skill_description = "echoes the query"
            output_keys = ["final_response"]
            max_execution_time = None

            def execute(self, uif):
                uif.final_response = "echo: " + uif.input_query
                return uif

        @hookimpl
        def sof_register_skills():
            return [Echo]
    ''', entry_name="echo")
    queries = tmp_path / "queries.txt"
    queries.write_text("first question\n\nsecond question\n", encoding="utf-8")
    env = {**dists.env(), "SOF_CONFIG": str(tmp_path / "config.json"), "SOF_PLUGINS_ONLY": "echo"}

    text = sof_cli("run", "--plan", "Echo", "--file", str(queries), "--concurrency", "2", env=env)
    assert text.returncode == 0, text.stderr
    assert "echo: first question" in text.stdout and "echo: second question" in text.stdout
    assert "count 2 queries: 2 succeeded, 0 errors" in text.stdout

    data = json.loads(
        sof_cli("run", "--plan", "Echo", "--file", str(queries), "--json", env=env).stdout
    )
    assert data["summary"]["count"] == 2
    assert [i["final_response"] for i in data["items"]] == [
        "echo: first question", "echo: second question"
    ]


class SlowPlanner:
    """A planner that blocks as one behind HTTP does (an LLM answering in 0.3 s)."""

    name = "slow"

    def __init__(self) -> None:
        self.threads: set[str] = set()

    def plan(self, query: str, context: Any) -> list[str]:
        self.threads.add(threading.current_thread().name)
        threading.Event().wait(0.3)
        return ["Echo"]


def test_async_batch_asks_a_blocking_planner_off_the_event_loop() -> None:
    """Before: ``arun_batch`` asked the planner on the loop, so a planner that calls a model
    held the loop (every other task of the host, and the batch's other queries) each time."""
    planner = SlowPlanner()

    class Planners:
        @hookimpl
        def sof_register_planners(self) -> list[Any]:
            return [planner]

    engine = make_engine([Echo], plugins=[("planners", Planners())], planner="slow",
                         enable_plan_cache=False)
    gaps: list[float] = []

    async def main() -> Any:
        stop = asyncio.Event()

        async def tick() -> None:
            last = time.monotonic()
            while not stop.is_set():
                await asyncio.sleep(0.01)
                gaps.append(time.monotonic() - last)
                last = time.monotonic()

        ticker = asyncio.create_task(tick())
        try:
            return await arun_batch(engine, ["a", "b", "c"], concurrency=3)
        finally:
            stop.set()
            await ticker

    batch = asyncio.run(main())
    assert [item.status for item in batch.items] == ["success"] * 3
    assert [item.plan for item in batch.items] == [["Echo"]] * 3
    assert max(gaps) < 0.25  # hangs only: the loop was never held for a planner's answer
    assert threading.current_thread().name not in planner.threads
