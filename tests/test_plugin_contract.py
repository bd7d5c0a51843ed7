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

HOLDS_LAMBDA = """
from sof_core import BaseSkillModule, hookimpl

class Scaler(BaseSkillModule):
    skill_name = "Scaler"
    skill_description = "Keeps a lambda in its state, which travels by value"
    required_inputs = ["input_query"]
    output_keys = ["scaled_out"]

    def __init__(self):
        super().__init__()
        self.scale = lambda n: n * 3

    def execute(self, uif):
        uif.intermediate_data["scaled_out"] = self.scale(len(uif.input_query))
        return uif

@hookimpl
def sof_register_skills():
    return [Scaler]
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


PARAMETERISED = """
from sof_core import BaseSkillModule, hookimpl

class Tags(BaseSkillModule):
    skill_name = "Tags"
    skill_description = "Reads a list of strings nobody writes"
    required_inputs = [("tag_list", list[str])]
    output_keys = ["tag_count"]

    def execute(self, uif):
        uif.intermediate_data["tag_count"] = len(uif.intermediate_data["tag_list"])
        return uif

@hookimpl
def sof_register_skills():
    return [Tags]
"""


BAD_DECLARATION = """
from sof_core import BaseSkillModule, hookimpl

class Twice(BaseSkillModule):
    skill_name = "Twice"
    skill_description = "Lists an output twice"
    required_inputs = ["input_query"]
    output_keys = ["twice_out", "twice_out"]

    def execute(self, uif):
        uif.intermediate_data["twice_out"] = 1
        return uif

@hookimpl
def sof_register_skills():
    return [Twice]
"""


def _by_check(report: Any, skill: str | None = None) -> dict[str, Any]:
    return {c.check: c for c in report.checks if c.skill == skill}


def test_a_skill_that_travels_by_value_passes_the_pickle_check(dists: Any) -> None:
    """A lambda in the instance's state: plain pickle refuses it, isolation and Dask send it
    by value, so the check that stands for them passes it."""
    dists.add("contract-lambda", HOLDS_LAMBDA, entry_name="lambda", requires=REQUIRES)
    (report,) = check_plugins(["lambda"])
    assert _by_check(report, "Scaler")["pickle"].status == "passed", report.summary()


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
    dists.add("contract-baddecl", BAD_DECLARATION, entry_name="baddecl", requires=REQUIRES)
    dists.add("contract-tags", PARAMETERISED, entry_name="tags", requires=REQUIRES)
    names = ["good", "swallows", "leaks", "ignores", "untyped", "unpicklable", "lazy",
             "norequire", "clash", "broken", "nosample", "baddecl", "tags"]
    reports = {r.plugin: r for r in check_plugins(names)}

    good = reports["good"]
    assert good.passed, good.summary()
    assert good.summary().startswith("plugin 'good' keeps the SOF contract (")  # not "breaks"
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
    assert "the skill instance cannot be pickled" in failed("unpicklable", "Locked", "pickle")
    assert "['lazy_out']" in failed("lazy", "Lazy", "outputs")
    detail = failed("norequire", None, "requirement")
    assert "'contract-norequire' declares no sof-core requirement" in detail
    assert "sof-core>=0.1,<0.2" in detail
    assert "MemoryRetrievalSkill" in failed("clash", None, "conflicts")
    assert _by_check(reports["clash"], "MemoryRetrievalSkill")["outputs"].status == "skipped"

    broken = reports["broken"]
    assert _by_check(broken)["loads"].status == "failed"
    assert "no such backend" in _by_check(broken)["loads"].detail
    # The distribution's requirement is read from its metadata, loaded or not.
    assert _by_check(broken)["requirement"].status == "passed"
    assert all(c.status == "skipped" for c in broken.checks
               if c.check not in ("loads", "requirement"))

    baddecl = reports["baddecl"]
    # Declarations are checked when the class is defined, so the import fails: the check
    # named is still `declarations`, with the skill and the key at fault.
    assert _by_check(baddecl)["loads"].status == "passed"
    declarations = _by_check(baddecl)["declarations"]
    assert declarations.status == "failed", baddecl.summary()
    assert "SkillDefinitionError" in declarations.detail and "'Twice'" in declarations.detail
    assert "'twice_out' twice" in declarations.detail
    assert _by_check(baddecl)["requirement"].status == "passed"
    assert all(c.status == "skipped" for c in baddecl.checks
               if c.check not in ("loads", "declarations", "requirement"))

    nosample = reports["nosample"]
    assert nosample.passed  # nothing could be run, so nothing failed; the reason says why
    skipped = _by_check(nosample, "Mystery")["outputs"]
    assert skipped.status == "skipped" and "contract_sample = {'mystery_in': ...}" in skipped.detail
    # A parameterised type is its class: list[str] gets an empty list, and the skill runs.
    assert _by_check(reports["tags"], "Tags")["outputs"].status == "passed"


COMPONENT_CLASH = """
from sof_core import hookimpl

class Backend:
    name = "extractive"  # sof-response's backend has this name

    def generate(self, messages, *, stream=False, controller=None):
        return None

@hookimpl
def sof_register_llm_backends():
    return [Backend()]
"""


def test_a_component_name_that_keeps_another_plugin_from_loading_is_a_conflict(
    dists: Any,
) -> None:
    # Whichever of the two loads first wins the name; the other fails. Both break the contract.
    dists.add("contract-compclash", COMPONENT_CLASH, entry_name="compclash", requires=REQUIRES)
    dists.add("contract-twins-a", "from sof_core import hookimpl\n", entry_name="twins",
              requires=REQUIRES)
    dists.add("contract-twins-b", "from sof_core import hookimpl\n", entry_name="twins",
              requires=REQUIRES)
    reports = {r.plugin: r for r in check_plugins(["compclash", "response", "contract-twins-b"])}
    clash = _by_check(reports["compclash"])["conflicts"]
    assert clash.status == "failed", reports["compclash"].summary()
    assert "plugin 'response' (sof-response) could not load" in clash.detail
    assert "llm backend 'extractive'" in clash.detail
    assert not reports["response"].passed
    assert _by_check(reports["response"])["conflicts"].status == "failed"
    # Two distributions declaring one entry-point name: neither loads, the check says so.
    twins = _by_check(reports["twins (contract-twins-b)"])["conflicts"]
    assert twins.status == "failed"
    assert "declared by distributions 'contract-twins-a', 'contract-twins-b'" in twins.detail
    with pytest.raises(LookupError, match=r"plugin name 'twins' is declared by several "
                       r"distributions \('contract-twins-a', 'contract-twins-b'\); name one"):
        check_plugins(["twins"])


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


def test_sof_contract_without_names_adds_one_test_per_installed_plugin(
    dists: Any, tmp_path: Any
) -> None:
    import subprocess

    dists.add("contract-good", GOOD, entry_name="good", requires=REQUIRES)
    (tmp_path / "test_plain.py").write_text("def test_plain():\n    pass\n")
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
         "--sof-contract", str(tmp_path / "test_plain.py")],
        capture_output=True, text=True, env=dists.env(), cwd=tmp_path, timeout=120, check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    collected = {line.rsplit("::", 1)[-1] for line in run.stdout.splitlines() if "::" in line}
    expected = {f"sof-contract[{name}]" for name, _, _ in installed_plugins()} | {
        "sof-contract[good]", "test_plain"}
    assert collected == expected  # and the path after the option is still a test path
    assert f"{len(expected)} tests collected" in run.stdout


HANGS = """
import threading
from sof_core import BaseSkillModule, hookimpl

RELEASE = threading.Event()

class Hangs(BaseSkillModule):
    skill_name = "Hangs"
    skill_description = "Does not return until released"
    required_inputs = ["input_query"]
    output_keys = ["hangs_out"]
    max_execution_time = 0.3

    def execute(self, uif):
        RELEASE.wait(60)
        uif.intermediate_data["hangs_out"] = 1
        return uif

@hookimpl
def sof_register_skills():
    return [Hangs]
"""

STRICT_SLOPPY = """
from sof_core import BaseSkillModule, hookimpl

class Sloppy2(BaseSkillModule):
    skill_name = "Sloppy2"
    skill_description = "Writes a key it does not declare"
    required_inputs = ["input_query"]
    output_keys = ["sloppy2_out"]

    def execute(self, uif):
        uif.intermediate_data["sloppy2_out"] = 1
        uif.intermediate_data["sloppy2_extra"] = 2
        return uif

@hookimpl
def sof_register_skills():
    return [Sloppy2]
"""


def test_a_skill_that_never_returns_is_reported_and_the_check_finishes(dists: Any) -> None:
    import threading
    import time

    module = dists.add("contract-hangs", HANGS, entry_name="hangs", requires=REQUIRES)
    dists.add("contract-strict-sloppy", STRICT_SLOPPY, entry_name="strictsloppy",
              requires=REQUIRES)
    started = time.monotonic()
    box: list[Any] = []
    worker = threading.Thread(target=lambda: box.append(check_plugins(["hangs", "strictsloppy"])),
                              daemon=True)
    worker.start()
    worker.join(30)  # a hang bound only: every call of the skill is limited to 0.3 s
    try:
        assert box, "the contract check never finished"
        assert time.monotonic() - started < 30
        reports = {r.plugin: r for r in box[0]}
        hangs = _by_check(reports["hangs"], "Hangs")
        assert hangs["outputs"].status == "failed" and "SkillTimeoutError" in hangs["outputs"].detail
        # The coordinator's own record of the failure is not an undeclared write.
        assert hangs["undeclared"].status == "passed", reports["hangs"].summary()
        assert hangs["pickle"].status == "skipped"
        assert "did not finish in 0.3 s" in hangs["pickle"].detail
        # With strict declarations (the default) the run fails on the undeclared write: the
        # undeclared check names it.
        sloppy = _by_check(reports["strictsloppy"], "Sloppy2")["undeclared"]
        assert sloppy.status == "failed" and "sloppy2_extra" in sloppy.detail, sloppy
    finally:
        sys.modules[module].RELEASE.set()


CRASHES = """
import os
import signal
from sof_core import BaseSkillModule, hookimpl

class Quits(BaseSkillModule):
    skill_name = "Quits"
    skill_description = "Ends the process it runs in"
    required_inputs = ["input_query"]
    output_keys = ["quits_out"]

    def execute(self, uif):
        os._exit(7)

class Fine(BaseSkillModule):
    skill_name = "Fine"
    skill_description = "Keeps the contract"
    required_inputs = ["input_query"]
    output_keys = ["fine_out"]

    def execute(self, uif):
        uif.intermediate_data["fine_out"] = 1
        return uif

class Killed(BaseSkillModule):
    skill_name = "Killed"
    skill_description = "Is killed by the kernel when unpickled and run"
    required_inputs = ["input_query"]
    output_keys = ["killed_out"]

    def execute(self, uif):
        if getattr(self, "_unpickled", False):
            os.kill(os.getpid(), signal.SIGKILL)
        uif.intermediate_data["killed_out"] = 1
        return uif

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._unpickled = True

@hookimpl
def sof_register_skills():
    return [Fine, Quits]
"""

KILLED = CRASHES.replace("return [Fine, Quits]", "return [Killed]")


def test_a_skill_that_ends_the_process_fails_its_check_and_the_others_go_on(
    dists: Any, sof_cli: Any, tmp_path: Any
) -> None:
    dists.add("contract-crashes", CRASHES, entry_name="crashes", requires=REQUIRES)
    dists.add("contract-killed", KILLED, entry_name="killed", requires=REQUIRES)
    dists.add("contract-good", GOOD, entry_name="good", requires=REQUIRES)
    done = sof_cli("plugins", "check", "crashes", "killed", "good", "--json", env=dists.env())
    assert done.returncode == 1, done.stdout + done.stderr
    reports = {r["plugin"]: r for r in json.loads(done.stdout)}
    assert list(reports) == ["crashes", "killed", "good"]
    assert reports["good"]["passed"] is True

    crashes = reports["crashes"]
    assert (crashes["distribution"], crashes["version"]) == ("contract-crashes", "1.0")
    checks = {(c["check"], c["skill"]): c for c in crashes["checks"]}
    # Everything before the crash kept its result; the running check failed with how it died.
    assert checks[("loads", None)]["status"] == "passed"
    assert checks[("pickle", "Fine")]["status"] == "passed"
    died = checks[("outputs", "Quits")]
    assert died["status"] == "failed"
    assert "the process running this check exited with code 7" in died["detail"]
    assert [c["check"] for c in crashes["checks"] if c["status"] == "failed"] == ["outputs"]

    killed = {(c["check"], c["skill"]): c for c in reports["killed"]["checks"]}
    assert killed[("outputs", "Killed")]["status"] == "passed"
    assert killed[("pickle", "Killed")]["status"] == "failed"
    assert "was killed by SIGKILL" in killed[("pickle", "Killed")]["detail"]

    text = sof_cli("plugins", "check", "crashes", "good", env=dists.env())
    assert text.returncode == 1
    assert "plugin crashes (contract-crashes 1.0): FAILED (1 checks)" in text.stdout
    assert "plugin good (contract-good 1.0): passed" in text.stdout
    assert "1 of 2 plugin(s) break the contract: crashes" in text.stdout

    # pytest --sof-contract survives it too: one failed test, the session goes on.
    import subprocess

    test_file = tmp_path / "test_other.py"
    test_file.write_text("def test_other():\n    pass\n")
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test_file),
         "--sof-contract=crashes,good"],
        capture_output=True, text=True, env=dists.env(), cwd=tmp_path, timeout=120,
        check=False,
    )
    out = run.stdout + run.stderr
    assert "1 failed, 2 passed" in out, out
    assert "[outputs] Quits: the process running this check exited with code 7" in out

    # So does the sof_plugin_contract fixture: it ended the whole session, with exit code 7
    # and nothing printed.
    fixture_file = tmp_path / "test_fixture_crash.py"
    fixture_file.write_text(
        "import pytest\n"
        "from sof_core.testing import ContractViolation\n\n"
        "def test_crashes(sof_plugin_contract):\n"
        "    with pytest.raises(ContractViolation, match=r'exited with code 7'):\n"
        "        sof_plugin_contract('crashes')\n\n"
        "def test_after():\n"
        "    pass\n")
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(fixture_file)],
        capture_output=True, text=True, env=dists.env(), cwd=tmp_path, timeout=120,
        check=False,
    )
    out = run.stdout + run.stderr
    assert run.returncode == 0 and "2 passed" in out, (run.returncode, out)


def test_a_check_that_cannot_start_is_one_line(dists: Any, sof_cli: Any, tmp_path: Any) -> None:
    env = dists.env()
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    done = sof_cli("plugins", "check", "dask", env={**env, "SOF_CONFIG": str(broken)})
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.startswith(f"sof: error: config file {broken} is corrupt")
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr

    # A plugin that ends the process when imported: the check says so and does not die.
    dists.add("contract-boom", "import os\nos._exit(9)\n", entry_name="boom", requires=REQUIRES)
    done = sof_cli("plugins", "check", "dask", env=dists.env())
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stderr.startswith("sof: error: the process checking the plugins exited with "
                                  "code 9 while loading the installed plugins")
    assert "SOF_PLUGINS_DISABLE=NAME" in done.stderr and done.stderr.count("\n") == 1
    left_out = sof_cli("plugins", "check", "dask", env={**dists.env(),
                                                        "SOF_PLUGINS_DISABLE": "boom"})
    assert left_out.returncode == 0, left_out.stdout + left_out.stderr


FOREIGN_RESULTS = """
import argparse
from sof_core import BaseSkillModule, hookimpl

class Foreign(BaseSkillModule):
    skill_name = "Foreign"
    skill_description = "Writes another package's object, isolated"
    required_inputs = ["input_query"]
    output_keys = ["foreign_out"]
    isolation = "process"

    def execute(self, uif):
        uif.intermediate_data["foreign_out"] = argparse.Namespace(answer=42)
        return uif

class Trusting(Foreign):
    skill_name = "Trusting"
    output_keys = ["trusting_out"]
    isolation_reply_packages = ["argparse"]

    def execute(self, uif):
        uif.intermediate_data["trusting_out"] = argparse.Namespace(answer=42)
        return uif

@hookimpl
def sof_register_skills():
    return [Foreign, Trusting]
"""


def test_an_isolated_skill_whose_results_the_host_would_refuse_fails_pickle(dists: Any) -> None:
    dists.add("contract-foreign", FOREIGN_RESULTS, entry_name="foreign", requires=REQUIRES)
    [report] = check_plugins(["foreign"])
    refused = _by_check(report, "Foreign")["pickle"]
    assert refused.status == "failed"
    assert "argparse.Namespace" in refused.detail and "isolation_reply_packages" in refused.detail
    assert _by_check(report, "Trusting")["pickle"].status == "passed"


RAISING_HOOKS = {
    "configure": """
from sof_core import hookimpl

@hookimpl
def sof_configure(config):
    raise RuntimeError("license server unreachable")
""",
    "register": """
from sof_core import hookimpl

@hookimpl
def sof_register_skills():
    raise RuntimeError("model file missing")
""",
}


@pytest.mark.parametrize("hook", sorted(RAISING_HOOKS))
def test_a_hook_that_raises_while_loading_fails_loads_not_declarations(
    dists: Any, hook: str
) -> None:
    """A hook that runs and raises is the plugin failing to load, not a bad declaration: the
    author is sent to the hook's code, not to their skills' declarations (checks.md)."""
    dists.add(f"contract-raises-{hook}", RAISING_HOOKS[hook], entry_name=f"raises{hook}",
              requires=REQUIRES)
    (report,) = check_plugins([f"raises{hook}"])
    checks = _by_check(report)
    assert checks["loads"].status == "failed", report.summary()
    assert "raised RuntimeError" in checks["loads"].detail
    assert checks["declarations"].status == "skipped"
    assert checks["requirement"].status == "passed"
