"""`sof run` with a hung skill exits as soon as it has printed, and says how many abandoned
calls it left behind (issue 10, item 2): the hung call's thread is a daemon, never joined."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

HUNG_PLUGIN = """
import time
from sof_core import BaseSkillModule, hookimpl

class Hang(BaseSkillModule):
    skill_name = "Hang"
    skill_description = "sleeps 30 s under a 0.5 s limit"
    required_inputs = ["input_query"]
    output_keys = ["final_response"]
    max_execution_time = 0.5

    def execute(self, uif):
        time.sleep(30)
        return uif

@hookimpl
def sof_register_skills():
    return [Hang]
"""


def _run_and_time(args: list[str], env: dict[str, str]) -> tuple[int, str, str, float]:
    """Run the CLI; return (exit code, stdout, stderr, seconds from its last output to its
    exit)."""
    proc = subprocess.Popen([sys.executable, "-m", "sof_core.cli", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out: list[str] = []
    err: list[str] = []
    last = [time.monotonic()]

    def pump(stream: Any, into: list[str]) -> None:
        for line in stream:
            into.append(line)
            last[0] = time.monotonic()

    readers = [threading.Thread(target=pump, args=(proc.stdout, out), daemon=True),
               threading.Thread(target=pump, args=(proc.stderr, err), daemon=True)]
    for reader in readers:
        reader.start()
    try:
        proc.wait(20)  # a hang bound: the hung skill sleeps 30 s
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError(f"sof run did not exit; printed {''.join(out)!r}") from None
    exited = time.monotonic()
    for reader in readers:
        reader.join(5)
    return proc.returncode, "".join(out), "".join(err), exited - last[0]


def _installed(dists: Any, tmp_path: Path, name: str, plugin: str) -> dict[str, str]:
    """The environment of a `sof` with plugin ``name`` installed and no SOF settings."""
    dists.add(name, plugin)
    env = dists.env()
    for key in [k for k in env if k.startswith("SOF_")]:
        del env[key]
    env["SOF_CONFIG"] = str(tmp_path / "none.json")
    return dict(env)


def test_sof_run_with_a_hung_skill_exits_right_after_printing(dists: Any, tmp_path: Path) -> None:
    env = _installed(dists, tmp_path, "sof-hang", HUNG_PLUGIN)
    code, out, err, after_print = _run_and_time(["run", "hello", "--plan", "Hang"], env)
    assert code == 1
    assert "status: timeout" in out
    assert "Hang" in err and "did not finish within 0.5s" in err
    assert "1 abandoned skill call still running (Hang: 1)" in err
    assert after_print < 1.0, f"exited {after_print:.1f}s after printing"


def test_sof_run_json_keeps_stdout_clean_and_says_so_on_stderr(
    dists: Any, tmp_path: Path
) -> None:
    import json

    dists.add("sof-hang", HUNG_PLUGIN)
    env = dists.env()
    env["SOF_CONFIG"] = str(tmp_path / "none.json")
    code, out, err, after_print = _run_and_time(["run", "hello", "--plan", "Hang", "--json"],
                                                env)
    assert code == 1
    assert json.loads(out)["status"] == "timeout"
    assert "abandoned skill call" in err
    assert after_print < 1.0


LEAVES_PLUGIN = """
import threading, time
from concurrent.futures import ThreadPoolExecutor
from sof_core import BaseSkillModule, hookimpl

_pool = ThreadPoolExecutor(1, thread_name_prefix="plugin-pool")

class Leaves(BaseSkillModule):
    skill_name = "Leaves"
    skill_description = "answers at once, leaving a thread of its own behind"
    required_inputs = ["input_query"]
    output_keys = ["final_response"]

    def execute(self, uif):
        if "pool" in uif.input_query:
            _pool.submit(time.sleep, 30)  # the interpreter joins these workers at exit
        else:
            threading.Thread(target=time.sleep, args=(30,), name="left-behind",
                             daemon=False).start()
        uif.final_response = "done"
        return uif

class HangsInPool(BaseSkillModule):
    skill_name = "HangsInPool"
    skill_description = "waits under a 0.5 s limit on a task of its own executor that hangs"
    required_inputs = ["input_query"]
    output_keys = ["final_response"]
    max_execution_time = 0.5

    def execute(self, uif):
        with ThreadPoolExecutor(1, thread_name_prefix="skill-pool") as pool:
            pool.submit(time.sleep, 30).result()
        return uif

@hookimpl
def sof_register_skills():
    return [Leaves, HangsInPool]
"""


def test_sof_run_exits_after_printing_even_when_a_skill_left_a_non_daemon_thread(
    dists: Any, tmp_path: Path
) -> None:
    """A skill's own non-daemon thread (or executor) would make the interpreter wait for it
    at exit; `sof run` says so and leaves without it."""
    env = _installed(dists, tmp_path, "sof-leaves", LEAVES_PLUGIN)
    for query, name in (("a thread", "left-behind"), ("a pool", "plugin-pool_0")):
        code, out, err, after_print = _run_and_time(["run", query, "--plan", "Leaves"], env)
        assert code == 0, err
        assert "done" in out and "status: success" in out
        assert (f"sof: exiting without waiting for 1 thread still running ({name}) that "
                "exit would wait for" in err)
        assert after_print < 1.0, f"exited {after_print:.1f}s after printing"


def test_sof_run_exits_after_printing_when_an_abandoned_skill_hangs_in_its_own_executor(
    dists: Any, tmp_path: Path
) -> None:
    """The skill is abandoned at its timeout, but the interpreter would still join its
    executor's worker at exit (`concurrent.futures` does, daemon thread or not)."""
    env = _installed(dists, tmp_path, "sof-leaves", LEAVES_PLUGIN)
    code, out, err, after_print = _run_and_time(["run", "q", "--plan", "HangsInPool"], env)
    assert code == 1
    assert "status: timeout" in out
    assert "1 abandoned skill call still running (HangsInPool: 1)" in err
    assert "still running (skill-pool_0)" in err
    assert after_print < 1.0, f"exited {after_print:.1f}s after printing"
