"""``sof config``: show, change, enable, disable and roll out, from the shell.

Every change goes through ``SOFConfigManager.update_config`` (validated, locked, atomic), so
a running host picks it up on its next query. Expected errors print one line on stderr and
exit 2. Imports stay inside the commands so that ``sof --help`` remains fast.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import math
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from sof_core.cli.common import text_arg

if TYPE_CHECKING:
    from sof_core.config import SOFConfig
    from sof_core.config.manager import SOFConfigManager

USAGE_ERROR = 2


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add ``config`` and its sub-commands to the ``sof`` parser."""
    parser = subparsers.add_parser(
        "config", help="show or change SOF's configuration (rollout, rollback, settings)"
    )
    parser.set_defaults(func=_usage(parser))
    sub = parser.add_subparsers(dest="config_command", metavar="SUBCOMMAND")

    p = sub.add_parser("show", help="every key with its value and where it came from")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_quiet(cmd_show))

    p = sub.add_parser("set", help="set KEY to VALUE in the config file (VALUE may be JSON)")
    p.add_argument("key", metavar="KEY")
    p.add_argument("value", metavar="VALUE")
    p.set_defaults(func=_quiet(cmd_set))

    p = sub.add_parser("enable", help="route queries to SOF (per the rollout percentage)")
    p.add_argument("--percentage", type=float, metavar="PERCENT",
                   help="also set the rollout percentage (0-100)")
    p.set_defaults(func=_quiet(cmd_enable))

    p = sub.add_parser("disable", help="roll back: every new query goes to the legacy pipeline")
    p.set_defaults(func=_quiet(cmd_disable))

    p = sub.add_parser("rollout", help="route PERCENT %% of users to SOF (stable per user)")
    p.add_argument("percentage", metavar="PERCENT")
    p.set_defaults(func=_quiet(cmd_rollout))

    p = sub.add_parser("path", help="print the config file's path")
    p.set_defaults(func=cmd_path)


# --- commands ------------------------------------------------------------------------------


def _strict_json(value: Any) -> Any:
    """``value`` with each infinity or NaN as the string JSON has no number for
    (``"Infinity"``): a SAM key in the file may hold one (SAM's ``json.dump`` writes them),
    and ``--json`` output must parse with any JSON reader."""
    if isinstance(value, float) and not math.isfinite(value):
        return json.dumps(value)
    if isinstance(value, dict):
        return {key: _strict_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_strict_json(item) for item in value]
    return value


def cmd_show(args: argparse.Namespace) -> int:
    manager = _manager()
    from sof_core.errors import ConfigError

    try:
        rows = manager.explain()
    except ConfigError as exc:
        return _fail(str(exc))
    for note in manager.state().notes:  # logged by the manager, but muted here (_quiet)
        print(f"sof: warning: {note}", file=sys.stderr)
    from sof_core.config import unknown_env_vars

    sam_unused = manager.sam_unused()
    unknown_env = unknown_env_vars()
    if args.json:
        print(json.dumps({"path": str(manager.path), "settings": rows,
                          "sam_settings_not_used": _strict_json(sam_unused),
                          "unknown_environment": unknown_env}, indent=2, allow_nan=False))
        return 0
    from sof_core.cli.output import render_table

    print(f"# {manager.path}")
    table = [(r["key"], json.dumps(r["value"]), r["source"]) for r in rows]
    print(render_table(("KEY", "VALUE", "SOURCE"), table))
    if sam_unused:
        print("\nSAM settings SOF does not use (kept in the file as they are):")
        print(render_table(("KEY", "VALUE"), [(k, json.dumps(v)) for k, v in sam_unused.items()]))
    if unknown_env:
        print("\nSOF_* environment variables SOF ignores:")
        print(render_table(("VARIABLE", "WHY"), list(unknown_env.items())))
    return 0


def cmd_set(args: argparse.Namespace) -> int:
    from sof_core.errors import ConfigError

    args.key, args.value = text_arg(args.key), text_arg(args.value)  # whatever the locale
    for what, text in (("KEY", args.key), ("VALUE", args.value)):
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # bytes the shell passed that are not UTF-8
            return _fail(f"{what} {text!r} is not valid UTF-8 text; give it as UTF-8")
    try:
        value = parse_value(args.value)
    except ConfigError as exc:
        return _fail(f"{args.key}: {exc}")
    return _change(args.key, {args.key: value})


def cmd_enable(args: argparse.Namespace) -> int:
    changes: dict[str, Any] = {"use_sof_framework": True}
    if args.percentage is not None:
        changes["sof_rollout_percentage"] = args.percentage
    return _change("use_sof_framework", changes)


def cmd_disable(args: argparse.Namespace) -> int:
    from sof_core.errors import ConfigError

    manager = _manager()
    try:
        config = manager.disable_sof_framework()
    except ConfigError as exc:
        return _fail(str(exc))
    if manager.last_backup is not None:
        print(f"sof: warning: {manager.path} was unusable; kept it as {manager.last_backup} "
              "and wrote a fresh file", file=sys.stderr)
    code = _report(manager, config, {"use_sof_framework": False})
    error = manager.state().error
    if error is not None:
        print(f"sof: warning: rolled back, but {' '.join(str(error).split())}",
              file=sys.stderr)
    return code


def cmd_rollout(args: argparse.Namespace) -> int:
    from sof_core.errors import ConfigError

    try:
        value = parse_value(args.percentage)
        if isinstance(value, str) and value.endswith("%"):
            value = parse_value(value[:-1])
    except ConfigError as exc:
        return _fail(f"sof_rollout_percentage: {exc}")
    return _change("sof_rollout_percentage", {"sof_rollout_percentage": value})


def cmd_path(args: argparse.Namespace) -> int:
    print(_manager().path)
    return 0


# --- helpers -------------------------------------------------------------------------------


#: JSON nested deeper than this is refused (no setting needs it; Python's parser would hit
#: its recursion limit on a few thousand levels).
MAX_VALUE_DEPTH = 32


def parse_value(text: str) -> Any:
    """VALUE as JSON when it parses (``25``, ``true``, ``["a"]``, ``null``), else the string.

    Raises ``ConfigError`` for JSON a config file could not hold: ``NaN``/``Infinity``, or
    nesting deeper than ``MAX_VALUE_DEPTH``.
    """
    from sof_core.config.sources import json_depth
    from sof_core.errors import ConfigError

    if json_depth(text) > MAX_VALUE_DEPTH:
        raise ConfigError(
            f"VALUE is nested more than {MAX_VALUE_DEPTH} levels deep; no setting takes that",
            key="value",
        )

    def no_constant(name: str) -> Any:
        raise ConfigError(f"VALUE {name} is not a finite number; give a number", key="value")

    def finite(number: str) -> float:
        value = float(number)
        if not math.isfinite(value):
            raise ConfigError(f"VALUE {number} is not a finite number; give a number",
                              key="value")
        return value

    try:
        return json.loads(text, parse_constant=no_constant, parse_float=finite)
    except ValueError as exc:
        if isinstance(exc, ConfigError):
            raise
        return text


def _manager() -> SOFConfigManager:
    from sof_core.config.manager import SOFConfigManager

    return SOFConfigManager()


def _quiet(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """The CLI prints its own one-line messages, so the manager's log warnings are muted."""

    @functools.wraps(command)
    def run(args: argparse.Namespace) -> int:
        logger = logging.getLogger("sof.config")
        level = logger.level
        logger.setLevel(logging.ERROR)
        try:
            return command(args)
        finally:
            logger.setLevel(level)

    return run


def _change(key: str, changes: dict[str, Any]) -> int:
    from sof_core.errors import ConfigError

    manager = _manager()
    try:
        config = manager.update_config(**changes)
    except ConfigError as exc:
        return _fail(str(exc))
    return _report(manager, config, changes)


def _report(manager: SOFConfigManager, config: SOFConfig, changes: dict[str, Any]) -> int:
    """Print the effective values; exit 1 when an override keeps a change from applying."""
    code = 0
    for key in changes:
        value = _effective(manager, config, key)
        print(f"{key} = {json.dumps(value)}  (saved to {manager.path})")
        source = manager.overridden(key)
        if source is not None and value != changes[key]:
            print(f"sof: warning: {key} is overridden by {source}, so the saved value does "
                  "not apply until that is removed", file=sys.stderr)
            code = 1
    return code


def _effective(manager: SOFConfigManager, config: SOFConfig, key: str) -> Any:
    """A setting's value now; SAM's keys SOF does not use are shown as the file holds them."""
    from sof_core.config import SAM_KEYS

    sam = SAM_KEYS.get(key)
    if sam is not None and sam.setting is None:
        return manager.sam_settings()[key]
    return getattr(config, key)


def _fail(message: str) -> int:
    print(f"sof config: error: {' '.join(message.split())}", file=sys.stderr)
    return USAGE_ERROR


def _usage(parser: argparse.ArgumentParser) -> Any:
    """``sof config`` alone: its help, exit 0 (as ``sof`` and ``sof memory`` alone)."""

    def show_help(args: argparse.Namespace) -> int:
        parser.print_help()
        return 0

    return show_help


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m sof_core.cli.config SUBCOMMAND`` (the same as ``sof config``)."""
    parser = argparse.ArgumentParser(prog="sof")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["config", *(sys.argv[1:] if argv is None else argv)])
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
