"""What several ``sof`` commands share: the plugin manager, the engine, plan arguments.

Nothing heavy is imported at module level: the parser is built from these helpers on every
``sof`` call, ``sof --version`` included.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sof_core.cli import startup
from sof_core.cli.output import UsageError

if TYPE_CHECKING:
    from sof_core.execution.coordinator import CoordinatorEngine
    from sof_core.plugins import PluginManager

#: Seconds spent loading plugins in this process (``--trace`` shows it as "plugins").
LOAD_TIMES: dict[str, float] = {}


def manager() -> PluginManager:
    """The plugins as configured; a broken config file is reported (``ConfigError``).

    Loaded once per command and made the process-wide manager, so a plugin's own command
    that asks ``get_plugin_manager()`` (``sof memory``) gets these plugins instead of
    loading (and configuring, warnings included) every plugin a second time.
    """
    from sof_core.config import load_config
    from sof_core.plugins import PluginManager, get_plugin_manager

    started = time.perf_counter()
    loaded = get_plugin_manager(lambda: PluginManager(load_config()))
    LOAD_TIMES["plugins"] = time.perf_counter() - started
    startup.done()  # start-up is over: collect garbage again (see cli/startup.py)
    return loaded


def engine() -> CoordinatorEngine:
    from sof_core.execution.coordinator import CoordinatorEngine

    return CoordinatorEngine(manager())


def text_arg(value: str) -> str:
    """A command-line argument read as text (a query, a context value): as the UTF-8 it
    was typed in, also where Python decoded it otherwise.

    Under a locale whose encoding is not UTF-8 (``LC_ALL=C`` with ``PYTHONUTF8=0``),
    Python gives the UTF-8 bytes of ``café`` as ``'caf\\udcc3\\udca9'``; bytes that are
    UTF-8 are read as that text here. Bytes that are not are kept as they came, for the
    caller to refuse. Not for paths: a path opens as Python decoded it.
    """
    if value.isascii():
        return value
    try:
        return os.fsencode(value).decode("utf-8")
    except UnicodeError:  # not UTF-8 bytes, or text the locale cannot encode back
        return value


def not_empty(value: str | None, option: str, give: str) -> None:
    """An option given an explicit empty (or blank) value is a usage error naming it and
    saying what to give: ``--executor ""`` is never read as "not given"."""
    if value is not None and not value.strip():
        raise UsageError(f"{option} is empty; give {give}")


def plan_arg(values: Sequence[str] | None, option: str = "SKILL") -> list[str]:
    """Plans may be given as separate words or comma-separated. A word that names no skill
    (``""``, ``,``, ``,,,``) is a usage error, never read as "no plan given"."""
    plan: list[str] = []
    for value in values or ():
        names = [part.strip() for part in value.split(",") if part.strip()]
        if not names:
            raise UsageError(f"{option} {value!r} names no skill; give skill names, separated "
                             "by spaces or commas (e.g. MemoryRetrievalSkill,"
                             "ResponseGenerationSkill)")
        plan.extend(names)
    return plan


def prefer_arg(values: Sequence[str] | None) -> dict[str, str]:
    """``--prefer KEY=SKILL`` (repeatable) as a mapping; anything else is a usage error."""
    prefer: dict[str, str] = {}
    for item in values or ():
        key, sep, skill = item.partition("=")
        if not sep or not key.strip() or not skill.strip():
            raise UsageError(
                f"--prefer expects KEY=SKILL (e.g. final_response=ResponseGenerationSkill), "
                f"got {item!r}"
            )
        prefer[key.strip()] = skill.strip()
    return prefer


def add_plan_options(p: argparse.ArgumentParser, positional: bool) -> None:
    """``SKILL...`` (or ``--plan``), ``--goal``, ``--prefer`` and ``--include-optional``."""
    if positional:
        p.add_argument(
            "plan", nargs="*", metavar="SKILL", help="skill names (default plan if none)"
        )
    p.add_argument(
        "--goal",
        action="append",
        metavar="KEY",
        help="plan the skills that produce KEY (e.g. final_response) and their required "
        "inputs",
    )
    p.add_argument(
        "--prefer",
        action="append",
        metavar="KEY=SKILL",
        help="with --goal: which skill produces KEY when several can",
    )
    p.add_argument(
        "--include-optional",
        action="store_true",
        help="with --goal: also plan the producers of optional inputs",
    )


def check_plan_options(args: argparse.Namespace) -> dict[str, str]:
    """Check the plan options without loading anything; returns ``--prefer`` as a mapping."""
    prefer = prefer_arg(getattr(args, "prefer", None))
    plan_arg(getattr(args, "plan", None), _plan_option(args))
    for goal in getattr(args, "goal", None) or ():
        not_empty(goal, "--goal", "a key to plan for (e.g. final_response)")
    include_optional = bool(getattr(args, "include_optional", False))
    if not getattr(args, "goal", None) and (prefer or include_optional):
        option = "--prefer" if prefer else "--include-optional"
        raise UsageError(f"{option} only applies with --goal KEY")
    return prefer


def resolve_plan(
    engine: CoordinatorEngine, args: argparse.Namespace, *, default: bool = True
) -> list[str]:
    """The plan the arguments ask for: ``--goal`` (as ``engine.resolve_goal``), the skills
    named, or the configured default plan (``default=False``: an empty list, for commands
    that then ask the configured planner)."""
    prefer = check_plan_options(args)
    goal = getattr(args, "goal", None)
    if goal:
        include_optional = bool(getattr(args, "include_optional", False))
        from sof_core.execution.coordinator import goal_plan

        return goal_plan(engine, goal, include_optional=include_optional, prefer=prefer)
    plan = plan_arg(getattr(args, "plan", None), _plan_option(args))
    return plan or (list(engine.config.default_plan) if default else [])


def _plan_option(args: argparse.Namespace) -> str:
    """How the plan was given: ``--plan`` (``sof run``) or ``SKILL`` words."""
    return "--plan" if getattr(args, "command", None) == "run" else "SKILL"
