"""``sof new-plugin NAME``: a complete plugin distribution to start from.

The project it writes installs, passes its own tests, and passes ``sof plugins check`` as
generated (SOF's test suite does exactly that): a ``pyproject.toml`` with the ``sof.plugins``
entry point and a ``sof-core`` requirement for the running release's API, a package with
one synchronous and one async skill, tests that use SOF's pytest plugin, a README and a
noxfile. ``--tool``, ``--memory-backend`` and ``--llm-backend`` add a tool skill and the
two kinds of backends other plugins pick by name. Templates are files under
``sof_core/cli/templates/new_plugin`` with ``{{name}}`` placeholders.
"""

from __future__ import annotations

import argparse
import functools
import keyword
import re
from pathlib import Path
from typing import Any, NamedTuple

from sof_core._version import API_VERSION, __version__
from sof_core.cli.output import UsageError

TEMPLATES = Path(__file__).parent / "templates" / "new_plugin"
_NAME = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*")
_RESERVED = frozenset({"sof", "sof-core", "core"})
#: The kinds of backend ``--backend`` adds.
BACKENDS = ("memory", "llm")


class Names(NamedTuple):
    """Every spelling of the plugin's name the templates use. (A named tuple, not a
    dataclass: ``dataclasses`` imports ``inspect``, which every ``sof`` command would pay
    for, since this module builds the ``new-plugin`` parser.)"""

    dist: str  # sof-wordcount: the distribution (pip install NAME)
    entry: str  # wordcount: the entry-point name (`sof plugins` lists it)
    package: str  # sof_wordcount: the import package
    prefix: str  # wordcount: the start of every data key its skills write
    camel: str  # Wordcount: the start of its class and skill names

    @classmethod
    def parse(cls, raw: str) -> Names:
        dist = raw.strip().lower().replace("_", "-")
        if not _NAME.fullmatch(dist):
            raise UsageError(
                f"plugin name {raw!r} is not a valid distribution name for a plugin: use "
                "letters, digits and single hyphens, starting with a letter (e.g. sof-wordcount)"
            )
        entry = dist.removeprefix("sof-")
        if not entry[:1].isalpha():
            raise UsageError(
                f"plugin name {raw!r}: the part after 'sof-' ({entry!r}) must start with a "
                "letter, since its classes and keys are named after it (e.g. sof-wordcount)"
            )
        if dist in _RESERVED or entry in _RESERVED:
            raise UsageError(f"plugin name {raw!r} is reserved for SOF itself; choose another")
        package = dist.replace("-", "_")
        if keyword.iskeyword(package):
            raise UsageError(f"plugin name {raw!r} would make a package named after the Python "
                             f"keyword {package!r}; choose another")
        clash = project_layout().get(package)
        if clash is not None:
            raise UsageError(f"plugin name {raw!r} would make a package named {package!r}, "
                             f"which clashes with the project's own {clash}; choose another "
                             f"(e.g. sof-{dist})")
        camel = "".join(part[:1].upper() + part[1:] for part in entry.split("-"))
        return cls(dist, entry, package, entry.replace("-", "_"), camel)


@functools.cache
def project_layout() -> dict[str, str]:
    """The names at the top of a generated project a package must not take, each with what
    it is: the folders and modules the templates write (``tests/``, ``noxfile.py``, ...),
    the build folders its ``.gitignore`` hides (``build/``, ``dist/``) and ``docs/``. A
    package named ``tests`` would land inside the tests folder, one named ``noxfile`` would
    shadow the noxfile, one named ``build`` would be ignored by git."""
    sample = Names("sof-x", "x", "sof_x", "x", "X")
    files = plan_files(sample, tool=True, memory_backend=True, llm_backend=True)
    layout: dict[str, str] = {}
    for path in files:
        top, sep, _ = path.partition("/")
        if top == sample.package:
            continue
        stem = top.split(".")[0].lower()
        if stem:
            layout.setdefault(stem, f"{top}/ folder" if sep else f"file {top}")
    for line in files[".gitignore"].splitlines():
        entry = line.strip().rstrip("/")
        if entry.isidentifier():
            layout.setdefault(entry.lower(), f"{entry}/ folder (in its .gitignore)")
    layout.setdefault("docs", "docs/ folder")
    return layout


def core_requirement(version: str = __version__) -> str:
    """The ``sof-core`` range of releases with this release's plugin API: the minor series
    before 1.0 (``>=0.1,<0.2``), the major series after (``>=1.4,<2``)."""
    major, minor = [int(p) if p.isdigit() else 0 for p in [*version.split("."), "0", "0"][:2]]
    upper = f"{major}.{minor + 1}" if major == 0 else str(major + 1)
    return f"sof-core>={major}.{minor},<{upper}"


def _plugin_requirement(distribution: str) -> str:
    """``distribution`` limited to its installed minor (or major) series, if installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        installed = version(distribution)
    except PackageNotFoundError:
        return distribution
    return core_requirement(installed).replace("sof-core", distribution, 1)


def plan_files(names: Names, *, tool: bool = False, memory_backend: bool = False,
               llm_backend: bool = False) -> dict[str, str]:
    """Every file of the project, by path relative to its folder."""
    skills = [f"{names.camel}KeywordsSkill", f"{names.camel}SummarySkill"]
    provides = [f"- skills `{skills[0]}` (synchronous) and `{skills[1]}` (async), in "
                f"`{names.package}/skills.py`"]
    dependencies: list[str] = []
    modules = {"package/__init__.py": "__init__.py.tmpl", "package/skills.py": "skills.py.tmpl"}
    tests = ["test_skills.py", "test_plugin.py"]
    imports = [f"from {names.package}.skills import {skills[0]}, {skills[1]}"]
    hooks = [_hook("sof_register_skills", ", ".join(skills))]
    provided = set(skills)
    if tool:
        name = f"{names.camel}ClockTool"
        modules["package/tools.py"] = "tools.py.tmpl"
        tests.append("test_tools.py")
        imports.append(f"from {names.package}.tools import {name}")
        hooks.append(_hook("sof_register_tools", name))
        provides.append(f"- tool `{name}` (no permissions, limits declared), in "
                        f"`{names.package}/tools.py`")
        provided.add(name)
    if memory_backend:
        name = f"{names.camel}MemoryBackend"
        modules["package/memory_backend.py"] = "memory_backend.py.tmpl"
        tests.append("test_memory_backend.py")
        imports.append(f"from {names.package}.memory_backend import {name}")
        hooks.append(_hook("sof_register_memory_backends", f"{name}()",
                           "# A fresh instance per plugin manager: hosts never share state."))
        provides.append(f"- memory backend `{names.entry}` for sof-memory's "
                        f"`MemoryRetrievalSkill`, in `{names.package}/memory_backend.py`")
        dependencies.append(_plugin_requirement("sof-memory"))
        provided.add(names.entry)
    if llm_backend:
        name = f"{names.camel}LLMBackend"
        modules["package/llm_backend.py"] = "llm_backend.py.tmpl"
        tests.append("test_llm_backend.py")
        imports.append(f"from {names.package}.llm_backend import {name}")
        hooks.append(_hook("sof_register_llm_backends", f"{name}()"))
        provides.append(f"- LLM backend `{names.entry}` for sof-response's "
                        f"`ResponseGenerationSkill`, in `{names.package}/llm_backend.py`")
        dependencies.append(_plugin_requirement("sof-response"))
        provided.add(names.entry)
    what = "skills" + "".join(
        f", {label}" for flag, label in
        ((tool, "a tool"), (memory_backend, "a memory backend"), (llm_backend, "an LLM backend"))
        if flag
    )
    values = {
        "dist": names.dist,
        "entry": names.entry,
        "package": names.package,
        "prefix": names.prefix,
        "camel": names.camel,
        "title": names.camel,
        "description": f"A SOF plugin: {what}.",
        "core_requirement": core_requirement(),
        "core_version": __version__,
        "api_version": str(API_VERSION),
        "dependencies": "".join(f'    "{d}",\n' for d in sorted(dependencies)),
        "provides_list": "\n".join(provides),
        "provides": "{" + ", ".join(repr(p) for p in sorted(provided)) + "}",
    }
    files = {
        "pyproject.toml": _render("pyproject.toml.tmpl", values),
        "README.md": _render("README.md.tmpl", values),
        "noxfile.py": _render("noxfile.py.tmpl", values),
        ".gitignore": _render("gitignore.tmpl", values),
        f"{names.package}/plugin.py": _plugin_module(names, imports, hooks),
    }
    for target, template in modules.items():
        files[target.replace("package/", f"{names.package}/")] = _render(
            f"package/{template}", values
        )
    for test in tests:
        files[f"tests/{test}"] = _render(f"tests/{test}.tmpl", values)
    return files


def _hook(name: str, items: str, comment: str = "") -> str:
    body = f"    {comment}\n" if comment else ""
    return f"@hookimpl\ndef {name}() -> list[Any]:\n{body}    return [{items}]\n"


def _plugin_module(names: Names, imports: list[str], hooks: list[str]) -> str:
    head = f'''"""The module SOF loads: entry point `{names.entry}` in the group `sof.plugins`.

Its hook implementations, marked with `@hookimpl`, tell SOF what the plugin provides
(`sof hooks` lists every hook). SOF imports this module at every start: keep imports light
and import heavy libraries inside the functions that use them.
"""

from __future__ import annotations

from typing import Any

from sof_core import hookimpl

{chr(10).join(sorted(imports))}

#: The plugin API this plugin is written for: SOF skips the plugin if it provides another.
SOF_API_VERSION = {API_VERSION}
'''
    return head + "".join(f"\n\n{hook}" for hook in hooks)


def _render(template: str, values: dict[str, str]) -> str:
    text = (TEMPLATES / template).read_text(encoding="utf-8")
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", value)
    if "{{" in text:  # pragma: no cover - a template names a value plan_files does not set
        raise RuntimeError(f"template {template} has an unknown placeholder")
    return text


# --- sof new-plugin ------------------------------------------------------------------------


def register(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser(
        "new-plugin",
        help="create a plugin distribution to start from: package, skills, tests, README, "
        "noxfile",
        description="Create a complete plugin distribution that installs, passes its tests "
        "and `sof plugins check` as generated.",
    )
    p.add_argument("name", metavar="NAME",
                   help="distribution name, e.g. sof-wordcount (its plugin name is then "
                   "'wordcount', its package sof_wordcount)")
    p.add_argument("--directory", "-d", metavar="DIR",
                   help="the folder to create (default: ./NAME); must not exist or be empty")
    p.add_argument("--tool", action="store_true",
                   help="add a tool skill (sof_register_tools) with permissions and limits")
    p.add_argument("--memory-backend", action="store_true",
                   help="add a memory backend for sof-memory's MemoryRetrievalSkill")
    p.add_argument("--llm-backend", action="store_true",
                   help="add an LLM backend for sof-response's ResponseGenerationSkill")
    p.add_argument("--backend", action="append", choices=BACKENDS, default=[],
                   metavar="{memory,llm}",
                   help="add a backend of this kind (repeatable): the same as "
                   "--memory-backend / --llm-backend")
    p.set_defaults(func=cmd_new_plugin)


def cmd_new_plugin(args: argparse.Namespace) -> int:
    from sof_core.cli.common import not_empty

    not_empty(args.name, "NAME", "a distribution name (e.g. sof-wordcount)")
    not_empty(args.directory, "--directory", "the folder to create (leave the option out "
              "for ./NAME)")
    names = Names.parse(args.name)
    _check_free(names)
    target = Path(args.directory or names.dist)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise UsageError(f"{target} already exists and is not an empty folder; choose another "
                         "with --directory")
    backends = set(args.backend or ())
    files = plan_files(names, tool=args.tool,
                       memory_backend=args.memory_backend or "memory" in backends,
                       llm_backend=args.llm_backend or "llm" in backends)
    try:
        for relative, text in files.items():
            path = target / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write the plugin into {target}: {exc}") from None
    print(f"created plugin {names.entry!r} (distribution {names.dist}) in {target}:")
    for relative in sorted(files):
        print(f"  {relative}")
    print("next:")
    print(f"  cd {target}")
    print('  pip install -e ".[test]"')
    print(f"  pytest && sof plugins check {names.entry}")
    return 0


def _check_free(names: Names) -> None:
    """Refuse names that would shadow an importable module or clash with an installed
    plugin: the new plugin would never load, or break another."""
    import importlib.metadata
    import importlib.util

    try:
        installed = list(importlib.metadata.entry_points().select(group="sof.plugins"))
    except Exception:  # unreadable metadata: `sof plugins` names it; not this command's job
        installed = []
    for ep in installed:
        if ep.name == names.entry:
            dist = getattr(getattr(ep, "dist", None), "name", None) or "?"
            raise UsageError(f"a plugin named {ep.name!r} is already installed (distribution "
                             f"{dist}); choose another NAME")
    try:
        found = importlib.util.find_spec(names.package)
    except (ImportError, ValueError):
        found = None
    if found is not None:
        where = found.origin or (list(found.submodule_search_locations or []) or ["?"])[0]
        raise UsageError(f"a module named {names.package!r} is already importable ({where}); "
                         "the plugin's package would clash with it: choose another NAME")
