"""GET /v1/skills lists each skill exactly as `sof skills --json` does, unavailable ones too.

docs/operations.md, "The API": ``{"skills": [...]}``, each item what `sof skills --json`
gives for that skill. The API used to leave out a name two installed plugins both offer
(contested, so unavailable), and its items lacked ``available``, ``inputs`` and ``outputs``:
a client could not tell a skill missing from one that cannot run until it is settled.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

PLUGIN = textwrap.dedent("""
    from sof_core import BaseSkillModule, hookimpl

    class Dup(BaseSkillModule):
        skill_name = "Dup"
        skill_description = "Offered by two plugins."
        output_keys = ["dup"]

        def execute(self, uif):
            return uif

    class Own{name}(BaseSkillModule):
        skill_name = "Own{name}"
        skill_description = "Offered by one plugin."
        required_inputs = ["input_query"]
        optional_inputs = ["user_context"]
        output_keys = ["own_{name}"]

        def execute(self, uif):
            return uif

    @hookimpl
    def sof_register_skills():
        return [Dup, Own{name}]
""")

API = textwrap.dedent("""
    import json
    from starlette.testclient import TestClient
    from sof_serve import create_app

    with TestClient(create_app(legacy=lambda query, **context: "legacy")) as client:
        print(json.dumps({"skills": client.get("/v1/skills").json(),
                          "plugins": client.get("/v1/plugins").json()}))
""")

SOURCE = Path(__file__).resolve().parents[1]  # the plugin's source, not its installed copy


def _environment(tmp_path: Path) -> dict[str, str]:
    """Two installed plugins, ``dupa`` and ``dupb``, both offering ``Dup``."""
    site = tmp_path / "site"
    for name in ("dupa", "dupb"):
        info = site / f"{name}-0.1.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
        (info / "entry_points.txt").write_text(f"[sof.plugins]\n{name} = {name}\n")
        (site / f"{name}.py").write_text(PLUGIN.replace("{name}", name))
    (tmp_path / "sof.json").write_text("{}")
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(SOURCE)]),
            "SOF_CONFIG": str(tmp_path / "sof.json"),
            "SOF_MEMORY_PATH": str(tmp_path / "memory.db")}


def _json(command: list[str], env: dict[str, str]) -> Any:
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_v1_skills_items_are_sof_skills_json(tmp_path: Path) -> None:
    env = _environment(tmp_path)
    cli = _json([sys.executable, "-m", "sof_core.cli", "skills", "--json"], env)
    api = _json([sys.executable, "-c", API], env)["skills"]
    assert set(api) == {"skills"}  # the API's wrapping, as documented
    dup = [item for item in cli if item["name"] == "Dup"]
    assert len(dup) == 1 and dup[0]["available"] is False, dup  # the CLI lists it so
    assert "dupa" in dup[0]["unavailable_reason"], dup
    own = next(item for item in cli if item["name"] == "Owndupa")
    assert own["available"] is True and own["inputs"] == ["input_query", "user_context"]
    assert api["skills"] == cli  # every item, in the same order


def test_v1_plugins_items_are_sof_plugins_json(tmp_path: Path) -> None:
    """Each plugin the command lists is the same item in ``{"plugins": [...]}`` (but its
    ``import_time_ms``, measured by each process)."""
    env = _environment(tmp_path)
    cli = _json([sys.executable, "-m", "sof_core.cli", "plugins", "--json"], env)
    api = _json([sys.executable, "-c", API], env)["plugins"]
    assert set(api) == {"plugins"}

    def timeless(item: dict[str, Any]) -> dict[str, Any]:
        return {key: value for key, value in item.items() if key != "import_time_ms"}

    served = {item["name"]: timeless(item) for item in api["plugins"]}
    assert {"dupa", "dupb"} <= set(served)
    for item in cli:
        assert served.get(item["name"]) == timeless(item), item["name"]
