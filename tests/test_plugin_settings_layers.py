"""``sof_core.config.layered_settings``: a plugin's settings from its config-file section,
the environment and arguments, later layers winning, each value with where it came from
(so a plugin's error can say which layer to fix)."""

from __future__ import annotations

import pytest

from sof_core.config import layered_settings

ENV = {"SOF_DEMO_TIMEOUT": "timeout", "SOF_DEMO_MODE": "mode"}


def test_later_layers_win_and_each_value_says_where_it_came_from() -> None:
    values, sources = layered_settings(
        "demo",
        {"timeout": 5, "mode": "fast", "limit": 3},
        ENV,
        environ={"SOF_DEMO_TIMEOUT": " 7 ", "UNRELATED": "x"},
        overrides={"mode": "safe", "limit": None},
    )
    assert values == {"timeout": "7", "mode": "safe", "limit": 3}
    assert sources == {
        "timeout": "environment variable SOF_DEMO_TIMEOUT",
        "mode": "arguments",
        "limit": 'plugin_settings["demo"]',
    }


def test_blank_environment_values_and_none_arguments_are_not_given() -> None:
    values, sources = layered_settings("demo", None, ENV, environ={"SOF_DEMO_MODE": "   "},
                                       overrides={"timeout": None})
    assert (values, sources) == ({}, {})


def test_the_process_environment_is_read_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOF_DEMO_MODE", "from-env")
    values, sources = layered_settings("demo", {}, ENV)
    assert values == {"mode": "from-env"}
    assert sources["mode"] == "environment variable SOF_DEMO_MODE"
