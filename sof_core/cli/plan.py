"""``sof plan``, ``sof graph`` and ``sof validate``: the plan a planner makes for a query, a
plan's DAG and stages, and every problem it has."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from sof_core.cli import common
from sof_core.cli.output import print_json


def register(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser(
        "plan",
        help="show the plan the configured planner makes for a query, and why",
        description="Plan QUERY without running it: the skills, their stages, the planner "
        "that chose them, whether the plan came from the cache, and why each skill is in it.",
    )
    p.add_argument("query", nargs="+", metavar="QUERY", help="the query to plan")
    p.add_argument("--planner", metavar="NAME",
                   help="plan with this planner instead of the configured one (rules, static, "
                   "goal, llm, or a plugin's)")
    p.add_argument("--json", action="store_true",
                   help="machine-readable output (schema sof.plan/1, see docs/cli.md)")
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser("graph", help="draw a plan's DAG with its parallel stages")
    common.add_plan_options(p, positional=True)
    p.add_argument("--format", choices=["mermaid", "dot", "text", "json"], default="text")
    p.set_defaults(func=cmd_graph)

    p = sub.add_parser("validate", help="check a plan; exit 1 listing every problem")
    common.add_plan_options(p, positional=True)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_validate)


def cmd_graph(args: argparse.Namespace) -> int:
    from sof_core.graph.build import build_graph, to_dot, to_mermaid

    engine = common.engine()
    plan = common.resolve_plan(engine, args)
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
        print_json(
            {
                "plan": list(compiled.plan),
                "stages": stages,
                "edges": [
                    {"from": a, "to": b, "keys": skill_graph.edge_keys(a, b)}
                    for a, b in skill_graph.graph.edges
                ],
                "problems": [p.to_dict() for p in compiled.problems],
            }
        )
    else:
        for number, stage in enumerate(stages, 1):
            print(f"stage {number}: {', '.join(stage)}")
        for a, b in skill_graph.graph.edges:
            print(f"  {a} -> {b}  [{', '.join(skill_graph.edge_keys(a, b))}]")
    return 1 if compiled.problems else 0


def cmd_validate(args: argparse.Namespace) -> int:
    engine = common.engine()
    plan = common.resolve_plan(engine, args)
    problems = engine.validate_plan(plan)
    if args.json:
        print_json(
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


def cmd_plan(args: argparse.Namespace) -> int:
    """Exit 0 with a plan; 1 when the plan (even after fallbacks) is invalid; 2 for an
    unknown planner (a configuration error)."""
    common.not_empty(args.planner, "--planner",
                     "a planner name (rules, static, goal, llm, or a plugin's)")
    query = " ".join(common.text_arg(word) for word in args.query)
    common.not_empty(query, "QUERY", "the query to plan (e.g. \"What is 15% of 240?\")")
    engine = common.engine()
    from sof_core.uif import UIF

    # Planned for the profile `sof run` plans for (its query's UIF's), so the plan shown is
    # the plan run, and a plan this command caches serves `sof run` of the same query.
    profile = UIF.for_query(query).active_profile
    result = engine.planning.plan(query, planner=args.planner, profile=profile)
    problems = engine.validate_plan(result.plan)
    if args.json:
        data = result.to_dict()
        data["query"] = query
        data["valid"] = not problems
        data["problems"] = [p.to_dict() for p in problems]
        print_json(data)
        return 1 if problems else 0
    source = "cache hit" if result.cache_hit else "cache miss"
    print(f"plan: {' -> '.join(result.plan) or '(empty)'}")
    print(f"planner: {result.planner} ({source}, {result.duration * 1000:.2f} ms)")
    for fallback in result.fallbacks:
        print(f"fallback: planner {fallback.planner} -> {fallback.to}: {fallback.reason}")
    if result.reasoning:
        print(f"reasoning: {result.reasoning}")
    print("stages (skills in one stage run concurrently):")
    for number, stage in enumerate(result.stages, 1):
        print(f"  stage {number}: {' | '.join(stage)}")
    print("why:")
    for name in result.plan:
        print(f"  {name}: {result.reasons.get(name, '')}")
    for change in result.changes:
        print(f"optimised: {change.action} {change.skill}: {change.why}")
    for name, why in result.skipped.items():
        print(f"not chosen: {name}: {why}")
    for problem in problems:
        print(f"problem: [{problem.code}] {problem}", file=sys.stderr)
    return 1 if problems else 0
