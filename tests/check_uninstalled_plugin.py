"""Run by `nox -s tests` after `pip uninstall sof-conflict`: the other plugins keep working.

Not a pytest module (uninstalling from the test run's own environment would break the tests
that follow); nox runs it as the last step of the session, in the session's virtualenv.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

QUERY = "When was the SAM memory system redesigned?"


def sof(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sof_core.cli", *args], capture_output=True,
                          text=True, env=env, timeout=120, check=False)


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SOF_")}
        env["SOF_CONFIG"] = str(Path(tmp) / "config.json")
        env["SOF_MEMORY_PATH"] = str(Path(tmp) / "memory.db")
        checks = []
        listing = sof("plugins", env=env)
        checks.append(("sof plugins no longer lists conflict",
                       listing.returncode == 0 and "sof-conflict" not in listing.stdout))
        checks.append(("memory import still works",
                       sof("memory", "import", "--sample", env=env).returncode == 0))
        answer = sof("run", QUERY, env=env)
        checks.append(("the default plan still answers",
                       answer.returncode == 0 and "redesigned" in answer.stdout))
        missing = sof("run", QUERY, "--plan", "MemoryRetrievalSkill", "ConflictDetectorSkill",
                      "ResponseGenerationSkill", env=env)
        checks.append(("a plan needing the missing skill fails validation clearly",
                       missing.returncode == 1
                       and "unknown skill 'ConflictDetectorSkill'" in missing.stderr
                       and "Traceback" not in missing.stderr))
        for name, ok in checks:
            print(f"{'ok  ' if ok else 'FAIL'} {name}")
        failed = sum(not ok for _, ok in checks)
        print(f"{len(checks) - failed} passed, {failed} failed")
        return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
