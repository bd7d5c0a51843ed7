"""``sof run``: answer one query, or many (``--file FILE``, or ``-`` for standard input).

``--json`` prints the run's JSON, schema ``sof.run/1`` (``ExecutionReport.to_dict``);
several queries print ``sof.batch/1``, whose items are ``sof.run/1``. ``--output KEY``
prints one value of the final UIF. Arguments are checked before any plugin is loaded, so a
usage error is immediate: one line, exit 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from sof_core.cli import common
from sof_core.cli.output import UsageError, fail, others_write_to_stderr, render_table

if TYPE_CHECKING:
    from sof_core.execution.batch import BatchItem
    from sof_core.execution.coordinator import CoordinatorEngine
    from sof_core.execution.report import ExecutionReport
    from sof_core.graph.validate import ValidationProblem

#: ``--trace`` names for the phases in ``ExecutionReport.timings``.
PHASE_NAMES = {"plugins": "plugins", "planning": "planning", "compile": "compiling",
               "run": "running"}


def register(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser(
        "run",
        help="answer a query through SOF (`-` reads queries from standard input)",
        description="Answer QUERY; `sof run -` reads queries from standard input, one per "
        "line (one query runs like QUERY, several like --file).",
    )
    p.add_argument("query", nargs="*", metavar="QUERY", help="the query, or - for stdin")
    p.add_argument("--plan", nargs="+", metavar="SKILL",
                   help="skill names (default: the configured planner's plan, see `sof plan`)")
    common.add_plan_options(p, positional=False)
    p.add_argument("--json", action="store_true",
                   help="print the run as JSON (schema sof.run/1, see docs/cli.md)")
    p.add_argument("--output", metavar="KEY",
                   help="print only KEY of the final UIF (intermediate_data first, then UIF "
                   "fields); strings raw, other values as JSON")
    p.add_argument("--trace", action="store_true",
                   help="show stages, per-skill and per-phase timings, tracebacks and the log")
    p.add_argument("--executor", help="sequential, threads, asyncio, or a plugin's executor")
    p.add_argument("--session", help="session id (routing and memory context)")
    p.add_argument("--user", help="user id")
    p.add_argument("--context", action="append", metavar="KEY=VALUE", help="user_context entry")
    p.add_argument("--file", metavar="FILE",
                   help="run every line of FILE as a query, concurrently")
    p.add_argument("--concurrency", type=int, default=None, metavar="N",
                   help="with several queries: how many run at once (default: max_workers, "
                   "64 unless configured)")
    p.set_defaults(func=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    _read_as_text(args)
    queries = _queries(args)
    common.check_plan_options(args)  # a malformed --prefer fails before plugins load
    context = _context(args.context)
    several = len(queries) > 1 or args.file is not None
    if several:
        _check_batch_options(args)
    from sof_core.errors import GoalResolutionError

    unresolved: GoalResolutionError | None = None
    with others_write_to_stderr():
        engine = common.engine()
        planning_started = time.perf_counter()
        try:
            plan = common.resolve_plan(engine, args, default=False)  # empty: the planner's
        except GoalResolutionError as exc:
            if not args.json or several:
                raise
            unresolved = exc
        planning = time.perf_counter() - planning_started
    if unresolved is not None:  # printed here: stdout is ours again
        return _goal_not_resolved(queries[0], context, args, unresolved)
    if several:
        code = _run_batch(engine, queries, plan, args)
    else:
        code = _run_one(engine, queries[0], plan, context, args, planning)
    _say_abandoned(engine)
    return code


def _goal_not_resolved(
    query: str, context: dict[str, str], args: argparse.Namespace, exc: Exception
) -> int:
    """``--goal`` that no registered skills produce, with ``--json``: the run's JSON all the
    same (status ``invalid``, the reason in ``errors``), as for an invalid ``--plan``."""
    from sof_core.execution.report import ExecutionReport
    from sof_core.uif import UIF

    uif = UIF.for_query(query, user_context=context, session_id=args.session, user_id=args.user)
    print(ExecutionReport.not_run([], uif, str(exc)).to_json())
    return 1


def _say_abandoned(engine: CoordinatorEngine) -> None:
    """Say which skill calls were abandoned at their timeout and still run: the process
    exits now anyway (their threads are daemons, never waited for)."""
    hung = engine.abandoned_calls()
    if not hung:
        return
    count = sum(hung.values())
    calls = "call" if count == 1 else "calls"
    which = ", ".join(f"{skill}: {n}" for skill, n in sorted(hung.items()))
    print(f"sof: exiting with {count} abandoned skill {calls} still running ({which}); "
          "they were given up on at their timeout and are not waited for", file=sys.stderr,
          flush=True)


# --- arguments -----------------------------------------------------------------------------


def _read_as_text(args: argparse.Namespace) -> None:
    """QUERY words, ``--context``, ``--session`` and ``--user`` as the text typed, whatever
    the locale (``common.text_arg``); ``--file`` stays a path."""
    args.query = [common.text_arg(word) for word in args.query]
    args.context = [common.text_arg(item) for item in args.context or ()] or None
    for option in ("session", "user"):
        value = getattr(args, option)
        if value is not None:
            setattr(args, option, common.text_arg(value))


def _queries(args: argparse.Namespace) -> list[str]:
    """The queries to run: QUERY words, ``--file``, or ``-`` (standard input).

    The batch module (and asyncio with it) is imported only for ``--file`` and ``-``: one
    query does not need it.
    """
    if args.concurrency is not None and args.concurrency < 1:
        raise UsageError(f"--concurrency must be a whole number >= 1, got {args.concurrency}")
    if args.json and args.output:
        raise UsageError("give --json or --output KEY, not both")
    common.not_empty(args.executor, "--executor",
                     "an executor name (sequential, threads, asyncio, or a plugin's)")
    common.not_empty(args.output, "--output", "the key of the final UIF to print "
                     "(e.g. final_response)")
    words = list(args.query)
    if args.file is not None:
        if words:
            raise UsageError(
                f"give a QUERY or --file FILE, not both (got the query {' '.join(words)!r} "
                "beside --file)"
            )
        from sof_core.execution.batch import read_queries

        queries = read_queries(args.file)
        if not queries:
            raise UsageError(f"query file {args.file} holds no query (blank lines and "
                             "# comments are skipped)")
        return queries
    if "-" in words:
        if words != ["-"]:
            raise UsageError("`-` reads the queries from standard input; give no other QUERY")
        from sof_core.execution.batch import parse_queries

        stdin = sys.stdin  # None when standard input is closed (`sof run - <&-`): empty
        # Read in pieces and given up at the first NUL, non-UTF-8 byte or byte past
        # MAX_QUERY_BYTES: `sof run - < /dev/zero` is a usage error, not endless reading.
        queries = parse_queries(stdin.buffer if stdin is not None else b"", "standard input")
        if not queries:
            raise UsageError("no query on standard input (one query per line)")
        return queries
    if not words:
        raise UsageError("give a QUERY, `-` to read queries from standard input, or --file FILE")
    query = " ".join(words)
    common.not_empty(query, "QUERY", "the query to run (e.g. \"What is 15% of 240?\")")
    return [query]


def _context(items: Sequence[str] | None) -> dict[str, str]:
    context: dict[str, str] = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--context expects KEY=VALUE, got {item!r}")
        try:
            item.encode("utf-8")
        except UnicodeEncodeError:  # bytes the shell passed that are not UTF-8
            raise UsageError(f"--context {item!r} is not valid UTF-8 text") from None
        context[key.strip()] = value
    return context


def _check_batch_options(args: argparse.Namespace) -> None:
    """Options that shape one run's output or UIF are refused, not ignored, for many."""
    for option, value in (("--output", args.output), ("--trace", args.trace),
                          ("--context", args.context), ("--session", args.session),
                          ("--user", args.user)):
        if value:
            raise UsageError(
                f"{option} applies to a single query; with several queries use --json "
                "(each item is one run's JSON)"
            )


# --- one query -----------------------------------------------------------------------------


def _run_one(
    engine: CoordinatorEngine,
    query: str,
    plan: list[str],
    context: dict[str, str],
    args: argparse.Namespace,
    planning: float,
) -> int:
    from sof_core.errors import PlanValidationError
    from sof_core.execution.report import ExecutionReport
    from sof_core.uif import UIF

    uif = UIF.for_query(query, user_context=context, session_id=args.session, user_id=args.user)
    planned = None
    if not plan:  # no --plan or --goal: the configured planner chooses (docs/planning.md)
        started = time.perf_counter()
        with others_write_to_stderr():
            planned = engine.planning.plan(query, profile=uif.active_profile)
        plan = list(planned.plan)
        planning += time.perf_counter() - started
    try:
        with others_write_to_stderr():
            if planned is not None:  # adaptive choice and re-planning (docs/planning.md)
                report = engine.run_planned(planned, uif, executor=args.executor)
            else:
                report = engine.execute_plan(plan, uif, executor=args.executor)
    except PlanValidationError as exc:
        if args.json:
            problems = cast("list[ValidationProblem]", exc.problems)
            invalid = ExecutionReport.not_run(
                plan, uif, f"plan {plan} is invalid", problems=problems
            )
            _add_timings(invalid, planning)
            invalid.planning = planned.to_dict() if planned is not None else None
            print(invalid.to_json())
        else:
            print(f"sof: plan {plan} is invalid:", file=sys.stderr)
            for problem in exc.problems:
                print(f"  - [{problem.code}] {problem}", file=sys.stderr)
        return 1
    _add_timings(report, planning)
    code = 0 if report.status in ("success", "partial") else 1
    if args.json:
        print(report.to_json())
    elif args.output:
        return _print_output(report, args.output) or code
    else:
        _print_report(report, trace=args.trace)
    return code


def _add_timings(report: ExecutionReport, planning: float) -> None:
    plugins = common.LOAD_TIMES.get("plugins")
    if plugins is not None:
        report.timings["plugins"] = plugins
    report.timings["planning"] = planning


def _print_output(report: ExecutionReport, key: str) -> int:
    """``--output KEY``: intermediate_data first, then UIF fields; 1 if the key is absent."""
    uif = report.to_dict()["uif"]
    data = uif.get("intermediate_data") or {}
    if key in data:
        value = data[key]
    elif key in uif:
        value = uif[key]
    else:
        import difflib

        close = difflib.get_close_matches(key, [*data, *uif], n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        keys = ", ".join(sorted(data)) or "none"
        return fail(
            f"the run produced no key {key!r}{hint}; intermediate_data keys: {keys}; UIF "
            f"fields: {', '.join(uif)}",
            1,
        )
    print(value if isinstance(value, str) else json.dumps(value, indent=2, default=str))
    return 0


def _where_it_failed(report: ExecutionReport, error: str, trace: bool) -> str:
    """Which plugin's code failed and at which line, for an error naming a skill whose
    own code raised (the report keeps that line; the traceback is ``--trace``'s)."""
    for result in report.results:
        if result.location and error.startswith(f"{result.skill}: "):
            plugin = f"plugin {result.plugin}, " if result.plugin else ""
            more = "" if trace else "; --trace shows the traceback"
            return f" ({plugin}at {result.location}{more})"
    return ""


def _print_report(report: ExecutionReport, trace: bool) -> None:
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
        print(f"error: {error}{_where_it_failed(report, error, trace)}", file=sys.stderr)
    if not trace:
        return
    phases = [(PHASE_NAMES[k], report.timings[k]) for k in PHASE_NAMES if k in report.timings]
    if phases:
        total = sum(seconds for _, seconds in phases)
        split = ", ".join(f"{name} {seconds * 1000:.1f} ms" for name, seconds in phases)
        print(f"time: {split} (total {total * 1000:.1f} ms)")
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
            _error_cell(r),
        )
        for r in report.results
    ]
    print()
    print(render_table(["STAGE", "SKILL", "STATUS", "MS", "TRIES", "PLUGIN", "ERROR"], rows))
    for result in report.results:
        text = getattr(result, "traceback", None)  # SkillResult.traceback, when recorded
        if text:
            print(f"\nTraceback of {result.skill} ({result.status}):")
            print(str(text).rstrip())
    if uif.log_trace:
        print("\nLog:")
        for entry in uif.log_trace:
            print(f"  {entry}")


def _error_cell(result: Any) -> str:
    """The error, with where the skill raised it when the result records that."""
    if not result.error:
        return ""
    location = getattr(result, "location", None)  # SkillResult.location, when recorded
    return f"{result.error} (at {location})" if location else str(result.error)


# --- several queries -----------------------------------------------------------------------


def _run_batch(
    engine: CoordinatorEngine, queries: list[str], plan: list[str], args: argparse.Namespace
) -> int:
    """Print one line per query and the summary (``--json``: ``sof.batch/1``).

    Progress goes to stderr as queries finish. Exit 0 when every query succeeded (or
    partially succeeded), else 1.
    """
    from sof_core.execution.batch import format_summary, run_batch

    bar = sys.stderr.isatty()
    failed = 0

    def progress(done: int, total: int, item: BatchItem) -> None:
        nonlocal failed
        failed += item.status not in ("success", "partial")
        if args.json:
            return
        if bar:  # one line redrawn in place on a terminal
            filled = 30 * done // total
            line = f"\r[{'#' * filled}{'.' * (30 - filled)}] {done}/{total} done, {failed} failed"
            print(line, end="\n" if done == total else "", file=sys.stderr, flush=True)
        else:  # one line per query in logs and pipes
            print(f"[{done}/{total}] {item.status:<8} {item.query[:60]}", file=sys.stderr)

    with others_write_to_stderr():
        # No --plan or --goal: None, each query planned by the configured planner (an
        # empty list would be run as the empty plan it is).
        given = plan if plan or getattr(args, "goal", None) else None
        batch = run_batch(engine, queries, given, concurrency=args.concurrency,
                          executor=args.executor, progress=progress)
    if args.json:
        print(json.dumps(batch.to_dict(), indent=2, default=str))
    else:
        for item in batch.items:
            answer = item.report.final_response if item.report is not None else None
            detail = answer or item.error or "; ".join(
                item.report.errors if item.report is not None else []
            ) or "(no response)"
            print(f"#{item.index + 1} [{item.status}] {item.latency * 1000:.1f} ms  "
                  f"{item.query}\n    {detail}")
        print()
        print(format_summary(batch.summary))
    ok = all(item.status in ("success", "partial") for item in batch.items)
    return 0 if ok else 1
