"""``sof plugins check [NAME...]``: the plugin contract, in a child process.

The contract runs the plugins' own code. A skill may call ``os._exit``, crash in native code
or be killed by the kernel; in the checking process that would end ``sof plugins check``
with no report at all. So ``run_isolated`` runs ``check_plugins`` in a child Python process
(``python -m sof_core.cli.contract_child``) that reports each check as it starts and ends,
through a file of JSON lines. When the child dies, the check that was running fails with
how it died, the plugins already checked keep their results, and a new child checks the
plugins that remain. One child checks every plugin when nothing goes wrong.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sof_core.cli.contract import PLUGIN_CHECKS, SKILL_CHECKS, PluginContract


class ContractRunError(RuntimeError):
    """The check could not run at all (the message says why); not a verdict on a plugin.
    ``code`` is the exit code ``sof plugins check`` gives it: 2 for a broken configuration
    (as any command), 1 when loading the installed plugins ended the process."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def run_isolated(names: Sequence[str] | None = None) -> list[PluginContract]:
    """``check_plugins(names)`` in child processes; ``LookupError`` for an unknown name."""
    reports: list[PluginContract] = []
    pending: list[str] | None = list(names) if names else None
    while True:
        events, code = _run_child(pending)
        for event, data in events:
            if event == "error":
                if data.get("type") == "LookupError":
                    raise LookupError(data["message"])
                raise ContractRunError(data["message"], code=2)
        started = next((d for e, d in events if e == "plugins"), None)
        chosen = None if started is None else list(started["names"])
        done = [PluginContract.from_dict(d) for e, d in events if e == "done"]
        reports += done
        if code == 0 and chosen is not None and len(done) == len(chosen):
            return reports
        if chosen is None:  # it died loading the installed plugins, before any check
            raise ContractRunError(
                f"the process checking the plugins {_death(code)} while loading the installed "
                "plugins: one of them ends the process when imported; `sof --version` lists "
                "them without importing any, and SOF_PLUGINS_DISABLE=NAME leaves one out"
            )
        crashed = chosen[len(done)]
        reports.append(_crashed_report(crashed, events, code))
        assert started is not None
        reports[-1].distribution, reports[-1].version = started["versions"].get(
            crashed, [None, None])
        pending = chosen[len(done) + 1:]
        if not pending:
            return reports


def _run_child(names: list[str] | None) -> tuple[list[tuple[str, dict[str, Any]]], int]:
    with tempfile.TemporaryDirectory(prefix="sof-contract-events-") as tmp:
        path = Path(tmp) / "events.jsonl"
        path.touch()
        done = subprocess.run(
            [sys.executable, "-m", "sof_core.cli.contract_child", "--events", str(path),
             *(names or [])],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, check=False,
        )
        events = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                event, data = json.loads(line)
            except ValueError:  # the last line, cut short by the death of the child
                continue
            events.append((str(event), dict(data)))
    return events, done.returncode


def _crashed_report(plugin: str, events: list[tuple[str, dict[str, Any]]],
                    code: int) -> PluginContract:
    """The checks of ``plugin`` that finished, then the one that was running, failed."""
    report = PluginContract(plugin)
    started: dict[str, Any] | None = None
    for event, data in events:
        if data.get("plugin") != plugin:
            continue
        if event == "check":
            report.add(data["check"], data["status"], data.get("detail", ""), data.get("skill"))
            started = None
        elif event == "start":
            started = data
    running = started or _next_check(report)
    skill = running.get("skill")
    report.add(
        running["check"], "failed",
        f"the process running this check {_death(code)}: the plugin's code ended the process "
        "(os._exit, sys.exit from a thread, a crash in native code, the kernel's OOM killer); "
        "a skill must raise instead, and one that may crash can run with isolation = "
        "'process'. The checks after this one did not run",
        skill,
    )
    return report


def _next_check(report: PluginContract) -> dict[str, Any]:
    """The plugin-level check after the last one reported (the child gave no marker)."""
    order = [*PLUGIN_CHECKS, *SKILL_CHECKS]
    seen = {c.check for c in report.checks if c.skill is None}
    return {"check": next((c for c in order if c not in seen), "loads"), "skill": None}


def _death(code: int) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"was killed by {name}"
    return f"exited with code {code}"


# --- sof plugins check ---------------------------------------------------------------------


def cmd_check(names: Sequence[str], args: argparse.Namespace) -> int:
    """``sof plugins check [NAME...]``: exit 0 if every plugin checked passes, 1 if not."""
    from sof_core.cli.common import not_empty
    from sof_core.cli.output import UsageError, print_json, render_table

    for name in names:  # `check ""` is never read as "check every plugin"
        not_empty(name, "NAME", "a plugin or distribution name (`sof plugins` lists them), "
                  "or no NAME to check every installed plugin")
    try:
        results = run_isolated(names or None)  # a skill that ends its process ends no more
    except LookupError as exc:
        raise UsageError(str(exc.args[0])) from None
    except ContractRunError as exc:
        raise UsageError(str(exc), exc.code) from None
    if getattr(args, "json", False):
        print_json([r.to_dict() for r in results])
        return 0 if all(r.passed for r in results) else 1
    if not results:
        print("no SOF plugins installed (entry point group 'sof.plugins'); nothing to check")
        return 0
    for number, report in enumerate(results):
        if number:
            print()
        title = " ".join(filter(None, [report.distribution, report.version]))
        verdict = "passed" if report.passed else f"FAILED ({len(report.failures())} checks)"
        print(f"plugin {report.plugin}{f' ({title})' if title else ''}: {verdict}")
        rows = [(c.check, c.skill or "-", c.status, c.detail) for c in report.checks]
        print(render_table(["CHECK", "SKILL", "RESULT", "DETAIL"], rows))
    failed = [r.plugin for r in results if not r.passed]
    if failed:
        print(f"\n{len(failed)} of {len(results)} plugin(s) break the contract: "
              f"{', '.join(failed)}")
        return 1
    print(f"\nall {len(results)} plugin(s) keep the contract")
    return 0


__all__ = ["ContractRunError", "cmd_check", "run_isolated"]
