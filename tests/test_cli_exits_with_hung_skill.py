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


def test_sof_run_with_a_hung_skill_exits_right_after_printing(dists: Any, tmp_path: Path) -> None:
    dists.add("sof-hang", HUNG_PLUGIN)
    env = dists.env()
    for key in [k for k in env if k.startswith("SOF_")]:
        del env[key]
    env["SOF_CONFIG"] = str(tmp_path / "none.json")
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
