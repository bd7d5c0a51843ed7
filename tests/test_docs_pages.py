"""The generated documentation pages match the code (``python docs/generate.py``
regenerates them; ``nox -s docs`` builds the site from them in strict mode)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

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


NEWCOMER = """
from sof_core import BaseSkillModule, BaseToolModule, hookimpl

class NewcomerSkill(BaseSkillModule):
    skill_name = "NewcomerSkill"
    skill_description = "Counts | the words"
    required_inputs = ["input_query"]
    optional_inputs = ["newcomer_hint"]
    output_keys = [("newcomer_count", int)]

    def execute(self, uif):
        uif.intermediate_data["newcomer_count"] = 1
        return uif

class NewcomerTool(BaseToolModule):
    skill_name = "NewcomerTool"
    skill_description = "A tool"
    required_inputs = ["input_query"]
    output_keys = ["newcomer_tool_out"]

    def execute(self, uif):
        uif.intermediate_data["newcomer_tool_out"] = 1
        return uif

@hookimpl
def sof_register_skills():
    return [NewcomerSkill]

@hookimpl
def sof_register_tools():
    return [NewcomerTool]

@hookimpl
def sof_after_skill(skill, result):
    pass
"""


def test_a_new_bundled_plugin_is_listed_with_its_skills_without_editing_the_generator(
    dists: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What happens when a folder such as plugins/sof-newcomer is added and installed: the
    # generator lists it from its metadata and registrations, nothing else to edit.
    dists.add("sof-newcomer", NEWCOMER, entry_name="newcomer", version="0.3.0",
              requires=["sof-core>=0.1,<0.2"])
    dists.add("sof-library", "X = 1\n", entry_name="library")
    generate = _generator()
    bundled = generate.bundled_distributions()
    monkeypatch.setattr(generate, "bundled_distributions",
                        lambda: sorted([*bundled, "sof-newcomer", "sof-library"]))
    page = generate.plugin_directory_page()
    assert ("| [newcomer](#newcomer) | `sof-newcomer` | skill `NewcomerSkill`; tool "
            "`NewcomerTool`; observes `sof_after_skill` |") in page
    assert "## newcomer\n\n`pip install sof-newcomer` · version 0.3.0" in page
    assert ("| `NewcomerSkill` | skill | `input_query`, `newcomer_hint?` | `newcomer_count` | "
            "Counts \\| the words |") in page
    assert "| `NewcomerTool` | tool | `input_query` | `newcomer_tool_out` | A tool |" in page
    assert "Observes runs through `sof_after_skill`" in page
    assert "| [library](#library) | `sof-library` | no hooks: a library" in page
    for dist in bundled:  # the real ones are still there
        assert f"`{dist}`" in page


def test_the_generator_refuses_to_guess_when_a_bundled_plugin_is_not_installed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    generate = _generator()
    monkeypatch.setattr(generate, "bundled_distributions", lambda: ["sof-not-installed-here"])
    with pytest.raises(SystemExit, match=r"pip install -e plugins/sof-not-installed-here"):
        generate.plugin_directory_page()
