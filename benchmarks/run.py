"""Run SOF's performance benchmarks: ``python benchmarks/run.py [--quick] [--only NAME ...]``.

Each section runs in its own fresh interpreter (no warm caches or heap left over from
another section), reports every figure as a ratio against a baseline measured in the same
run, and checks the targets from the performance issue. Results are printed as a table and
written to ``benchmarks/results/latest.json`` (git-ignored). The exit code is 0 even when a
target fails: benchmarks inform, tests gate.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SECTIONS = ("overhead", "fanout", "graph", "registration", "startup", "throughput", "legacy",
            "isolation", "planning", "serve", "observers")
DEFAULT_OUTPUT = HERE / "results" / "latest.json"


def run_section(name: str, quick: bool) -> dict[str, Any]:
    """Run one section in this process and return its JSON-ready result."""
    sys.path.insert(0, str(HERE))
    module = importlib.import_module(f"bench_{name}")
    started = time.perf_counter()
    section = module.run(quick)
    data: dict[str, Any] = section.to_dict()
    data["seconds"] = round(time.perf_counter() - started, 2)
    return data


def run_in_subprocess(name: str, quick: bool, timeout: float) -> dict[str, Any]:
    command = [sys.executable, str(Path(__file__).resolve()), "--section", name]
    if quick:
        command.append("--quick")
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                              check=False)
    except subprocess.TimeoutExpired:
        return _failed(name, f"timed out after {timeout}s")
    if proc.returncode != 0:
        return _failed(name, proc.stderr.strip().splitlines()[-1] if proc.stderr else "crashed",
                       proc.stderr)
    try:
        return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]
    except (ValueError, IndexError):
        return _failed(name, "printed no JSON result", proc.stdout + proc.stderr)


def _failed(name: str, error: str, detail: str = "") -> dict[str, Any]:
    return {"name": name, "title": name, "rows": [], "targets": [], "notes": [],
            "error": error, "detail": detail[-4000:]}


def python_call_ns() -> float:
    """What one no-op Python function call costs on this machine right now (ns, timeit's
    loop included): the yardstick for reading the absolute figures (microseconds per skill,
    milliseconds per compile), which move with the machine while the ratios do not.
    Measured at the start and the end of a run, so a machine that slowed down meanwhile (a
    busy host's CPU steal) shows."""
    import timeit

    def noop() -> None:
        pass

    number = 1_000_000
    return min(timeit.repeat(noop, number=number, repeat=5)) / number * 1e9


def render(results: dict[str, Any]) -> str:
    """The printed table: one block per section, then the targets with PASS/FAIL."""
    sys.path.insert(0, str(HERE))
    from _common import fmt

    lines: list[str] = []
    calls = results["meta"].get("python_call_ns")
    if calls:
        lines.append(f"machine: a no-op Python call took {calls['start']:.1f} ns at the start of "
                     f"this run and {calls['end']:.1f} ns at its end (absolute figures scale "
                     "with it; ratios to same-run baselines do not)")
    for section in results["sections"].values():
        lines.append(f"\n== {section['title']} ({section['name']}, {section.get('seconds', '?')} s)")
        if section.get("error"):
            lines.append(f"   ERROR: {section['error']}")
        rows = [
            (
                row["name"],
                fmt(row["value"], row["unit"]),
                fmt(row["baseline"], row["unit"]) if row["baseline"] is not None else "-",
                row["baseline_name"] or "",
                "-" if row["ratio"] is None else f"{row['ratio']:.2f}x",
                row["note"],
            )
            for row in section["rows"]
        ]
        lines.extend(_table(("figure", "value", "baseline", "baseline is", "ratio", "note"), rows))
        for note in section.get("notes", []):
            lines.append(f"   note: {note}")
    lines.append("\n== Targets")
    target_rows = [
        (t["verdict"], section["name"], t["name"], fmt(t["value"], t["unit"]),
         f"<= {fmt(t['limit'], t['unit'])}")
        for section in results["sections"].values()
        for t in section["targets"]
    ]
    lines.extend(_table(("", "section", "target", "measured", "limit"), target_rows))
    return "\n".join(lines)


def _table(headers: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]

    def line(cells: tuple[str, ...]) -> str:
        return "   " + "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return [line(headers), line(tuple("-" * w for w in widths)), *map(line, rows)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="fast smoke run: fewer sizes and repeats (figures are rough)")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, metavar="SECTION",
                        help=f"run only these sections ({', '.join(SECTIONS)})")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT,
                        help=f"where to write the JSON results (default {DEFAULT_OUTPUT})")
    parser.add_argument("--section", choices=SECTIONS, help=argparse.SUPPRESS)
    parser.add_argument("--timeout", type=float, default=900.0,
                        help="seconds allowed per section (default 900)")
    args = parser.parse_args(argv)
    if args.section:  # child mode: one section, JSON on the last line of stdout
        print(json.dumps(run_section(args.section, args.quick)))
        return 0
    from sof_core import __version__

    results: dict[str, Any] = {
        "meta": {
            "sof_core": __version__,
            "python": platform.python_version(),
            "implementation": platform.python_implementation(),
            "platform": platform.platform(),
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
            "quick": args.quick,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        },
        "sections": {},
    }
    started_call = python_call_ns()
    for name in args.only or SECTIONS:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        results["sections"][name] = run_in_subprocess(name, args.quick, args.timeout)
    results["meta"]["python_call_ns"] = {"start": started_call, "end": python_call_ns()}
    targets = [t for s in results["sections"].values() for t in s["targets"]]
    results["summary"] = {
        "passed": sum(t["passed"] is True for t in targets),
        "failed": sum(t["passed"] is False for t in targets),
        "skipped": sum(t["passed"] is None for t in targets),
        "errors": [s["name"] for s in results["sections"].values() if s.get("error")],
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(render(results))
    summary = results["summary"]
    print(f"\n{summary['passed']} target(s) passed, {summary['failed']} failed, "
          f"{summary['skipped']} not measured; results in {args.output}")
    return 1 if summary["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
