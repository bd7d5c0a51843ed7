"""Write the generated documentation pages; ``--check`` fails when one is out of date.

* ``docs/hooks.md``: the hook reference, from ``sof_core/plugins/hookspecs.py`` (what
  ``sof hooks`` prints).
* ``docs/plugin-directory.md``: the plugins bundled in ``plugins/``, from their installed
  metadata and what they register (every bundled plugin must be installed).
* ``docs/reference.md``: the API reference page, one mkdocstrings entry per public name of
  ``sof_core`` (the site renders them from the docstrings).

``python docs/generate.py`` regenerates them; ``nox -s docs`` and the test suite run the
check, so none of them can drift from the code.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
REGENERATE = "python docs/generate.py"


def hooks_page() -> str:
    from sof_core.cli.hooks import reference_markdown

    return reference_markdown()


# --- the plugin directory ------------------------------------------------------------------


def bundled_distributions() -> list[str]:
    """The distribution names of the folders in ``plugins/``, sorted."""
    names = []
    for pyproject in sorted((ROOT / "plugins").glob("*/pyproject.toml")):
        names.append(_project_name(pyproject.read_text(encoding="utf-8"), pyproject))
    return sorted(names)


def _project_name(text: str, path: Path) -> str:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    name = tomllib.loads(text).get("project", {}).get("name")
    if not isinstance(name, str):
        raise SystemExit(f"{path}: no [project] name")
    return name


def plugin_directory_page() -> str:
    from sof_core.config import SOFConfig
    from sof_core.plugins import PluginManager

    distributions = bundled_distributions()
    missing = []
    for dist in distributions:
        try:
            importlib.metadata.distribution(dist)
        except importlib.metadata.PackageNotFoundError:
            missing.append(dist)
    if missing:
        raise SystemExit(
            f"bundled plugins {missing} are not installed, so the plugin directory cannot be "
            f"generated: pip install {' '.join(f'-e plugins/{d}' for d in missing)}"
        )
    manager = PluginManager(SOFConfig(plugins_only=distributions)).load()
    records = sorted(
        (r for r in manager.records.values() if r.distribution in distributions),
        key=lambda r: r.name,
    )
    lines = [
        "# Plugin directory",
        "",
        f"<!-- Generated from the installed bundled plugins by `{REGENERATE}`; do not edit. -->",
        "",
        "The plugins that ship with SOF. Each is a distribution of its own, in its folder of "
        "`plugins/`, installed and removed with pip; `sof plugins` lists what is installed "
        "and `sof plugins check` runs the contract every one of them passes.",
        "",
        "| Plugin | Distribution | Provides |",
        "| --- | --- | --- |",
    ]
    for record in records:
        lines.append(f"| [{record.name}](#{_slug(record.name)}) | `{record.distribution}` | "
                     f"{_cell(_provides_summary(record, manager))} |")
    for record in records:
        lines += ["", *_plugin_section(record, manager)]
    return "\n".join(lines) + "\n"


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in name.lower())


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _provides_summary(record: Any, manager: Any) -> str:
    parts = []
    for kind, names in sorted(record.provides.items()):
        if names:
            label = kind.replace("_", " ").rstrip("s") + ("s" if len(names) > 1 else "")
            parts.append(f"{label} {', '.join(f'`{n}`' for n in names)}")
    commands = _commands(record, manager)
    if commands:
        parts.append("commands " + ", ".join(f"`sof {c}`" for c in commands))
    observed = _observed(record)
    if observed:
        parts.append("observes " + ", ".join(f"`{h}`" for h in observed))
    return "; ".join(parts) or "no hooks: a library for code that imports it (see below)"


def _observed(record: Any) -> list[str]:
    """The lifecycle hooks (``sof_before_*``, ``sof_after_*``, ``sof_alert``) it implements."""
    return [h for h in record.hooks
            if h.startswith(("sof_before_", "sof_after_")) or h == "sof_alert"]


def _commands(record: Any, manager: Any) -> list[str]:
    """The ``sof`` sub-commands the plugin adds, found by letting it add them to a parser."""
    names: list[str] = []
    for impl in manager.hook_manager.hook.sof_register_commands.get_hookimpls():
        if impl.plugin_name != record.name:
            continue
        sub = argparse.ArgumentParser(prog="sof").add_subparsers()
        impl.function(*[{"subparsers": sub}[a] for a in impl.argnames])
        names.extend(sorted(sub.choices))
    return names


def _plugin_section(record: Any, manager: Any) -> list[str]:
    meta = importlib.metadata.metadata(record.distribution)
    facts = [f"`pip install {record.distribution}`", f"version {record.version}"]
    if record.requires:
        facts.append(f"requires `sof-core{record.requires}`")
    facts.append(f"module `{record.module}`")
    page = DOCS / "plugins" / f"{record.name}.md"
    if page.exists():
        facts.append(f"[documentation](plugins/{record.name}.md)")
    lines = [f"## {record.name}", "", " · ".join(facts), "", meta.get("Summary") or ""]
    skills = [
        manager.registry.skill(name)
        for kind in ("skills", "tools")
        for name in record.provides.get(kind, ())
    ]
    skills = [entry for entry in skills if entry is not None]
    if skills:
        lines += [
            "",
            "| Skill | Kind | Reads (? = optional) | Writes | What it does |",
            "| --- | --- | --- | --- | --- |",
        ]
        for entry in skills:
            spec = entry.spec
            reads = [*spec.required_inputs, *(f"{k}?" for k in spec.optional_inputs)]
            lines.append(
                f"| `{spec.name}` | {'tool' if entry.kind == 'tools' else 'skill'} | "
                f"{_cell(', '.join(f'`{k}`' for k in reads) or '-')} | "
                f"{_cell(', '.join(f'`{k}`' for k in spec.output_keys) or '-')} | "
                f"{_cell(spec.description)} |"
            )
    others = [(kind, names) for kind, names in sorted(record.provides.items())
              if kind not in ("skills", "tools") and names]
    for kind, names in others:
        lines += ["", f"{kind.replace('_', ' ').capitalize()}: "
                  + ", ".join(f"`{n}`" for n in names) + "."]
    commands = _commands(record, manager)
    if commands:
        lines += ["", "Commands: " + ", ".join(f"`sof {c}`" for c in commands) + "."]
    observed = _observed(record)
    if observed:
        lines += ["", "Observes runs through " + ", ".join(f"`{h}`" for h in observed)
                  + " (see the [hook reference](hooks.md))."]
    if "sof_configure" in record.hooks:
        lines += ["", "Reads its settings from `plugin_settings` when SOF starts "
                  "(`sof_configure`)."]
    return lines


# --- the API reference ---------------------------------------------------------------------

#: Reference sections, by the subpackage that defines the names.
SECTIONS = {
    "sof_core.uif": "The UIF",
    "sof_core.skills": "Skills",
    "sof_core.plugins": "Plugins",
    "sof_core.graph": "Plans and graphs",
    "sof_core.planning": "Planning",
    "sof_core.execution": "Execution",
    "sof_core.routing": "Routing",
    "sof_core.config": "Configuration",
    "sof_core.security": "Security",
    "sof_core.errors": "Errors",
    "sof_core._lazy": "Packaging",
}


def reference_page() -> str:
    import sof_core

    lines = [
        "# API reference",
        "",
        f"<!-- Generated from sof_core.__all__ by `{REGENERATE}`; do not edit. -->",
        "",
        "Every public name of `sof_core`, rendered from its docstrings; import each from "
        "`sof_core` (`from sof_core import UIF`), never from the module that defines it. "
        "[API](api.md) explains how the pieces fit; `sof_core.__version__` is the release and "
        "`sof_core.API_VERSION` the plugin API version.",
    ]
    by_section: dict[str, list[tuple[str, str]]] = {}
    lazy: dict[str, str] = sof_core._LAZY
    for name in sorted(sof_core.__all__, key=str.lower):
        module = lazy.get(name)
        if module is None:
            continue  # __version__, API_VERSION: values, described above
        section = next((title for prefix, title in SECTIONS.items()
                        if module == prefix or module.startswith(prefix + ".")), "Other")
        by_section.setdefault(section, []).append((name, module))
    for section in [*SECTIONS.values(), "Other"]:
        names = by_section.get(section)
        if not names:
            continue
        lines += ["", f"## {section}"]
        for name, module in names:
            lines += ["", f"::: {module}.{name}"]
    return "\n".join(lines) + "\n"


PAGES: dict[str, Callable[[], str]] = {
    "hooks.md": hooks_page,
    "plugin-directory.md": plugin_directory_page,
    "reference.md": reference_page,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="fail when a generated page differs from what is checked in")
    args = parser.parse_args(argv)
    stale = []
    for name, make in PAGES.items():
        path = DOCS / name
        text = make()
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        if args.check:
            stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
            print(f"wrote docs/{name}")
    if stale:
        print(f"out of date: {', '.join(f'docs/{n}' for n in stale)}; regenerate them with "
              f"`{REGENERATE}`", file=sys.stderr)
        return 1
    if args.check:
        print("generated pages are up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
