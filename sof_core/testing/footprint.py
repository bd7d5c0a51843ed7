"""What a piece of code costs a fresh process at start-up: the modules it imports and the
files whose code compiles regular expressions while it runs.

Every ``sof`` process imports every installed plugin and registers its skills, so what a
plugin does at import is paid by all of them (docs/authoring.md). ``import_footprint`` runs
code, phase by phase, in a new interpreter (this Python, this environment) and reports each
phase's footprint, so a plugin's tests can check that loading it defers its heavy work and
that the first real use still works::

    load, first_use = import_footprint(
        "from my_plugin import plugin\\nplugin.sof_register_skills()",
        "from my_plugin import heavy_function\\nassert heavy_function() == 42",
    )
    assert not load.compiled_in("my_plugin") and not load.loaded(["my_plugin.heavy"])
    assert first_use.loaded(["my_plugin.heavy"])
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterable
from dataclasses import dataclass

_MARK = "sof-footprint:"

_CHILD = textwrap.dedent('''
    import json, re, sys, traceback
    phases = json.loads(sys.argv[1])
    namespace = {"__name__": "__footprint__"}
    exec(compile(phases.pop(0), "<setup>", "exec"), namespace)
    compiled = []
    real_compile = re.compile

    def spy(pattern, flags=0):
        compiled.append(sys._getframe(1).f_code.co_filename)
        return real_compile(pattern, flags)

    re.compile = spy
    for number, code in enumerate(phases):
        before = set(sys.modules)
        del compiled[:]
        try:
            exec(compile(code, f"<phase {number + 1}>", "exec"), namespace)
        except BaseException:
            print(MARK + json.dumps({"failed": number + 1,
                                     "error": traceback.format_exc()}), flush=True)
            sys.exit(1)
        print(MARK + json.dumps({"imported": sorted(set(sys.modules) - before),
                                 "compiled": list(compiled)}), flush=True)
''')


@dataclass(frozen=True)
class Footprint:
    """One phase: the modules it imported (not imported before it) and the files whose
    code called ``re.compile`` during it (patterns compiled through ``re.match`` and the
    like are not seen)."""

    imported: frozenset[str]
    compiled: tuple[str, ...]

    def loaded(self, modules: Iterable[str]) -> list[str]:
        """Those of ``modules`` the phase imported."""
        return sorted(set(modules) & self.imported)

    def compiled_in(self, package: str) -> list[str]:
        """The files of ``package`` (a path segment, e.g. ``"my_plugin"``) that compiled a
        pattern during the phase."""
        return sorted({f for f in self.compiled if package in f.replace("\\", "/").split("/")})


def import_footprint(
    *phases: str, setup: str = "import sof_core, sof_core.config", timeout: float = 120.0
) -> list[Footprint]:
    """Run ``phases`` (Python source, sharing one namespace) one after another in a fresh
    interpreter, after ``setup`` (not measured: by default what every ``sof`` process has
    imported before it loads plugins); one ``Footprint`` per phase.

    A phase that raises fails the call with an ``AssertionError`` carrying its traceback.
    """
    payload = json.dumps([setup, *(textwrap.dedent(code) for code in phases)])
    child = _CHILD.replace("MARK", repr(_MARK))
    done = subprocess.run([sys.executable, "-c", child, payload], capture_output=True,
                          text=True, timeout=timeout, check=False)
    reports = [json.loads(line[len(_MARK):]) for line in done.stdout.splitlines()
               if line.startswith(_MARK)]
    failed = next((r for r in reports if "failed" in r), None)
    if failed is not None:
        raise AssertionError(f"phase {failed['failed']} raised:\n{failed['error']}")
    if done.returncode != 0 or len(reports) != len(phases):
        raise AssertionError(f"the footprint process failed (exit {done.returncode}):\n"
                             f"{done.stderr[-4000:]}")
    return [Footprint(frozenset(r["imported"]), tuple(r["compiled"])) for r in reports]


__all__ = ["Footprint", "import_footprint"]
