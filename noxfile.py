"""Developer and CI sessions. ``nox -s tests`` is the command CI runs (see README)."""

from __future__ import annotations

from pathlib import Path

import nox

ROOT = Path(__file__).parent
PLUGINS = sorted(str(p) for p in (ROOT / "plugins").iterdir() if (p / "pyproject.toml").exists())
PLUGIN_TESTS = sorted(str(p / "tests") for p in map(Path, PLUGINS) if (p / "tests").is_dir())
DEMO_QUERY = "When was the SAM memory system redesigned, and what does it store?"

nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.reuse_existing_virtualenvs = True


def install_all(session: nox.Session, extra: str = "test") -> None:
    """The core (editable) plus every bundled plugin as a real, non-editable distribution
    (with the plugin's own ``test`` extra when the session runs tests)."""
    session.install("-e", f".[{extra}]")
    if PLUGINS:
        suffix = "[test]" if extra == "test" else ""
        session.install(*(f"{plugin}{suffix}" for plugin in PLUGINS))


@nox.session
def tests(session: nox.Session) -> None:
    """The whole suite: core tests and every plugin's own tests, against installed plugins."""
    run_tests(session)


@nox.session(python=["3.10", "3.11", "3.12", "3.13"])
def compat(session: nox.Session) -> None:
    """The same suite on each Python the packages declare (``requires-python >= 3.10``) and
    the newest ones; a Python not installed skips its session (nox's default outside CI).
    Not part of CI, which runs one Python: each takes about as long as the tests session."""
    run_tests(session)


def run_tests(session: nox.Session) -> None:
    install_all(session)
    # A fixed Hypothesis seed: the property tests draw the same examples on every run, so a
    # CI result depends on the code only (run pytest without it to explore new examples).
    session.run(
        "pytest", "--import-mode=importlib", "-p", "no:cacheprovider", "-q",
        "--hypothesis-seed=0", "tests", *PLUGIN_TESTS, *session.posargs,
    )
    # Uninstalling one plugin must leave the others working (a real pip uninstall).
    session.run("python", "-m", "pip", "uninstall", "--yes", "sof-conflict")
    session.run("python", "tests/check_uninstalled_plugin.py")


@nox.session
def lint(session: nox.Session) -> None:
    """ruff, then the import-linter contracts in pyproject.toml (layers point down; bundled
    plugins use the public API only), which need everything installed to see the imports."""
    install_all(session, extra="dev")
    run_lint(session)


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy, strict, on the core and on every bundled plugin."""
    install_all(session, extra="dev")
    run_typecheck(session)


@nox.session
def checks(session: nox.Session) -> None:
    """lint, typecheck and docs in one environment: what CI runs after the tests (one install
    instead of three: each builds and installs every plugin)."""
    install_all(session, extra="dev,docs")
    run_lint(session)
    run_typecheck(session)
    run_docs(session)


def run_lint(session: nox.Session) -> None:
    session.run("ruff", "check", "sof_core", "tests", "plugins", "benchmarks", "noxfile.py")
    session.run("lint-imports")


def run_typecheck(session: nox.Session) -> None:
    session.run("mypy", "sof_core")
    # The bundled plugins, strictly as well, from their sources (the core's config applies).
    session.run("mypy", "--strict", *(str(package) for plugin in map(Path, PLUGINS)
                                      for package in sorted(plugin.glob("sof_*"))
                                      if (package / "__init__.py").exists()))


@nox.session
def demo(session: nox.Session) -> None:
    """A real query through SOF with the bundled plugins, on embedded defaults."""
    install_all(session)
    tmp = Path(session.create_tmp())
    env = {"SOF_CONFIG": str(tmp / "config.json"), "SOF_MEMORY_PATH": str(tmp / "memory.db")}
    session.run("sof", "plugins", env=env)
    session.run("sof", "memory", "import", "--sample", env=env)
    session.run("sof", "run", *(session.posargs or [DEMO_QUERY]), "--trace", env=env)
    if not session.posargs:  # the same query with conflict detection between memory and response
        plan = ["MemoryRetrievalSkill", "ConflictDetectorSkill", "ResponseGenerationSkill"]
        session.run("sof", "run", DEMO_QUERY, "--plan", *plan, env=env)


@nox.session
def bench(session: nox.Session) -> None:
    """Performance benchmarks (ratios against baselines measured in the same run)."""
    install_all(session)
    session.install("psutil", "sf-hamilton")  # sf-hamilton: the peer rows of the overhead section
    session.run("python", "benchmarks/run.py", *session.posargs)


@nox.session
def docs(session: nox.Session) -> None:
    """The documentation site, built in strict mode (any warning fails), after checking that
    every relative link resolves and that the generated pages (hook reference, plugin
    directory, API reference) match the code; `python docs/generate.py` regenerates them."""
    install_all(session, extra="docs")
    run_docs(session)


def run_docs(session: nox.Session) -> None:
    session.run("python", "docs/check_links.py")
    session.run("python", "docs/generate.py", "--check")
    site = Path(session.create_tmp()) / "site"
    session.run("mkdocs", "build", "--strict", "--site-dir", str(site),
                env={"NO_MKDOCS_2_WARNING": "1"})
