"""The `sof` command, run as a user runs it: a real subprocess over installed plugin metadata."""

from __future__ import annotations

import json
from typing import Any

import pytest

PIPELINE = """
    from sof_core import BaseSkillModule, hookimpl

    class Retrieve(BaseSkillModule):
        skill_name = "Retrieve"
        skill_version = "1.4.0"
        skill_description = "find passages"
        required_inputs = ["input_query"]
        output_keys = {"passages": list}
        def execute(self, uif):
            uif.intermediate_data["passages"] = ["SOF runs skills as a graph"]
            uif.add_log_entry("retrieved 1 passage", self.skill_name)
            return uif

    class Check(BaseSkillModule):
        skill_name = "Check"
        skill_description = "check passages"
        required_inputs = [("passages", list)]
        output_keys = ["checked"]
        def execute(self, uif):
            uif.intermediate_data["checked"] = True
            return uif

    class Answer(BaseSkillModule):
        skill_name = "Answer"
        skill_description = "answer from passages"
        required_inputs = ["input_query", ("passages", list)]
        optional_inputs = ["checked"]
        output_keys = ["final_response", "confidence_score"]
        def execute(self, uif):
            uif.final_response = "Answer: " + uif.intermediate_data["passages"][0]
            uif.confidence_score = 0.8
            return uif

    class Crash(BaseSkillModule):
        skill_name = "Crash"
        skill_description = "always fails"
        required_inputs = ["input_query"]
        output_keys = ["never"]
        def execute(self, uif):
            raise RuntimeError("disk full")

    @hookimpl
    def sof_register_skills():
        return [Retrieve, Check, Answer, Crash]
"""


@pytest.fixture
def env(dists: Any) -> dict[str, str]:
    dists.add("sof-pipeline", PIPELINE, entry_name="pipeline", version="0.9")
    environment = dists.env()
    environment["SOF_DEFAULT_PLAN"] = "Retrieve,Answer"
    environment["SOF_PLUGINS_ONLY"] = "pipeline"  # bundled plugins may be installed too
    return environment


def test_version_and_help(sof_cli: Any) -> None:
    assert sof_cli("--version").stdout.startswith("sof-core ")
    help_text = sof_cli("--help").stdout
    for command in ("plugins", "skills", "graph", "validate", "run"):
        assert command in help_text


def test_python_m_sof_core_is_the_sof_command(env: dict[str, str]) -> None:
    import subprocess
    import sys

    ran = subprocess.run([sys.executable, "-m", "sof_core", "skills"], env=env,
                         capture_output=True, text=True, timeout=120, check=False)
    assert ran.returncode == 0, ran.stderr  # before: "No module named sof_core.__main__"
    assert "Retrieve" in ran.stdout
    bad = subprocess.run([sys.executable, "-m", "sof_core", "validate", "Answer"], env=env,
                         capture_output=True, text=True, timeout=120, check=False)
    assert bad.returncode == 1 and "passages" in bad.stdout + bad.stderr  # exit codes kept


def test_skills_lists_inputs_outputs_and_plugin(sof_cli: Any, env: dict[str, str]) -> None:
    table = sof_cli("skills", env=env)
    assert table.returncode == 0, table.stderr
    assert "Retrieve" in table.stdout and "1.4.0" in table.stdout and "pipeline" in table.stdout
    assert "checked?" in table.stdout  # optional inputs are marked
    rows = {s["name"]: s for s in json.loads(sof_cli("skills", "--json", env=env).stdout)}
    assert rows["Answer"]["required_inputs"] == ["input_query", "passages"]
    assert rows["Answer"]["optional_inputs"] == ["checked"]
    assert rows["Retrieve"]["types"] == {"passages": "list"}
    assert rows["Answer"]["plugin"] == "pipeline"


def test_graph_shows_stages_in_every_format(sof_cli: Any, env: dict[str, str]) -> None:
    text = sof_cli("graph", "Answer", "Check", "Retrieve", env=env)
    assert text.returncode == 0, text.stderr
    assert "stage 1: Retrieve" in text.stdout and "stage 2: Check" in text.stdout
    mermaid = sof_cli("graph", "Retrieve", "Check", "Answer", "--format", "mermaid", env=env).stdout
    assert mermaid.startswith("flowchart LR") and '|"passages"|' in mermaid and "subgraph stage1" in mermaid
    dot = sof_cli("graph", "Retrieve,Answer", "--format", "dot", env=env).stdout
    assert dot.startswith("digraph") and '"Retrieve" -> "Answer"' in dot
    data = json.loads(sof_cli("graph", "--goal", "final_response", "--format", "json", env=env).stdout)
    assert data["stages"] == [["Retrieve"], ["Answer"]]  # required inputs' producers only
    data = json.loads(sof_cli("graph", "--goal", "final_response", "--include-optional",
                              "--format", "json", env=env).stdout)
    assert data["stages"] == [["Retrieve"], ["Check"], ["Answer"]]


def test_validate_exit_codes_and_problem_list(sof_cli: Any, env: dict[str, str]) -> None:
    ok = sof_cli("validate", "Retrieve", "Answer", env=env)
    assert ok.returncode == 0 and "plan is valid" in ok.stdout
    bad = sof_cli("validate", "Answer", "Retreive", env=env)
    assert bad.returncode == 1
    assert "[unknown_skill]" in bad.stdout and "did you mean 'Retrieve'" in bad.stdout
    assert "[missing_producer]" in bad.stdout and "'passages'" in bad.stdout
    data = json.loads(sof_cli("validate", "Answer", "--json", env=env).stdout)
    assert data["valid"] is False and data["problems"][0]["key"] == "passages"


def test_run_answers_with_default_plan_and_trace(sof_cli: Any, env: dict[str, str]) -> None:
    result = sof_cli("run", "what", "is", "SOF?", "--trace", env=env)
    assert result.returncode == 0, result.stderr
    assert "Answer: SOF runs skills as a graph" in result.stdout
    assert "stage 1: Retrieve" in result.stdout and "stage 2: Answer" in result.stdout
    assert "[Retrieve] retrieved 1 passage" in result.stdout
    report = json.loads(sof_cli("run", "q", "--plan", "Retrieve", "Check", "Answer", "--json",
                                env=env).stdout)
    assert report["status"] == "success" and report["confidence_score"] == 0.8
    assert [s["skill"] for s in report["skills"]] == ["Retrieve", "Check", "Answer"]


def test_run_reports_failures_without_traceback(sof_cli: Any, env: dict[str, str]) -> None:
    failed = sof_cli("run", "q", "--plan", "Crash", env=env)
    assert failed.returncode == 1
    assert "Crash: RuntimeError: disk full" in failed.stderr
    assert "Traceback" not in failed.stderr
    invalid = sof_cli("run", "q", "--plan", "Nope", env=env)
    assert invalid.returncode == 1 and "unknown skill 'Nope'" in invalid.stderr
    assert "Traceback" not in invalid.stderr


def test_bad_configuration_is_a_one_line_error(sof_cli: Any, env: dict[str, str]) -> None:
    env["SOF_MAX_PLAN_LENGTH"] = "lots"
    result = sof_cli("skills", env=env)
    assert result.returncode == 2
    assert "max_plan_length" in result.stderr and "Traceback" not in result.stderr


def test_log_level_from_environment_is_case_insensitive(sof_cli: Any, env: dict[str, str]) -> None:
    env["SOF_LOG_LEVEL"] = "debug"
    result = sof_cli("skills", env=env)
    assert result.returncode == 0, result.stderr
    env["SOF_LOG_LEVEL"] = "loud"
    bad = sof_cli("skills", env=env)
    assert bad.returncode == 2 and "log_level" in bad.stderr


def test_bad_query_input_is_a_one_line_error(sof_cli: Any, env: dict[str, str]) -> None:
    blank = sof_cli("run", "   ", env=env)
    assert blank.returncode == 2 and "QUERY is empty" in blank.stderr
    assert "Traceback" not in blank.stderr
    context = sof_cli("run", "q", "--context", "novalue", env=env)
    assert context.returncode == 2 and "--context expects KEY=VALUE" in context.stderr
