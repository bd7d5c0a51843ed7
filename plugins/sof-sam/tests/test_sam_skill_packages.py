"""SAM's skill modules keep their relative imports once a SAM distribution ships them.

SAM's skills import ``from ..uif import SAM_UIF`` and ``from .base import BaseSkillModule``.
A distribution grafts its package of such modules onto ``sof_sam.skills`` with an entry point
in the group ``sof_sam.skills``; its modules then import as ``sof_sam.skills.<module>`` (what
SAM's callers import after the one rewrite), and its ``sof.plugins`` entry point registers
them with SOF. The distribution here is a real installed layout (``.dist-info`` on
``PYTHONPATH``) used from subprocesses, as after ``pip install``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

ECHO_TOOL = '''
from ..uif import SAM_UIF
from .base import BaseSkillModule, SkillExecutionError


class EchoTool(BaseSkillModule):
    skill_name = "EchoTool"
    skill_description = "Echoes the query"
    required_inputs = ["input_query"]
    output_keys = ["echo"]

    def execute(self, uif: SAM_UIF) -> SAM_UIF:
        if not uif.input_query.strip():
            raise SkillExecutionError("nothing to echo")
        uif.intermediate_data["echo"] = uif.input_query
        return uif
'''

SHOUT = '''
from ...uif import SAM_UIF
from ..base import BaseSkillModule


class ShoutSkill(BaseSkillModule):
    skill_name = "ShoutSkill"
    skill_description = "Answers with the echo, loudly"
    required_inputs = ["echo"]
    output_keys = ["final_response"]

    def execute(self, uif: SAM_UIF) -> SAM_UIF:
        uif.final_response = uif.intermediate_data["echo"].upper()
        return uif
'''

CALCULATOR = '''
from ..uif import SAM_UIF
from .base import BaseSkillModule


class CalculatorTool(BaseSkillModule):
    skill_name = "CalculatorTool"
    skill_description = "Adds the numbers in the query"
    required_inputs = ["input_query"]
    output_keys = ["calculation_result"]

    def execute(self, uif: SAM_UIF) -> SAM_UIF:
        numbers = [float(word) for word in uif.input_query.split() if word.isdigit()]
        uif.intermediate_data["calculation_result"] = sum(numbers)
        return uif
'''

PLUGIN = '''
from sof_core import hookimpl

from sof_sam.skills.echo_tool import EchoTool
from sof_sam.skills.reasoning.shout import ShoutSkill


@hookimpl
def sof_register_skills():
    return [EchoTool, ShoutSkill]
'''

RUN = '''
import json
from sof_sam.coordinator import CoordinatorEngine
from sof_sam.skills.echo_tool import EchoTool
from sof_sam.skills.reasoning.shout import ShoutSkill
from sof_sam.uif import SAM_UIF

engine = CoordinatorEngine()
engine.register_skills([EchoTool(), ShoutSkill()])
report = engine.execute_plan(["EchoTool", "ShoutSkill"], SAM_UIF(input_query="hello sam"))
print(json.dumps({"result": report.result.value, "answer": report.uif.final_response,
                  "module": EchoTool.__module__, "from_plugins": engine.get_registered_skills()}))
'''


def install(site: Path) -> dict[str, str]:
    """A SAM skill distribution: SAM's package layout (with SAM's old ``base.py``, which
    must be shadowed by sof_sam's) plus a plugin module, as pip would install it."""
    package = site / "sam_tools"
    (package / "reasoning").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "base.py").write_text("raise RuntimeError(\"SAM's old base module was used\")\n")
    (package / "echo_tool.py").write_text(textwrap.dedent(ECHO_TOOL))
    (package / "calculator_tool.py").write_text(textwrap.dedent(CALCULATOR))
    (package / "reasoning" / "__init__.py").write_text("")
    (package / "reasoning" / "shout.py").write_text(textwrap.dedent(SHOUT))
    (site / "sam_tools_plugin.py").write_text(textwrap.dedent(PLUGIN))
    info = site / "sam_tools-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: sam-tools\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[sof_sam.skills]\nsam-tools = sam_tools\n\n[sof.plugins]\nsam-tools = sam_tools_plugin\n"
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(site), env.get("PYTHONPATH", "")])
    return env


def test_sams_relative_imports_resolve_to_sof_sam(tmp_path: Path) -> None:
    env = install(tmp_path / "site")
    done = subprocess.run([sys.executable, "-c", RUN], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["result"] == "success" and out["answer"] == "HELLO SAM"
    assert out["module"] == "sof_sam.skills.echo_tool"
    # the sof.plugins entry point registered them with SOF too
    assert {"EchoTool", "ShoutSkill"} <= set(out["from_plugins"])


def test_sof_lists_the_grafted_skills_from_the_plugin(tmp_path: Path) -> None:
    env = install(tmp_path / "site")
    done = subprocess.run([sys.executable, "-m", "sof_core.cli", "skills"], env=env,
                          cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert "EchoTool" in done.stdout and "ShoutSkill" in done.stdout


def test_an_entry_point_that_is_not_a_package_is_skipped_with_a_warning(
    tmp_path: Path,
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "flat_module.py").write_text("")
    info = site / "flat-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: flat\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[sof_sam.skills]\nflat = flat_module\nmissing = no_such_package_here\n")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(site), env.get("PYTHONPATH", "")])
    code = "import sof_sam.skills as s; print(len(s.__path__))"
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1"
    assert "'flat_module', which is not a package" in done.stderr
    assert "no_such_package_here" in done.stderr


def test_sams_package_level_skill_names_resolve_from_the_graft(tmp_path: Path) -> None:
    """``from sam.orchestration import CalculatorTool`` becomes ``from sof_sam import
    CalculatorTool``; SAM defined it in ``skills/calculator_tool.py``, and so does the graft."""
    env = install(tmp_path / "site")
    code = textwrap.dedent('''
        from sof_sam import CalculatorTool, SAM_UIF
        uif = CalculatorTool().execute(SAM_UIF(input_query="add 2 and 40"))
        print(CalculatorTool.__module__, uif.intermediate_data["calculation_result"])
        try:
            from sof_sam import NewsApiTool
        except ImportError as exc:
            print("refused:", exc)
    ''')
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    first, second = done.stdout.strip().splitlines()
    assert first == "sof_sam.skills.calculator_tool 42.0"
    assert second.startswith("refused: NewsApiTool is one of SAM's own modules")
