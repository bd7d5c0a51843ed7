"""pytest plugin for skill authors (entry point ``pytest11: sof``): contract fixtures.

pytest loads this in every session where sof-core is installed, so it imports nothing
heavy until a test asks for one of its fixtures.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest


@pytest.fixture
def sof_engine() -> Callable[..., Any]:
    """Factory: ``sof_engine([MySkill], continue_on_skill_failure=True)`` → isolated engine."""
    from sof_core.testing import make_engine

    return make_engine


@pytest.fixture
def sof_contract() -> Callable[..., Any]:
    """``sof_contract(MySkill, inputs={...})`` runs the skill alone and checks the contract."""
    from sof_core.testing import check_skill_contract

    return check_skill_contract


@pytest.fixture
def sof_plugin_check() -> Callable[..., Any]:
    """``sof_plugin_check("name", module)`` registers a plugin module in isolation."""
    from sof_core.testing import check_plugin_module

    return check_plugin_module
