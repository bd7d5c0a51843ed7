"""An isolated step that never got a worker process before the run's total timeout is
reported as never started (``skipped``, ``SkillNotStartedError``), as a step that never got
a thread of the engine's step pool is (issue 10, item 2), not as timed out."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import process_isolation_skills as skills  # noqa: E402
from sof_test_support import wait_until  # noqa: E402

from sof_core import UIF  # noqa: E402
from sof_core.execution.isolation import isolation_pool  # noqa: E402
from sof_core.testing import make_engine  # noqa: E402


@pytest.mark.parametrize("executor", ["threads", "asyncio"])
def test_a_step_no_worker_took_is_reported_never_started(executor: str) -> None:
    size = isolation_pool().size
    if size + 1 > len(skills.NAPPERS):
        pytest.skip(f"the isolation pool has grown to {size} workers in this process")
    classes = skills.NAPPERS[: size + 1]  # one more than the workers: one waits throughout
    killed = isolation_pool().stats()["killed"]
    engine = make_engine(classes, executor=executor, total_timeout=1.5,
                         continue_on_skill_failure=True)
    started = time.monotonic()
    report = engine.execute_plan([c.skill_name for c in classes],
                                 UIF(input_query="q", intermediate_data={"nap": 5.0}))
    assert time.monotonic() - started < 4.0  # a hang bound: the naps take 5 s
    assert report.status == "timeout"
    by_status: dict[str, list[str]] = {}
    for result in report.results:
        by_status.setdefault(result.status, []).append(result.skill)
    assert len(by_status.get("skipped", [])) == 1, report.errors
    assert len(by_status.get("timeout", [])) == size, report.errors
    waited = report.result(by_status["skipped"][0])
    assert waited.error_type == "SkillNotStartedError"
    assert "never started" in (waited.error or "")
    assert "isolation" in (waited.error or "")
    # The naps that did start are killed at the run's end (their workers replaced).
    assert wait_until(lambda: isolation_pool().stats()["killed"] >= killed + size)
    engine.close()


def test_the_process_pool_takes_its_size_from_the_host_configuration(tmp_path: Path) -> None:
    # isolation_workers = 1 means one worker process: the pool used to start at 2 whatever
    # the setting, and only grew.
    code = textwrap.dedent("""
        import json, sys
        sys.path.insert(0, sys.argv[1])
        import process_isolation_skills as skills
        from sof_core import UIF, CoordinatorEngine
        from sof_core.execution.isolation import isolation_pool

        engine = CoordinatorEngine()
        engine.register_skills(skills.NAPPERS[:2], plugin_name="nappers")
        report = engine.execute_plan(["Napper0", "Napper1"],
                                     UIF(input_query="q", intermediate_data={"nap": 0.2}))
        stats = isolation_pool().stats()
        print(json.dumps([report.status, stats["size"], stats["started"]]))
    """)
    env = {**os.environ, "SOF_ISOLATION_WORKERS": "1", "SOF_CONFIG": str(tmp_path / "none.json")}
    done = subprocess.run([sys.executable, "-c", code, str(HERE)], capture_output=True,
                          text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == ["success", 1, 1]
