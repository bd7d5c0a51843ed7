"""``sof_sam.security``: SAM's tool security names over SOF's framework, enforcing what SAM's
only declared (issue 11): a call over its policy's time is stopped, a tool error is an error
result, a tool without network access cannot connect, SOF's tool policy applies."""

from __future__ import annotations

import dataclasses
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import sam_security_calls as calls  # noqa: E402
import sof_sam  # noqa: E402
from sof_sam.security import (  # noqa: E402
    ExecutionResult,
    RateLimitConfig,
    RateLimiter,
    SecureSandbox,
    SecurityPolicy,
    ToolSecurityManager,
    get_security_manager,
)

from sof_core.config import reset_sof_config_managers  # noqa: E402

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="sandboxes need POSIX")


@pytest.fixture
def port() -> Iterator[tuple[int, list[int]]]:
    """A real local TCP server that greets; yields its port and a one-item accept count."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    accepted = [0]

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            accepted[0] += 1
            with conn:
                conn.sendall(b"hello")

    threading.Thread(target=serve, daemon=True).start()
    yield server.getsockname()[1], accepted
    server.close()


def test_sams_names_fields_and_defaults() -> None:
    assert sof_sam.SecurityPolicy is SecurityPolicy
    assert sof_sam.ToolSecurityManager is ToolSecurityManager
    assert sof_sam.get_security_manager is get_security_manager
    assert sof_sam.RateLimitConfig is RateLimitConfig
    policy = SecurityPolicy()
    assert dataclasses.asdict(policy) == {
        "allow_network_access": False, "allow_file_system_access": False,
        "max_execution_time": 30.0, "max_memory_usage": 100 * 1024 * 1024,
        "allowed_commands": None, "blocked_commands": None, "sandbox_enabled": True,
    }
    assert dataclasses.asdict(RateLimitConfig()) == {
        "max_requests_per_minute": 60, "max_requests_per_hour": 1000, "cooldown_period": 1.0,
    }
    result = ExecutionResult(success=True, output=1)
    assert (result.error_message, result.execution_time, result.security_violations,
            result.rate_limited) == (None, 0.0, None, False)
    assert get_security_manager() is get_security_manager()


def test_a_6s_call_under_a_5s_policy_is_stopped() -> None:
    manager = ToolSecurityManager()
    assert manager._tool_policies["CalculatorTool"].max_execution_time == 5.0  # SAM's default
    started = time.monotonic()
    result = manager.execute_tool_safely("CalculatorTool", calls.sleep_then, 6.0)
    elapsed = time.monotonic() - started
    assert not result.success
    assert result.output is None
    assert "did not finish within 5.0s; its process was killed" in (result.error_message or "")
    assert elapsed < 5.9


def test_a_tool_error_is_an_error_result_not_a_success() -> None:
    result = ToolSecurityManager().execute_tool_safely("CalculatorTool", calls.fail)
    assert result.success is False
    assert result.output is None
    assert result.error_message == "ValueError: the tool broke"
    ok = ToolSecurityManager().execute_tool_safely("CalculatorTool", calls.sleep_then, 0, "x")
    assert (ok.success, ok.output, ok.error_message) == (True, "x", None)


def test_rate_limits_refuse_calls_without_running_them() -> None:
    manager = ToolSecurityManager()
    manager.register_tool_policy("Limited", SecurityPolicy(max_execution_time=5))
    manager._rate_limiters["Limited"] = RateLimiter(RateLimitConfig(max_requests_per_minute=2))
    assert manager.execute_tool_safely("Limited", calls.sleep_then, 0).success
    assert manager.execute_tool_safely("Limited", calls.sleep_then, 0).success
    refused = manager.execute_tool_safely("Limited", calls.sleep_then, 0)
    assert (refused.success, refused.rate_limited, refused.error_message) == (
        False, True, "Rate limit exceeded")
    assert manager.get_security_stats()["Limited"]["requests_last_minute"] == 2


def test_without_network_access_a_tool_cannot_connect(port: tuple[int, list[int]]) -> None:
    number, accepted = port
    manager = ToolSecurityManager()
    refused = manager.execute_tool_safely("CalculatorTool", calls.greet, number)
    assert not refused.success
    assert "no 'network' permission" in (refused.error_message or "")
    assert refused.security_violations
    assert accepted[0] == 0
    allowed = manager.execute_tool_safely("AgentZeroWebBrowserTool", calls.greet, number)
    assert (allowed.success, allowed.output) == (True, "hello")
    assert accepted[0] == 1


def test_without_file_system_access_a_tool_cannot_write(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    manager = ToolSecurityManager()
    refused = manager.execute_tool_safely("CalculatorTool", calls.write, str(target))
    assert not refused.success and not target.exists()
    manager.register_tool_policy("Writer", SecurityPolicy(allow_file_system_access=True))
    assert manager.execute_tool_safely("Writer", calls.write, str(target)).success
    assert target.read_text() == "escaped"


def test_sofs_tool_policy_applies(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOF_TOOL_POLICY", '{"deny_permissions": ["network"]}')
    reset_sof_config_managers()
    try:
        result = ToolSecurityManager().execute_tool_safely(
            "AgentZeroWebBrowserTool", calls.sleep_then, 0)
    finally:
        monkeypatch.delenv("SOF_TOOL_POLICY")
        reset_sof_config_managers()
    assert not result.success
    assert "tool_policy.deny_permissions entry 'network'" in (result.error_message or "")


class SamStyleTool:
    """Like SAM's CalculatorTool: holds the manager and a lock (so it cannot be pickled) and
    hands ``execute_tool_safely`` a closure over ``self``."""

    def __init__(self, name: str, policy: SecurityPolicy) -> None:
        self._lock = threading.Lock()
        self.name = name
        self._security_manager = ToolSecurityManager()
        self._security_manager.register_tool_policy(name, policy)

    def run(self, job: Callable[[], Any]) -> ExecutionResult:
        def tool_func() -> Any:
            with self._lock:
                return job()

        return self._security_manager.execute_tool_safely(self.name, tool_func)


def test_sams_closures_are_sandboxed_and_stopped_too(
    tmp_path: Path, port: tuple[int, list[int]]
) -> None:
    """SAM's tools pass closures, which cannot be pickled to a worker: they run in a forked
    child under the same policy, so they are killed at the deadline and kept offline (a
    thread would be neither)."""
    tool = SamStyleTool("Closure", SecurityPolicy(max_execution_time=1.0,
                                                  allow_file_system_access=True))
    assert tool.run(lambda: 6 * 7).output == 42
    pid_file = tmp_path / "pid"

    def sleeper() -> None:
        pid_file.write_text(str(os.getpid()))
        time.sleep(6)

    started = time.monotonic()
    late = tool.run(sleeper)
    assert not late.success and "process was killed" in (late.error_message or "")
    assert time.monotonic() - started < 4.0
    pid = int(pid_file.read_text())
    assert pid != os.getpid()
    with pytest.raises(ProcessLookupError):  # killed and reaped, not left running
        os.kill(pid, 0)

    number, accepted = port
    offline = tool.run(lambda: socket.create_connection(("127.0.0.1", number), 2).recv(5))
    assert not offline.success
    assert "no 'network' permission" in (offline.error_message or "")
    assert accepted[0] == 0
    online = SamStyleTool("Online", SecurityPolicy(allow_network_access=True))
    assert online.run(lambda: socket.create_connection(("127.0.0.1", number), 2).recv(5)
                      ).output == b"hello"
    assert accepted[0] == 1


def test_secure_sandbox_runs_checked_code_in_a_process() -> None:
    sandbox = SecureSandbox(SecurityPolicy(max_execution_time=2.0))
    ok = sandbox.execute_python_code("result = math.sqrt(16) + x", {"x": 1})
    assert (ok.success, ok.output) == (True, 5.0)
    for code, violation in [
        ("import os", "Dangerous import detected: os"),
        ("().__class__.__bases__", "Access to dunder attribute not allowed: __class__"),
        ("eval('1')", "Dangerous function detected: eval"),
        ("open('/etc/passwd')", "Dangerous function detected: open"),
    ]:
        refused = sandbox.execute_python_code(code)
        assert not refused.success
        assert violation in (refused.security_violations or []), code
    started = time.monotonic()
    spin = sandbox.execute_python_code("while True: pass")
    assert not spin.success and "process was killed" in (spin.error_message or "")
    assert time.monotonic() - started < 4.0


def test_secure_sandbox_commands() -> None:
    sandbox = SecureSandbox(SecurityPolicy(max_execution_time=2.0, blocked_commands=["ls"]))
    assert sandbox.execute_command(["echo", "hi"]).output == "hi\n"
    assert "Dangerous command detected: rm" in (
        sandbox.execute_command(["rm", "-rf", "/tmp/x"]).security_violations or [])
    assert "Command is blocked: ls" in (sandbox.execute_command(["ls"]).security_violations or [])
    failed = sandbox.execute_command(["false"])
    assert not failed.success and "return code 1" in (failed.error_message or "")
    started = time.monotonic()
    slow = sandbox.execute_command(["sleep", "10"])
    assert not slow.success and time.monotonic() - started < 4.0


def test_sams_calculator_pattern_no_longer_hangs_the_host() -> None:
    """SAM's CalculatorTool hands the manager a closure that calls ``eval``; ``9**9**9``
    then ran forever in the host. Ported by the import rewrite, the call is a process that is
    killed at the policy's deadline, and no thread is left computing in the host."""
    threads_before = threading.active_count()
    tool = SamStyleTool("CalculatorTool", SecurityPolicy(max_execution_time=1.0))
    expression = "9**9**9"
    started = time.monotonic()
    result = tool.run(lambda: eval(expression))  # SAM's code did exactly this
    assert not result.success
    assert "process was killed" in (result.error_message or "")
    assert time.monotonic() - started < 4.0
    assert threading.active_count() <= threads_before
