"""Fixes for what a black-box probe of the ``dask`` executor found.

1. A skill raising ``SystemExit`` (``sys.exit()``) or ``KeyboardInterrupt`` on a worker
   stopped the in-process cluster's event loop: the run waited for the skill's timeout,
   then failed with ``RuntimeError: IOLoop is closed``, as did every later dask run in the
   process. Now it is that skill's failure, reported as the local executors report it, and
   a cluster whose loop died anyway is started afresh by the next run.
2. A scheduler address whose port accepts the TCP connection but never answers (a
   black-holed port) made the run wait for ``total_timeout``: dask's connection handshake
   is not bounded by ``Client(timeout=...)``. Now it fails with ``DaskUnavailableError``
   naming the address within about ``connect_timeout``.
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sof_dask import plugin
from sof_dask.executor import ENV_SCHEDULER

from sof_core import UIF, BaseSkillModule
from sof_core.testing import make_engine


class Exits(BaseSkillModule):
    skill_name = "Exits"
    skill_description = "calls sys.exit(3)"
    output_keys = ["f"]
    max_execution_time = 4.0  # a hang guard: before the fix the run waited this long

    def execute(self, uif: UIF) -> UIF:
        sys.exit(3)


class Interrupts(BaseSkillModule):
    skill_name = "Interrupts"
    skill_description = "raises KeyboardInterrupt"
    output_keys = ["g"]
    max_execution_time = 4.0

    def execute(self, uif: UIF) -> UIF:
        raise KeyboardInterrupt


class Doubles(BaseSkillModule):
    skill_name = "Doubles"
    skill_description = "doubles the query"
    output_keys = ["h"]
    max_execution_time = 4.0

    def execute(self, uif: UIF) -> UIF:
        uif.intermediate_data["h"] = uif.input_query * 2
        return uif


def local_engine(executor: str) -> Any:
    return make_engine([Exits, Interrupts, Doubles], plugins=[("dask", plugin)],
                       executor=executor, total_timeout=10.0)


@pytest.fixture()
def no_scheduler(monkeypatch: pytest.MonkeyPatch) -> None:
    """The executor's own LocalCluster (processes=False: workers share its event loop)."""
    monkeypatch.delenv(ENV_SCHEDULER, raising=False)


def doubles_on_dask(engine: Any) -> None:
    report = engine.execute_plan(["Doubles"], UIF(input_query="hi"))
    assert report.status == "success", report.errors
    assert report.uif.intermediate_data["h"] == "hihi"


def test_sys_exit_in_a_skill_fails_that_skill_as_locally_and_dask_stays_usable(
    no_scheduler: None,
) -> None:
    engine = local_engine("dask")
    doubles_on_dask(engine)
    started = time.monotonic()
    remote = engine.execute_plan(["Exits"], UIF(input_query="hi"))
    took = time.monotonic() - started
    local = local_engine("threads").execute_plan(["Exits"], UIF(input_query="hi"))
    assert remote.status == local.status == "failure"
    assert remote.errors == local.errors == ["Exits: SystemExit: 3"]
    (result,) = remote.results
    assert (result.status, result.error_type, result.attempts) == ("failed", "SystemExit", 1)
    assert result.location is not None and result.location.startswith(__file__)
    assert took < 3.0, f"took {took:.1f} s"
    doubles_on_dask(engine)
    doubles_on_dask(local_engine("dask"))


def test_keyboard_interrupt_in_a_skill_is_reported_then_raised_as_locally(
    no_scheduler: None,
) -> None:
    reports = {}
    for executor in ("threads", "dask"):
        engine = local_engine(executor)
        started = time.monotonic()
        with pytest.raises(KeyboardInterrupt) as raised:
            engine.execute_plan(["Interrupts"], UIF(input_query="hi"))
        assert time.monotonic() - started < 3.0
        reports[executor] = report = raised.value.sof_report  # type: ignore[attr-defined]
        (result,) = report.results
        assert (result.skill, result.status, result.error_type) == (
            "Interrupts", "failed", "KeyboardInterrupt")
    assert reports["dask"].errors == reports["threads"].errors
    doubles_on_dask(local_engine("dask"))


def test_a_local_cluster_whose_event_loop_died_is_started_afresh(no_scheduler: None) -> None:
    """However the cluster's loop was stopped (here: a task other than SOF's raising
    SystemExit on the shared client), the next run starts a new LocalCluster instead of
    failing every run with 'IOLoop is closed'."""
    engine = local_engine("dask")
    doubles_on_dask(engine)
    client = engine.executor("dask").client({})
    client.submit(sys.exit, 3, pure=False)
    loop = client.loop.asyncio_loop
    deadline = time.monotonic() + 5.0
    while not loop.is_closed() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert loop.is_closed()
    started = time.monotonic()
    doubles_on_dask(engine)
    doubles_on_dask(local_engine("dask"))
    assert time.monotonic() - started < 8.0
    assert engine.executor("dask").client({}) is not client


class Sleeps(BaseSkillModule):
    skill_name = "Sleeps"
    skill_description = "takes a while"
    output_keys = ["s"]
    max_execution_time = 8.0

    def execute(self, uif: UIF) -> UIF:
        time.sleep(5.0)  # longer than the test waits: it must not finish first
        uif.intermediate_data["s"] = 1
        return uif


def test_a_cluster_that_stops_under_a_running_skill_fails_it_at_once(no_scheduler: None) -> None:
    """Before: the run waited for the skill's timeout (8 s here), then 'IOLoop is closed'."""
    engine = make_engine([Sleeps, Doubles], plugins=[("dask", plugin)], executor="dask",
                         total_timeout=12.0)
    doubles_on_dask(engine)
    client = engine.executor("dask").client({})
    killer = threading.Timer(0.3, lambda: client.submit(sys.exit, 3, pure=False))
    killer.start()
    started = time.monotonic()
    report = engine.execute_plan(["Sleeps"], UIF(input_query="hi"))
    took = time.monotonic() - started
    killer.join()
    (result,) = report.results
    assert (result.status, result.error_type) == ("failed", "DaskUnavailableError"), \
        report.errors
    assert result.error is not None
    assert result.error.startswith("the Dask client stopped while 'Sleeps' ran"), result.error
    assert took < 4.0, f"took {took:.1f} s"
    doubles_on_dask(engine)


class RaisesTimeout(BaseSkillModule):
    skill_name = "RaisesTimeout"
    skill_description = "its backend timed out"
    output_keys = ["t"]
    max_execution_time = 8.0

    def execute(self, uif: UIF) -> UIF:
        raise TimeoutError("backend slow")


def test_a_timeout_error_the_skill_raises_is_its_failure_not_a_skill_timeout(
    no_scheduler: None,
) -> None:
    """Before: any TimeoutError out of the task was taken for the step's own deadline."""
    reports = [
        make_engine([RaisesTimeout], plugins=[("dask", plugin)], executor=executor)
        .execute_plan(["RaisesTimeout"], UIF(input_query="hi"))
        for executor in ("threads", "dask")
    ]
    for report in reports:
        (result,) = report.results
        assert (result.status, result.error_type, result.error) == (
            "failed", "TimeoutError", "backend slow"), report.errors


@pytest.fixture()
def black_hole() -> Iterator[str]:
    """A port that accepts TCP connections and never says a word."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(50)
    accepted: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            accepted.append(conn)

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"tcp://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        listener.close()
        for conn in accepted:
            conn.close()


def test_a_scheduler_that_accepts_but_never_answers_fails_within_connect_timeout(
    black_hole: str,
) -> None:
    engine = make_engine([Doubles], plugins=[("dask", plugin)], executor="dask",
                         total_timeout=6.0,  # a hang guard: before the fix, the run's end
                         plugin_settings={"dask": {"scheduler": black_hole,
                                                   "connect_timeout": 1.0}})
    for _ in range(2):  # the next run tries again, and fails as soon
        started = time.monotonic()
        report = engine.execute_plan(["Doubles"], UIF(input_query="hi"))
        took = time.monotonic() - started
        assert report.status == "failure"
        assert len(report.errors) == 1 and "DaskUnavailableError" in report.errors[0], \
            report.errors
        assert black_hole in report.errors[0]
        assert "did not answer" in report.errors[0]
        assert took < 3.0, f"took {took:.1f} s with connect_timeout 1"


def test_concurrent_runs_against_a_silent_scheduler_share_one_bounded_attempt(
    black_hole: str,
) -> None:
    from sof_core import run_batch

    engine = make_engine([Doubles], plugins=[("dask", plugin)], executor="dask",
                         total_timeout=6.0,
                         plugin_settings={"dask": {"scheduler": black_hole,
                                                   "connect_timeout": 1.0}})
    started = time.monotonic()
    done = run_batch(engine, [f"q{i}" for i in range(6)], ["Doubles"], concurrency=6)
    assert time.monotonic() - started < 4.0
    for item in done.items:
        assert item.report is not None and item.report.status == "failure"
        assert len(item.report.errors) == 1, item.report.errors
        assert "DaskUnavailableError" in item.report.errors[0] and \
            black_hole in item.report.errors[0], item.report.errors
