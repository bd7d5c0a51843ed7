"""The ``sof`` command: inspect plugins and skills, draw and validate plans, run queries.

Exit codes: 0 success; 1 the thing asked about is broken (invalid plan, failed run, broken
plugin in strict mode); 2 usage or configuration error. Expected errors print one line on
stderr, never a traceback. Nothing heavy is imported before a command needs it, so
``sof --help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sof_core._version import __version__
from sof_core.cli.output import fail as _fail
from sof_core.cli.output import print_json as _print_json
from sof_core.cli.output import render_table

if TYPE_CHECKING:
    from sof_core.execution.coordinator import CoordinatorEngine
    from sof_core.plugins import PluginManager

CORE_COMMANDS = ("plugins", "skills", "graph", "validate", "run", "config")



# --- shared setup ------------------------------------------------------------------------


def _manager() -> PluginManager:
    from sof_core.config import load_config
    from sof_core.plugins import PluginManager

    return PluginManager(load_config()).load()  # the CLI reports a broken config file


def _engine() -> CoordinatorEngine:
    from sof_core.execution.coordinator import CoordinatorEngine

    return CoordinatorEngine(_manager())


def _plan_arg(values: Sequence[str] | None) -> list[str]:
    """Plans may be given as separate words or comma-separated."""
    plan: list[str] = []
    for value in values or ():
        plan.extend(part.strip() for part in value.split(",") if part.strip())
    return plan


def _resolve_plan(engine: CoordinatorEngine, args: argparse.Namespace) -> list[str]:
    goal = getattr(args, "goal", None)
    if goal:
        prefer = dict(item.split("=", 1) for item in getattr(args, "prefer", None) or ())
        return engine.resolve_goal(goal, include_optional=True, prefer=prefer)
    plan = _plan_arg(getattr(args, "plan", None))
    return plan or list(engine.config.default_plan)


# --- commands ----------------------------------------------------------------------------


def cmd_plugins(args: argparse.Namespace) -> int:
    from sof_core.config import load_config
    from sof_core.plugins import PluginManager

    config = load_config()
    strict = config.strict_plugins
    manager = PluginManager(config.model_copy(update={"strict_plugins": False})).load()
    records = list(manager.records.values())
    if not args.all:
        records = [r for r in records if r.source != "builtin"]
    if args.json:
        _print_json([r.to_dict() for r in records])
    else:
        rows = [
            (
                r.name,
                r.version or "-",
                r.distribution or f"({r.source})",
                r.status,
                ", ".join(h.removeprefix("sof_") for h in r.hooks) or "-",
                "-" if r.import_time_ms is None else f"{r.import_time_ms:.1f}",
                r.error or "",
            )
            for r in records
        ]
        if rows:
            print(
                render_table(
                    ["PLUGIN", "VERSION", "DISTRIBUTION", "STATUS", "HOOKS", "IMPORT MS", "ERROR"],
                    rows,
                )
            )
        else:
            print("no SOF plugins installed (entry point group 'sof.plugins')")
    failed = [r for r in records if r.status == "failed"]
    if failed and strict:
        return _fail(f"strict mode: {len(failed)} plugin(s) failed to load", 1)
    return 0


def cmd_skills(args: argparse.Namespace) -> int:
    manager = _manager()
    entries = list(manager.registry.skills())
    if args.json:
        _print_json([{**e.spec.describe(), "plugin": e.plugin, "kind": e.kind} for e in entries])
        return 0
    if not entries:
        print("no skills registered; install a skill plugin (see `sof plugins`)")
        return 0
    rows = []
    for e in entries:
        inputs = list(e.spec.required_inputs) + [f"{k}?" for k in e.spec.optional_inputs]
        rows.append(
            (
                e.spec.name,
                e.spec.version,
                ", ".join(inputs) or "-",
                ", ".join(e.spec.output_keys) or "-",
                e.plugin,
            )
        )
    print(render_table(["SKILL", "VERSION", "INPUTS (? = optional)", "OUTPUTS", "PLUGIN"], rows))
    return 0


def cmd_graph(args: argparse.Namespace) -> int:
    from sof_core.graph.build import build_graph, to_dot, to_mermaid

    engine = _engine()
    plan = _resolve_plan(engine, args)
    compiled = engine.compile(plan)
    known = [n for n in compiled.plan if n in compiled.steps]
    skill_graph = build_graph([compiled.steps[n].spec for n in known])
    if compiled.problems:
        for problem in compiled.problems:
            print(f"warning: {problem}", file=sys.stderr)
    stages = [list(s) for s in compiled.stages] or [[n] for n in known]
    if args.format == "mermaid":
        print(to_mermaid(skill_graph, stages), end="")
    elif args.format == "dot":
        print(to_dot(skill_graph, stages), end="")
    elif args.format == "json":
        _print_json(
            {
                "plan": list(compiled.plan),
                "stages": stages,
                "edges": [
                    {"from": a, "to": b, "keys": list(d["keys"])}
                    for a, b, d in skill_graph.graph.edges(data=True)
                ],
                "problems": [p.to_dict() for p in compiled.problems],
            }
        )
    else:
        for number, stage in enumerate(stages, 1):
            print(f"stage {number}: {', '.join(stage)}")
        for a, b, d in skill_graph.graph.edges(data=True):
            print(f"  {a} -> {b}  [{', '.join(d['keys'])}]")
    return 1 if compiled.problems else 0


def cmd_validate(args: argparse.Namespace) -> int:
    engine = _engine()
    plan = _resolve_plan(engine, args)
    problems = engine.validate_plan(plan)
    if args.json:
        _print_json(
            {"plan": plan, "valid": not problems, "problems": [p.to_dict() for p in problems]}
        )
    elif problems:
        print(f"plan {plan} is invalid ({len(problems)} problem(s)):")
        for problem in problems:
            print(f"  - [{problem.code}] {problem}")
    else:
        compiled = engine.compile(plan)
        print(f"plan is valid: {' -> '.join(' | '.join(s) for s in compiled.stages)}")
    return 1 if problems else 0


def cmd_run(args: argparse.Namespace) -> int:
    from sof_core.errors import PlanValidationError
    from sof_core.uif import UIF

    engine = _engine()
    if args.file:
        return _run_file(engine, args)
    if not args.query:
        return _fail("give a QUERY or --file FILE")
    plan = _resolve_plan(engine, args)
    context = {}
    for item in args.context or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            return _fail(f"--context expects KEY=VALUE, got {item!r}")
        context[key.strip()] = value
    uif = UIF.for_query(
        " ".join(args.query), user_context=context, session_id=args.session, user_id=args.user
    )
    try:
        report = engine.execute_plan(plan, uif, executor=args.executor)
    except PlanValidationError as exc:
        if args.json:
            _print_json(
                {"status": "invalid", "plan": plan, "problems": [p.to_dict() for p in exc.problems]}
            )
        else:
            print(f"sof: plan {plan} is invalid:", file=sys.stderr)
            for problem in exc.problems:
                print(f"  - [{problem.code}] {problem}", file=sys.stderr)
        return 1
    if args.json:
        print(report.to_json(include_uif=args.trace))
    else:
        _print_report(report, trace=args.trace)
    return 0 if report.status in ("success", "partial") else 1


def _print_report(report: Any, trace: bool) -> None:
    uif = report.uif
    print(uif.final_response or "(no response)")
    if uif.source_documents:
        print("\nRetrieved documents:")
        for number, source in enumerate(uif.source_documents, 1):
            print(f"  [{number}] {source}")
    for warning in uif.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    confidence = "-" if uif.confidence_score is None else f"{uif.confidence_score:.2f}"
    print(
        f"\nstatus: {report.status}  confidence: {confidence}  "
        f"time: {report.duration * 1000:.1f} ms  executor: {report.executor}"
    )
    for error in report.errors:
        print(f"error: {error}", file=sys.stderr)
    if trace:
        print("\nStages (skills in one stage run concurrently):")
        for number, stage in enumerate(report.stages, 1):
            print(f"  stage {number}: {' | '.join(stage)}")
        rows = [
            (
                r.stage + 1,
                r.skill,
                r.status,
                f"{r.duration * 1000:.2f}",
                r.attempts,
                r.plugin or "",
                r.error or "",
            )
            for r in report.results
        ]
        print()
        print(render_table(["STAGE", "SKILL", "STATUS", "MS", "TRIES", "PLUGIN", "ERROR"], rows))
        if uif.log_trace:
            print("\nLog:")
            for entry in uif.log_trace:
                print(f"  {entry}")


def _run_file(engine: CoordinatorEngine, args: argparse.Namespace) -> int:
    try:
        from sof_core.execution import batch
    except ImportError:  # pragma: no cover - batch module ships with the core
        return _fail("batch runs are not available in this build")
    try:
        with open(args.file, encoding="utf-8") as handle:
            queries = [line.strip() for line in handle if line.strip()]
    except OSError as exc:
        return _fail(f"cannot read {args.file}: {exc.strerror}")
    plan = _resolve_plan(engine, args)
    return int(batch.cli_run(engine, queries, plan, args))


# --- parser ------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sof",
        description="SOF, the SAM Orchestration Framework: skills as plugins, planned, "
        "validated as a graph and executed.",
        epilog="Installed plugins may add more commands (e.g. `sof memory`); see `sof plugins`.",
    )
    parser.add_argument("--version", action="version", version=f"sof-core {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("plugins", help="list installed plugins, their status and load errors")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--all", action="store_true", help="include SOF's built-in plugin")
    p.set_defaults(func=cmd_plugins)

    p = sub.add_parser("skills", help="list registered skills with their inputs and outputs")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_skills)

    def plan_options(p: argparse.ArgumentParser, positional: bool) -> None:
        if positional:
            p.add_argument(
                "plan", nargs="*", metavar="SKILL", help="skill names (default plan if none)"
            )
        p.add_argument(
            "--goal",
            action="append",
            metavar="KEY",
            help="plan the skills that produce KEY (e.g. final_response)",
        )
        p.add_argument(
            "--prefer",
            action="append",
            metavar="KEY=SKILL",
            help="with --goal: which skill produces KEY when several can",
        )

    p = sub.add_parser("graph", help="draw a plan's DAG with its parallel stages")
    plan_options(p, positional=True)
    p.add_argument("--format", choices=["mermaid", "dot", "text", "json"], default="text")
    p.set_defaults(func=cmd_graph)

    p = sub.add_parser("validate", help="check a plan; exit 1 listing every problem")
    plan_options(p, positional=True)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("run", help="answer a query through SOF")
    p.add_argument("query", nargs="*", metavar="QUERY")
    p.add_argument("--plan", nargs="+", metavar="SKILL", help="skill names (default: config)")
    plan_options(p, positional=False)
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--trace", action="store_true", help="show stages, timings and the log")
    p.add_argument("--executor", help="sequential, threads, asyncio, or a plugin's executor")
    p.add_argument("--session", help="session id (routing and memory context)")
    p.add_argument("--user", help="user id")
    p.add_argument("--context", action="append", metavar="KEY=VALUE", help="user_context entry")
    p.add_argument("--file", metavar="FILE", help="run every line of FILE as a query, concurrently")
    p.add_argument("--concurrency", type=int, default=8, help="with --file: queries at once")
    p.set_defaults(func=cmd_run)

    try:
        from sof_core.cli import config as config_cli
    except ImportError:
        config_cli = None  # type: ignore[assignment]
    if config_cli is not None:
        config_cli.register(sub)
    return parser


def _add_plugin_commands(parser: argparse.ArgumentParser, manager: PluginManager) -> None:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for impl in manager.hook_manager.hook.sof_register_commands.get_hookimpls():
        try:
            impl.function(sub)
        except Exception as exc:  # one plugin's broken command must not break `sof`
            print(
                f"sof: warning: plugin {impl.plugin_name!r} failed to add its commands: {exc}",
                file=sys.stderr,
            )


def _configure_logging() -> None:
    """Warnings (a skipped plugin, say) reach the terminal; SOF_LOG_LEVEL asks for more."""
    import logging
    import os

    level = os.environ.get("SOF_LOG_LEVEL", "WARNING").upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        level = "WARNING"
    logging.basicConfig(level=level, format="sof: %(levelname)s: %(message)s")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sof`` console script."""
    from sof_core.errors import SOFError

    argv = list(sys.argv[1:] if argv is None else argv)
    _configure_logging()
    parser = build_parser()
    wants_plugin_command = (
        bool(argv) and not argv[0].startswith("-") and argv[0] not in CORE_COMMANDS
    )
    try:
        if wants_plugin_command:
            _add_plugin_commands(parser, _manager())
        args = parser.parse_args(argv)
        if getattr(args, "func", None) is None:
            parser.print_help()
            return 0
        return int(args.func(args))
    except SOFError as exc:
        return _fail(
            str(exc), 1 if type(exc).__name__.startswith(("Plan", "Plugin", "Goal")) else 2
        )
    except KeyboardInterrupt:
        return 130
    except ValueError as exc:  # pydantic's ValidationError: bad data given on the command line
        if type(exc).__name__ != "ValidationError":
            raise
        from sof_core.uif import describe_validation_error

        return _fail(describe_validation_error(exc, "input"))  # type: ignore[arg-type]
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
