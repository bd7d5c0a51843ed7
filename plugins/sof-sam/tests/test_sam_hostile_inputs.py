"""Hostile input to sof_sam's SAM surface: typed outcomes, never a bare TypeError."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sof_sam.config import SOFConfig
from sof_sam.config import reset_sof_config_managers as reset_sam_managers
from sof_sam.coordinator import CoordinatorEngine, ExecutionReport, ExecutionResult
from sof_sam.uif import SAM_UIF
from sof_sam.validator import PlanValidationEngine

from sof_core import UIFError
from sof_core.config import reset_sof_config_managers


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    for var in ("SOF_PLUGINS_ONLY", "SOF_PLUGINS_DISABLE", "SOF_STRICT_PLUGINS",
                "SOF_EXECUTOR", "SOF_ROLLOUT_PERCENTAGE", "SOF_STRICT_DECLARATIONS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("SOF_CONFIG", str(tmp_path / "sof_config.json"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    reset_sam_managers()
    reset_sof_config_managers()
    yield
    reset_sam_managers()
    reset_sof_config_managers()


def sam_config(**flags: Any) -> SOFConfig:
    return SOFConfig(**{"enable_fallback_plans": False, **flags})


UNHASHABLE_PLANS = [[["A"]], [{"a": 1}], [{"a"}], ["A", ["B"]]]


@pytest.mark.parametrize("plan", UNHASHABLE_PLANS, ids=repr)
@pytest.mark.parametrize("validation", [True, False])
def test_a_plan_of_unhashable_items_is_an_invalid_plan_naming_the_item(
    plan: Any, validation: bool
) -> None:
    engine = CoordinatorEngine(config=sam_config(enable_plan_validation=validation))
    uif = SAM_UIF(input_query="q")
    report = engine.execute_plan(plan, uif)
    assert isinstance(report, ExecutionReport)
    assert report.result == ExecutionResult.FAILURE
    assert report.error_details is not None
    assert report.error_details.startswith("Plan validation failed")
    assert report.validation_report is not None and not report.validation_report.is_valid
    bad = plan[-1]
    assert any(type(bad).__name__ in issue.description and repr(bad) in issue.description
               for issue in report.validation_report.issues)


@pytest.mark.parametrize("plan", [*UNHASHABLE_PLANS, [1, 2], None, "A"], ids=repr)
def test_validate_plan_reports_unhashable_items_as_invalid(plan: Any) -> None:
    validator = PlanValidationEngine(config=sam_config())
    for _ in range(2):  # the second time from no cache either
        report = validator.validate_plan(plan, SAM_UIF(input_query="q"))
        assert not report.is_valid and report.errors_count >= 1
        assert all(i.issue_type == "plan_type" for i in report.issues)


@pytest.mark.parametrize("uif", [None, "hello", 5, {"input_query": "q"}], ids=repr)
def test_a_uif_that_is_not_one_is_a_typed_uif_error_naming_the_argument(uif: Any) -> None:
    engine = CoordinatorEngine(config=sam_config())
    with pytest.raises(UIFError) as caught:
        engine.execute_plan(["ResponseGenerationSkill"], uif)
    assert isinstance(caught.value, ValueError)
    message = str(caught.value)
    assert message.startswith("uif must be a SAM_UIF") and type(uif).__name__ in message
