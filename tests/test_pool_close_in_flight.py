"""``engine.close()`` while runs are in flight: every run still ends, and nothing is left
running (docs/api.md: "a thread running a call ... is never waited for; the engine stays
usable").

``close`` used to queue one stop marker per thread while a job being submitted was between
the pool's open check and the queue: the threads took the markers and ended, and the job
waited for ever with no thread to run it (a run hung until ``total_timeout``, blaming a
healthy skill). A job submitted to a pool already closed raised instead.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from sof_core import UIF, BaseSkillModule
from sof_core.execution.threads import DaemonPool
from sof_core.testing import make_engine


def _pool_threads(name: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(f"{name}-")]


def test_a_job_submitted_to_a_closed_pool_still_runs_and_leaves_no_thread() -> None:
    pool = DaemonPool("closed-pool-probe", max_workers=2)
    ran = threading.Event()
    pool.submit(lambda: None)
    pool.close()
    pool.submit(ran.set)  # a run in flight that held the pool before the close
    assert ran.wait(5)
    deadline = time.monotonic() + 5
    while _pool_threads("closed-pool-probe") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not _pool_threads("closed-pool-probe")  # no idle thread kept for a closed pool


def test_jobs_queued_when_the_pool_closes_all_run() -> None:
    pool = DaemonPool("closing-pool-probe", max_workers=2)
    release = threading.Event()
    done: list[int] = []
    lock = threading.Lock()

    def job(i: int) -> None:
        release.wait(5)
        with lock:
            done.append(i)

    for i in range(6):  # two run, four wait in the queue
        pool.submit(job, i)
    pool.close()
    for i in range(6, 9):  # and three more arrive after the close
        pool.submit(job, i)
    release.set()
    deadline = time.monotonic() + 5
    while len(done) < 9 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sorted(done) == list(range(9))


class _Slow(BaseSkillModule):
    skill_name = "SlowPart"
    skill_description = "takes a moment"
    required_inputs = ["input_query"]
    output_keys = ["slow"]

    def execute(self, uif: UIF) -> UIF:
        time.sleep(0.02)
        uif.intermediate_data["slow"] = uif.input_query
        return uif


class _Quick(BaseSkillModule):
    skill_name = "QuickPart"
    skill_description = "beside it"
    required_inputs = ["input_query"]
    output_keys = ["quick"]

    def execute(self, uif: UIF) -> UIF:
        uif.intermediate_data["quick"] = uif.input_query
        return uif


def test_runs_in_flight_end_while_another_thread_keeps_closing_the_engine() -> None:
    engine = make_engine([_Slow, _Quick])  # one wide stage: a step goes to the step pool
    stop = threading.Event()
    wrong: list[Any] = []

    def runs(worker: int) -> None:
        i = 0
        while not stop.is_set():
            query = f"w{worker}-{i}"
            i += 1
            report = engine.execute_plan(["SlowPart", "QuickPart"], UIF(input_query=query))
            data = report.uif.intermediate_data
            if report.status != "success" or (data.get("slow"), data.get("quick")) != (
                    query, query):
                wrong.append((query, report.status, report.errors))

    def closer() -> None:
        while not stop.is_set():
            engine.close()
            time.sleep(0.002)

    threads = [threading.Thread(target=runs, args=(w,), daemon=True) for w in range(6)]
    threads.append(threading.Thread(target=closer, daemon=True))
    for thread in threads:
        thread.start()
    time.sleep(2)
    stop.set()
    deadline = time.monotonic() + 5  # a run takes ~20 ms: this bound is for a hang only
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    assert not [t for t in threads if t.is_alive()], engine.stats()["threads"]
    assert not wrong, wrong[:3]
    engine.close()
