"""The skill-author tutorial works as written: its plugin installs, loads, runs and its tests pass."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

TUTORIAL = Path(__file__).resolve().parent.parent / "docs" / "tutorial-first-skill-plugin.md"


def code_blocks(language: str) -> list[str]:
    text = TUTORIAL.read_text(encoding="utf-8")
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)


def test_tutorial_plugin_and_its_tests_work_as_written(dists: Any, sof_cli: Any) -> None:
    plugin_source, test_source = (b for b in code_blocks("python") if "sof_" in b)
    package = dists.root / "sof_wordcount"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "plugin.py").write_text(plugin_source)
    info = dists.root / "sof_wordcount-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: sof-wordcount\nVersion: 0.1.0\n"
        "Requires-Dist: sof-core>=0.1,<0.2\n"
    )
    (info / "entry_points.txt").write_text("[sof.plugins]\nwordcount = sof_wordcount.plugin\n")
    env = dists.env()

    listing = sof_cli("plugins", env=env)
    assert re.search(r"wordcount\s+0\.1\.0\s+sof-wordcount\s+loaded", listing.stdout), listing.stdout
    invalid = sof_cli("validate", "WordCountAnswerSkill", env=env)
    assert invalid.returncode == 1 and "'word_count'" in invalid.stdout
    answer = sof_cli("run", "how long is this question", "--plan", "WordCountSkill",
                     "WordCountAnswerSkill", "--trace", env=env)
    assert answer.returncode == 0, answer.stderr
    assert "Your question has 5 words." in answer.stdout
    goal = sof_cli("run", "how long is this question", "--goal", "final_response",
                   "--prefer", "final_response=WordCountAnswerSkill", env=env)
    assert "Your question has 5 words." in goal.stdout, goal.stderr

    test_file = dists.root / "test_wordcount_tutorial.py"
    test_file.write_text(test_source)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test_file)],
        capture_output=True, text=True, env=env, cwd=dists.root, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout
