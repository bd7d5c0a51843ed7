"""End to end with the real installed plugins: ``sof run`` in a subprocess answers 36, and a
hostile query is one line on stderr naming the tool and the guard, no traceback."""

from __future__ import annotations

import time

import pytest

from sof_core.testing import SofCLI

pytest.importorskip("sof_response", reason="the response plugin (plugins/sof-response)")

PLAN = ("--plan", "CalculatorTool", "ResponseGenerationSkill")


@pytest.fixture
def sof(tmp_path):  # type: ignore[no-untyped-def]
    return SofCLI(tmp_path)


def test_percent_of_answers_36(sof) -> None:  # type: ignore[no-untyped-def]
    result = sof("run", "What is 15% of 240?", *PLAN)
    assert result.ok, result
    assert "36" in result.stdout.splitlines()[0]


def test_no_arithmetic_still_answers(sof) -> None:  # type: ignore[no-untyped-def]
    result = sof("run", "Tell me about cats", *PLAN, "--json")
    assert result.ok, result
    report = result.json()
    assert report["uif"]["intermediate_data"]["calculation_result"] is None
    assert report["status"] == "success"
    # the response skill says so rather than inventing a number
    assert "no arithmetic expression found" in report["final_response"].lower()


def test_hostile_query_is_refused_in_one_line(sof) -> None:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    result = sof("run", "What is 9**9**9?", *PLAN)
    took = time.perf_counter() - start
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr
    [line] = [line for line in result.stderr.splitlines() if "CalculatorTool" in line]
    assert "CalculationLimitError" in line and "'9**9**9'" in line and "digits" in line
    assert took < 30  # a Python start-up and a refusal, not a hang


def test_sof_skills_shows_the_tools_permissions_and_limits(sof) -> None:  # type: ignore[no-untyped-def]
    result = sof("skills", "CalculatorTool")
    assert result.ok, result
    lines = {line.split()[0]: line for line in result.stdout.splitlines() if line.strip()}
    assert lines["kind"].split()[-1] == "tool"
    assert lines["permissions"].split()[-1] == "none"
    assert "65,536 bytes" in lines["output"]
    assert "5 s" in lines["max"]
