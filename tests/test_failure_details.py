"""Errors you can debug: a failed skill's result carries its traceback, starting at the
skill's own code, and the file:line where that code failed; skipped skills count as failed.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from sof_core import UIF, BaseSkillModule, SkillResult
from sof_core.testing import ContractViolation, check_skill_contract, make_engine

_spec = importlib.util.spec_from_file_location(
    "_keys_test_helpers_2", Path(__file__).with_name("test_keys_named_like_uif_fields.py")
)
assert _spec is not None and _spec.loader is not None
_helpers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_helpers)
CONFIGS = _helpers.CONFIGS
engine_for = _helpers.engine_for

HERE = str(Path(__file__).resolve())


def line_of(function: Any, text: str) -> int:
    lines, first = inspect.getsourcelines(function)
    return first + next(i for i, line in enumerate(lines) if text in line)


def parse_helper(raw: str) -> Any:
    return json.loads(raw)  # raises for bad input: the library frame is not the skill's


def check_total(values: list[int]) -> None:
    if sum(values) > 10:
        raise ValueError(f"total {sum(values)} is over the limit")


class Parse(BaseSkillModule):
    skill_name = "Parse"
    skill_description = "parses the raw payload"
    required_inputs = ["raw"]
    output_keys = ["parsed"]
    max_execution_time = None

    def execute(self, uif: UIF) -> UIF:
        uif.intermediate_data["parsed"] = parse_helper(uif.intermediate_data["raw"])
        return uif


class Total(BaseSkillModule):
    skill_name = "Total"
    skill_description = "checks the total"
    required_inputs = ["values"]
    output_keys = ["total"]
    max_execution_time = None

    def execute(self, uif: UIF) -> UIF:
        check_total(uif.intermediate_data["values"])
        uif.intermediate_data["total"] = 1
        return uif


class Sneaky(BaseSkillModule):
    skill_name = "Sneaky"
    skill_description = "writes what it did not declare"
    required_inputs = ["values"]
    output_keys = ["total"]
    max_execution_time = None

    def execute(self, uif: UIF) -> UIF:
        uif.intermediate_data["values"].append(1)
        return uif


class Refuse(BaseSkillModule):
    skill_name = "Refuse"
    skill_description = "reports its own failure"
    required_inputs = ["input_query"]
    output_keys = ["total"]
    max_execution_time = None

    def execute(self, uif: UIF) -> UIF:
        uif.set_error("quota exceeded", self.skill_name)
        return uif


@pytest.mark.parametrize("config", CONFIGS)
def test_a_failed_skill_has_its_traceback_from_its_own_code_and_the_failing_line(
    config: dict[str, Any],
) -> None:
    report = engine_for([Total], config).execute_plan(
        ["Total"], UIF(input_query="q", intermediate_data={"values": [5, 6]})
    )
    result = report.result("Total")
    assert result.status == "failed" and result.error == "total 11 is over the limit"
    traceback = _totals_traceback(result)
    assert "sof_core" not in traceback


def _totals_traceback(result: SkillResult) -> str:
    """``Total``'s failure: located at its helper's raise (the innermost frame in the
    skill's own code), the traceback from its ``execute`` down to that line."""
    assert result.location == f"{HERE}:{line_of(check_total, 'raise ValueError')}"
    assert result.traceback is not None
    frames = re.findall(r'File "([^"]+)", line (\d+), in (\w+)', result.traceback)
    assert frames[0] == (HERE, str(line_of(Total.execute, "check_total(")), "execute")
    assert frames[-1][2] == "check_total"
    assert result.traceback.rstrip().endswith("ValueError: total 11 is over the limit")
    return result.traceback


def test_the_traceback_survives_an_interpreter_that_cannot_format_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Python 3.11 parses source lines with ``ast`` to format a traceback, and two threads
    doing so at once can raise ``SystemError: AST constructor recursion depth mismatch``
    (CPython gh-106905; seen here under load). That race cannot be made to happen on
    demand, so the interpreter's failure is injected: the result still has the frames and
    the failing line, without the ``^^^`` markers (it had no traceback at all)."""
    import traceback

    def broken(*args: Any, **kwargs: Any) -> list[str]:
        raise SystemError("AST constructor recursion depth mismatch (before=57, after=62)")

    monkeypatch.setattr(traceback, "format_exception", broken)
    report = make_engine([Total]).execute_plan(
        ["Total"], UIF(input_query="q", intermediate_data={"values": [5, 6]})
    )
    result = report.result("Total")
    assert report.status == "failure" and result.status == "failed"
    assert "raise ValueError" in _totals_traceback(result)


def test_a_host_logging_at_debug_sees_where_a_skill_failed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Before: nothing was logged at any level; only the report had the traceback.
    with caplog.at_level("DEBUG", logger="sof.execution"):
        engine_for([Total], CONFIGS[0].values[0]).execute_plan(
            ["Total"], UIF(input_query="q", intermediate_data={"values": [5, 6]}))
    (record,) = [r for r in caplog.records if "skill Total failed" in r.getMessage()]
    assert record.levelname == "DEBUG"
    message = record.getMessage()
    assert f"{HERE}:{line_of(check_total, 'raise ValueError')}" in message
    assert "ValueError: total 11 is over the limit" in message and "Traceback" in message


@pytest.mark.parametrize("config", CONFIGS)
def test_a_library_error_points_at_the_skills_line_that_called_the_library(
    config: dict[str, Any],
) -> None:
    report = engine_for([Parse], config).execute_plan(
        ["Parse"], UIF(input_query="q", intermediate_data={"raw": "{not json"})
    )
    result = report.result("Parse")
    assert result.error_type == "JSONDecodeError"
    assert result.location == f"{HERE}:{line_of(parse_helper, 'json.loads')}"
    assert "json/decoder.py" in result.traceback  # the library's frames are kept below


@pytest.mark.parametrize("config", CONFIGS)
def test_a_refused_write_points_at_the_line_that_made_it(config: dict[str, Any]) -> None:
    report = engine_for([Sneaky], config).execute_plan(
        ["Sneaky"], UIF(input_query="q", intermediate_data={"values": [1]})
    )
    result = report.result("Sneaky")
    assert result.error_type == "UndeclaredWriteError"
    if config["executor"] == "pickled":  # found at home, replaying the far side's change
        assert result.location is None
    else:
        assert result.location == f"{HERE}:{line_of(Sneaky.execute, '.append(1)')}"
        assert "uif.intermediate_data[\"values\"].append(1)" in result.traceback


class WrongType(BaseSkillModule):
    skill_name = "WrongType"
    skill_description = "writes an int where it declared a str"
    required_inputs = ["input_query"]
    output_keys = {"total": str}
    max_execution_time = None

    def execute(self, uif: UIF) -> UIF:
        uif.intermediate_data["total"] = 3
        return uif


class ReturnsNothingUseful(BaseSkillModule):
    skill_name = "ReturnsNothingUseful"
    skill_description = "returns a string instead of its UIF"
    required_inputs = ["input_query"]
    output_keys = ["total"]
    max_execution_time = None

    def execute(self, uif: UIF) -> Any:
        return "done"


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize(("skill", "says"), [
    (Refuse, "quota exceeded"),
    (WrongType, "wrote 'total' as int but declared str"),
    (ReturnsNothingUseful, "execute() returned str"),
])
def test_failures_outside_the_skills_code_have_no_traceback(
    config: dict[str, Any], skill: Any, says: str
) -> None:
    report = engine_for([skill], config).execute_plan([skill.skill_name], UIF(input_query="q"))
    result = report.result(skill.skill_name)
    assert result.status == "failed" and says in result.error
    assert result.traceback is None and result.location is None


def test_a_timeout_has_no_traceback() -> None:
    import threading

    release = threading.Event()

    class Hang(BaseSkillModule):
        skill_name = "Hang"
        skill_description = "hangs"
        required_inputs = ["input_query"]
        output_keys = ["h"]
        max_execution_time = 0.1

        def execute(self, uif: UIF) -> UIF:
            release.wait(5)
            return uif

    try:
        result = make_engine([Hang]).execute_plan(["Hang"], UIF(input_query="q")).result("Hang")
    finally:
        release.set()
    assert result.status == "timeout"
    assert result.traceback is None and result.location is None


class AsyncTotal(BaseSkillModule):
    skill_name = "AsyncTotal"
    skill_description = "checks the total, asynchronously"
    required_inputs = ["values"]
    output_keys = ["total"]
    max_execution_time = None

    async def execute(self, uif: UIF) -> UIF:
        check_total(uif.intermediate_data["values"])
        return uif


@pytest.mark.parametrize("config", CONFIGS)
def test_an_async_skill_has_its_traceback_too(config: dict[str, Any]) -> None:
    report = engine_for([AsyncTotal], config).execute_plan(
        ["AsyncTotal"], UIF(input_query="q", intermediate_data={"values": [5, 6]})
    )
    result = report.result("AsyncTotal")
    assert result.location == f"{HERE}:{line_of(check_total, 'raise ValueError')}"
    frames = re.findall(r'File "([^"]+)", line (\d+), in (\w+)', result.traceback)
    assert frames[0] == (HERE, str(line_of(AsyncTotal.execute, "check_total(")), "execute")


def test_the_traceback_and_location_are_in_the_json() -> None:
    report = make_engine([Total]).execute_plan(
        ["Total"], UIF(input_query="q", intermediate_data={"values": [5, 6]})
    )
    skills = json.loads(report.to_json())["skills"]
    assert skills[0]["location"] == report.result("Total").location
    assert "check_total" in skills[0]["traceback"]
    ok = SkillResult("A", "success").to_dict()
    assert ok["traceback"] is None and ok["location"] is None


def test_success_keeps_no_traceback() -> None:
    report = make_engine([Total]).execute_plan(
        ["Total"], UIF(input_query="q", intermediate_data={"values": [1]})
    )
    result = report.result("Total")
    assert result.status == "success" and result.traceback is None and result.location is None


def test_retries_report_the_last_attempts_traceback() -> None:
    calls: list[int] = []

    class Flaky(BaseSkillModule):
        skill_name = "Flaky"
        skill_description = "fails differently each time"
        required_inputs = ["input_query"]
        output_keys = ["f"]
        max_execution_time = None
        max_retries = 2

        def execute(self, uif: UIF) -> UIF:
            calls.append(1)
            raise RuntimeError(f"attempt {len(calls)}")

    result = make_engine([Flaky]).execute_plan(["Flaky"], UIF(input_query="q")).result("Flaky")
    assert result.attempts == 3 and "RuntimeError: attempt 3" in result.traceback


# --- skipped skills count as failed ----------------------------------------------------------


class Silent(BaseSkillModule):
    skill_name = "Silent"
    skill_description = "declares an output but writes nothing"
    required_inputs = ["input_query"]
    output_keys = ["b"]
    max_execution_time = None

    def execute(self, uif: UIF) -> UIF:
        return uif


class NeedsB(BaseSkillModule):
    skill_name = "NeedsB"
    skill_description = "needs b"
    required_inputs = ["b"]
    output_keys = ["c"]
    max_execution_time = None

    def execute(self, uif: UIF) -> UIF:
        uif.intermediate_data["c"] = 1
        return uif


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("go_on", [False, True])
def test_a_skipped_skill_is_in_failed_skills_errors_and_error_details(
    config: dict[str, Any], go_on: bool
) -> None:
    engine = engine_for([Silent, NeedsB], {**config, "continue_on_skill_failure": go_on})
    report = engine.execute_plan(["Silent", "NeedsB"], UIF(input_query="q"))
    assert report.status == ("partial" if go_on else "failure")
    result = report.result("NeedsB")
    assert result.status == "skipped"
    assert result.error == "required input 'b' is missing: its producer 'Silent' did not write it"
    assert report.failed_skills == ["NeedsB"]
    assert report.errors == [f"NeedsB: SkillDependencyError: {result.error}"]
    assert report.uif.error_details == f"NeedsB: {result.error}"
    data = json.loads(report.to_json())
    assert data["failed_skills"] == ["NeedsB"]


def test_the_first_failure_stays_in_error_details() -> None:
    class Boom(BaseSkillModule):
        skill_name = "Boom"
        skill_description = "fails"
        required_inputs = ["input_query"]
        output_keys = ["b"]
        max_execution_time = None

        def execute(self, uif: UIF) -> UIF:
            raise ValueError("bad data")

    engine = make_engine([Boom, NeedsB], continue_on_skill_failure=True)
    report = engine.execute_plan(["Boom", "NeedsB"], UIF(input_query="q"))
    assert report.failed_skills == ["Boom", "NeedsB"]
    assert report.uif.error_details == "Boom: bad data"
    assert [r.status for r in report.results] == ["failed", "skipped"]


# --- the pytest helpers show where it failed ---------------------------------------------------


def test_check_skill_contract_shows_the_traceback_and_location() -> None:
    with pytest.raises(ContractViolation) as info:
        check_skill_contract(Total, inputs={"values": [9, 9]})
    text = str(info.value)
    assert "Total failed: ValueError: total 18 is over the limit" in text
    assert f"at {HERE}:{line_of(check_total, 'raise ValueError')}" in text
    assert "Traceback (most recent call last):" in text and "check_total(" in text


def test_the_sof_contract_fixture_shows_it_in_pytest_output(tmp_path: Path) -> None:
    (tmp_path / "test_skill.py").write_text(textwrap.dedent('''\
        from sof_core import BaseSkillModule

        def helper(values):
            raise KeyError("no such column")

        class Broken(BaseSkillModule):
            skill_name = "Broken"
            skill_description = "always fails"
            required_inputs = ["values"]
            output_keys = ["out"]

            def execute(self, uif):
                helper(uif.intermediate_data["values"])
                return uif

        def test_contract(sof_contract):
            sof_contract(Broken, inputs={"values": [1]})
        '''))
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "test_skill.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Broken failed: KeyError" in done.stdout
    assert re.search(r"at \S*test_skill\.py:4\b", done.stdout), done.stdout
    assert 'raise KeyError("no such column")' in done.stdout


FAILING_PLUGIN = """
from sof_core import BaseSkillModule, hookimpl

class Boom(BaseSkillModule):
    skill_name = "Boom"
    skill_description = "fails in its own code"
    required_inputs = ["input_query"]
    output_keys = ["boom"]

    def execute(self, uif):
        return {}["missing"]

@hookimpl
def sof_register_skills():
    return [Boom]
"""


def test_sof_run_names_the_plugin_and_line_that_failed_without_trace(
    dists: Any, sof_cli: Any, tmp_path: Path
) -> None:
    """Without ``--trace`` the error line still says whose code failed and where."""
    module = dists.add("sof-boom", FAILING_PLUGIN, entry_name="boom")
    env = dists.env()
    env.update(SOF_PLUGINS_ONLY="boom", SOF_CONFIG=str(tmp_path / "none.json"))
    plain = sof_cli("run", "hi", "--plan", "Boom", env=env)
    assert plain.returncode == 1
    where = f"{dists.root / module}.py:11"
    assert (f"error: Boom: KeyError: 'missing' (plugin boom, at {where}; --trace shows the "
            "traceback)") in plain.stderr
    traced = sof_cli("run", "hi", "--plan", "Boom", "--trace", env=env)
    assert f"error: Boom: KeyError: 'missing' (plugin boom, at {where})" in traced.stderr
    assert "Traceback of Boom (failed):" in traced.stdout
