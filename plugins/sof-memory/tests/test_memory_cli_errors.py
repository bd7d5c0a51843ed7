"""``sof memory`` on bad input: one line ``sof memory CMD: error: ...``, exit 2, no traceback.

Run through the real ``sof`` command in a subprocess: undecodable bytes in arguments only
exist there (Python turns them into lone surrogates when it decodes ``argv``).
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

DEEP = "[" * 50_000 + "]" * 50_000


@pytest.fixture
def sof_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOF_")}
    env["SOF_CONFIG"] = str(tmp_path / "config.json")
    env["SOF_MEMORY_PATH"] = str(tmp_path / "cli-memory.db")
    env["LC_ALL"] = "C.UTF-8"
    return env


def sof(env: dict[str, str], *argv: str | bytes) -> subprocess.CompletedProcess[str]:
    args = [os.fsencode(a) if isinstance(a, str) else a for a in argv]
    return subprocess.run(
        [os.fsencode(sys.executable), b"-m", b"sof_core.cli", *args],
        env=env, capture_output=True, text=True, errors="replace", timeout=60, check=False,
    )


def one_error_line(result: subprocess.CompletedProcess[str], command: str) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    prefix = f"sof memory {command}: error: "
    assert lines[0].startswith(prefix)
    return lines[0].removeprefix(prefix)


def stored(env: dict[str, str]) -> int:
    path = Path(env["SOF_MEMORY_PATH"])
    if not path.exists():
        return 0
    with sqlite3.connect(path) as conn:
        return int(conn.execute("SELECT count(*) FROM documents").fetchone()[0])


@pytest.mark.parametrize("text", ["", "   \n\t"])
def test_add_of_empty_text(sof_env: dict[str, str], text: str) -> None:
    message = one_error_line(sof(sof_env, "memory", "add", text), "add")
    assert message.startswith("TEXT is empty; give the document's text")
    assert stored(sof_env) == 0


@pytest.mark.parametrize(
    ("meta", "expected"),
    [
        ("x=NaN", "--meta x is nan: JSON has no NaN or infinity"),
        ("x=Infinity", "--meta x is inf: JSON has no NaN or infinity"),
        ("x=-Infinity", "--meta x is -inf: JSON has no NaN or infinity"),
        ("x=1e999", "--meta x is inf: JSON has no NaN or infinity"),
        ('x={"a": [1, NaN]}', "--meta x['a'][1] is nan: JSON has no NaN or infinity"),
        (f"x={DEEP}", "--meta x: the JSON value is nested too deeply to parse"),
        ("x=" + "[" * 40 + "]" * 40, "--meta x[0][0][0]...[0][0] is nested more than 32"),
        ("novalue", "--meta expects KEY=VALUE, got 'novalue'"),
    ],
)
def test_add_with_bad_meta(sof_env: dict[str, str], meta: str, expected: str) -> None:
    message = one_error_line(sof(sof_env, "memory", "add", "some text", "--meta", meta), "add")
    assert message.startswith(expected)
    assert stored(sof_env) == 0


def test_nan_given_as_a_json_string_is_stored_and_filtered_search_works(
    sof_env: dict[str, str],
) -> None:
    added = sof(sof_env, "memory", "add", "capsule note", "--meta", 'x="NaN"',
                "--meta", "profile=p")
    assert added.returncode == 0, added.stderr
    found = sof(sof_env, "memory", "search", "capsule", "--profile", "p", "--json")
    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout)[0]["metadata"] == {"x": "NaN", "profile": "p"}


@pytest.mark.parametrize(
    ("argv", "command", "expected"),
    [
        ((b"memory", b"add", b"caf\xe9"), "add",
         "TEXT is not valid UTF-8 text (undecodable byte 0xe9 at position 3)"),
        ((b"memory", b"add", b"ok", b"--source", b"\xff"), "add",
         "--source is not valid UTF-8 text (undecodable byte 0xff at position 0)"),
        ((b"memory", b"add", b"ok", b"--meta", b"k=\xff"), "add",
         "--meta 'k=\\udcff' is not valid UTF-8 text (undecodable byte 0xff at position 2)"),
        ((b"memory", b"search", b"\xfe"), "search",
         "QUERY is not valid UTF-8 text (undecodable byte 0xfe at position 0)"),
        ((b"memory", b"search", b"q", b"--tag", b"\xfe"), "search",
         "--tag is not valid UTF-8 text"),
    ],
)
def test_arguments_that_are_not_utf8(
    sof_env: dict[str, str], argv: tuple[bytes, ...], command: str, expected: str
) -> None:
    message = one_error_line(sof(sof_env, *argv), command)
    assert message.startswith(expected)
    assert stored(sof_env) == 0


def test_utf8_arguments_are_text_under_a_c_locale(sof_env: dict[str, str]) -> None:
    # Under LC_ALL=C with UTF-8 mode off, Python decodes argv as ASCII with
    # surrogateescape: a valid "café" was refused as "not valid UTF-8".
    sof_env.update(LC_ALL="C", PYTHONUTF8="0")
    added = sof(sof_env, "memory", "add", "café capsules", "--source", "notes-é",
                "--meta", "owner=zoë")
    assert added.returncode == 0, added.stderr
    found = sof(sof_env, "memory", "search", "café", "--source", "notes-é", "--json")
    assert found.returncode == 0, found.stderr
    (hit,) = json.loads(found.stdout)
    assert (hit["text"], hit["source"], hit["metadata"]) == (
        "café capsules", "notes-é", {"owner": "zoë"})


def test_import_of_a_file_with_an_undecodable_name_stores_it_under_a_printable_source(
    sof_env: dict[str, str], tmp_path: Path
) -> None:
    path = os.path.join(os.fsencode(tmp_path), b"notes-\xff.txt")
    with open(path, "wb") as handle:
        handle.write(b"capsule notes")
    result = sof(sof_env, "memory", "import", path)
    assert result.returncode == 0, result.stderr
    found = sof(sof_env, "memory", "search", "capsule", "--json")
    assert json.loads(found.stdout)[0]["source"].endswith("notes-\N{REPLACEMENT CHARACTER}.txt")


def test_import_of_invalid_utf8_files_warns_per_file_and_per_line(
    sof_env: dict[str, str], tmp_path: Path
) -> None:
    text = tmp_path / "latin1.txt"
    text.write_bytes(b"caf\xe9 notes")
    lines = tmp_path / "lines.jsonl"
    lines.write_bytes(b'{"text": "capsule one"}\n{"text": "caf\xe9"}\n')
    result = sof(sof_env, "memory", "import", str(text), str(lines))
    assert result.returncode == 1  # a whole file was skipped
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        f"warning: {text}: not UTF-8 text (byte 0xe9 on line 1)",
        f"warning: {lines}:2: not UTF-8 text (byte 0xe9 at column 14)",
    ]
    assert "skipped 1 bad line(s) and 1 path(s)" in result.stdout
    assert stored(sof_env) == 1


def test_a_command_loads_and_configures_the_plugins_once(sof_env: dict[str, str]) -> None:
    """Before: ``sof memory`` loaded every plugin twice (once for the command, once for the
    backend), so each plugin's start-up warning was printed twice."""
    Path(sof_env["SOF_CONFIG"]).write_text(
        json.dumps({"plugin_settings": {"memory": {"backend": "nosuch"}}}), encoding="utf-8")
    result = sof(sof_env, "memory", "stats")
    assert result.returncode != 0
    warnings = [line for line in result.stderr.splitlines()
                if "memory backend 'nosuch' is not registered" in line]
    assert len(warnings) == 1, result.stderr
    assert "is not installed; installed memory backends: ['sqlite']" in result.stderr
