"""A cold ``sof run`` does only the work it needs, with every check still made.

Discovery reads plugin metadata without ``packaging`` and without the ``importlib_metadata``
backport (plain ``sof-core`` requirements are parsed and checked by SOF, exactly as
``packaging`` would; anything else still goes to ``packaging``) and parses only the
``entry_points.txt`` files that can hold its group; one query does not import asyncio, runs
no garbage collection before the plugins are loaded and compiles no tokenizer for pydantic's
default factories. Times are measured in ``benchmarks/bench_startup.py``, never here.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from sof_core.config import SOFConfig
from sof_core.plugins import loader
from sof_core.plugins.loader import PluginManager


def _modules_after(code: str, tmp_path: Path, *names: str,
                   sof_variables: bool = True) -> dict[str, bool]:
    """Which of ``names`` a fresh interpreter has imported after running ``code``, with a
    config file and memory store of the test's own: named by ``SOF_CONFIG`` and
    ``SOF_MEMORY_PATH``, or, ``sof_variables=False``, with no ``SOF_`` variable at all and
    the config folder moved instead (``XDG_CONFIG_HOME``)."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SOF_")}
    if sof_variables:
        environment.update(SOF_CONFIG=str(tmp_path / "none.json"), SOF_MEMORY_PATH=":memory:")
    else:
        environment["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    probe = f"{code}\nimport json, sys\nprint(json.dumps({{n: n in sys.modules for n in {list(names)!r}}}))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            env=environment, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_loading_the_installed_plugins_needs_neither_packaging_nor_the_backport(
    tmp_path: Path,
) -> None:
    loaded = _modules_after(
        "from sof_core.config import load_config\n"
        "from sof_core.plugins import PluginManager\n"
        "manager = PluginManager(load_config()).load()\n"
        "assert manager.records['memory'].requires, manager.records['memory']\n"
        "assert manager.records['memory'].status == 'loaded'\n",
        tmp_path, "packaging.requirements", "packaging.specifiers", "importlib_metadata",
    )
    assert loaded == {"packaging.requirements": False, "packaging.specifiers": False,
                      "importlib_metadata": False}


def test_one_query_does_not_import_asyncio_or_networkx_twice(tmp_path: Path) -> None:
    run = ("import sys\nfrom sof_core.cli.main import main\n"
           "assert main(['run', 'What is SOF?', '--plan', 'MemoryRetrievalSkill']) == 0\n")
    _modules_after(run, tmp_path)  # fills the plan store
    loaded = _modules_after(run, tmp_path, "asyncio", "networkx", "packaging.requirements")
    assert loaded == {"asyncio": False, "networkx": False, "packaging.requirements": False}


# --- metadata read without email or packaging: the same answers ----------------------------


def _installed() -> list[Any]:
    seen: set[str] = set()
    found = []
    for dist in importlib.metadata.distributions():
        key = loader._dedupe_key(dist)
        if key and key not in seen:
            seen.add(key)
            found.append(dist)
    return found


def test_names_versions_and_requirements_match_the_email_parser_for_every_installed_dist() -> None:
    checked = 0
    for dist in _installed():
        if dist.read_text("METADATA") is None:
            continue
        checked += 1
        assert loader._metadata_name(dist) == dist.metadata["Name"]
        assert loader._dist_version(dist) == dist.version
        assert (loader._headers(dist).get("requires-dist") or []) == (dist.requires or [])
    assert checked > 10


def _packaging_core_requirement(lines: list[str]) -> str | None:
    """What packaging reads: every line parsed, names compared as pip compares them; a
    ``sof-core`` line packaging cannot parse is kept as written (the check refuses it)."""
    for line in lines:
        try:
            req = Requirement(line)
        except Exception:
            name, rest = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)(.*)", line).groups()
            if canonicalize_name(name) == "sof-core":
                return rest.strip()
            continue
        if canonicalize_name(req.name) == "sof-core" and (
            req.marker is None or req.marker.evaluate({"extra": ""})
        ):
            return str(req.specifier) or None
    return None


class _Dist:
    def __init__(self, lines: list[str]) -> None:
        self._text = "Metadata-Version: 2.1\nName: x\nVersion: 1\n" + "".join(
            f"Requires-Dist: {line}\n" for line in lines
        )

    def read_text(self, name: str) -> str | None:
        return self._text if name == "METADATA" else None


REQUIREMENT_LINES = [
    "sof-core>=0.1,<0.2",
    "sof-core <0.2, >=0.1",
    "sof_core==0.1.*",
    "SOF-Core~=0.1.0",
    "sof-core",
    "sof-core>=0.1; extra == 'test'",
    "sof-core>=0.1; python_version >= '3.8'",
    "sof-core[cli]>=0.1",
    "sof-core (>=0.1,<1)",
    "sof-core @ https://example.com/sof_core-0.1.0.tar.gz",
    "sof-core>=0.1rc1",
    "sof-core>=0.1.*",
    "sof-core>>0.1",
    "sof-core-extras>=9",
    "sof.core>=9",
    "sof--core>=9",
    "Sof__Core>=9",
    "sof_.-core>=9",
    "rich>=13",
]


@pytest.mark.parametrize("line", REQUIREMENT_LINES)
def test_the_core_requirement_is_what_packaging_reads(line: str) -> None:
    lines = ["rich>=13", line, "sof-core>=0.0.1"]
    assert loader._core_requirement(_Dist(lines)) == _packaging_core_requirement(lines)


OPERATORS = ["==", "!=", "<=", ">=", "<", ">", "~="]
releases = st.lists(st.integers(min_value=0, max_value=12), min_size=1, max_size=4).map(
    lambda parts: ".".join(map(str, parts))
)


@st.composite
def specifiers(draw: Any) -> str:
    clauses = []
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        operator = draw(st.sampled_from(OPERATORS))
        version = draw(releases)
        if operator == "~=" and "." not in version:
            version += ".0"
        if operator in ("==", "!=") and draw(st.booleans()):
            version += ".*"
        space = draw(st.sampled_from(["", " "]))
        clauses.append(f"{space}{operator}{space}{version}{space}")
    return ",".join(clauses)


@settings(max_examples=400, deadline=None)
@given(version=releases, text=specifiers())
def test_plain_specifiers_are_checked_exactly_as_packaging_checks_them(
    version: str, text: str
) -> None:
    plain = loader._plain_specifier(text)
    if plain is None:  # declined (two equal clauses): packaging reads it, as before
        assert SpecifierSet(text)
        return
    assert plain == str(SpecifierSet(text))
    assert loader._satisfies(version, plain) == SpecifierSet(plain).contains(
        version, prereleases=True
    )


@pytest.mark.parametrize("version, specifier", [
    ("0.1.0rc1", ">=0.1"), ("0.1.0+local", "==0.1.0"), ("0.1.0", ">=0.1rc1"),
    ("0.1.0", "===0.1.0"),
])
def test_anything_but_plain_releases_is_left_to_packaging(version: str, specifier: str) -> None:
    assert loader._satisfies(version, specifier) is None


def test_an_incompatible_plugin_is_still_refused_before_import(dists: Any) -> None:
    module = dists.add("sof-future", "raise RuntimeError('imported')", entry_name="future",
                       requires=["rich>=1", "sof-core>=9.0,<10"])
    manager = PluginManager(SOFConfig(plugins_only=["future"])).load()
    record = manager.records["future"]
    assert record.status == "failed" and record.error_type == "PluginCompatibilityError"
    assert "requires sof-core<10,>=9.0" in (record.error or "")
    assert module not in sys.modules


@pytest.mark.parametrize("line", ["sof-core>=0.1.*", "sof-core >= banana", "sof_core>>0.1"])
def test_a_plugin_whose_core_requirement_cannot_be_parsed_is_refused_by_name(
    dists: Any, line: str
) -> None:
    """Before: an unparsable ``sof-core`` line read as no requirement, and the plugin
    loaded unchecked, with no word of it."""
    module = dists.add("sof-garbled", "raise RuntimeError('imported')", entry_name="garbled",
                       requires=[line])
    manager = PluginManager(SOFConfig(plugins_only=["garbled"])).load()
    record = manager.records["garbled"]
    assert record.status == "failed" and record.error_type == "PluginCompatibilityError"
    assert "'sof-garbled' declares a sof-core requirement SOF cannot parse" in (
        record.error or "")
    assert "fix its Requires-Dist line" in (record.error or "")
    assert module not in sys.modules


# --- the commands that must stay cheap or work with nothing loaded --------------------------


def test_sof_version_imports_no_model_library_or_metadata_machinery(tmp_path: Path) -> None:
    code = ("from sof_core.cli.main import main\n"
            "try:\n    main(['--version'])\nexcept SystemExit:\n    pass\n")
    loaded = _modules_after(code, tmp_path, "pydantic", "pluggy", "networkx",
                            "importlib.metadata", "packaging", "sof_core.config")
    assert not any(loaded.values()), loaded


@pytest.mark.parametrize("args", [["--version"], ["--help"]])
def test_sof_version_and_help_import_no_inspect_hashing_or_tempfile(
    args: list[str], tmp_path: Path
) -> None:
    """Every ``sof`` command builds the whole parser and checks the command cache: neither
    may pull in ``inspect`` (through ``dataclasses``), OpenSSL's ``hashlib`` or
    ``tempfile`` (only a cache write needs it), about 35 ms of a 50 ms command."""
    code = ("from sof_core.cli.main import main\n"
            f"try:\n    main({args!r})\nexcept SystemExit:\n    pass\n")
    # No SOF_ variable: their values are hashed into the cache key (they may be secrets).
    _modules_after(code, tmp_path, sof_variables=False)  # fills the command cache
    loaded = _modules_after(code, tmp_path, "inspect", "dataclasses", "hashlib", "tempfile",
                            sof_variables=False)
    assert not any(loaded.values()), loaded


def test_the_command_cache_keeps_no_sof_variable_in_clear(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``SOF_LLM_API_KEY`` or ``SOF_ADMIN_TOKEN`` may be set when ``sof`` runs: the cache
    file that says whether the plugin commands changed holds a digest of them, not them,
    and a change of any of them is still a change."""
    from sof_core.cli import command_cache

    monkeypatch.setenv("SOF_LLM_API_KEY", "sk-do-not-write-me-down")
    key = command_cache.fingerprint()
    command_cache.remember(key, [("memory", "the memory store")])
    written = command_cache.cache_file().read_text()
    assert "sk-do-not-write-me-down" not in written and "sk-do-not" not in key
    assert command_cache.cached_commands(key) == [("memory", "the memory store")]
    monkeypatch.setenv("SOF_LLM_API_KEY", "sk-another")
    assert command_cache.fingerprint() != key
    monkeypatch.delenv("SOF_LLM_API_KEY")
    assert command_cache.fingerprint() != key


def test_the_command_cache_keeps_the_last_four_environments(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sof_core.cli import command_cache

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))

    for number in range(6):
        command_cache.remember(f"environment {number}", [("cmd", f"help {number}")])
    for number in range(2):  # the oldest two are gone
        assert command_cache.cached_commands(f"environment {number}") is None
    for number in range(2, 6):
        assert command_cache.cached_commands(f"environment {number}") == [
            ("cmd", f"help {number}")]
    command_cache.remember("environment 3", [("cmd", "rebuilt")])  # rewritten: first again
    command_cache.remember("environment 6", [])
    assert command_cache.cached_commands("environment 3") == [("cmd", "rebuilt")]
    assert command_cache.cached_commands("environment 6") == []
    assert command_cache.cached_commands("environment 2") is None


BROKEN = {
    "sof-raises": ("raise RuntimeError('no database')", []),
    "sof-exits": ("import sys\nsys.exit(3)", []),
    "sof-too-new": ("raise AssertionError('never imported')", ["sof-core>=99"]),
    "sof-odd-requirement": ("raise ImportError('gone')",
                            ["sof-core>=0.1; python_version >= '3'", "rich (>=1)"]),
}


def test_sof_plugins_lists_every_plugin_from_metadata_when_all_are_broken(
    dists: Any, tmp_path: Path
) -> None:
    names = []
    for dist, (source, requires) in BROKEN.items():
        dists.add(dist, source, entry_name=dist.removeprefix("sof-"), version="1.2.3",
                  requires=requires)
        names.append(dist.removeprefix("sof-"))
    env = dists.env()
    env.update(SOF_PLUGINS_ONLY=",".join(names), SOF_CONFIG=str(tmp_path / "none.json"))
    done = subprocess.run([sys.executable, "-m", "sof_core.cli", "plugins", "--json"],
                          capture_output=True, text=True, env=env, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    rows = {row["name"]: row for row in (data if isinstance(data, list) else data["plugins"])}
    for name in names:
        row = rows[name]
        assert row["status"] == "failed", row
        assert (row["distribution"], row["version"]) == (f"sof-{name}", "1.2.3")
    assert rows["too-new"]["error_type"] == "PluginCompatibilityError"
    assert rows["too-new"]["requires"] == ">=99"
    assert rows["odd-requirement"]["requires"] == ">=0.1"
    assert "Traceback" not in done.stderr


# --- no garbage collection during start-up (cli/startup.py) --------------------------------

RUN_ONE = "main(['run', 'What is SOF?', '--plan', 'MemoryRetrievalSkill'])"


def test_nothing_is_collected_before_the_plugins_are_loaded(tmp_path: Path) -> None:
    """Start-up's objects all live to the end: the collector is paused until the plugins are
    loaded, then collects as usual (and ``main`` gives it back as it found it)."""
    code = (
        "import gc, sys\n"
        "base = gc.get_freeze_count()\n"
        "from sof_core.cli import common\n"
        "from sof_core.cli.main import main\n"
        "seen = {'startup': 0, 'after': 0}\n"
        "def count(phase, info):\n"
        "    if phase == 'start':\n"
        "        seen['after' if 'plugins' in common.LOAD_TIMES else 'startup'] += 1\n"
        "gc.callbacks.append(count)\n"
        f"assert {RUN_ONE} == 0\n"
        "assert 'plugins' in common.LOAD_TIMES\n"
        "for _ in range(300_000):\n"  # after the run, collection works as before
        "    cycle = []; cycle.append(cycle)\n"
        "assert gc.isenabled() and gc.get_freeze_count() <= base, gc.get_freeze_count()\n"
        "print('COUNTS', seen['startup'], seen['after'], file=sys.stderr)\n"
        "assert seen['startup'] == 0 and seen['after'] > 0, seen\n"
    )
    _modules_after(code, tmp_path)


def test_main_leaves_a_disabled_or_frozen_collector_as_it_was(tmp_path: Path) -> None:
    code = (
        "import gc\n"
        "base = gc.get_freeze_count()\n"
        "from sof_core.cli.main import main\n"
        "gc.disable()\n"
        f"assert {RUN_ONE} == 0\n"
        "assert not gc.isenabled() and gc.get_freeze_count() == base\n"
        "gc.enable(); gc.freeze(); frozen = gc.get_freeze_count()\n"
        f"assert {RUN_ONE} == 0\n"
        "assert gc.isenabled() and 0 < gc.get_freeze_count() <= frozen\n"
        "gc.unfreeze()\n"
        "try:\n    main(['--version'])\nexcept SystemExit:\n    pass\n"  # no plugins loaded
        "assert gc.isenabled() and gc.get_freeze_count() == 0\n"
        "import weakref\n"
        "class Node:\n    pass\n"
        "node = Node(); node.self = node; ref = weakref.ref(node); del node\n"
        "try:\n    main(['config', 'nonsense-subcommand'])\nexcept SystemExit:\n    pass\n"
        "gc.collect()\n"
        "assert ref() is None, 'a cycle made before main() was not collected after it'\n"
    )
    _modules_after(code, tmp_path)


# --- discovery skips files that cannot hold the group, exactly as importlib reads them ------


class _TextDist(importlib.metadata.Distribution):
    def __init__(self, text: str | None) -> None:
        self._text = text

    def read_text(self, filename: str) -> str | None:
        return self._text if filename == "entry_points.txt" else None

    def locate_file(self, path: Any) -> Path:
        return Path(str(path))


def _importlib_answer(dist: Any, group: str) -> object:
    try:
        return sorted((ep.name, ep.value) for ep in dist.entry_points.select(group=group))
    except Exception as exc:
        return type(exc), str(exc)


def _sof_answer(dist: Any, group: str) -> object:
    try:
        return sorted((ep.name, ep.value) for ep in loader._group_entry_points(dist, group))
    except Exception as exc:
        return type(exc), str(exc)


ENTRY_POINT_LINES = st.sampled_from([
    "", "  ", "# comment", "; not a comment", "[console_scripts]", " [sof.plugins] ",
    "[sof.plugins", "sof.plugins]", "[[sof.plugins]]", "[other]", "tool = tool:main",
    "noequals", " indented = x ", "a=b=c", "[sof.plugins.extra]", "sof.plugins = x",
    "memory = sof_memory", "=", "[]",
])


@settings(max_examples=400, deadline=None)
@given(lines=st.lists(ENTRY_POINT_LINES, max_size=8), newline=st.sampled_from(["\n", "\r\n"]))
def test_discovery_reads_entry_points_exactly_as_importlib(lines: list[str], newline: str
                                                            ) -> None:
    dist = _TextDist(newline.join(lines))
    for group in ("sof.plugins", "console_scripts", "other"):
        assert _sof_answer(dist, group) == _importlib_answer(dist, group), (lines, group)


def test_a_file_without_the_group_is_not_parsed_but_a_malformed_one_still_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    parsed: list[str | None] = []
    real = importlib.metadata.EntryPoints._from_text_for

    def counting(text: str | None, dist: Any) -> Any:
        parsed.append(text)
        return real(text, dist)

    monkeypatch.setattr(importlib.metadata.EntryPoints, "_from_text_for", counting)
    wanted = _TextDist("[console_scripts]\ntool = tool:main\n[sof.plugins]\nx = y\n")
    assert [ep.name for ep in loader._group_entry_points(wanted, "sof.plugins")] == ["x"]
    assert len(parsed) == 1
    assert loader._group_entry_points(_TextDist(None), "sof.plugins") == []
    skipped = _TextDist("[console_scripts]\ntool = tool:main\n")
    assert not loader._parses("[console_scripts]\nnoequals\n")
    assert loader._parses(skipped.read_text("entry_points.txt") or "")
    assert loader._group_entry_points(skipped, "sof.plugins") == []
    assert len(parsed) == 1  # neither the missing file nor the one without the group
    broken = _TextDist("[console_scripts]\nnoequals\n")
    with pytest.raises((TypeError, ValueError)):  # importlib's own error, as before
        loader._group_entry_points(broken, "sof.plugins")


# --- building SOF's models does not tokenize (no ``default_factory=list``) -----------------


def test_building_the_config_and_uif_models_compiles_no_tokenizer(tmp_path: Path) -> None:
    """pydantic asks ``inspect.signature`` of each default factory; for the builtin ``list``
    that tokenizes its text signature and compiles ``tokenize``'s regexes at start-up."""
    code = (
        "import tokenize, sys\n"
        f"from sof_core.cli.main import main\nassert {RUN_ONE} == 0\n"
        "from sof_core import UIF\nfrom sof_core.config import SOFConfig\n"
        "one, two = UIF(input_query='a'), UIF(input_query='b')\n"
        "one.warnings.append('w'); one.log_trace.append('t')\n"
        "assert two.warnings == [] and two.log_trace == [] and two.execution_plan == []\n"
        "first, second = SOFConfig(), SOFConfig()\n"
        "first.isolate_skills.append('x')\n"
        "assert second.isolate_skills == [] and second.plugins_disable == []\n"
        "assert tokenize._compile.cache_info().currsize == 0, tokenize._compile.cache_info()\n"
    )
    _modules_after(code, tmp_path)
