"""``sof new-plugin``: the generated project installs with pip, passes its own tests and the
plugin contract, shows in ``sof plugins`` and runs in a plan, as generated."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet

import sof_core
from sof_core.cli.new_plugin import Names, core_requirement, plan_files


def _env(tmp_path: Path, site: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOF_")}
    env.update(SOF_CONFIG=str(tmp_path / "config.json"), XDG_CACHE_HOME=str(tmp_path / "cache"),
               XDG_DATA_HOME=str(tmp_path / "data"), SOF_MEMORY_PATH=str(tmp_path / "mem.db"))
    if site is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))
    return env


def _sof(*args: str, env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sof_core.cli", *args], capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=120, check=False)


@pytest.mark.slow
def test_a_generated_plugin_installs_passes_its_tests_and_the_contract_and_runs(
    tmp_path: Path,
) -> None:
    env = _env(tmp_path)
    made = _sof("new-plugin", "sof-scaffoldcheck", "--tool", "--memory-backend",
                "--llm-backend", env=env, cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    project = tmp_path / "sof-scaffoldcheck"
    assert "created plugin 'scaffoldcheck' (distribution sof-scaffoldcheck)" in made.stdout
    assert "pytest && sof plugins check scaffoldcheck" in made.stdout

    # A real pip install (build isolation: the build backend the project names).
    site = tmp_path / "site"
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site),
         str(project)],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert (site / "sof_scaffoldcheck" / "plugin.py").exists()
    env = _env(tmp_path, site)

    # Its own tests, as generated, with SOF's pytest plugin.
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        capture_output=True, text=True, env=env, cwd=project, timeout=300, check=False,
    )
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "13 passed" in tests.stdout, tests.stdout

    listing = _sof("plugins", env=env)
    assert listing.returncode == 0, listing.stderr
    row = next(line for line in listing.stdout.splitlines() if line.startswith("scaffoldcheck"))
    assert row.split()[:4] == ["scaffoldcheck", "0.1.0", "sof-scaffoldcheck", "loaded"]

    check = _sof("plugins", "check", "scaffoldcheck", env=env)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "plugin scaffoldcheck (sof-scaffoldcheck 0.1.0): passed" in check.stdout
    assert "ScaffoldcheckClockTool" in check.stdout

    planned = _sof("run", "How do SOF plugins register skills?", "--goal",
                   "scaffoldcheck_summary", "--output", "scaffoldcheck_summary", env=env)
    assert planned.returncode == 0, planned.stderr
    assert planned.stdout.strip() == "The query is about sof, plugins, register, skills."
    graph = _sof("graph", "--goal", "scaffoldcheck_summary", env=env)
    assert "ScaffoldcheckKeywordsSkill" in graph.stdout and "ScaffoldcheckSummarySkill" in graph.stdout


def test_the_generated_requirement_is_the_running_api_series() -> None:
    assert core_requirement("0.1.0") == "sof-core>=0.1,<0.2"
    assert core_requirement("0.7.3") == "sof-core>=0.7,<0.8"
    assert core_requirement("1.4.2") == "sof-core>=1.4,<2"
    requirement = core_requirement()
    assert SpecifierSet(requirement.removeprefix("sof-core")).contains(sof_core.__version__)
    files = plan_files(Names.parse("sof-wordcount"))
    assert f'"{requirement}",' in files["pyproject.toml"]
    assert f"SOF_API_VERSION = {sof_core.API_VERSION}" in files["sof_wordcount/plugin.py"]
    assert '[project.entry-points."sof.plugins"]\nwordcount = "sof_wordcount.plugin"' in files[
        "pyproject.toml"]


def test_options_add_their_modules_hooks_tests_and_requirements() -> None:
    names = Names.parse("sof-wordcount")
    plain = plan_files(names)
    assert sorted(plain) == [
        ".gitignore", "README.md", "noxfile.py", "pyproject.toml", "sof_wordcount/__init__.py",
        "sof_wordcount/plugin.py", "sof_wordcount/skills.py", "tests/test_plugin.py",
        "tests/test_skills.py",
    ]
    assert plain["sof_wordcount/plugin.py"].count("@hookimpl\ndef ") == 1
    assert "sof-memory" not in plain["pyproject.toml"]
    every = plan_files(names, tool=True, memory_backend=True, llm_backend=True)
    added = sorted(set(every) - set(plain))
    assert added == [
        "sof_wordcount/llm_backend.py", "sof_wordcount/memory_backend.py",
        "sof_wordcount/tools.py", "tests/test_llm_backend.py", "tests/test_memory_backend.py",
        "tests/test_tools.py",
    ]
    plugin = every["sof_wordcount/plugin.py"]
    for hook in ("sof_register_skills", "sof_register_tools", "sof_register_memory_backends",
                 "sof_register_llm_backends"):
        assert f"def {hook}()" in plugin
    assert '"sof-memory' in every["pyproject.toml"] and '"sof-response' in every["pyproject.toml"]
    assert "permissions: ClassVar[Collection[str]] = ()" in every["sof_wordcount/tools.py"]
    for text in every.values():
        assert "{{" not in text
    for path, text in every.items():
        if path.endswith(".py"):
            compile(text, path, "exec")  # valid Python, as generated


def test_the_generated_code_is_lint_clean(tmp_path: Path) -> None:
    ruff = shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed (the dev extra)")
    for path, text in plan_files(Names.parse("sof-lintcheck"), tool=True, memory_backend=True,
                                 llm_backend=True).items():
        target = tmp_path / "sof-lintcheck" / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    # Under the generated project's own ruff settings (pyproject.toml), from its root.
    done = subprocess.run([ruff, "check", "--no-cache", "."], cwd=tmp_path / "sof-lintcheck",
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("Bad Name!", "is not a valid distribution name for a plugin"),
        # made `class 1abcKeywordsSkill`, which is not Python
        ("sof-1abc", "the part after 'sof-' ('1abc') must start with a letter"),
        ("sof", "is reserved for SOF itself"),
        ("sof-core", "is reserved for SOF itself"),
        ("class", "Python keyword 'class'"),
        ("json", "a module named 'json' is already importable"),
        ("memory", "a plugin named 'memory' is already installed (distribution sof-memory)"),
    ],
)
def test_unusable_names_are_one_line_usage_errors(tmp_path: Path, name: str, message: str) -> None:
    done = _sof("new-plugin", name, env=_env(tmp_path), cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr
    assert done.stderr.startswith("sof: error: ") and done.stderr.count("\n") == 1
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_the_folder_is_the_name_in_lower_case_with_hyphens(tmp_path: Path) -> None:
    done = _sof("new-plugin", "SOF_Foo", env=_env(tmp_path), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["sof-foo"]
    assert (tmp_path / "sof-foo" / "sof_foo" / "skills.py").is_file()


def test_an_existing_folder_is_never_written_into(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("mine")
    done = _sof("new-plugin", "sof-wordcount", "--directory", "taken", env=_env(tmp_path),
                cwd=tmp_path)
    assert done.returncode == 2
    assert "taken already exists and is not an empty folder" in done.stderr
    assert [p.name for p in (tmp_path / "taken").iterdir()] == ["keep.txt"]
    empty = tmp_path / "empty"
    empty.mkdir()
    done = _sof("new-plugin", "sof-wordcount", "-d", str(empty), env=_env(tmp_path))
    assert done.returncode == 0, done.stderr
    assert (empty / "sof_wordcount" / "skills.py").exists()


def test_every_template_is_used_and_ships_as_package_data(monkeypatch: pytest.MonkeyPatch) -> None:
    from sof_core.cli import new_plugin

    shipped = sorted(p.relative_to(new_plugin.TEMPLATES).as_posix()
                     for p in new_plugin.TEMPLATES.rglob("*") if p.is_file())
    # The package-data globs in pyproject.toml cover *.tmpl one and two levels down.
    pyproject = (Path(__file__).resolve().parent.parent / "pyproject.toml").read_text()
    assert '"cli/templates/new_plugin/*.tmpl", "cli/templates/new_plugin/*/*.tmpl"' in pyproject
    assert all(p.endswith(".tmpl") and p.count("/") <= 1 for p in shipped), shipped
    used: list[str] = []
    render = new_plugin._render
    monkeypatch.setattr(new_plugin, "_render",
                        lambda template, values: used.append(template) or render(template, values))
    plan_files(Names.parse("sof-x"), tool=True, memory_backend=True, llm_backend=True)
    assert sorted(used) == shipped


def test_backend_kinds_can_be_named_with_backend(tmp_path: Path) -> None:
    done = _sof("new-plugin", "sof-kinds", "--backend", "memory", "--backend", "llm",
                env=_env(tmp_path), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    package = tmp_path / "sof-kinds" / "sof_kinds"
    assert (package / "memory_backend.py").exists() and (package / "llm_backend.py").exists()
    assert not (package / "tools.py").exists()
    wrong = _sof("new-plugin", "sof-other", "--backend", "vector", env=_env(tmp_path),
                 cwd=tmp_path)
    assert wrong.returncode == 2 and "invalid choice: 'vector'" in wrong.stderr
