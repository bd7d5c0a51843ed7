"""``strict_declarations``: on by default; off relaxes only skills whose class opts in.

With ``strict_declarations = false`` (``SOF_STRICT_DECLARATIONS=0``) a skill whose class sets
``_sof_declarations_relaxable`` (``sof_sam.BaseSkillModule`` does) may read and write
``intermediate_data`` keys and set UIF fields it does not declare: each is logged once per
process, skill, key and access with the declaration to add, and its writes are merged. Native
skills keep getting ``UndeclaredReadError``/``UndeclaredWriteError`` whatever the setting;
``task_id`` and in-place changes of what a skill reads are never relaxed. Checked on every
executor, the remote replay included.
"""

from __future__ import annotations

import importlib.util
import itertools
import logging
from pathlib import Path
from typing import Any

import pytest

from sof_core import UIF, BaseSkillModule, SOFConfig
from sof_core.config.sources import load_config
from sof_core.testing import make_engine

_spec = importlib.util.spec_from_file_location(
    "_keys_test_helpers_for_declarations",
    Path(__file__).with_name("test_keys_named_like_uif_fields.py"),
)
assert _spec is not None and _spec.loader is not None
_helpers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_helpers)
CONFIGS = _helpers.CONFIGS
engine_for = _helpers.engine_for

_names = itertools.count()


def skill(prefix: str, body: Any, requires: Any = (), outputs: Any = (), *,
          relaxable: bool = True) -> type:
    """A skill with a fresh name (the log is once per process and skill)."""
    name = f"{prefix}{next(_names)}"
    return type(name, (BaseSkillModule,), {
        "skill_name": name, "skill_description": f"test skill {name}",
        "required_inputs": list(requires), "output_keys": list(outputs),
        "max_execution_time": None, "execute": body,
        "_sof_declarations_relaxable": relaxable,
    })


def _writes_extra(self: Any, uif: UIF) -> UIF:
    uif.intermediate_data["draft"] = "declared"
    uif.intermediate_data["summary"] = "not declared"
    return uif


def _reads_extra(self: Any, uif: UIF) -> UIF:
    data = uif.intermediate_data
    assert "summary" in data
    uif.intermediate_data["length"] = len(data["summary"]) + len(data.get("notes", ""))
    return uif


def pair(relaxable: bool = True) -> tuple[type, type]:
    writer = skill("Writer", _writes_extra, outputs=["draft"], relaxable=relaxable)
    reader = skill("Reader", _reads_extra, requires=["draft"], outputs=["length"],
                   relaxable=relaxable)
    return writer, reader


def run(skills: tuple[type, ...], config: dict[str, Any], **extra: Any) -> Any:
    engine = engine_for(list(skills), {**config, **extra})
    return engine.execute_plan([s.skill_name for s in skills], UIF(input_query="q"))


def test_strict_by_default_in_the_config_and_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    monkeypatch.setenv("SOF_CONFIG", str(tmp_path / "none.json"))
    assert SOFConfig().strict_declarations is True
    assert load_config().strict_declarations is True
    monkeypatch.setenv("SOF_STRICT_DECLARATIONS", "0")
    assert load_config().strict_declarations is False
    monkeypatch.setenv("SOF_STRICT_DECLARATIONS", "false")
    assert load_config().strict_declarations is False


@pytest.mark.parametrize("config", CONFIGS)
def test_by_default_an_opted_in_skill_is_as_strict_as_any(config: dict[str, Any]) -> None:
    report = run(pair(), config)
    result, unrun = report.results
    assert unrun.skill.startswith("Reader") and unrun.error_type == "SkillNotRunError"
    assert result.status == "failed" and result.error_type == "UndeclaredWriteError"
    assert "'summary'" in (result.error or "")


@pytest.mark.parametrize("config", CONFIGS)
def test_off_an_opted_in_skill_reads_and_writes_undeclared_keys_logged_once(
    config: dict[str, Any], caplog: pytest.LogCaptureFixture,
) -> None:
    writer, reader = pair()
    caplog.set_level(logging.WARNING, logger="sof.declarations")
    for _ in range(2):  # the second run logs nothing new
        report = run((writer, reader), config, strict_declarations=False)
        assert report.status == "success", report.errors
        assert report.uif.intermediate_data == {
            "draft": "declared", "summary": "not declared", "length": 12,
        }
    lines = [r.getMessage() for r in caplog.records if r.name == "sof.declarations"]
    assert all("strict_declarations is off" in line for line in lines)
    assert any(f'add "summary" to output_keys of {writer.skill_name}' in line
               for line in lines)
    if config["executor"] == "pickled":
        # in another process the skill reads a plain copy: only its writes are seen
        assert len(lines) == 1, lines
        return
    assert len(lines) == 3, lines  # summary written, summary read, notes read (absent)
    assert any(f'add "summary" to required_inputs or optional_inputs of {reader.skill_name}'
               in line for line in lines)
    assert any(f'add "notes" to required_inputs or optional_inputs of {reader.skill_name}'
               in line for line in lines)


@pytest.mark.parametrize("config", CONFIGS)
def test_native_skills_stay_strict_when_it_is_off(config: dict[str, Any]) -> None:
    writer, _ = pair(relaxable=False)
    (result,) = run((writer,), config, strict_declarations=False).results
    assert result.error_type == "UndeclaredWriteError"

    relaxed_writer, _ = pair()
    _, strict_reader = pair(relaxable=False)
    report = run((relaxed_writer, strict_reader), config, strict_declarations=False)
    assert [r.status for r in report.results] == ["success", "failed"]
    if config["executor"] != "pickled":  # remotely it finds nothing, as ever for natives
        assert report.results[1].error_type == "UndeclaredReadError"


def _assigns_field(self: Any, uif: UIF) -> UIF:
    uif.confidence_score = 0.9
    uif.final_response = "42"
    return uif


@pytest.mark.parametrize("config", CONFIGS)
def test_off_an_opted_in_skill_sets_undeclared_fields_logged_once(
    config: dict[str, Any], caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="sof.declarations")
    field = skill("Field", _assigns_field)
    for _ in range(2):
        report = run((field,), config, strict_declarations=False)
        assert report.status == "success", report.errors
        assert (report.uif.confidence_score, report.uif.final_response) == (0.9, "42")
        assert "final_response" not in report.uif.intermediate_data  # the field only
    lines = [r.getMessage() for r in caplog.records if r.name == "sof.declarations"]
    assert sorted(lines) == sorted(
        f'skill {field.skill_name!r} set the UIF field "{name}", which is not in its '
        "output_keys (allowed because strict_declarations is off); add "
        f'"{name}" to output_keys of {field.skill_name}'
        for name in ("confidence_score", "final_response")
    )
    (result,) = run((skill("Field", _assigns_field, relaxable=False),), config,
                    strict_declarations=False).results
    assert result.error_type == "UndeclaredWriteError"


def _assigns_task_id(self: Any, uif: UIF) -> UIF:
    uif.task_id = "mine"
    return uif


def _changes_read_value_in_place(self: Any, uif: UIF) -> UIF:
    uif.intermediate_data["items"].append(3)
    return uif


def _changes_field_in_place(self: Any, uif: UIF) -> UIF:
    uif.user_context["seen"] = True
    return uif


@pytest.mark.parametrize("config", CONFIGS)
def test_nothing_else_is_relaxed(config: dict[str, Any]) -> None:
    """task_id stays the coordinator's, and what a skill reads stays read-only in place."""
    (result,) = run((skill("TaskId", _assigns_task_id),), config,
                    strict_declarations=False).results
    assert result.error_type == "UndeclaredWriteError" and "task_id" in result.error

    engine = engine_for([field := skill("Ctx", _changes_field_in_place)],
                        {**config, "strict_declarations": False})
    uif = UIF(input_query="q", user_context={"lang": "en"})
    (result,) = engine.execute_plan([field.skill_name], uif).results
    assert result.error_type == "UndeclaredWriteError" and "user_context" in result.error
    assert uif.user_context == {"lang": "en"}

    inplace = skill("InPlace", _changes_read_value_in_place)
    engine = engine_for([inplace], {**config, "strict_declarations": False})
    uif = UIF(input_query="q", intermediate_data={"items": [1, 2]})
    (result,) = engine.execute_plan([inplace.skill_name], uif).results
    assert result.error_type == "UndeclaredWriteError" and "'items'" in result.error
    assert uif.intermediate_data == {"items": [1, 2]}


class ReturnsANewUIF(BaseSkillModule):
    skill_name = "ReturnsANewUIF"
    skill_description = "returns a UIF of its own"
    required_inputs = ["input_query"]
    output_keys = ["made"]

    def execute(self, uif: UIF) -> UIF:
        return UIF(input_query=uif.input_query, intermediate_data={"made": "x"})


class AssignsWhole(BaseSkillModule):
    skill_name = "AssignsWhole"
    skill_description = "assigns intermediate_data whole"
    required_inputs = ["input_query"]
    output_keys = ["made"]

    def execute(self, uif: UIF) -> UIF:
        uif.intermediate_data = {"made": "x"}  # type: ignore[assignment]
        return uif


@pytest.mark.parametrize(("skill_class", "advice"), [
    (ReturnsANewUIF, "returned a different UIF (another task: its task_id differs) instead "
                     "of the one it was given; change the uif it was given and return it"),
    (AssignsWhole, "assigned 'intermediate_data' whole; write its keys one by one"),
])
def test_the_advice_for_what_no_declaration_allows_can_be_followed(
        skill_class: type[BaseSkillModule], advice: str) -> None:
    # it said "add 'task_id' to output_keys", which is refused at definition
    (result,) = make_engine([skill_class]).execute_plan(
        [skill_class.skill_name], UIF(input_query="q")).results
    assert result.error_type == "UndeclaredWriteError"
    assert advice in (result.error or "") and "to output_keys" not in (result.error or "")
