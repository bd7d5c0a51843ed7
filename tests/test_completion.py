"""``sof completion bash|zsh|fish``: the generated scripts load in their shells and complete
commands, nested commands, plugin commands, options and option values."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from sof_core.cli.completion import levels
from sof_core.cli.main import build_parser


def _script(sof_cli: Any, shell: str, tmp_path: Path) -> Path:
    done = sof_cli("completion", shell)
    assert done.returncode == 0, done.stderr
    path = tmp_path / f"sof.{shell}"
    path.write_text(done.stdout)
    return path


def _bash_complete(script: Path, *words: str) -> list[str]:
    """What bash offers for the last of ``words`` (COMP_WORDS as bash fills it on TAB)."""
    quoted = " ".join(f"'{w}'" for w in words)
    code = (f"source '{script}'\n"
            f"COMP_WORDS=({quoted}); COMP_CWORD={len(words) - 1}\n"
            "_sof_completion\n"
            'printf "%s\\n" "${COMPREPLY[@]}"\n')
    done = subprocess.run(["bash", "--norc", "--noprofile", "-c", code], capture_output=True,
                          text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    return [line for line in done.stdout.splitlines() if line]


def test_bash_completes_commands_nested_commands_options_and_values(sof_cli: Any,
                                                                    tmp_path: Path) -> None:
    script = _script(sof_cli, "bash", tmp_path)
    loaded = subprocess.run(["bash", "--norc", "--noprofile", "-c", f"source '{script}' && complete -p sof"],
                            capture_output=True, text=True, timeout=30, check=False)
    assert loaded.returncode == 0, loaded.stderr
    assert "complete -o default -F _sof_completion sof" in loaded.stdout
    assert _bash_complete(script, "sof", "plu") == ["plugins"]
    top = _bash_complete(script, "sof", "")
    assert {"plugins", "skills", "run", "config", "hooks", "new-plugin", "completion"} <= set(top)
    assert "memory" in top  # a plugin's command (sof-memory is installed)
    assert _bash_complete(script, "sof", "--v") == ["--version"]
    assert _bash_complete(script, "sof", "graph", "--format", "me") == ["mermaid"]
    assert _bash_complete(script, "sof", "completion", "") == ["bash", "zsh", "fish"]
    assert "--memory-backend" in _bash_complete(script, "sof", "new-plugin", "x", "--m")
    config = set(_bash_complete(script, "sof", "config", ""))
    assert config and config <= {name for lv in levels(build_parser()) if lv.path == "sof config"
                                 for name, _ in lv.commands}
    assert "--json" in _bash_complete(script, "sof", "plugins", "--j")
    assert _bash_complete(script, "sof", "plugins", "ch") == ["check"]  # the contract check


@pytest.mark.skipif(shutil.which("fish") is None, reason="fish is not installed")
def test_fish_completes_commands_with_descriptions_and_values(sof_cli: Any, tmp_path: Path) -> None:
    script = _script(sof_cli, "fish", tmp_path)

    def complete(line: str) -> list[str]:
        done = subprocess.run(["fish", "--no-config", "-c", f"source '{script}'; complete -C '{line}'"],
                              capture_output=True, text=True, timeout=30, check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout.splitlines()

    plugins = [c for c in complete("sof pl") if c.startswith("plugins")]
    assert plugins and "\tlist installed plugins" in plugins[0]
    assert [c.split("\t")[0] for c in complete("sof graph --format m")] == ["mermaid"]
    assert any(c.startswith("--json") for c in complete("sof skills --j"))
    assert "memory" in [c.split("\t")[0] for c in complete("sof ")]


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed")
def test_zsh_script_parses_and_offers_commands(sof_cli: Any, tmp_path: Path) -> None:
    script = _script(sof_cli, "zsh", tmp_path)
    syntax = subprocess.run(["zsh", "-n", str(script)], capture_output=True, text=True,
                            timeout=30, check=False)
    assert syntax.returncode == 0, syntax.stderr
    # Outside a completion widget: stand-ins for compdef/_describe/compadd print candidates.
    code = (
        "compdef() { :; }\n"
        "_describe() { local name=${@[-1]}; print -rl -- ${(P)name}; }\n"
        "compadd() { shift; print -rl -- $@; }\n"
        "_files() { print -- '<files>'; }\n"
        f"source '{script}'\n"
        "words=(sof pl); CURRENT=2; PREFIX=pl; _sof\n"
        "print -- ---\n"
        "words=(sof graph --format ''); CURRENT=4; PREFIX=''; _sof\n"
    )
    done = subprocess.run(["zsh", "-f", "-c", code], capture_output=True, text=True,
                          timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    commands, values = done.stdout.split("---\n")
    assert any(line.startswith("plugins:list installed plugins") for line in commands.splitlines())
    assert sorted(values.split()) == ["dot", "json", "mermaid", "text"]


def test_an_unknown_or_missing_shell_is_a_usage_error(sof_cli: Any) -> None:
    assert sof_cli("completion").returncode == 2
    done = sof_cli("completion", "tcsh")
    assert done.returncode == 2 and "invalid choice: 'tcsh'" in done.stderr
