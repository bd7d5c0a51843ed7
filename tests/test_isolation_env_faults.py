"""Isolation workers start and answer whatever state the host's process is in: standard
descriptors it closed (a daemon, `sof run ... 2>&-`) or a working directory that was deleted
under it (a deploy replaced the release folder). Each host is a Python process of its own,
since both states are process-wide."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sof_core import UIF, BaseSkillModule, SkillCrashedError
from sof_core.execution.isolation import IsolationPool
from sof_core.testing import make_engine

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="worker processes, /proc and /dev/null (Linux)")

#: A host script: ``CLOSE`` names the descriptors it closes before its first isolated call;
#: it writes what its skill saw in the worker to ``sys.argv[1]`` (opened before the closes).
_HOST = textwrap.dedent(
    """
    import json, os, stat, sys
    from sof_core import UIF, BaseSkillModule
    from sof_core.testing import make_engine

    def kinds():
        found = {}
        for fd in (0, 1, 2):
            try:
                seen = os.fstat(fd)
            except OSError:
                found[fd] = "closed"
                continue
            null = os.stat(os.devnull)
            found[fd] = ("socket" if stat.S_ISSOCK(seen.st_mode) else
                         "null" if (seen.st_dev, seen.st_ino) == (null.st_dev, null.st_ino)
                         else "open")
        return found

    class Where(BaseSkillModule):
        skill_name = "Where"
        skill_description = "says where its worker runs and what its descriptors are"
        required_inputs = ["input_query"]
        output_keys = ["where"]
        isolation = "process"
        max_execution_time = 20.0

        def execute(self, uif):
            print("to stdout", flush=True)
            print("to stderr", file=sys.stderr, flush=True)
            uif.intermediate_data["where"] = {
                "pid": os.getpid(), "cwd": os.getcwd(), "std": kinds(),
                "connection": int(sys.argv[1]), "path": sys.path,
            }
            return uif

    out = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    for fd in CLOSE:
        os.close(fd)
        setattr(sys, ("stdin", "stdout", "stderr")[fd], None)
    engine = make_engine([Where])
    seen = []
    for _ in range(2):
        report = engine.execute_plan(["Where"], UIF(input_query="q"))
        seen.append([report.status, [str(e) for e in report.errors],
                     report.uif.intermediate_data.get("where")])
    os.write(out, json.dumps({"calls": seen, "host_std": kinds()}).encode())
    """
)


def _host(tmp_path: Path, close: tuple[int, ...], prelude: str = "",
          cwd: Path | None = None) -> dict[str, object]:
    """Run the host script (as ``python -c``: '' on its import path) and return its record."""
    record = tmp_path / "record.json"
    code = f"CLOSE = {close!r}\n{prelude}\n{_HOST}"
    done = subprocess.run([sys.executable, "-c", code, str(record)], capture_output=True,
                          text=True, timeout=120, cwd=cwd, check=False)
    assert done.returncode == 0, done.stderr
    assert "Fatal Python error" not in done.stderr, done.stderr
    result: dict[str, object] = json.loads(record.read_text())
    return result


@pytest.mark.parametrize("close", [(2,), (1,), (0,), (1, 2), (0, 1, 2)])
def test_workers_start_when_the_host_closed_standard_descriptors(
        tmp_path: Path, close: tuple[int, ...]) -> None:
    # With fd 2 closed, the worker's end of its connection took fd 2 and became its stderr:
    # every isolated call failed "exited with code 1 while starting".
    record = _host(tmp_path, close)
    calls = record["calls"]
    assert isinstance(calls, list)
    for status, errors, where in calls:
        assert (status, errors) == ("success", [])
        # the worker's own standard descriptors are open (/dev/null for those the host
        # closed), none of them its connection, which a skill's print would corrupt
        assert where["std"] == {str(fd): "null" if fd in close else "open" for fd in (1, 2)
                                } | {"0": "null"}  # stdin: always /dev/null
        assert where["connection"] > 2
    # the host's end of the connection is not on a descriptor the host closed either: what
    # it (or a C library) writes to its stderr must not reach a worker
    assert all(record["host_std"][str(fd)] == "closed" for fd in close)


def test_workers_start_when_the_host_stderr_is_not_inherited(tmp_path: Path) -> None:
    # `sof run ... 2>&-` while skills run: stdout is duplicated (os.dup, close-on-exec) into
    # the free descriptor 2, so the worker started with no stderr at all and exited 1
    # (faulthandler needs one).
    record = _host(tmp_path, (), "import os, sys; os.close(2); os.dup(1); sys.stderr = None")
    calls = record["calls"]
    assert isinstance(calls, list)
    for status, errors, where in calls:
        assert (status, errors) == ("success", [])
        assert where["std"] == {"0": "null", "1": "open", "2": "null"}


def test_a_worker_started_without_standard_descriptors_answers(tmp_path: Path) -> None:
    # Whoever starts it: a worker with no stderr died in faulthandler.enable().
    import socket

    from sof_core.execution._worker import recv_frame

    host, child = socket.socketpair()
    with host, child:
        worker = subprocess.Popen(
            [sys.executable, "-m", "sof_core.execution._worker", str(child.fileno())],
            pass_fds=(child.fileno(),), preexec_fn=lambda: [os.close(fd) for fd in (0, 1, 2)])
        try:
            child.close()
            host.settimeout(60)
            assert pickle.loads(recv_frame(host))[0] == "ready"
        finally:
            worker.kill()
            worker.wait()


def test_workers_start_when_the_host_working_directory_was_deleted(tmp_path: Path) -> None:
    # The worker inherited the deleted directory and its interpreter died starting ("Fatal
    # Python error: error evaluating path"); with '' on the host's import path, working out
    # the worker's PYTHONPATH raised too, reported as the interpreter not being found.
    gone = tmp_path / "gone"
    prelude = f"import os; os.chdir({str(gone)!r}); os.rmdir({str(gone)!r})"
    gone.mkdir()
    record = _host(tmp_path, (), prelude)
    calls = record["calls"]
    assert isinstance(calls, list)
    for status, errors, where in calls:
        assert (status, errors) == ("success", [])
        assert where["cwd"] == "/"  # an existing folder, not the root as a stand-in for ''
        assert "" not in where["path"] and "/" not in where["path"]


def test_workers_keep_the_host_working_directory_while_it_exists(tmp_path: Path) -> None:
    record = _host(tmp_path, (), cwd=tmp_path)
    calls = record["calls"]
    assert isinstance(calls, list)
    for status, errors, where in calls:
        assert (status, errors) == ("success", [])
        assert where["cwd"] == str(tmp_path)


class _Echo(BaseSkillModule):
    skill_name = "Echo"
    skill_description = "answers with its query"
    required_inputs = ["input_query"]
    output_keys = ["final_response"]
    isolation = "process"
    max_execution_time = 20.0

    def execute(self, uif: UIF) -> UIF:
        uif.final_response = uif.input_query
        return uif


def test_a_worker_that_cannot_start_is_reported_with_the_command_that_failed() -> None:
    # The message named `python -m sof_core.execution._worker` whatever failed: a missing
    # sandbox program, or (with '' on the import path and the working directory deleted)
    # the host's own os.getcwd().
    step = make_engine([_Echo]).compile(["Echo"]).steps["Echo"]
    pool = IsolationPool(1, prefix=("/nonexistent/sandbox-program",))
    try:
        with pytest.raises(SkillCrashedError) as raised:
            pool.call(step, UIF(input_query="q"))
    finally:
        pool.close()
    message = str(raised.value)
    assert (f"could not start an isolation worker (/nonexistent/sandbox-program "
            f"{sys.executable} -m sof_core.execution._worker): ") in message
    assert "No such file or directory: '/nonexistent/sandbox-program'" in message
