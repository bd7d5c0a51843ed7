"""An isolation worker answers only for the call it was sent, only from its own process, and
never outlives its host: a skill that forks and returns twice, a process it leaves behind
writing to the worker's connection, or a host killed in the middle of a stuck call."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from sof_core import UIF, BaseSkillModule, SkillResourceLimitError
from sof_core.testing import make_engine

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="worker processes and /proc (Linux)")


class Echo(BaseSkillModule):
    skill_name = "Echo"
    skill_description = "answers with the query it was given"
    required_inputs = ["input_query"]
    output_keys = ["final_response"]
    isolation = "process"
    max_execution_time = 20.0

    def execute(self, uif: UIF) -> UIF:
        uif.final_response = f"echo {uif.input_query}"
        return uif


class ForkAndReturn(BaseSkillModule):
    """Forks and forgets ``os._exit`` in the child: both processes return from the skill."""

    skill_name = "ForkAndReturn"
    skill_description = "forks; the child returns too"
    required_inputs = ["input_query"]
    output_keys = ["forked"]
    isolation = "process"
    max_execution_time = 20.0

    def execute(self, uif: UIF) -> UIF:
        child = os.fork()
        uif.intermediate_data["forked"] = "child" if child == 0 else "parent"
        return uif


class LeaveAWriter(BaseSkillModule):
    """Leaves a process behind that, half a second later, writes a forged answer to the
    worker's connection (its file descriptor is the worker's first argument)."""

    skill_name = "LeaveAWriter"
    skill_description = "leaves a process that forges a reply"
    required_inputs = ["input_query"]
    output_keys = ["left"]
    isolation = "process"
    max_execution_time = 20.0

    def execute(self, uif: UIF) -> UIF:
        import pickle
        import socket

        from sof_core.execution._worker import send_frame

        if os.fork() == 0:
            time.sleep(0.5)
            sock = socket.socket(fileno=int(sys.argv[1]))
            forged = pickle.dumps(("ok", {"data": {"final_response": "FORGED"}}))
            send_frame(sock, b"0123456789abcdef")
            send_frame(sock, forged)
            os._exit(0)
        uif.intermediate_data["left"] = True
        return uif


def test_a_skill_whose_forked_child_returns_too_leaves_later_calls_their_own_answers() -> None:
    # both processes answered on one socket: later calls got this call's reply, or
    # crashed on the garbled stream
    engine = make_engine([ForkAndReturn, Echo])
    first = engine.execute_plan(["ForkAndReturn"], UIF(input_query="q0"))
    assert first.status == "success" and first.uif.intermediate_data["forked"] == "parent"
    for n in range(8):
        report = engine.execute_plan(["Echo"], UIF(input_query=f"query {n}"))
        assert (report.status, report.final_response) == ("success", f"echo query {n}"), (
            report.errors)


def test_an_answer_for_another_call_is_not_applied_and_the_worker_is_replaced() -> None:
    engine = make_engine([LeaveAWriter, Echo], isolation_workers=1)
    assert engine.execute_plan(["LeaveAWriter"], UIF(input_query="q")).status == "success"
    time.sleep(1.0)  # the forged frames are waiting on the worker's connection now
    hit = engine.execute_plan(["Echo"], UIF(input_query="next"))
    (result,) = hit.results
    assert result.status == "failed" and result.error_type == "SkillCrashedError"
    assert "answered another call" in (result.error or "")
    assert hit.final_response != "FORGED"
    after = engine.execute_plan(["Echo"], UIF(input_query="after"))
    assert (after.status, after.final_response) == ("success", "echo after")


class Opens(BaseSkillModule):
    skill_name = "Opens"
    skill_description = "opens files when asked to"
    required_inputs = ["input_query"]
    output_keys = ["opened"]
    isolation = "process"
    max_execution_time = 20.0
    isolation_limits: Any = {"open_files": 3}

    def execute(self, uif: UIF) -> UIF:
        handles = []
        if uif.input_query == "open":
            handles = [open(os.devnull) for _ in range(8)]  # noqa: SIM115
        uif.intermediate_data["opened"] = len(handles)
        for handle in handles:
            handle.close()
        return uif


def test_a_tight_open_files_limit_blames_only_a_skill_that_opens_files(tmp_path: Path) -> None:
    # The worker imported part of SOF after the limit was set: every call crashed the
    # worker ("exited with code 1"). A fresh host, so no worker has imported it before.
    script = tmp_path / "host.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_isolation_worker_hardening import Opens
        from sof_core import UIF
        from sof_core.testing import make_engine
        engine = make_engine([Opens])
        for query in ("nothing", "open", "nothing"):
            report = engine.execute_plan(["Opens"], UIF(input_query=query))
            (result,) = report.results
            print(query, result.status, result.error_type, flush=True)
    """))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "nothing success None", "open failed SkillResourceLimitError",
        "nothing success None"]
    assert SkillResourceLimitError.__name__ in done.stdout


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def test_a_worker_and_what_its_skill_started_end_when_the_host_is_killed_mid_call(
        tmp_path: Path) -> None:
    # the worker (and a process its skill started) ran on until the stuck call returned:
    # never, for a real hang
    pids = tmp_path / "pids"
    script = tmp_path / "host.py"
    script.write_text(textwrap.dedent(f"""
        import os, signal, subprocess, threading, time
        from sof_core import BaseSkillModule, UIF
        from sof_core.testing import make_engine

        class Stuck(BaseSkillModule):
            skill_name = "Stuck"
            skill_description = "stuck in a call, with a child process"
            required_inputs = ["input_query"]
            output_keys = ["never"]
            isolation = "process"
            max_execution_time = 600.0

            def execute(self, uif):
                child = subprocess.Popen(["sleep", "1000"])
                with open({str(pids)!r} + ".partial", "w") as out:
                    out.write(f"{{os.getpid()}} {{child.pid}}")
                os.replace({str(pids)!r} + ".partial", {str(pids)!r})
                time.sleep(1000)
                return uif

        engine = make_engine([Stuck])
        threading.Thread(target=engine.execute_plan, args=(["Stuck"], UIF(input_query="q")),
                         daemon=True).start()
        while not os.path.exists({str(pids)!r}):
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGKILL)
    """))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == -signal.SIGKILL, done.stderr
    worker, child = map(int, pids.read_text().split())
    try:
        deadline = time.monotonic() + 10  # a bound for a hang, not a performance figure
        while (_alive(worker) or _alive(child)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(worker) and not _alive(child)
    finally:
        for pid in (worker, child):
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
