"""``run_sandboxed`` with calls no pickler carries (closures over locks, objects holding
them): they run in a forked child with the same guarantees as a worker call (issue 11).
A plain lambda or closure travels to a worker by value (``sof_core.pack_call``), so the
calls here are wrapped in ``unpicklable``: a closure over a lock.

SAM's tools hand their security manager closures; before this, such a call could only run
in a thread, where a deadline abandons it without stopping it and no permission applies.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sof_core import (
    SkillCrashedError,
    SkillExecutionError,
    SkillResourceLimitError,
    SkillTimeoutError,
    ToolPermissionError,
    ToolRateLimitError,
    run_sandboxed,
)
from sof_core.security.ratelimit import reset_rate_limits

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="forking needs POSIX")


@pytest.fixture
def server() -> Iterator[tuple[int, list[int]]]:
    """A real TCP server on 127.0.0.1 that greets; its port and how many it accepted."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    accepted = [0]

    def serve() -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            accepted[0] += 1
            with conn:
                conn.sendall(b"hello")

    threading.Thread(target=serve, daemon=True).start()
    yield sock.getsockname()[1], accepted
    sock.close()


@pytest.fixture(autouse=True)
def _fresh_rate_limits() -> Iterator[None]:
    reset_rate_limits()
    yield
    reset_rate_limits()


def unpicklable(function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` inside a closure over a lock: no pickler carries it, so it is forked."""
    lock = threading.Lock()

    def call(*args: Any, **kwargs: Any) -> Any:
        with lock:
            return function(*args, **kwargs)

    return call


def connector(port: int) -> object:
    lock = threading.Lock()  # captured: the closure cannot be pickled

    def connect() -> bytes:
        with lock:
            return socket.create_connection(("127.0.0.1", port), timeout=2).recv(5)

    return connect


@pytest.mark.parametrize("mode", ["auto", "audit"])
def test_a_closure_without_network_cannot_reach_a_local_server(
    mode: str, server: tuple[int, list[int]]
) -> None:
    port, accepted = server
    with pytest.raises(ToolPermissionError, match="no 'network' permission"):
        run_sandboxed(connector(port), name="offline closure", network_isolation=mode)  # type: ignore[arg-type]
    assert accepted[0] == 0
    assert run_sandboxed(connector(port), name="online closure",  # type: ignore[arg-type]
                         permissions={"network"}) == b"hello"
    assert accepted[0] == 1


def test_a_closure_past_its_timeout_is_killed(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"

    def slow() -> None:
        pid_file.write_text(str(os.getpid()))
        time.sleep(6)

    started = time.monotonic()
    with pytest.raises(SkillTimeoutError, match=r"'slow closure'.*process was killed"):
        run_sandboxed(unpicklable(slow), name="slow closure", timeout=1.0, permissions={"filesystem"})
    assert time.monotonic() - started < 4.0
    pid = int(pid_file.read_text())
    assert pid != os.getpid()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_a_closure_keeps_its_other_permissions_refused(tmp_path: Path) -> None:
    target = tmp_path / "escaped"
    with pytest.raises(ToolPermissionError, match="no 'filesystem' permission"):
        run_sandboxed(unpicklable(lambda: target.write_text("x")), name="writer")
    assert not target.exists()
    with pytest.raises(ToolPermissionError, match="no 'subprocess' permission"):
        run_sandboxed(unpicklable(lambda: os.system("true")), name="shell")


def test_crashes_limits_and_exits_are_reported_and_the_host_lives() -> None:
    with pytest.raises(SkillCrashedError, match="exited with code 3"):
        run_sandboxed(unpicklable(lambda: os._exit(3)), name="exiter")
    with pytest.raises(SkillResourceLimitError, match="memory_mb"):
        run_sandboxed(unpicklable(lambda: bytearray(2 * 2**30)), name="hog", memory_mb=100)
    with pytest.raises(SkillResourceLimitError, match="cpu_seconds"):
        run_sandboxed(unpicklable(lambda: sum(iter(int, 1))), name="spinner", timeout=20, cpu_seconds=1)
    with pytest.raises(SkillExecutionError, match="raised SystemExit"):
        run_sandboxed(unpicklable(lambda: sys.exit(4)), name="quitter")  # not the host's exit
    with pytest.raises(ZeroDivisionError):
        run_sandboxed(unpicklable(lambda: 1 / 0), name="divider")
    assert run_sandboxed(unpicklable(lambda: os.getpid()), name="pid") != os.getpid()


def test_a_closures_output_is_cut_and_its_rate_counted() -> None:
    assert run_sandboxed(unpicklable(lambda: "x" * 500), name="chatty", max_output_bytes=10) == "x" * 10
    assert run_sandboxed(unpicklable(lambda: 1), name="limited", calls_per_minute=1) == 1
    with pytest.raises(ToolRateLimitError):
        run_sandboxed(unpicklable(lambda: 1), name="limited", calls_per_minute=1)


def test_concurrent_closures_do_not_wait_for_each_other() -> None:
    """Forked calls run side by side: quick calls answer while a slow one still sleeps (the
    fork itself is serialised, the calls are not)."""
    results: dict[str, float] = {}

    def call(label: str, seconds: float) -> None:
        started = time.monotonic()
        run_sandboxed(unpicklable(lambda: time.sleep(seconds)), name=label, timeout=10)
        results[label] = time.monotonic() - started

    threads = [threading.Thread(target=call, args=("slow", 2.0))]
    threads[0].start()
    time.sleep(0.1)
    for index in range(5):
        threads.append(threading.Thread(target=call, args=(f"quick{index}", 0.0)))
        threads[-1].start()
    for thread in threads:
        thread.join(15)
    assert results["slow"] >= 2.0
    assert all(results[f"quick{index}"] < 1.5 for index in range(5)), results


def test_an_explicit_namespace_that_cannot_be_made_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from sof_core.security import forked

    monkeypatch.setattr(forked, "_unshare_network", lambda: False)  # as on a locked-down host
    with pytest.raises(ToolPermissionError, match=r"network_isolation is 'unshare'.*\"audit\""):
        run_sandboxed(unpicklable(lambda: 1), name="strict", network_isolation="unshare")
    # "auto" falls back to the audit hook there, which still refuses sockets
    with pytest.raises(ToolPermissionError, match="no 'network' permission"):
        run_sandboxed(unpicklable(lambda: socket.create_connection(("127.0.0.1", 9), 1)), name="fallback")


def test_what_a_timed_out_closure_started_is_killed_with_it(tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild"

    def starts_a_program() -> None:
        import subprocess

        child = subprocess.Popen(["sleep", "30"])
        pid_file.write_text(str(child.pid))
        time.sleep(30)

    with pytest.raises(SkillTimeoutError):
        run_sandboxed(unpicklable(starts_a_program), name="parent", timeout=1.0,
                      permissions={"subprocess", "filesystem"})
    pid = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _running(pid):
        time.sleep(0.05)
    assert not _running(pid)


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return state != "Z"
