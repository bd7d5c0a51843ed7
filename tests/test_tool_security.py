"""Tool security (issue 11): permissions, the policy, limits and sandboxes, enforced for real.

Tools are registered through ``sof_register_tools`` and run in isolation workers: a tool
without "network" really cannot reach a local server, a slow one is killed, output is cut,
calls are rate limited, denied tools fail validation naming the policy entry, and untrusted
output must pass a vetting skill. The tools live in tests/tool_security_tools.py (a worker
imports a tool's module by name).
"""

from __future__ import annotations

import errno
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import tool_security_tools as tools  # noqa: E402

from sof_core import (  # noqa: E402
    UIF,
    BaseSkillModule,
    BaseToolModule,
    ConfigError,
    PlanValidationError,
    RateLimiter,
    SkillDefinitionError,
    SkillExecutionError,
    SkillTimeoutError,
    SOFConfig,
    ToolPermissionError,
    ToolPolicy,
    ToolRateLimitError,
    network_sandbox,
    run_sandboxed,
)
from sof_core.security import sandbox as sandbox_module  # noqa: E402
from sof_core.security.ratelimit import reset_rate_limits  # noqa: E402
from sof_core.testing import make_engine  # noqa: E402

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="isolation needs POSIX")

NAMESPACE = sandbox_module.available("unshare") or sandbox_module.available("bwrap")


class Server:
    """A real TCP server on 127.0.0.1 that greets and counts who connected."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port: int = self.sock.getsockname()[1]
        self.accepted = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            with conn:
                conn.sendall(b"hello")

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def server() -> Iterator[Server]:
    srv = Server()
    yield srv
    srv.close()


@pytest.fixture(autouse=True)
def _fresh_rate_limits() -> Iterator[None]:
    reset_rate_limits()
    yield
    reset_rate_limits()


def engine_with(*tool_classes: type, skills: tuple[type, ...] = (), **config: Any) -> Any:
    return make_engine(list(skills), plugins=[("tools", tools.ToolsPlugin(*tool_classes))],
                       **config)


def run(engine: Any, plan: list[str], **data: Any) -> Any:
    return engine.execute_plan(plan, UIF(input_query="q", intermediate_data=data))


def result_of(report: Any, skill: str) -> Any:
    return next(r for r in report.results if r.skill == skill)


# --- declarations ------------------------------------------------------------------------------


def test_tools_declare_permissions_and_limits() -> None:
    spec = tools.NetworkTool().get_metadata()
    assert spec["permissions"] == ["network"]
    assert tools.ChattyTool().get_metadata()["max_output_bytes"] == 1000
    assert tools.LimitedTool().get_metadata()["calls_per_minute"] == 2
    assert tools.FailingTool().get_metadata()["permissions"] == []


@pytest.mark.parametrize(
    ("attributes", "message"),
    [
        ({"permissions": {"netwrok"}}, "permissions has unknown 'netwrok'; known: filesystem"),
        ({"permissions": "network"}, "not the string 'network'"),
        ({"max_output_bytes": 0}, "max_output_bytes must be a positive int or None"),
        ({"calls_per_minute": 2.5}, "calls_per_minute must be a positive int or None"),
    ],
)
def test_bad_declarations_fail_at_class_definition(
    attributes: dict[str, Any], message: str
) -> None:
    with pytest.raises(SkillDefinitionError, match=message):
        type("BadTool", (BaseToolModule,), {
            "skill_name": "BadTool", "skill_description": "bad", "execute": lambda s, u: u,
            **attributes,
        })


def test_a_tool_may_not_insist_on_running_in_thread() -> None:
    class ThreadTool(BaseSkillModule):
        skill_name = "ThreadTool"
        skill_description = "wants to run in the host"
        isolation = "thread"

        def execute(self, uif: UIF) -> UIF:
            return uif

    engine = make_engine()
    record = engine.plugins.register(tools.ToolsPlugin(ThreadTool), name="threaded")
    assert record.status == "failed"
    assert 'sets isolation = "thread", but tools run isolated' in str(record.error)
    # the same class is fine as a plain skill
    assert make_engine([ThreadTool]).validate_plan(["ThreadTool"]) == []


def test_plain_skill_base_tools_run_isolated_too() -> None:
    class PlainTool(BaseSkillModule):  # not a BaseToolModule: registration makes it a tool
        skill_name = "PlainTool"
        skill_description = "a tool on the plain base class"
        output_keys = ["pid"]

        def execute(self, uif: UIF) -> UIF:
            uif.intermediate_data["pid"] = os.getpid()
            return uif

    compiled = engine_with(PlainTool).compile(["PlainTool"])
    assert compiled.steps["PlainTool"].isolation == "process"
    assert compiled.steps["PlainTool"].isolation_settings.tool is not None


# --- network ------------------------------------------------------------------------------------


def test_a_tool_without_network_cannot_reach_a_local_server(server: Server) -> None:
    engine = engine_with(tools.NoNetworkTool, tools.NetworkTool)
    allowed = run(engine, ["NetworkTool"], port=server.port)
    assert allowed.status == "success", allowed.errors
    assert allowed.uif.intermediate_data["greeting"] == "hello"
    assert server.accepted == 1

    refused = run(engine, ["NoNetworkTool"], port=server.port)
    failed = result_of(refused, "NoNetworkTool")
    assert failed.status == "failed"
    assert failed.error_type == "ToolPermissionError"
    assert "no 'network' permission" in failed.error
    assert server.accepted == 1  # nothing got through


@pytest.mark.parametrize("kind", ["auto", "unshare", "bwrap"])
def test_the_network_namespace_is_the_kernel_not_a_python_hook(
    kind: str, server: Server
) -> None:
    """Inside the namespace the connection fails in the kernel (ENETUNREACH with unshare,
    whose loopback is down; ECONNREFUSED from bwrap's own empty loopback), and the only
    interface is that loopback: C code could not get out either."""
    if (NAMESPACE if kind == "auto" else sandbox_module.available(kind)) is None:
        pytest.skip(f"no network namespace via {kind} on this host")
    engine = engine_with(tools.ProbeNetworkTool, tool_policy={"network_isolation": kind})
    report = run(engine, ["ProbeNetworkTool"], port=server.port)
    assert report.status == "success", report.errors
    probe = report.uif.intermediate_data["probe"]
    assert probe["errno"] in (errno.ENETUNREACH, errno.ECONNREFUSED), probe
    assert probe["interfaces"] == ["lo"]
    assert server.accepted == 0


def test_the_audit_fallback_refuses_sockets_in_process(server: Server) -> None:
    engine = engine_with(tools.ProbeNetworkTool, tools.NoNetworkTool,
                         tool_policy={"network_isolation": "audit"})
    report = run(engine, ["ProbeNetworkTool"], port=server.port)
    probe = report.uif.intermediate_data["probe"]
    assert probe["error"] == "ToolPermissionError"
    refused = result_of(run(engine, ["NoNetworkTool"], port=server.port), "NoNetworkTool")
    assert refused.error_type == "ToolPermissionError"
    assert "socket" in refused.error and "no 'network' permission" in refused.error
    assert server.accepted == 0


def test_auto_uses_a_namespace_where_one_works() -> None:
    chosen = network_sandbox("auto")
    if NAMESPACE is None:
        assert chosen.kind == "audit" and chosen.prefix == ()
    else:
        assert chosen.namespace and chosen.prefix


def test_an_unavailable_explicit_sandbox_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sandbox_module._found, "bwrap", None)  # as on a host without it
    engine = engine_with(tools.FailingTool, tool_policy={"network_isolation": "bwrap"})
    failed = result_of(run(engine, ["FailingTool"]), "FailingTool")
    assert failed.error_type == "ToolPermissionError"
    assert "tool_policy.network_isolation is 'bwrap'" in failed.error
    assert 'set it to "auto"' in failed.error


# --- filesystem and subprocess -----------------------------------------------------------------


def test_a_tool_without_filesystem_cannot_write_but_can_read(tmp_path: Path) -> None:
    target = tmp_path / "escaped.txt"
    engine = engine_with(tools.FileWriterTool, tools.FileReaderTool)
    failed = result_of(run(engine, ["FileWriterTool"], path=str(target)), "FileWriterTool")
    assert failed.error_type == "ToolPermissionError"
    assert "no 'filesystem' permission" in failed.error
    assert not target.exists()
    source = tmp_path / "in.txt"
    source.write_text("readable")
    report = run(engine, ["FileReaderTool"], path=str(source))
    assert report.uif.intermediate_data["content"] == "readable"


def test_a_tool_without_subprocess_cannot_start_programs() -> None:
    engine = engine_with(tools.ShellTool, tools.AllowedShellTool)
    failed = result_of(run(engine, ["ShellTool"]), "ShellTool")
    assert failed.error_type == "ToolPermissionError"
    assert "no 'subprocess' permission" in failed.error
    report = run(engine, ["AllowedShellTool"])
    assert report.uif.intermediate_data["shell_output"] == "hi\n"


def test_a_thread_a_tool_leaves_running_never_gets_its_permissions(tmp_path: Path) -> None:
    # The guard was lifted when the call returned: a thread the tool had started went on
    # unrestricted in the worker and wrote the file 0.25 s later. Now the worker keeps the
    # guard, answers, and exits (the pool starts another), taking the thread with it.
    from sof_core import isolation_pool
    from sof_core.security.sandbox import network_sandbox

    pool = isolation_pool(network_sandbox("auto").prefix)  # no-network tools' workers
    spent = pool.stats()["spent"]
    target = tmp_path / "escaped.txt"
    engine = engine_with(tools.LeavesAWriterBehindTool, tools.FileReaderTool)
    report = run(engine, ["LeavesAWriterBehindTool"], path=str(target))
    assert report.status == "success", report.errors
    assert pool.stats()["spent"] == spent + 1  # its worker was retired
    time.sleep(1.0)  # longer than the thread took to escape before
    assert not target.exists()
    source = tmp_path / "in.txt"
    source.write_text("readable")
    again = run(engine, ["FileReaderTool"], path=str(source))  # a fresh worker serves
    assert again.uif.intermediate_data["content"] == "readable"


def test_an_isolated_call_cannot_kill_the_host(tmp_path: Path) -> None:
    # os.kill(os.getppid(), SIGKILL) from a tool with no permissions ended the host. Run
    # in a host of its own, so a regression kills that process, not the test session.
    import subprocess
    import textwrap

    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        import tool_security_tools as tools
        from sof_core import UIF
        from sof_core.testing import make_engine

        engine = make_engine([], plugins=[("tools", tools.ToolsPlugin(tools.KillsTheHostTool))])
        report = engine.execute_plan(["KillsTheHostTool"], UIF(input_query="q"))
        result = report.results[0]
        print(result.status, result.error_type)
        print(result.error)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, (done.returncode, done.stderr)
    status, _, error = done.stdout.partition("\n")
    assert status == "failed PermissionError"
    assert "refused: an isolated skill may signal only its own process" in error


# --- limits ------------------------------------------------------------------------------------


def test_a_slow_tool_is_stopped_at_its_timeout(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    engine = engine_with(tools.SlowTool)
    started = time.monotonic()
    report = run(engine, ["SlowTool"], pid_file=str(pid_file))
    elapsed = time.monotonic() - started
    result = result_of(report, "SlowTool")
    assert result.status == "timeout"
    assert result.error_type == "SkillTimeoutError"
    assert elapsed < 4.0  # 1 s timeout, not the 6 s sleep
    pid = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.05)
    assert not _alive(pid)


def test_the_policy_can_tighten_a_tools_timeout() -> None:
    engine = engine_with(tools.SlowTool,
                         tool_policy={"limits": {"SlowTool": {"max_execution_time": 0.5}}})
    assert engine.compile(["SlowTool"]).steps["SlowTool"].timeout == 0.5
    started = time.monotonic()
    result = result_of(run(engine, ["SlowTool"], sleep=3.0), "SlowTool")
    assert result.status == "timeout"
    assert time.monotonic() - started < 2.5


def test_output_over_its_byte_cap_is_cut_and_flagged() -> None:
    report = run(engine_with(tools.ChattyTool), ["ChattyTool"])
    assert report.status == "success", report.errors
    data = report.uif.intermediate_data
    assert data["small"] == "ok"
    assert len(data["text"].encode()) <= 998 and set(data["text"]) == {"é"}
    assert data["items"] == []  # nothing left of the budget for the list
    warning = next(w for w in report.uif.warnings if "ChattyTool" in w)
    assert "cut to 1000 bytes (max_output_bytes)" in warning
    assert "text, items" in warning


def test_the_policy_default_output_cap_applies_to_tools_that_declare_none() -> None:
    engine = engine_with(tools.UncappedTool, tool_policy={"default_max_output_bytes": 100})
    report = run(engine, ["UncappedTool"])
    assert report.uif.intermediate_data["text"] == "x" * 100
    assert any("cut to 100 bytes" in w for w in report.uif.warnings)
    uncapped = run(engine_with(tools.UncappedTool), ["UncappedTool"])
    assert len(uncapped.uif.intermediate_data["text"]) == 5000
    assert uncapped.uif.warnings == []


def test_calls_over_the_rate_limit_are_a_typed_error_in_the_report() -> None:
    engine = engine_with(tools.LimitedTool)
    assert run(engine, ["LimitedTool"]).status == "success"
    assert run(engine, ["LimitedTool"]).status == "success"
    report = run(engine, ["LimitedTool"])
    result = result_of(report, "LimitedTool")
    assert result.status == "failed"
    assert result.error_type == "ToolRateLimitError"
    assert result.attempts == 1
    assert "more than 2 calls per minute" in result.error


def test_rate_limited_calls_are_not_retried() -> None:
    engine = engine_with(tools.LimitedTool, skill_retries=3,
                         tool_policy={"limits": {"LimitedTool": {"calls_per_minute": 1}}})
    assert run(engine, ["LimitedTool"]).status == "success"
    result = result_of(run(engine, ["LimitedTool"]), "LimitedTool")
    assert (result.error_type, result.attempts) == ("ToolRateLimitError", 1)


def test_rate_limiter_window() -> None:
    now = [0.0]
    limiter = RateLimiter(2, clock=lambda: now[0])
    assert limiter.acquire() == 0.0
    now[0] = 10.0
    assert limiter.acquire() == 0.0
    now[0] = 20.0
    assert limiter.acquire() == pytest.approx(40.0)  # the first call leaves at t=60
    now[0] = 60.5
    assert limiter.acquire() == 0.0
    assert limiter.stats()["requests_last_minute"] == 2
    hourly = RateLimiter(None, 1, clock=lambda: now[0])
    assert hourly.acquire() == 0.0
    assert hourly.acquire() == pytest.approx(3600.0)


def test_a_tool_error_is_an_error_not_a_result() -> None:
    report = run(engine_with(tools.FailingTool), ["FailingTool"])
    result = result_of(report, "FailingTool")
    assert report.status == "failure"
    assert result.error_type == "ValueError"
    assert "the tool broke" in result.error
    assert report.uif.final_response is None


def test_a_crashing_tool_is_reported_and_the_host_goes_on() -> None:
    engine = engine_with(tools.CrashingTool, tools.FailingTool)
    for how, words in (("segfault", "SIGSEGV"), ("exit", "7")):
        result = result_of(run(engine, ["CrashingTool"], how=how), "CrashingTool")
        assert result.status == "failed"
        assert result.error_type == "SkillCrashedError", result.error
        assert words in (result.error or "")
    # the next tool call gets a fresh worker
    assert result_of(run(engine, ["FailingTool"]), "FailingTool").error_type == "ValueError"


def test_a_tool_over_its_memory_limit_is_stopped_and_reported() -> None:
    report = run(engine_with(tools.HogTool), ["HogTool"])
    result = result_of(report, "HogTool")
    assert result.error_type == "SkillResourceLimitError", result.error
    assert "memory_mb" in (result.error or "")
    assert "never" not in report.uif.intermediate_data


# --- the policy ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ({"deny_tools": ["Net*"]},
         "tool 'NetworkTool' is denied by tool_policy.deny_tools entry 'Net*'"),
        ({"allow_tools": ["FailingTool"]},
         "tool 'NetworkTool' is not allowed: tool_policy.allow_tools ['FailingTool'] does "
         "not list it"),
        ({"deny_permissions": ["network"]},
         "tool 'NetworkTool' needs permission 'network', which tool_policy.deny_permissions "
         "entry 'network' denies"),
        ({"allow_permissions": ["filesystem"]},
         "tool 'NetworkTool' needs permission 'network', which tool_policy.allow_permissions "
         "['filesystem'] does not list"),
    ],
)
def test_a_denied_tool_fails_validation_naming_the_policy_entry(
    policy: dict[str, Any], message: str, server: Server
) -> None:
    engine = engine_with(tools.NetworkTool, tools.FailingTool, tool_policy=policy)
    (problem,) = engine.validate_plan(["NetworkTool"], available=["port"])
    assert problem.code == "tool_denied"
    assert problem.skills == ("NetworkTool",)
    assert message in problem.message
    with pytest.raises(PlanValidationError, match="tool_policy"):
        run(engine, ["NetworkTool"], port=server.port)
    assert server.accepted == 0


def test_a_denied_tool_is_refused_at_run_time_even_without_validation(server: Server) -> None:
    engine = engine_with(tools.NetworkTool, enable_plan_validation=False,
                         tool_policy={"deny_tools": ["NetworkTool"]})
    result = result_of(run(engine, ["NetworkTool"], port=server.port), "NetworkTool")
    assert result.error_type == "ToolPermissionError"
    assert "tool_policy.deny_tools entry 'NetworkTool'" in result.error
    assert server.accepted == 0


def test_permission_lists_apply_to_skills_that_declare_permissions() -> None:
    class Fetcher(BaseSkillModule):
        skill_name = "Fetcher"
        skill_description = "a skill (not a tool) that says it uses the network"
        output_keys = ["page"]
        permissions = ("network",)

        def execute(self, uif: UIF) -> UIF:
            return uif

    engine = make_engine([Fetcher], tool_policy={"deny_permissions": ["network"], "deny_tools":
                                                  ["Fetcher"]})
    (problem,) = engine.validate_plan(["Fetcher"])
    # name lists are for tools; the permission list applies to the skill
    assert "skill 'Fetcher' needs permission 'network'" in problem.message


def test_the_policy_comes_from_the_environment_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    from sof_core.config import SOFConfigManager

    monkeypatch.setenv("SOF_TOOL_POLICY", '{"deny_tools": ["ShellTool"]}')
    monkeypatch.setenv("SOF_CONFIG", "/nonexistent/sof.json")
    config = SOFConfigManager().config
    assert config.tool_policy["deny_tools"] == ["ShellTool"]
    assert config.tool_policy["network_isolation"] == "auto"  # left out: the default
    assert ToolPolicy.from_config(config).denial("ShellTool", (), tool=True) is not None


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ({"deny_tool": ["X"]}, "unknown entry 'deny_tool'"),
        ({"deny_permissions": ["net"]}, "deny_permissions names unknown permission 'net'"),
        ({"deny_tools": "X"}, "deny_tools must be a list of names"),
        ({"limits": {"X": {"timeout": 3}}}, "limits['X'] has unknown limit 'timeout'"),
        ({"limits": {"X": {"calls_per_minute": 0}}}, "must be a positive integer or null"),
        ({"network_isolation": "firejail"}, "network_isolation must be one of auto"),
    ],
)
def test_a_bad_policy_is_a_config_error_naming_the_entry(
    policy: dict[str, Any], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sof_core.config import SOFConfigManager

    with pytest.raises(ValueError, match="tool_policy") as caught:
        SOFConfig(tool_policy=policy)
    assert message in str(caught.value)
    import json

    monkeypatch.setenv("SOF_TOOL_POLICY", json.dumps(policy))
    monkeypatch.setenv("SOF_CONFIG", "/nonexistent/sof.json")
    with pytest.raises(ConfigError, match="SOF_TOOL_POLICY"):
        SOFConfigManager().config  # noqa: B018


# --- the taint rule -------------------------------------------------------------------------------


def test_untrusted_output_must_pass_a_vetting_skill_by_default() -> None:
    engine = engine_with(tools.FetchTool, skills=(tools.Summariser, tools.Vetter,
                                                  tools.Responder, tools.SummaryResponder))
    assert engine.config.require_vetting  # the default
    (problem,) = engine.validate_plan(["FetchTool", "Summariser", "SummaryResponder"])
    assert problem.code == "untrusted_output"
    assert problem.path == ("FetchTool", "Summariser", "SummaryResponder")
    assert ("FetchTool -[external_content]-> Summariser -[summary]-> SummaryResponder "
            "-[final_response]") in problem.message
    assert engine.validate_plan(["FetchTool", "Vetter", "Responder"]) == []


def test_untrusted_tool_results_cannot_reach_the_real_response_skill() -> None:
    """With the bundled ResponseGenerationSkill: it reads ``tool_results``, so an external
    tool writing them straight into it is an unvetted path, named key by key."""
    response = pytest.importorskip("sof_response")
    engine = engine_with(tools.ToolResultsFetcher, skills=(response.ResponseGenerationSkill,))
    problems = engine.validate_plan(["ToolResultsFetcher", "ResponseGenerationSkill"])
    [problem] = [p for p in problems if p.code == "untrusted_output"]
    assert problem.path == ("ToolResultsFetcher", "ResponseGenerationSkill")
    assert ("ToolResultsFetcher -[tool_results]-> ResponseGenerationSkill -[final_response]"
            in problem.message)
    with pytest.raises(PlanValidationError, match="untrusted output"):
        run(engine, ["ToolResultsFetcher", "ResponseGenerationSkill"])


# --- run_sandboxed -------------------------------------------------------------------------------


def test_run_sandboxed_kills_a_call_past_its_timeout() -> None:
    started = time.monotonic()
    with pytest.raises(SkillTimeoutError, match="'slow call'"):
        run_sandboxed(time.sleep, (6,), name="slow call", timeout=1.0)
    assert time.monotonic() - started < 4.0
    assert run_sandboxed(divmod, (7, 2), name="quick") == (3, 1)


def test_what_a_sandboxed_call_exits_with_does_not_end_the_host() -> None:
    with pytest.raises(SkillExecutionError, match="raised SystemExit: 4"):
        run_sandboxed(sys.exit, (4,), name="quitter")
    with pytest.raises(SkillExecutionError, match="raised KeyboardInterrupt"):
        run_sandboxed(tools.interrupts, name="interrupter")


def test_a_lambda_or_closure_runs_in_a_worker_sent_by_value() -> None:
    from sof_core import isolation_pool

    offset = 5
    before = isolation_pool().stats()["calls"]
    # with "network": the pool without a sandbox prefix, the one isolation_pool() is
    assert run_sandboxed(lambda: os.getpid() + offset, name="lambda",
                         permissions={"network"}) != os.getpid() + offset
    assert isolation_pool().stats()["calls"] == before + 1  # a worker's call, not a fork


def test_run_sandboxed_inside_a_skill_ends_by_the_skills_deadline() -> None:
    """A skill with 1 s calls a sandboxed function allowed 30 s: the worker is killed at
    the skill's deadline, so the skill's thread comes back instead of staying hung."""

    class CallsSlowTool(BaseSkillModule):
        skill_name = "CallsSlowTool"
        skill_description = "waits on a sandboxed call longer than its own time"
        output_keys = ["final_response"]
        max_execution_time = 1.0

        def execute(self, uif: UIF) -> UIF:
            run_sandboxed(time.sleep, (30,), name="slow tool", timeout=30.0)
            uif.final_response = "never"
            return uif

    engine = make_engine([CallsSlowTool])
    report = engine.execute_plan(["CallsSlowTool"], UIF(input_query="q"))
    assert report.status != "success"
    (result,) = report.results
    assert result.status in ("timeout", "failed")
    deadline = time.monotonic() + 5.0  # the hung thread returns once its worker is killed
    while engine.stats()["abandoned_calls"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert engine.stats()["abandoned_calls"] == {}
    engine.close()


def test_run_sandboxed_applies_permissions_and_rate(server: Server) -> None:
    with pytest.raises(ToolPermissionError):
        run_sandboxed(tools.connect, (server.port,), name="offline")
    assert run_sandboxed(tools.connect, (server.port,), name="online",
                         permissions={"network"}) == "hello"
    assert server.accepted == 1
    run_sandboxed(abs, (-1,), name="limited", calls_per_minute=1)
    with pytest.raises(ToolRateLimitError):
        run_sandboxed(abs, (-1,), name="limited", calls_per_minute=1)


def _alive(pid: int) -> bool:
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
