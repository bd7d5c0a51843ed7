"""pytest plugin for skill authors (entry point ``pytest11: sof``): contract fixtures."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from sof_core.testing import check_plugin_module, check_skill_contract, make_engine


@pytest.fixture
def sof_engine() -> Callable[..., Any]:
    """Factory: ``sof_engine([MySkill], continue_on_skill_failure=True)`` → isolated engine."""
    return make_engine


@pytest.fixture
def sof_contract() -> Callable[..., Any]:
    """``sof_contract(MySkill, inputs={...})`` runs the skill alone and checks the contract."""
    return check_skill_contract


@pytest.fixture
def sof_plugin_check() -> Callable[..., Any]:
    """``sof_plugin_check("name", module)`` registers a plugin module in isolation."""
    return check_plugin_module
