"""An engine used before a fork (a pre-forking server that warms up, then forks workers)
works in the child: the parent's pool threads, watchdog and hung calls are not there, and
the child starts its own instead of queueing for threads that do not exist."""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Any

import pytest

from sof_core import UIF

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


def test_a_forked_child_runs_plans_on_an_engine_its_parent_used(make_skill: Any) -> None:
    from sof_core.testing import make_engine

    release = threading.Event()
    wide = [make_skill(f"Fork{i}", ["input_query"], [f"f{i}"], max_execution_time=5.0)
            for i in range(4)]
    hang = make_skill("ForkHang", ["input_query"], ["h"],
                      body=lambda uif: release.wait(30), max_execution_time=0.1)
    engine = make_engine([*wide, hang], total_timeout=3)
    plan = [s.skill_name for s in wide]
    try:
        assert engine.execute_plan(plan, UIF(input_query="q")).status == "success"
        assert engine.execute_plan(["ForkHang"], UIF(input_query="q")).status == "timeout"
        assert engine.abandoned_calls() == {"ForkHang": 1}
        pid = os.fork()
        if pid == 0:  # the child: report through the exit code only
            code = 1
            try:
                wide_report = engine.execute_plan(plan, UIF(input_query="q"))
                one = engine.execute_plan(["Fork0"], UIF(input_query="q"))
                ok = (wide_report.status == "success" and one.status == "success"
                      and engine.abandoned_calls() == {})
                code = 0 if ok else 2
            finally:
                os._exit(code)
        deadline = time.monotonic() + 20  # a hang bound
        status = None
        while time.monotonic() < deadline:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            time.sleep(0.02)
        else:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail("the forked child did not finish its runs")
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        release.set()
