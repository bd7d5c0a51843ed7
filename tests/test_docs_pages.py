"""The generated documentation pages match the code (``python docs/generate.py``
regenerates them; ``nox -s docs`` builds the site from them in strict mode)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import sof_core

ROOT = Path(__file__).resolve().parent.parent


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_generate", ROOT / "docs" / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_generated_page_is_up_to_date() -> None:
    generate = _generator()
    for name, make in generate.PAGES.items():
        current = (ROOT / "docs" / name).read_text(encoding="utf-8")
        assert current == make(), f"docs/{name} is out of date: run `python docs/generate.py`"
    assert generate.main(["--check"]) == 0


def test_the_plugin_directory_lists_every_bundled_plugin_and_its_skills() -> None:
    generate = _generator()
    page = (ROOT / "docs" / "plugin-directory.md").read_text(encoding="utf-8")
    for dist in generate.bundled_distributions():
        assert f"`{dist}`" in page
    for skill in ("MemoryRetrievalSkill", "ResponseGenerationSkill", "ConflictDetectorSkill"):
        assert f"| `{skill}` | skill |" in page
    assert "Commands: `sof memory`." in page


def test_the_api_reference_renders_every_public_name() -> None:
    page = (ROOT / "docs" / "reference.md").read_text(encoding="utf-8")
    for name in sof_core.__all__:
        if name in ("__version__", "API_VERSION"):
            assert f"`sof_core.{name}`" in page
        else:
            assert f"::: {sof_core._LAZY[name]}.{name}\n" in page


def test_every_docs_page_is_in_the_site_navigation() -> None:
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    pages = sorted(p.relative_to(ROOT / "docs").as_posix() for p in (ROOT / "docs").rglob("*.md"))
    missing = [page for page in pages if f": {page}\n" not in nav]
    assert missing == [], f"add these pages to the nav in mkdocs.yml: {missing}"
