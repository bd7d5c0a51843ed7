"""The plugin contract (``sof plugins check``, ``sof_plugin_contract``, ``--sof-contract``)
against real installed distributions: the bundled plugins pass it, and each way a plugin
can break it is caught and named."""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest

from sof_core.cli.contract import CHECKS, PLUGIN_CHECKS, SKILL_CHECKS, check_plugins
from sof_core.cli.main import installed_plugins

REQUIRES = ["sof-core>=0.1,<0.2"]

GOOD = """
from sof_core import BaseSkillModule, SkillExecutionError, hookimpl

class CountWords(BaseSkillModule):
    skill_name = "CountWords"
    skill_description = "Counts the query's words"
    required_inputs = ["input_query"]
    output_keys = [("good_count", int)]

    def execute(self, uif):
        uif.intermediate_data["good_count"] = len(uif.input_query.split())
        return uif

class SayCount(BaseSkillModule):
    skill_name = "SayCount"
    skill_description = "Says the count"
    required_inputs = [("good_count", int)]
    output_keys = [("good_sentence", str)]

    async def execute(self, uif):
        import asyncio
        count = uif.intermediate_data["good_count"]
        if not isinstance(count, int):
            raise SkillExecutionError("good_count must be an int", self.skill_name)
        await asyncio.sleep(0)
        uif.intermediate_data["good_sentence"] = f"{count} words"
        return uif

@hookimpl
def sof_register_skills():
    return [CountWords, SayCount]
"""

SWALLOWS = """
import asyncio
from sof_core import BaseSkillModule, hookimpl

class Swallow(BaseSkillModule):
    skill_name = "Swallow"
    skill_description = "Catches its cancellation and returns"
    required_inputs = ["input_query"]
    output_keys = ["swallow_out"]

    async def execute(self, uif):
        try:
            await asyncio.sleep(0.01)
        except asyncio.CancelledError:
            pass
        uif.intermediate_data["swallow_out"] = 1
        return uif

@hookimpl
def sof_register_skills():
    return [Swallow]
"""

LEAKS = """
import asyncio
from sof_core import BaseSkillModule, hookimpl

class Leak(BaseSkillModule):
    skill_name = "Leak"
    skill_description = "Starts a task it never cancels"
    required_inputs = ["input_query"]
    output_keys = ["leak_out"]

    async def execute(self, uif):
        asyncio.ensure_future(asyncio.sleep(30))
        await asyncio.sleep(0.01)
        uif.intermediate_data["leak_out"] = 1
        return uif

@hookimpl
def sof_register_skills():
    return [Leak]
"""

IGNORES = """
import asyncio
from sof_core import BaseSkillModule, hookimpl

class Stubborn(BaseSkillModule):
    skill_name = "Stubborn"
    skill_description = "Goes on after it is cancelled"
    required_inputs = ["input_query"]
    output_keys = ["stubborn_out"]
    max_execution_time = 0.3

    async def execute(self, uif):
        for _ in range(3):
            try:
                await asyncio.sleep(0.01)
            except asyncio.CancelledError:  # ignored: it goes on for a second
                await asyncio.sleep(1)
        uif.intermediate_data["stubborn_out"] = 1
        return uif

@hookimpl
def sof_register_skills():
    return [Stubborn]
"""

UNTYPED = """
from sof_core import BaseSkillModule, hookimpl

class Total(BaseSkillModule):
    skill_name = "Total"
    skill_description = "Adds numbers up"
    required_inputs = [("numbers", list)]
    output_keys = ["total"]
    contract_sample = {"numbers": [1, 2, 3]}

    def execute(self, uif):
        uif.intermediate_data["total"] = sum(uif.intermediate_data["numbers"])
        return uif

@hookimpl
def sof_register_skills():
    return [Total]
"""

UNPICKLABLE = """
import threading
from sof_core import BaseSkillModule, hookimpl

class Locked(BaseSkillModule):
    skill_name = "Locked"
    skill_description = "Holds a lock"
    required_inputs = ["input_query"]
    output_keys = ["locked_out"]

    def __init__(self):
        super().__init__()
        self._lock = threading.Lock()

    def execute(self, uif):
        with self._lock:
            uif.intermediate_data["locked_out"] = 1
        return uif

@hookimpl
def sof_register_skills():
    return [Locked]
"""

LAZY = """
from sof_core import BaseSkillModule, hookimpl

class Lazy(BaseSkillModule):
    skill_name = "Lazy"
    skill_description = "Declares an output it never writes"
    required_inputs = ["input_query"]
    output_keys = ["lazy_out"]

    def execute(self, uif):
        return uif

@hookimpl
def sof_register_skills():
    return [Lazy]
"""

CLASH = """
from sof_core import BaseSkillModule, hookimpl

class MemoryRetrievalSkill(BaseSkillModule):
    skill_name = "MemoryRetrievalSkill"
    skill_description = "Takes a bundled skill's name"
    required_inputs = ["input_query"]
    output_keys = ["clash_out"]

    def execute(self, uif):
        uif.intermediate_data["clash_out"] = 1
        return uif

@hookimpl
def sof_register_skills():
    return [MemoryRetrievalSkill]
"""

NO_SAMPLE = """
from sof_core import BaseSkillModule, hookimpl

class Mystery(BaseSkillModule):
    skill_name = "Mystery"
    skill_description = "Reads a key nobody writes"
    required_inputs = ["mystery_in"]
    output_keys = ["mystery_out"]

    def execute(self, uif):
        return uif

@hookimpl
def sof_register_skills():
    return [Mystery]
"""


def _by_check(report: Any, skill: str | None = None) -> dict[str, Any]:
    return {c.check: c for c in report.checks if c.skill == skill}


def test_each_way_of_breaking_the_contract_is_caught_and_named(dists: Any) -> None:
    dists.add("contract-good", GOOD, entry_name="good", requires=REQUIRES)
    dists.add("contract-swallows", SWALLOWS, entry_name="swallows", requires=REQUIRES)
    dists.add("contract-leaks", LEAKS, entry_name="leaks", requires=REQUIRES)
    dists.add("contract-ignores", IGNORES, entry_name="ignores", requires=REQUIRES)
    dists.add("contract-untyped", UNTYPED, entry_name="untyped", requires=REQUIRES)
    dists.add("contract-unpicklable", UNPICKLABLE, entry_name="unpicklable", requires=REQUIRES)
    dists.add("contract-lazy", LAZY, entry_name="lazy", requires=REQUIRES)
    dists.add("contract-norequire", GOOD.replace("good_", "norequire_").replace(
        "CountWords", "CountWords2").replace("SayCount", "SayCount2"), entry_name="norequire")
    dists.add("contract-clash", CLASH, entry_name="clash", requires=REQUIRES)
    dists.add("contract-broken", "raise ImportError('no such backend')\n",
              entry_name="broken", requires=REQUIRES)
    dists.add("contract-nosample", NO_SAMPLE, entry_name="nosample", requires=REQUIRES)
    names = ["good", "swallows", "leaks", "ignores", "untyped", "unpicklable", "lazy",
             "norequire", "clash", "broken", "nosample"]
    reports = {r.plugin: r for r in check_plugins(names)}

    good = reports["good"]
    assert good.passed, good.summary()
    assert {c.check for c in good.checks} == set(CHECKS)
    assert _by_check(good, "SayCount")["cancel"].status == "passed"
    assert _by_check(good, "CountWords")["cancel"].status == "skipped"  # synchronous
    # The async skill's sample came from the installed skill that produces its input.
    assert _by_check(good, "SayCount")["outputs"].status == "passed"

    def failed(plugin: str, skill: str | None, check: str) -> str:
        report = reports[plugin]
        assert not report.passed
        result = _by_check(report, skill)[check]
        assert result.status == "failed", report.summary()
        assert [c.check for c in report.failures()] == [check], report.summary()
        return result.detail

    assert "swallowed the cancellation" in failed("swallows", "Swallow", "cancel")
    assert "left 1 task(s) running" in failed("leaks", "Leak", "cancel")
    assert "still running" in failed("ignores", "Stubborn", "cancel")
    detail = failed("untyped", "Total", "errors")
    assert "malformed 'numbers'" in detail and "TypeError" in detail
    assert "SkillExecutionError" in detail  # what to do instead
    assert "pickle" in failed("unpicklable", "Locked", "pickle")
    assert "['lazy_out']" in failed("lazy", "Lazy", "outputs")
    detail = failed("norequire", None, "requirement")
    assert "'contract-norequire' declares no sof-core requirement" in detail
    assert "sof-core>=0.1,<0.2" in detail
    assert "MemoryRetrievalSkill" in failed("clash", None, "conflicts")
    assert _by_check(reports["clash"], "MemoryRetrievalSkill")["outputs"].status == "skipped"

    broken = reports["broken"]
    assert _by_check(broken)["loads"].status == "failed"
    assert "no such backend" in _by_check(broken)["loads"].detail
    assert all(c.status == "skipped" for c in broken.checks if c.check != "loads")

    nosample = reports["nosample"]
    assert nosample.passed  # nothing could be run, so nothing failed; the reason says why
    skipped = _by_check(nosample, "Mystery")["outputs"]
    assert skipped.status == "skipped" and "contract_sample = {'mystery_in': ...}" in skipped.detail


def test_undeclared_changes_are_caught_when_declarations_are_relaxed(
    dists: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A SAM skill may write undeclared keys with strict_declarations off (logged only); the
    # contract still refuses it.
    dists.add("contract-samstyle", """
from sof_core import hookimpl
from sof_sam.skills.base import BaseSkillModule

class Sloppy(BaseSkillModule):
    skill_name = "Sloppy"
    skill_description = "Writes a key it does not declare"
    required_inputs = ["input_query"]
    output_keys = ["sloppy_out"]

    def execute(self, uif):
        uif.intermediate_data["sloppy_out"] = 1
        uif.intermediate_data["sloppy_extra"] = 2
        return uif

@hookimpl
def sof_register_skills():
    return [Sloppy]
""", entry_name="samstyle", requires=REQUIRES)
    monkeypatch.setenv("SOF_STRICT_DECLARATIONS", "0")
    report = check_plugins(["samstyle"])[0]
    check = _by_check(report, "Sloppy")["undeclared"]
    assert check.status == "failed" and "sloppy_extra" in check.detail, report.summary()


def test_every_bundled_plugin_keeps_the_contract() -> None:
    bundled = sorted({name for name, dist, _ in installed_plugins()
                      if _is_bundled(dist)})
    assert {"memory", "response", "conflict", "dask"} <= set(bundled)
    reports = check_plugins(bundled)
    for report in reports:
        assert report.passed, report.summary()
    # Each bundled skill was really run, not skipped.
    ran = [c for r in reports for c in r.checks if c.check == "outputs"]
    assert ran and all(c.status == "passed" for c in ran)


def _is_bundled(distribution: str) -> bool:
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent / "plugins"
    return (root / distribution / "pyproject.toml").exists()


def test_checks_never_touch_the_users_memory_or_data(dists: Any, tmp_path: Any,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.delenv("SOF_MEMORY_PATH", raising=False)
    check_plugins(["memory"])
    assert not (home / "data").exists()
    import os

    assert os.environ["XDG_DATA_HOME"] == str(home / "data")
    assert "SOF_MEMORY_PATH" not in os.environ


def test_sof_plugins_check_exit_codes_and_output(dists: Any, sof_cli: Any) -> None:
    dists.add("contract-good", GOOD, entry_name="good", requires=REQUIRES)
    dists.add("contract-lazy", LAZY, entry_name="lazy", requires=REQUIRES)
    env = dists.env()
    ok = sof_cli("plugins", "check", "good", env=env)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "plugin good (contract-good 1.0): passed" in ok.stdout
    assert "all 1 plugin(s) keep the contract" in ok.stdout
    for check in (*PLUGIN_CHECKS, *SKILL_CHECKS):
        assert check in ok.stdout

    bad = sof_cli("plugins", "check", "good", "contract-lazy", env=env)
    assert bad.returncode == 1
    assert "plugin lazy (contract-lazy 1.0): FAILED (1 checks)" in bad.stdout
    assert "1 of 2 plugin(s) break the contract: lazy" in bad.stdout

    data = json.loads(sof_cli("plugins", "check", "lazy", "--json", env=env).stdout)
    assert data[0]["plugin"] == "lazy" and data[0]["passed"] is False
    assert {"check": "outputs", "skill": "Lazy", "status": "failed"}.items() <= {
        k: v for k, v in next(c for c in data[0]["checks"] if c["check"] == "outputs").items()
    }.items()

    unknown = sof_cli("plugins", "check", "nope", env=env)
    assert unknown.returncode == 2
    assert unknown.stderr.startswith("sof: error: no plugin named 'nope' is installed")
    assert unknown.stderr.count("\n") == 1 and "Traceback" not in unknown.stderr

    too_many = sof_cli("plugins", "good", "lazy", env=env)
    assert too_many.returncode == 2 and "one NAME" in too_many.stderr


def test_the_sof_plugin_contract_fixture_and_the_pytest_option(dists: Any, tmp_path: Any) -> None:
    import subprocess

    dists.add("contract-good", GOOD, entry_name="good", requires=REQUIRES)
    dists.add("contract-lazy", LAZY, entry_name="lazy", requires=REQUIRES)
    (tmp_path / "test_uses_fixture.py").write_text(
        "import pytest\n"
        "from sof_core.testing import ContractViolation\n\n"
        "def test_good(sof_plugin_contract):\n"
        "    report = sof_plugin_contract('good')\n"
        "    assert report.passed\n\n"
        "def test_lazy(sof_plugin_contract):\n"
        "    with pytest.raises(ContractViolation, match=r\"\\[outputs\\] Lazy: declares outputs \\['lazy_out'\\]\"):\n"
        "        sof_plugin_contract('lazy')\n"
    )
    env = dists.env()
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         str(tmp_path / "test_uses_fixture.py"), "--sof-contract=good,lazy"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120, check=False,
    )
    out = run.stdout + run.stderr
    assert "1 failed, 3 passed" in out, out
    assert "sof-contract[lazy]" in out
    assert "plugin 'lazy' breaks the SOF contract" in out
    assert "[outputs] Lazy: declares outputs ['lazy_out'] but did not write them" in out
