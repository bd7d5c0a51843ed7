"""SAM skills that touch keys they never declared, as SAM's own skills routinely do.

By default they fail exactly like native skills (``UndeclaredReadError`` /
``UndeclaredWriteError``). With ``strict_declarations = false`` (in the config file, as
``SOF_STRICT_DECLARATIONS=false``, or in code) they run, their undeclared writes (keys and
UIF fields) are merged, and each undeclared key a skill touches is logged once with the
declaration to add, so a deployment can migrate skill by skill. Native skills stay strict
under the same setting.
"""

from __future__ import annotations

import itertools
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from sof_sam import SAM_UIF, BaseSkillModule

import sof_core
from sof_core import UIF, SOFConfig
from sof_core.config import load_config

_serial = itertools.count()


def sam_pipeline() -> tuple[type, type]:
    """Two SAM-style skills (fresh names: the log is once per process and skill): the first
    also leaves a "summary" it never declared, the second reads it without declaring it."""
    n = next(_serial)

    class Retrieve(BaseSkillModule):
        skill_name = f"RetrieveSkill{n}"
        skill_description = "Retrieves passages"
        required_inputs = ["input_query"]
        output_keys = ["passages"]

        def execute(self, uif: SAM_UIF) -> SAM_UIF:
            uif.intermediate_data["passages"] = ["Paris is the capital of France."]
            uif.intermediate_data["summary"] = "capital: Paris"  # undeclared
            return uif

    class Respond(BaseSkillModule):
        skill_name = f"RespondSkill{n}"
        skill_description = "Answers"
        required_inputs = ["passages"]
        output_keys = ["final_response"]

        def execute(self, uif: SAM_UIF) -> SAM_UIF:
            summary = uif.intermediate_data.get("summary", "")  # undeclared
            uif.final_response = f"{summary} ({len(uif.intermediate_data['passages'])} source)"
            uif.intermediate_data["final_response"] = uif.final_response
            return uif

    return Retrieve, Respond


def run(skills: tuple[type, ...], config: SOFConfig) -> sof_core.ExecutionReport:
    engine = sof_core.CoordinatorEngine(config=config)
    engine.register_skills(skills)
    return engine.execute_plan([s.skill_name for s in skills], SAM_UIF(input_query="q"))


def settings(**values: Any) -> SOFConfig:
    return SOFConfig(plugins_autoload=False, **values)


def declaration_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "sof.declarations"]


def test_by_default_a_sam_skill_gets_the_same_errors_as_a_native_one() -> None:
    retrieve, respond = sam_pipeline()
    result, unrun = run((retrieve, respond), settings()).results
    assert unrun.status == "skipped" and unrun.error_type == "SkillNotRunError"
    assert result.status == "failed" and result.error_type == "UndeclaredWriteError"
    assert "add 'summary' to output_keys" in (result.error or "")

    class Reader(BaseSkillModule):
        skill_name = "UndeclaredReader"
        skill_description = "Reads what it never declared"

        def execute(self, uif: SAM_UIF) -> SAM_UIF:
            uif.intermediate_data.get("summary")
            return uif

    (result,) = run((Reader,), settings()).results
    assert result.error_type == "UndeclaredReadError" and "'summary'" in (result.error or "")


def test_off_in_code_the_pipeline_runs_and_logs_each_key_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="sof.declarations")
    retrieve, respond = sam_pipeline()
    for _ in range(3):
        report = run((retrieve, respond), settings(strict_declarations=False))
        assert report.status == "success", report.errors
        uif = report.uif
        assert uif.intermediate_data["summary"] == "capital: Paris"  # merged
        assert uif.final_response == "capital: Paris (1 source)"
    lines = declaration_lines(caplog)
    assert len(lines) == 2, lines
    assert lines[0].endswith(f'add "summary" to output_keys of {retrieve.skill_name}')
    assert lines[1].endswith(
        f'add "summary" to required_inputs or optional_inputs of {respond.skill_name}')


def test_off_from_the_config_file_and_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="sof.declarations")
    config_file = tmp_path / "sof.json"
    config_file.write_text(json.dumps({"strict_declarations": False}))
    monkeypatch.setenv("SOF_CONFIG", str(config_file))
    assert run(sam_pipeline(), load_config(plugins_autoload=False)).status == "success"

    monkeypatch.setenv("SOF_CONFIG", str(tmp_path / "missing.json"))
    monkeypatch.setenv("SOF_STRICT_DECLARATIONS", "false")
    assert run(sam_pipeline(), load_config(plugins_autoload=False)).status == "success"
    monkeypatch.setenv("SOF_STRICT_DECLARATIONS", "true")
    assert run(sam_pipeline(), load_config(plugins_autoload=False)).status == "failure"
    assert len(declaration_lines(caplog)) == 4


def test_native_skills_stay_strict_when_it_is_off() -> None:
    class NativeWriter(sof_core.BaseSkillModule):
        skill_name = "NativeWriter"
        skill_description = "A native skill writing an undeclared key"
        max_execution_time = None

        def execute(self, uif: UIF) -> UIF:
            uif.intermediate_data["summary"] = "x"
            return uif

    retrieve, _ = sam_pipeline()

    class NativeReader(sof_core.BaseSkillModule):
        skill_name = "NativeReader"
        skill_description = "A native skill reading an undeclared key"
        required_inputs = ["passages"]
        max_execution_time = None

        def execute(self, uif: UIF) -> UIF:
            uif.intermediate_data.get("summary")
            return uif

    loose = settings(strict_declarations=False)
    (result,) = run((NativeWriter,), loose).results
    assert result.error_type == "UndeclaredWriteError"
    report = run((retrieve, NativeReader), loose)
    assert [r.status for r in report.results] == ["success", "failed"]
    assert report.results[1].error_type == "UndeclaredReadError"


def test_off_a_sam_skill_may_set_fields_it_never_declared(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """SAM skills set ``uif.final_response`` without declaring it; logged with the fix."""
    caplog.set_level(logging.WARNING, logger="sof.declarations")

    class Finisher(BaseSkillModule):
        skill_name = "Finisher"
        skill_description = "Sets the answer without declaring it"
        required_inputs = ["input_query"]
        output_keys = ["final_result"]

        def execute(self, uif: SAM_UIF) -> SAM_UIF:
            uif.intermediate_data["final_result"] = "done"
            uif.final_response = f"Final result: {uif.input_query}"
            return uif

    (result,) = run((Finisher,), settings()).results
    assert result.error_type == "UndeclaredWriteError" and "final_response" in result.error
    report = run((Finisher,), settings(strict_declarations=False))
    assert report.status == "success" and report.uif.final_response == "Final result: q"
    assert declaration_lines(caplog) == [
        "skill 'Finisher' set the UIF field \"final_response\", which is not in its "
        "output_keys (allowed because strict_declarations is off); add \"final_response\" "
        "to output_keys of Finisher"
    ]
