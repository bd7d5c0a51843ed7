"""Idle isolation workers are retired after ``isolation_idle_timeout`` (default 300 s): the
pool shrinks back after a burst and starts workers again on demand; a busy worker is never
retired, and ``None`` keeps idle workers for good."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import process_isolation_skills as skills  # noqa: E402
from sof_test_support import wait_until  # noqa: E402
from test_process_isolation import dead  # noqa: E402

from sof_core import UIF, BaseSkillModule, ConfigError, SOFConfig, isolation_pool  # noqa: E402
from sof_core.execution.isolation import IsolationPool  # noqa: E402
from sof_core.testing import make_engine  # noqa: E402

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="isolation needs POSIX")


class SlowIsolated(BaseSkillModule):
    skill_name = "SlowIsolated"
    skill_description = "sleeps a little in its worker, longer than the idle timeout"
    output_keys = ["slept_in"]
    isolation = "process"
    max_execution_time = 20.0

    def execute(self, uif: UIF) -> UIF:
        import os

        time.sleep(0.8)
        uif.intermediate_data["slept_in"] = os.getpid()
        return uif


def where(engine: Any) -> int:
    report = engine.execute_plan(["Where"], UIF(input_query="q"))
    assert report.status == "success", report.errors
    return int(report.uif.intermediate_data["pid"])


def test_the_default_keeps_idle_workers_for_five_minutes() -> None:
    assert SOFConfig().isolation_idle_timeout == 300.0
    assert IsolationPool().idle_timeout == 300.0
    engine = make_engine([skills.Where])
    pid = where(engine)

    time.sleep(0.3)

    assert not dead(pid)
    assert where(engine) == pid  # the same warm worker answers again


def test_a_worker_idle_past_the_timeout_is_retired_and_a_new_one_started_on_demand() -> None:
    engine = make_engine([skills.Where], isolation_idle_timeout=0.3)
    retired = isolation_pool().stats()["retired"]
    pid = where(engine)

    assert wait_until(lambda: dead(pid), 10.0), "the idle worker was not retired"
    assert isolation_pool().stats()["retired"] > retired
    again = where(engine)  # the pool starts a worker again: nothing is lost
    assert again != pid and not dead(again)


def test_a_busy_worker_is_never_retired() -> None:
    engine = make_engine([SlowIsolated], isolation_idle_timeout=0.2)

    report = engine.execute_plan(["SlowIsolated"], UIF(input_query="q"))

    assert report.status == "success", report.errors
    assert wait_until(lambda: dead(report.uif.intermediate_data["slept_in"]), 10.0)


def test_a_pool_started_ahead_shrinks_back_and_none_keeps_its_workers() -> None:
    shrinking = IsolationPool(size=2, idle_timeout=0.2)
    keeping = IsolationPool(size=1, idle_timeout=None)
    try:
        shrinking.start()
        keeping.start()
        assert shrinking.stats()["workers"] == 2
        assert wait_until(lambda: shrinking.stats()["workers"] == 0, 10.0)
        assert shrinking.stats()["retired"] == 2
        time.sleep(0.3)
        assert keeping.stats()["workers"] == 1 and keeping.stats()["retired"] == 0
    finally:
        shrinking.close()
        keeping.close()


@pytest.mark.parametrize("value", [0, -1, math.inf, 1e300])
def test_the_idle_timeout_is_a_positive_finite_number(value: float) -> None:
    with pytest.raises(ConfigError) as caught:
        SOFConfig(isolation_idle_timeout=value)
    assert "isolation_idle_timeout" in str(caught.value)
    with pytest.raises(ValueError, match="idle_timeout"):
        IsolationPool(idle_timeout=value)


def test_the_process_pool_takes_the_host_configuration(tmp_path: Path) -> None:
    # the process's pool, like its size, takes the host's value (SOF_ISOLATION_IDLE_TIMEOUT)
    env = {**os.environ, "SOF_ISOLATION_IDLE_TIMEOUT": "45", "SOF_ISOLATION_WORKERS": "3",
           "SOF_CONFIG": str(tmp_path / "none.json")}
    shown = subprocess.run(
        [sys.executable, "-c", "from sof_core import isolation_pool as p; "
         "print(p().idle_timeout, p().size)"],
        env=env, capture_output=True, text=True, timeout=60, check=True)
    assert shown.stdout.split() == ["45.0", "3"]


def test_a_released_worker_takes_its_calls_timeout_and_a_replacement_the_pools(
        tmp_path: Path) -> None:
    # "A worker's timeout is the one of the engine whose call it last ran; one started ahead
    # or in place of a killed worker takes the host's."
    from sof_core import SkillTimeoutError

    engine = make_engine([skills.Where, skills.Sleeper], isolation_idle_timeout=0.2)
    plan = engine.compile(["Where", "Sleeper"]).steps
    released = IsolationPool(size=1, idle_timeout=None)
    replaced = IsolationPool(size=1, idle_timeout=None)
    try:
        released.call(plan["Where"], UIF(input_query="q"), time.monotonic() + 20)
        assert wait_until(lambda: released.stats()["retired"] == 1, 10.0)
        assert released.stats()["workers"] == 0

        uif = UIF(input_query="q", intermediate_data={"pid_file": str(tmp_path / "pid")})
        with pytest.raises(SkillTimeoutError):
            replaced.call(plan["Sleeper"], uif, time.monotonic() + 0.5)
        time.sleep(0.4)  # twice the engine's idle timeout: the replacement stays
        stats = replaced.stats()
        assert (stats["killed"], stats["replaced"], stats["retired"]) == (1, 1, 0)
        assert stats["workers"] == 1
    finally:
        released.close()
        replaced.close()


def test_the_process_pool_follows_the_host_configuration_as_it_changes(
        tmp_path: Path) -> None:
    """One process, the settings changed between uses (a test suite's monkeypatch.setenv, a
    host's `sof config set`): the pool takes the size and idle timeout as they are now, and
    a smaller size retires idle workers beyond it."""
    code = textwrap.dedent("""
        import json, os, time
        from sof_core import isolation_pool
        os.environ["SOF_ISOLATION_WORKERS"] = "1"
        pool = isolation_pool(); pool.start()
        first = pool.stats()
        os.environ["SOF_ISOLATION_WORKERS"] = "2"
        os.environ["SOF_ISOLATION_IDLE_TIMEOUT"] = "0.3"
        pool = isolation_pool(); pool.start()
        second = pool.stats()
        os.environ["SOF_ISOLATION_WORKERS"] = "1"
        third = isolation_pool().stats()
        end = time.monotonic() + 10
        while isolation_pool().stats()["workers"] and time.monotonic() < end:
            time.sleep(0.05)
        print(json.dumps([[s["size"], s["workers"]] for s in (first, second, third)]
                         + [isolation_pool().stats()["workers"], pool.idle_timeout]))
    """)
    env = {**os.environ, "SOF_CONFIG": str(tmp_path / "none.json")}
    env.pop("SOF_ISOLATION_WORKERS", None)
    env.pop("SOF_ISOLATION_IDLE_TIMEOUT", None)
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    sizes = json.loads(done.stdout.strip().splitlines()[-1])
    assert sizes[:3] == [[1, 1], [2, 2], [1, 1]]  # the third: one idle worker retired
    assert sizes[3] == 0 and sizes[4] == 0.3  # the rest retired after the new idle timeout


def test_the_pool_does_not_read_the_host_configuration_on_every_call(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Following the host's settings must not cost every isolated call a config read (a stat
    and the environment, tens of microseconds): a variable that changed is seen at once, the
    file within HOST_CONFIG_RECHECK."""
    from sof_core.execution import isolation

    isolation_pool()
    reads: list[int] = []
    real = isolation._configured
    monkeypatch.setattr(isolation, "_configured", lambda: reads.append(1) or real())
    for _ in range(100):
        isolation_pool()
    assert len(reads) <= 1
    monkeypatch.setenv("SOF_ISOLATION_WORKERS", "3")
    assert isolation_pool().size == 3 and len(reads) <= 2
