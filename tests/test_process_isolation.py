"""Process isolation (``isolation = "process"``): a skill that hangs, spins, allocates past its
limit, segfaults or ends its process is killed or reported, and the host goes on; the
isolated path reports exactly what the local one does.

Most skills are in tests/process_isolation_skills.py, imported by name like a plugin's; the
ones defined here, in functions, in a script and in a module loaded from a path show that a
class no worker can import by name travels by value.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import process_isolation_plugin_skills as plugin_skills  # noqa: E402
import process_isolation_skills as skills  # noqa: E402
from sof_test_support import wait_until  # noqa: E402

from sof_core import (  # noqa: E402
    UIF,
    BaseSkillModule,
    ConfigError,
    SkillCrashedError,
    SkillDefinitionError,
    SkillResourceLimitError,
    SkillSpec,
    isolation_pool,
)
from sof_core.testing import make_engine  # noqa: E402

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="isolation needs fork (POSIX)")


def run(skill_classes: list[Any], plan: list[str] | None = None, data: dict[str, Any] | None = None,
        **config: Any) -> Any:
    engine = make_engine(skill_classes, **config)
    plan = plan or [c.skill_name for c in skill_classes]
    return engine.execute_plan(plan, UIF(input_query="q", intermediate_data=data or {}))


def result_of(report: Any, skill: str) -> Any:
    return next(r for r in report.results if r.skill == skill)


def dead(pid: int) -> bool:
    """Gone, or a zombie nobody has reaped yet (it holds no memory or descriptors)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    except OSError:  # no /proc (macOS): ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False
    return state in ("Z", "X")


@pytest.fixture(autouse=True)
def host_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    """Secrets in the host's environment, which no isolated skill may see."""
    monkeypatch.setenv("SOF_LLM_API_KEY", "sk-host-only")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "host-only")


# --- where it runs, what it sees ----------------------------------------------------------------


def test_an_isolated_skill_runs_in_another_process_and_its_writes_come_back() -> None:
    report = run([skills.Where])
    assert report.status == "success", report.errors
    data = report.uif.intermediate_data
    assert data["pid"] != os.getpid()
    assert report.uif.final_response == "answered 'q'"
    assert any("answered" in line for line in report.uif.log_trace)
    assert report.uif.executed_skills == ["Where"]


def test_the_child_sees_no_inherited_secret_only_what_isolation_env_passes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SOF_MEMORY_PATH", "/data/memory.db")
    monkeypatch.setenv("SOF_MEMORY_LIMIT", "7")
    names = ["SOF_LLM_API_KEY", "AWS_SECRET_ACCESS_KEY", "SOF_MEMORY_PATH", "SOF_MEMORY_LIMIT",
             "PATH"]
    seen = run([skills.Where], data={"wanted_env": names}).uif.intermediate_data["seen_env"]
    assert seen["SOF_LLM_API_KEY"] is None and seen["AWS_SECRET_ACCESS_KEY"] is None
    assert seen["SOF_MEMORY_PATH"] is None
    assert seen["PATH"] == os.environ["PATH"]

    passed = run([skills.Where], data={"wanted_env": names},
                 isolation_env=["SOF_MEMORY_*"]).uif.intermediate_data["seen_env"]
    assert passed["SOF_MEMORY_PATH"] == "/data/memory.db" and passed["SOF_MEMORY_LIMIT"] == "7"
    assert passed["SOF_LLM_API_KEY"] is None and passed["AWS_SECRET_ACCESS_KEY"] is None


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="reads /proc")
def test_the_worker_process_itself_starts_with_a_clean_environment() -> None:
    isolation_pool().start(1)
    workers = [w for w in _workers() if w.alive()]
    assert workers
    environ = Path(f"/proc/{workers[0].pid}/environ").read_bytes().split(b"\0")
    names = {entry.partition(b"=")[0].decode() for entry in environ if entry}
    assert "SOF_LLM_API_KEY" not in names and "AWS_SECRET_ACCESS_KEY" not in names
    assert "PYTHONPATH" in names


def _workers() -> list[Any]:
    from sof_core.execution import isolation

    return list(isolation._ALL)


def test_config_isolates_a_skill_by_name_or_by_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    here = os.getpid()
    assert run([skills.Local]).uif.intermediate_data["local_pid"] == here
    by_name = run([skills.Local], isolate_skills=["Local"])
    assert by_name.uif.intermediate_data["local_pid"] != here
    by_plugin = run([skills.Local], isolate_skills=["test-skills"])  # make_engine's plugin name
    assert by_plugin.uif.intermediate_data["local_pid"] != here
    monkeypatch.setenv("SOF_ISOLATE_SKILLS", "Local,Other")
    from sof_core.config import load_config

    assert load_config(file_path=Path(os.devnull)).isolate_skills == ["Local", "Other"]


def test_a_plugin_module_isolates_its_skills_with_SOF_ISOLATION() -> None:
    report = run([plugin_skills.PluginWhere, plugin_skills.PluginStaysLocal])
    assert report.status == "success", report.errors
    assert report.uif.intermediate_data["plugin_pid"] != os.getpid()
    assert report.uif.intermediate_data["stays_pid"] == os.getpid()
    assert SkillSpec.from_skill_class(plugin_skills.PluginWhere).isolation == "process"
    assert SkillSpec.from_skill_class(plugin_skills.PluginStaysLocal).isolation == "thread"
    # the configuration names it: that wins over the class's own "thread"
    forced = run([plugin_skills.PluginStaysLocal], isolate_skills=["PluginStaysLocal"])
    assert forced.uif.intermediate_data["stays_pid"] != os.getpid()


def test_an_async_skill_runs_isolated_on_both_the_threads_and_the_asyncio_executor() -> None:
    for executor in ("threads", "asyncio", "sequential"):
        report = run([skills.AsyncWhere, skills.Local], executor=executor)
        assert report.status == "success", (executor, report.errors)
        assert report.uif.intermediate_data["async_pid"] != os.getpid()


# --- hangs, crashes and limits --------------------------------------------------------------------


@pytest.mark.parametrize("skill", [skills.Sleeper, skills.Spinner])
def test_a_skill_hung_past_its_deadline_is_killed_and_the_next_run_works(
    skill: Any, tmp_path: Path
) -> None:
    pid_file = tmp_path / "pid"
    killed_before = isolation_pool().stats()["killed"]
    started = time.monotonic()
    report = run([skill], data={"pid_file": str(pid_file)})
    elapsed = time.monotonic() - started
    assert report.status == "timeout"
    assert result_of(report, skill.skill_name).error_type == "SkillTimeoutError"
    assert elapsed < 0.5 + 1.0  # hung for 60 s otherwise
    call_pid, parent = map(int, pid_file.read_text().split())
    assert parent == os.getpid()  # it ran in a worker this process started
    # the worker running it is killed at the deadline, not left running
    assert wait_until(lambda: dead(call_pid), 2.0)
    assert wait_until(lambda: isolation_pool().stats()["killed"] > killed_before, 2.0)
    after = run([skills.Where])
    assert after.status == "success", after.errors


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="found through /proc")
def test_a_process_the_skill_started_in_a_session_of_its_own_is_killed_too(
    tmp_path: Path,
) -> None:
    pid_file = tmp_path / "daemon.pid"
    report = run([skills.Escapes], data={"pid_file": str(pid_file)})
    assert result_of(report, "Escapes").status == "timeout"
    assert wait_until(pid_file.exists)
    daemon = int(pid_file.read_text())
    try:
        assert wait_until(lambda: dead(daemon)), "the daemon left the group and survived"
    finally:
        if not dead(daemon):
            os.kill(daemon, signal.SIGKILL)
    assert run([skills.Where]).status == "success"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="found through /proc")
def test_the_worker_reaps_the_daemons_its_skills_left_once_they_end(tmp_path: Path) -> None:
    """The worker adopts a skill's orphans (a child subreaper): it must also collect their
    exit status, or each would stay a zombie for as long as the worker lives."""
    first = tmp_path / "first.pid"
    report = run([skills.Daemonizes], data={"pid_file": str(first)})
    assert report.status == "success", report.errors
    assert wait_until(first.exists)
    daemon = int(first.read_text())
    assert wait_until(lambda: dead(daemon))  # it exits after 0.1 s
    again = run([skills.Daemonizes], data={"pid_file": str(tmp_path / "second.pid")})
    assert again.uif.intermediate_data["worker_pid"] == (
        report.uif.intermediate_data["worker_pid"])  # the same worker, which reaped it
    assert wait_until(lambda: not Path(f"/proc/{daemon}").exists()), "left a zombie"


def test_waiting_for_a_free_worker_counts_against_the_deadline(tmp_path: Path) -> None:
    import threading

    from sof_core import SkillTimeoutError
    from sof_core.execution.isolation import IsolationPool

    pool = IsolationPool(1)
    engine = make_engine([skills.Sleeper, skills.Where], isolation_workers=1)
    steps = engine.compile(["Sleeper", "Where"]).steps
    hung: list[BaseException] = []

    def occupy() -> None:
        data = {"pid_file": str(tmp_path / "pid")}
        try:
            pool.call(steps["Sleeper"], UIF(input_query="q", intermediate_data=data),
                      time.monotonic() + 3.0)
        except SkillTimeoutError as exc:
            hung.append(exc)

    busy = threading.Thread(target=occupy)
    busy.start()
    try:
        assert wait_until(lambda: (tmp_path / "pid").exists())  # the one worker is busy
        with pytest.raises(SkillTimeoutError) as waited:
            pool.call(steps["Where"], UIF(input_query="q"), time.monotonic() + 0.3)
        assert "did not start within" in str(waited.value)
        assert "all 1 isolation workers were busy" in str(waited.value)
    finally:
        busy.join(10)
        pool.close()
    assert hung  # the hung call was killed at its own deadline


def test_an_isolated_skill_reads_its_deadline_in_its_process() -> None:
    # The worker is told the time the skill has left: its own limit, or the run's total
    # timeout when that ends first (before, current_deadline() was None in the worker).
    report = run([skills.ReadsDeadline])
    assert report.status == "success", report.errors
    assert 15.0 < report.uif.intermediate_data["left"] <= 20.0
    assert 15.0 < report.uif.intermediate_data["view_left"] <= 20.0  # and on its view
    assert report.uif.intermediate_data["same_on_view"] is True
    report = run([skills.ReadsDeadline], total_timeout=4.0)
    assert report.status == "success", report.errors
    assert 2.0 < report.uif.intermediate_data["left"] <= 4.0
    report = run([skills.ReadsDeadline], skill_timeout=None, total_timeout=None)
    assert report.status == "success", report.errors


def test_a_new_workers_start_is_not_the_skills_time() -> None:
    # A cold worker (a new interpreter, ~0.3 s) used to take its start out of the step's
    # deadline while the skill was told it had its whole timeout: a skill using the time it
    # was told was killed. The deadline now starts once the worker is ready.
    from sof_core import isolation_pool

    for _ in range(2):
        isolation_pool().close()  # no idle worker: the call starts one
        report = run([skills.UsesItsTime])
        assert report.status == "success", report.errors
        assert 0.8 < report.uif.intermediate_data["left"] <= 1.0


def test_a_worker_that_dies_or_hangs_while_starting_is_a_typed_error() -> None:
    # The wait for a new worker's "ready" has its own ends: a worker that exits first is a
    # crash "while starting"; one that never gets ready is given up at the call's deadline
    # (a pool call's deadline counts the start) and killed.
    from sof_core import SkillCrashedError, SkillTimeoutError
    from sof_core.execution.isolation import IsolationPool

    step = make_engine([skills.Where]).compile(["Where"]).steps["Where"]
    dying = IsolationPool(1, prefix=("sh", "-c", "exit 3", "sh"))
    try:
        with pytest.raises(SkillCrashedError) as crashed:
            dying.call(step, UIF(input_query="q"), time.monotonic() + 10.0)
        assert "exited with code 3 while starting" in str(crashed.value)
        assert crashed.value.skill == "Where"
    finally:
        dying.close()
    stuck = IsolationPool(1, prefix=("sh", "-c", "sleep 30", "sh"))
    try:
        began = time.monotonic()
        with pytest.raises(SkillTimeoutError) as late:
            stuck.call(step, UIF(input_query="q"), time.monotonic() + 0.5)
        assert time.monotonic() - began < 5.0  # a hang bound, not a speed figure
        assert "still starting" in str(late.value)
        assert stuck.stats()["killed"] == 1
    finally:
        stuck.close()
    # A run's step waits for its worker until the run's total deadline only (its own
    # timeout starts once the worker is ready, and never did): reported never started.
    from sof_core import SkillNotStartedError

    class Start:
        wait_until = time.monotonic() + 0.5

        def __call__(self) -> float:
            raise AssertionError("the step's time must not start: no worker got ready")

    stuck = IsolationPool(1, prefix=("sh", "-c", "sleep 30", "sh"))
    try:
        with pytest.raises(SkillNotStartedError) as unstarted:
            stuck.call(step, UIF(input_query="q"), start=Start())
        assert "still starting at the run's total_timeout" in str(unstarted.value)
    finally:
        stuck.close()


def test_an_isolated_skill_may_signal_what_it_started_never_the_host() -> None:
    # A skill in a worker could os.kill(os.getppid(), SIGKILL) the host, or signal every
    # process of the user (pid -1): refused now, its own children still reachable.
    report = run([skills.Signals])
    assert report.status == "success", report.errors
    outcome = report.uif.intermediate_data["signalled"]
    assert outcome["own child"] == "sent" and outcome["itself"] == "sent"
    assert outcome["killed child"] == "-9"
    for name, target in (("host", "os.kill("), ("everyone", "os.kill(-1, 0)")):
        assert outcome[name].startswith(target), outcome
        assert "refused: an isolated skill may signal only its own process" in outcome[name]


def test_a_skill_past_its_cpu_limit_is_stopped_with_a_typed_error() -> None:
    report = run([skills.CpuHog])
    result = result_of(report, "CpuHog")
    assert report.status == "failure"
    assert result.error_type == "SkillResourceLimitError"
    assert "1 CPU seconds (cpu_seconds)" in result.error
    assert run([skills.Where]).status == "success"


def test_a_skill_past_its_memory_limit_is_reported_and_the_host_goes_on() -> None:
    report = run([skills.MemoryHog])
    result = result_of(report, "MemoryHog")
    assert result.error_type == "SkillResourceLimitError"
    assert "out of memory: its limit is 64 MB (memory_mb)" in result.error
    assert run([skills.Where]).status == "success"


def test_a_skill_past_its_open_files_limit_is_reported() -> None:
    result = result_of(run([skills.FileHog]), "FileHog")
    assert result.error_type == "SkillResourceLimitError"
    assert "limit of 32 (open_files)" in result.error


def test_output_past_its_limit_is_a_typed_error_and_the_worker_stays_in_use() -> None:
    pool = isolation_pool()
    assert run([skills.Where]).status == "success"
    before = pool.stats()
    report = run([skills.BigOutput], data={"megabytes": 3})
    result = result_of(report, "BigOutput")
    assert report.status == "failure"
    assert result.error_type == "SkillResourceLimitError"
    assert "more than its limit of 1 MB (output_mb): it sent back 3.0 MB" in result.error
    assert "blob" not in report.uif.intermediate_data
    after = pool.stats()
    # Answered by the worker, which is none the worse for it: not retired, not replaced.
    assert after["calls"] == before["calls"] + 1
    assert (after["spent"], after["replaced"]) == (before["spent"], before["replaced"])
    within = run([skills.BigOutput], data={"megabytes": 0.5})
    assert within.status == "success"
    assert len(within.uif.intermediate_data["blob"]) == 2**19


def test_a_forged_reply_length_is_refused_unread_and_its_worker_killed() -> None:
    """The length on the worker's socket comes from the skill's process: the host must not
    allocate it (it did: 6 GB for a forged 6 GB header) nor wait for it until the deadline."""
    pool = isolation_pool()
    before = pool.stats()
    report = run([skills.ForgesReply], data={"megabytes": 2**20})  # a terabyte
    result = result_of(report, "ForgesReply")
    assert result.error_type == "SkillResourceLimitError"
    assert ("more than its limit of 256 MB (output_mb): its process announced a reply of "
            "1048576.0 MB and was killed") in result.error
    assert result.duration < 10  # not held to its 20 s deadline
    assert pool.stats()["killed"] == before["killed"] + 1
    assert run([skills.Where]).status == "success"


def test_without_an_output_limit_a_reply_longer_than_its_memory_limit_is_a_crash() -> None:
    report = run([skills.ForgesReplyUncapped], data={"megabytes": 512})
    result = result_of(report, "ForgesReplyUncapped")
    assert result.error_type == "SkillCrashedError"
    assert "announced a reply of 512.0 MB and was killed: more than its memory_mb" in (
        result.error)
    assert run([skills.Where]).status == "success"


def test_a_segfault_is_a_typed_error_naming_the_signal_and_the_next_run_works() -> None:
    report = run([skills.Segfault])
    result = result_of(report, "Segfault")
    assert report.status == "failure"
    assert result.error_type == "SkillCrashedError"
    assert "killed by signal SIGSEGV (11)" in result.error
    assert run([skills.Where]).status == "success"


def test_os_exit_is_a_typed_error_with_the_exit_code() -> None:
    result = result_of(run([skills.Exits]), "Exits")
    assert result.error_type == "SkillCrashedError"
    assert "exited with code 3 before it returned" in result.error


def test_the_crash_errors_carry_the_signal_or_exit_code() -> None:
    from sof_core.execution.isolation import isolation_pool as pool

    compiled = make_engine([skills.Segfault, skills.Exits]).compile(["Segfault", "Exits"])
    with pytest.raises(SkillCrashedError) as crashed:
        pool().call(compiled.steps["Segfault"], UIF(input_query="q"))
    assert crashed.value.signal == signal.SIGSEGV and crashed.value.exit_code is None
    with pytest.raises(SkillCrashedError) as exited:
        pool().call(compiled.steps["Exits"], UIF(input_query="q"))
    assert exited.value.exit_code == 3 and exited.value.signal is None
    limited = make_engine([skills.MemoryHog]).compile(["MemoryHog"]).steps["MemoryHog"]
    with pytest.raises(SkillResourceLimitError) as limit:
        pool().call(limited, UIF(input_query="q"))
    assert (limit.value.limit, limit.value.value) == ("memory_mb", 64.0)


def test_a_crashed_or_spent_worker_is_replaced_and_the_next_call_uses_its_successor() -> None:
    pool = isolation_pool()
    assert run([skills.Where]).status == "success"
    before = pool.stats()
    assert run([skills.Segfault]).status == "failure"
    assert run([skills.MemoryHog]).status == "failure"
    assert run([skills.CpuHog]).status == "failure"
    assert run([skills.Raises]).status == "failure"  # in-thread: the pool is not asked
    assert run([skills.IsolatedRaises]).status == "failure"
    after = pool.stats()
    # No reply: the segfault, and the kernel ending the CPU hog at its cpu_seconds limit.
    assert after["crashed"] == before["crashed"] + 2
    assert after["spent"] == before["spent"] + 1  # retired after its call hit memory_mb
    assert after["replaced"] == before["replaced"] + 3
    # Answered: the memory hog's limit, and the isolated skill's own error.
    assert after["calls"] == before["calls"] + 2
    assert after["workers"] <= after["size"]
    assert run([skills.Where]).status == "success"


def test_an_idle_worker_killed_from_outside_is_replaced_unnoticed() -> None:
    pool = isolation_pool()
    pool.start(1)
    victims = [worker.pid for worker in _workers()]
    for pid in victims:
        os.killpg(pid, signal.SIGKILL)
    assert wait_until(lambda: all(dead(pid) for pid in victims))
    report = run([skills.Where])
    assert report.status == "success", report.errors


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="no /proc")
def test_a_worker_on_its_way_out_is_not_alive_though_not_reapable_yet() -> None:
    # Killed from outside, a worker's main thread is a zombie while its other threads exit
    # and its memory is freed: poll() still said running, and the pool handed it a call
    # that it never answered ("killed by signal SIGKILL" for a healthy skill).
    import subprocess

    from sof_core.execution.isolation import _exiting

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert not _exiting(child.pid)
        os.kill(child.pid, signal.SIGKILL)
        assert wait_until(lambda: dead(child.pid))  # a zombie: nobody reaped it
        assert _exiting(child.pid)
    finally:
        child.kill()
        child.wait()


# --- what cannot cross -------------------------------------------------------------------------


def test_a_skill_that_cannot_be_pickled_is_a_typed_error_naming_it() -> None:
    result = result_of(run([skills.HoldsLock]), "HoldsLock")
    assert result.error_type == "SkillNotPicklableError"
    assert "cannot pickle the skill instance for its isolated process" in result.error
    assert "lock" in result.error


def test_an_input_that_cannot_be_pickled_is_named() -> None:
    report = run([skills.MakesThing, skills.ReadsThing])
    result = result_of(report, "ReadsThing")
    assert result.error_type == "SkillNotPicklableError"
    assert "cannot pickle its input 'thing'" in result.error


def test_a_write_that_cannot_be_pickled_back_is_named() -> None:
    result = result_of(run([skills.WritesGenerator]), "WritesGenerator")
    assert result.error_type == "SkillNotPicklableError"
    assert "cannot pickle what it wrote" in result.error


# --- where an isolated skill class may live -----------------------------------------------------


def _where_it_ran() -> list[Any]:
    """A module-level helper the skills below call: it travels with them when they travel
    by value."""
    return ["ran in", os.getpid()]


class DefinedInThisTestModule(BaseSkillModule):
    """Under ``--import-mode=importlib`` (as CI runs) pytest imports this file under a name no
    worker can import: the class travels by value; under the default mode, by name."""

    skill_name = "DefinedInThisTestModule"
    skill_description = "defined in a test module"
    output_keys = ["where"]
    isolation = "process"
    max_execution_time = 20.0

    def execute(self, uif: UIF) -> UIF:
        uif.intermediate_data["where"] = _where_it_ran()
        return uif


def test_a_skill_defined_in_a_test_module_runs_isolated() -> None:
    report = run([DefinedInThisTestModule])
    assert report.status == "success", report.errors
    where = report.uif.intermediate_data["where"]
    assert where[0] == "ran in" and where[1] != os.getpid()


def test_a_skill_defined_inside_a_function_runs_isolated() -> None:
    secret = "captured"

    class Local(BaseSkillModule):
        skill_name = "Local"
        skill_description = "defined inside a test function"
        required_inputs = ["n"]
        output_keys = ["doubled"]
        isolation = "process"
        max_execution_time = 20.0

        def execute(self, uif: UIF) -> UIF:
            uif.intermediate_data["doubled"] = [uif.intermediate_data["n"] * 2, secret,
                                                os.getpid()]
            return uif

    report = run([Local], data={"n": 21})
    assert report.status == "success", report.errors
    doubled, captured, pid = report.uif.intermediate_data["doubled"]
    assert (doubled, captured) == (42, "captured") and pid != os.getpid()


@contextlib.contextmanager
def module_from_a_path(source: Path, code: str) -> Iterator[Any]:
    """``code`` written to ``source`` and loaded as pytest's importlib mode loads a test file:
    in ``sys.modules`` under a name that no entry of the import path leads to."""
    import importlib.util

    source.write_text(textwrap.dedent(code))
    spec = importlib.util.spec_from_file_location(source.stem, source)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[source.stem] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[source.stem]


def test_a_skill_in_a_module_loaded_from_a_path_no_worker_searches_runs_isolated(
        tmp_path: Path) -> None:
    """A module loaded from a path (``module_from_a_path``) cannot travel by name."""
    folder = tmp_path / "not_on_the_path"
    folder.mkdir()
    with module_from_a_path(folder / "skills_from_a_path.py",
        """
        import os
        from sof_core import BaseSkillModule

        def label(n):
            return f"n={n} in {os.getpid()}"

        class FromAPath(BaseSkillModule):
            skill_name = "FromAPath"
            skill_description = "loaded from a file path"
            required_inputs = ["n"]
            output_keys = ["label"]
            isolation = "process"
            max_execution_time = 20.0

            def execute(self, uif):
                uif.intermediate_data["label"] = label(uif.intermediate_data["n"])
                return uif
        """
    ) as module:
        report = run([module.FromAPath], data={"n": 3})
    assert report.status == "success", report.errors
    label = report.uif.intermediate_data["label"]
    assert label.startswith("n=3 in ") and label != f"n=3 in {os.getpid()}"


def test_a_skill_sent_by_value_keeps_its_traceback_and_location(tmp_path: Path) -> None:
    """cloudpickle renames sent code ``<dynamic-code>``; the result must still point at the
    line that raised, in the skill's own file."""
    source = tmp_path / "failing_from_a_path.py"
    with module_from_a_path(source,
        """
        from sof_core import BaseSkillModule

        def check(values):
            raise ValueError("bad values: " + repr(values))

        class FailsFromAPath(BaseSkillModule):
            skill_name = "FailsFromAPath"
            skill_description = "fails in a helper of its module"
            required_inputs = ["n"]
            output_keys = ["x"]
            isolation = "process"
            max_execution_time = 20.0

            def execute(self, uif):
                check(uif.intermediate_data["n"])
                return uif
        """
    ) as module:
        report = run([module.FailsFromAPath], data={"n": 7})
    result = result_of(report, "FailsFromAPath")
    assert result.error_type == "ValueError" and "bad values: 7" in result.error
    assert result.location == f"{source}:5"
    assert 'raise ValueError("bad values: " + repr(values))' in result.traceback
    assert "<dynamic-code>" not in result.traceback


def test_a_skill_only_this_process_can_import_is_sent_again_by_value() -> None:
    """An import hook only the host has (a meta path finder serving the module from
    memory): the host finds the class by name, the worker cannot load it, and the call is
    sent once more by value, then by value from the start."""
    import importlib.abc
    import importlib.util

    source = textwrap.dedent(
        """
        import os
        from sof_core import BaseSkillModule

        class FromAHook(BaseSkillModule):
            skill_name = "FromAHook"
            skill_description = "imported through an import hook the worker lacks"
            output_keys = ["pid"]
            isolation = "process"
            max_execution_time = 20.0

            def execute(self, uif):
                uif.intermediate_data["pid"] = os.getpid()
                return uif
        """
    )

    class Hook(importlib.abc.MetaPathFinder, importlib.abc.Loader):
        def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
            if name != "hooked_skills":
                return None
            return importlib.util.spec_from_loader(name, self, origin="memory")

        def create_module(self, spec: Any) -> None:
            return None

        def exec_module(self, module: Any) -> None:
            module.__file__ = "<hooked_skills>"
            exec(compile(source, "<hooked_skills>", "exec"), module.__dict__)

    hook = Hook()
    sys.meta_path.insert(0, hook)
    try:
        import hooked_skills  # type: ignore[import-not-found]

        engine = make_engine([hooked_skills.FromAHook])
        before = isolation_pool().stats()["calls"]
        reports = [engine.execute_plan(["FromAHook"], UIF(input_query="q")) for _ in range(2)]
        calls = isolation_pool().stats()["calls"] - before
    finally:
        sys.meta_path.remove(hook)
        sys.modules.pop("hooked_skills", None)
    for report in reports:
        assert report.status == "success", report.errors
        assert report.uif.intermediate_data["pid"] != os.getpid()
    assert calls == 3  # by name (refused), by value; then by value at once


def test_a_skill_defined_in_a_script_runs_isolated() -> None:
    code = textwrap.dedent(
        """
        import os
        from sof_core import UIF, BaseSkillModule
        from sof_core.testing import make_engine

        class InMain(BaseSkillModule):
            skill_name = "InMain"
            skill_description = "defined in __main__"
            output_keys = ["x"]
            isolation = "process"
            max_execution_time = 20.0

            def execute(self, uif):
                uif.intermediate_data["x"] = os.getpid()
                return uif

        report = make_engine([InMain]).execute_plan(["InMain"], UIF(input_query="q"))
        print(report.status, report.errors)
        print(report.uif.intermediate_data["x"] != os.getpid())
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["success", "[]", "True"], done.stdout


def test_an_importable_skill_holding_a_lambda_travels_by_value() -> None:
    report = run([skills.HoldsLambda], data={"n": 14})
    assert report.status == "success", report.errors
    scaled, pid = report.uif.intermediate_data["scaled"]
    assert scaled == 42 and pid != os.getpid()


def test_only_a_class_no_worker_can_import_travels_by_value() -> None:
    """Importable classes go by name (the worker imports the real module; none of the host's
    copy of its code is sent); the others by value, with cloudpickle."""
    from sof_core import call_payload, pack_call

    class Local(BaseSkillModule):
        skill_name = "Local"
        skill_description = "defined inside a test function"
        output_keys = ["x"]

        def execute(self, uif: UIF) -> UIF:
            return uif

    for cls, by_value in ((skills.WritesGenerator, False), (Local, True)):
        step = make_engine([cls]).compile([cls.skill_name]).steps[cls.skill_name]
        payload = pack_call(cls.skill_name, call_payload(step, UIF(input_query="q")))
        assert (b"cloudpickle" in payload) is by_value, cls
        assert pickle.loads(payload)[0].__class__.__name__ == cls.__name__


def test_what_a_skill_of_no_importable_module_raises_or_writes_is_reported() -> None:
    class LocalError(Exception):
        pass

    class Shape:
        pass

    class RaisesLocal(BaseSkillModule):
        skill_name = "RaisesLocal"
        skill_description = "raises an exception class defined beside it"
        output_keys = ["x"]
        isolation = "process"
        max_execution_time = 20.0

        def execute(self, uif: UIF) -> UIF:
            raise LocalError("the reason")

    class WritesLocal(BaseSkillModule):
        skill_name = "WritesLocal"
        skill_description = "writes a value of a class defined beside it"
        output_keys = ["y"]
        isolation = "process"
        max_execution_time = 20.0

        def execute(self, uif: UIF) -> UIF:
            uif.intermediate_data["y"] = Shape()
            return uif

    report = run([RaisesLocal, WritesLocal])
    raised, wrote = result_of(report, "RaisesLocal"), result_of(report, "WritesLocal")
    assert raised.status == "failed"
    assert "LocalError" in raised.error and "the reason" in raised.error
    assert wrote.error_type == "SkillNotPicklableError"
    assert "cannot pickle what it wrote" in wrote.error


# --- the same report both ways ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("local", "remote"),
    [
        (skills.Raises, skills.IsolatedRaises),
        (skills.WritesUndeclared, skills.IsolatedWritesUndeclared),
        (skills.SetsError, skills.IsolatedSetsError),
    ],
)
def test_failures_are_reported_as_in_a_local_run(local: Any, remote: Any) -> None:
    here = result_of(run([local]), local.skill_name)
    there = result_of(run([remote]), local.skill_name)
    assert (there.status, there.error_type, there.error) == (here.status, here.error_type,
                                                              here.error)
    if local is skills.Raises:
        # Where its exception came from too (before, an isolated skill's had neither; a
        # write refused when replayed in the host has none, as docs/errors.md says).
        assert there.location == here.location is not None
        assert there.traceback is not None and here.traceback is not None
        assert "in execute" in there.traceback
        assert there.traceback.splitlines()[-1] == here.traceback.splitlines()[-1]


# --- declaring it ------------------------------------------------------------------------------


def test_bad_declarations_are_definition_errors_naming_the_skill() -> None:
    from sof_core import BaseSkillModule

    with pytest.raises(SkillDefinitionError, match=r"'Typo'.*isolation must be \"thread\" or"):
        type("Typo", (BaseSkillModule,), {
            "skill_name": "Typo", "skill_description": "x", "isolation": "processes",
            "execute": lambda self, uif: uif,
        })
    with pytest.raises(SkillDefinitionError, match="unknown limit 'memory'; known: cpu_seconds"):
        type("Limits", (BaseSkillModule,), {
            "skill_name": "Limits", "skill_description": "x", "isolation_limits": {"memory": 1},
            "execute": lambda self, uif: uif,
        })
    with pytest.raises(SkillDefinitionError, match=r"isolation_limits\['cpu_seconds'\] must be"):
        type("Inf", (BaseSkillModule,), {
            "skill_name": "Inf", "skill_description": "x",
            "isolation_limits": {"cpu_seconds": float("inf")}, "execute": lambda self, uif: uif,
        })


def test_a_bad_SOF_ISOLATION_in_a_plugin_module_is_a_definition_error() -> None:
    import types

    from sof_core import BaseSkillModule

    module = types.ModuleType("bad_isolation_plugin")
    module.SOF_ISOLATION = "processes"  # type: ignore[attr-defined]
    sys.modules[module.__name__] = module
    try:
        with pytest.raises(SkillDefinitionError,
                           match=r"'Bad'.*bad_isolation_plugin.SOF_ISOLATION must be"):
            type("Bad", (BaseSkillModule,), {
                "__module__": module.__name__, "skill_name": "Bad", "skill_description": "x",
                "execute": lambda self, uif: uif,
            })
    finally:
        del sys.modules[module.__name__]


def test_the_pool_grows_to_the_workers_a_step_asks_for() -> None:
    from sof_core.execution.isolation import IsolationPool

    pool = IsolationPool(1)
    try:
        step = make_engine([skills.Where], isolation_workers=3).compile(["Where"]).steps["Where"]
        pool.call(step, UIF(input_query="q"))
        assert pool.stats()["size"] == 3
    finally:
        pool.close()


def test_bad_limits_in_config_are_config_errors_naming_the_key() -> None:
    from sof_core.config import load_config

    with pytest.raises(ConfigError, match=r"isolation_limits.*unknown limit 'cpu'"):
        load_config(file_path=Path(os.devnull), isolation_limits={"cpu": 1})
    with pytest.raises(ConfigError, match=r"isolation_limits.*memory_mb must be a positive"):
        load_config(file_path=Path(os.devnull), isolation_limits={"memory_mb": -1})
    with pytest.raises(ConfigError, match=r"isolation_limits.*memory_mb must be a positive"):
        load_config(file_path=Path(os.devnull),  # not read as 1.0
                    environ={"SOF_ISOLATION_LIMITS": '{"memory_mb": true}'})
    config = load_config(file_path=Path(os.devnull), isolation_limits={"memory_mb": 512})
    assert config.isolation_limits == {"cpu_seconds": 60.0, "memory_mb": 512.0,
                                       "open_files": 256.0, "output_mb": 256.0}
    from_env = load_config(file_path=Path(os.devnull),
                           environ={"SOF_ISOLATION_LIMITS": '{"open_files": 64}'})
    assert from_env.isolation_limits["open_files"] == 64


def test_a_skills_own_limits_win_over_the_configured_ones() -> None:
    engine = make_engine([skills.MemoryHog, skills.Where],
                         isolation_limits={"memory_mb": 4096, "cpu_seconds": 5})
    steps = engine.compile(["MemoryHog", "Where"]).steps
    hog, where = steps["MemoryHog"].isolation_settings, steps["Where"].isolation_settings
    assert hog is not None and where is not None
    assert (hog.memory_mb, hog.cpu_seconds) == (64, 5)
    assert (where.memory_mb, where.cpu_seconds, where.open_files) == (4096, 5, 256)
    assert steps["Where"].isolation == "process"
    assert make_engine([skills.Local]).compile(["Local"]).steps["Local"].isolation == "thread"


# --- the host exits ----------------------------------------------------------------------------


def test_a_worker_whose_host_is_gone_before_it_starts_exits_quietly() -> None:
    # The host exited (or let the worker go) while the worker was starting: its "ready"
    # message meets a closed socket. Before, that printed a BrokenPipeError traceback.
    import socket

    host, child = socket.socketpair()
    host.close()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "sof_core.execution._worker", str(child.fileno())],
            pass_fds=(child.fileno(),), capture_output=True, text=True, timeout=60,
            check=False,
        )
    finally:
        child.close()
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr


def test_a_host_that_used_isolated_skills_exits_promptly_and_leaves_no_worker(
    tmp_path: Path,
) -> None:
    pid_file = tmp_path / "pid"
    script = tmp_path / "host.py"
    script.write_text(textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(HERE)!r})
        import process_isolation_skills as skills
        from sof_core import UIF, isolation_pool
        from sof_core.execution import isolation
        from sof_core.testing import make_engine

        engine = make_engine([skills.Where, skills.Sleeper])
        assert engine.execute_plan(["Where"], UIF(input_query="q")).status == "success"
        data = {{"pid_file": {str(pid_file)!r}}}
        report = engine.execute_plan(["Sleeper"], UIF(input_query="q", intermediate_data=data))
        assert report.status == "timeout", report.errors
        isolation_pool().start()
        print(" ".join(str(w.pid) for w in isolation._ALL), flush=True)
        """
    ))
    host = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert host.stdout is not None
        line = host.stdout.readline()
        printed = time.monotonic()
        host.wait(30)
        exited = time.monotonic()
    finally:
        host.kill()
    assert host.returncode == 0, host.stderr.read() if host.stderr else ""
    assert exited - printed < 1.0  # the hung call (60 s) holds nothing up
    workers = [int(pid) for pid in line.split()]
    assert workers
    call_pid, _ = map(int, pid_file.read_text().split())
    assert wait_until(lambda: all(dead(pid) for pid in [*workers, call_pid]), 2.0)
    # Workers still starting when the host left exit quietly (no BrokenPipeError traceback).
    assert host.stderr is not None and "Traceback" not in host.stderr.read()


def test_workers_exit_on_their_own_when_their_host_is_killed(tmp_path: Path) -> None:
    script = tmp_path / "host.py"
    script.write_text(textwrap.dedent(
        """
        import time
        from sof_core import isolation_pool
        from sof_core.execution import isolation

        isolation_pool().start(2)
        print(" ".join(str(w.pid) for w in isolation._ALL), flush=True)
        time.sleep(60)
        """
    ))
    host = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        assert host.stdout is not None
        workers = [int(pid) for pid in host.stdout.readline().split()]
        assert len(workers) == 2 and not any(dead(pid) for pid in workers)
        host.kill()  # SIGKILL: no atexit handler runs
        host.wait(10)
        assert wait_until(lambda: all(dead(pid) for pid in workers), 5.0)
    finally:
        host.kill()


class _Undeclared(BaseSkillModule):
    """Touches ``secret`` (not declared) the way ``how`` says."""

    skill_name = "Undeclared"
    skill_description = "reaches for a key it did not declare"
    required_inputs = ["input_query"]
    output_keys = ["seen"]
    how = "get"

    def execute(self, uif: UIF) -> UIF:
        data = uif.intermediate_data
        if self.how == "get":
            data["seen"] = data.get("secret", "absent")
        elif self.how == "item":
            data["seen"] = data["secret"]
        elif self.how == "in":
            data["seen"] = "secret" in data
        else:
            data["secret"] = "overwritten"
        return uif


@pytest.mark.parametrize("how", ["get", "item", "in", "write"])
@pytest.mark.parametrize("present", [True, False])
def test_an_undeclared_key_fails_alike_isolated_and_local(how: str, present: bool) -> None:
    # Before: isolated, .get() answered the default, [] raised KeyError and `in` said False:
    # the far side held only the declared inputs and checked nothing.
    skill = type(f"Undeclared_{how}", (_Undeclared,), {"how": how})
    data = {"secret": "s"} if present else {}
    local = run([skill], ["Undeclared"], dict(data))
    isolated = run([skill], ["Undeclared"], dict(data), isolate_skills=["Undeclared"])
    expected = "UndeclaredWriteError" if how == "write" else "UndeclaredReadError"
    for report in (local, isolated):
        result = result_of(report, "Undeclared")
        assert (result.status, result.error_type) == ("failed", expected), result.error
        assert "'secret'" in (result.error or "")
    assert result_of(isolated, "Undeclared").error == result_of(local, "Undeclared").error


def test_sof_errors_travel_back_from_a_worker_as_themselves() -> None:
    from sof_core.errors import PluginError, SkillExecutionError, UndeclaredReadError
    from sof_core.security.unpickling import load_reply

    made = ('UndeclaredReadError("S", "k"), PluginError("p", "broken"), '
            'SkillExecutionError("failed", "S")')
    # Pickled in a process of its own, as a worker does (this one may have tblib's
    # reducers installed by another test's Dask cluster).
    code = ("import pickle, sys\nfrom sof_core.errors import PluginError, "
            "SkillExecutionError, UndeclaredReadError\n"
            f"sys.stdout.buffer.write(pickle.dumps(({made})))\n")
    sent = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60,
                          check=True).stdout
    expected = (UndeclaredReadError("S", "k"), PluginError("p", "broken"),
                SkillExecutionError("failed", "S"))
    for back, error in zip(load_reply(sent), expected, strict=True):  # read as at home
        assert type(back) is type(error) and str(back) == str(error)
        assert back.__dict__ == error.__dict__


def _sleeper(index: int) -> type:
    def execute(self: Any, uif: UIF) -> UIF:
        time.sleep(0.6)
        uif.intermediate_data[f"slept{index}"] = True
        return uif

    return type(f"Sleeper{index}", (BaseSkillModule,), {
        "skill_name": f"Sleeper{index}", "skill_description": "sleeps 0.6 s in a worker",
        "required_inputs": ["input_query"], "output_keys": [f"slept{index}"],
        "isolation": "process", "max_execution_time": 1.0, "execute": execute,
    })


def test_an_isolated_steps_time_starts_when_a_worker_takes_it() -> None:
    # Three 0.6 s skills under 1 s limits and two workers: the third waits ~0.6 s for one.
    # Before, the wait counted: it was killed at 1 s ("its process was killed").
    classes = [_sleeper(i) for i in range(3)]
    report = run(classes, isolation_workers=2, executor="threads")
    assert report.status == "success", [(r.skill, r.status, r.error) for r in report.results]
    assert report.stages == [[c.skill_name for c in classes]]  # they ran as one stage


def test_an_isolated_step_is_still_killed_at_its_own_deadline_after_waiting() -> None:
    hangs = type("HangsAfterWait", (BaseSkillModule,), {
        "skill_name": "HangsAfterWait", "skill_description": "sleeps far past its limit",
        "required_inputs": ["input_query"], "output_keys": ["never"],
        "isolation": "process", "max_execution_time": 0.8,
        "execute": lambda self, uif: time.sleep(30),
    })
    classes = [_sleeper(0), _sleeper(1), hangs]
    started = time.monotonic()
    report = run(classes, isolation_workers=2, continue_on_skill_failure=True)
    took = time.monotonic() - started
    assert result_of(report, "HangsAfterWait").status == "timeout"
    assert "killed" in (result_of(report, "HangsAfterWait").error or "")
    assert took < 10  # a hang bound: killed at ~0.8 s after it got a worker, not 30 s
