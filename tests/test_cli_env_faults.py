"""The ``sof`` command in a hostile environment: endless or binary query input, an output
encoding that cannot hold the answer, output and messages that cannot be written (a full
disk, a file size limit, a reader gone), and a locale that is not UTF-8. Each is run as a
user meets it: the console script in a subprocess."""

from __future__ import annotations

import io
import os
import resource
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from sof_core.errors import ConfigError
from sof_core.execution.batch import MAX_QUERY_BYTES, parse_queries, read_queries

FULL = "sof: error: could not write the output: No space left on device"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """No SOF_* or XDG_* variables of the user's; the calculator and memory plugins only."""
    environment = {k: v for k, v in os.environ.items()
                   if not k.startswith(("SOF_", "XDG_", "PYTHONIOENCODING", "LC_"))}
    environment.update(
        HOME=str(tmp_path), SOF_CONFIG=str(tmp_path / "config.json"),
        SOF_MEMORY_PATH=str(tmp_path / "memory.db"), XDG_CACHE_HOME=str(tmp_path / "cache"),
        XDG_DATA_HOME=str(tmp_path / "data"), SOF_PLUGINS_ONLY="calculator,memory,response",
    )
    return environment


def sof(args: Sequence[str | bytes], env: dict[str, str], *,
        limit: Callable[[], None] | None = None,
        **streams: object) -> subprocess.CompletedProcess[bytes]:
    """The console script (``python -m sof_core``), output as bytes, in ``HOME``."""
    options: dict[str, object] = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
    options.update(streams)
    return subprocess.run(  # type: ignore[call-overload, no-any-return]
        [sys.executable, "-m", "sof_core", *args], env=env, cwd=env["HOME"], timeout=60,
        check=False, preexec_fn=limit, **options,
    )


def _limit(kind: int, value: int) -> Callable[[], None]:
    def apply() -> None:
        resource.setrlimit(kind, (value, value))

    return apply


# --- 1. query input: read in pieces, bounded -----------------------------------------------


def test_endless_binary_stdin_is_a_usage_error(env: dict[str, str]) -> None:
    """``sof run - < /dev/zero`` stops at the first NUL byte (exit 2, before any plugin
    loads) instead of reading until memory runs out (capped here at 1 GiB)."""
    with open("/dev/zero", "rb") as zero:
        result = sof(["run", "-"], env, stdin=zero, limit=_limit(resource.RLIMIT_AS, 1 << 30))
    assert result.returncode == 2, result.stderr
    assert result.stderr.decode() == ("sof: error: standard input is binary, not text; give "
                                      "UTF-8 text with one query per line\n")


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_a_device_as_query_file_is_a_usage_error(env: dict[str, str], device: str) -> None:
    with open(os.devnull, "rb") as empty:
        result = sof(["run", "--file", device], env, stdin=empty,
                     limit=_limit(resource.RLIMIT_AS, 1 << 30))
    assert result.returncode == 2, result.stderr
    message = result.stderr.decode()
    assert message.startswith(f"sof: error: query file {device} is "), message
    assert "Traceback" not in message


class _Endless(io.RawIOBase):
    """Valid queries without end, counting what was read."""

    def __init__(self) -> None:
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        size = len(buffer)
        buffer[:size] = (b"What is SOF?\n" * (size // 13 + 1))[:size]
        self.read_bytes += size
        return size


def test_query_input_past_64_mib_is_refused_without_reading_on() -> None:
    endless = _Endless()
    with pytest.raises(ConfigError, match=r"^standard input is larger than 64 MiB, the most "
                       r"read as queries; split it into several files"):
        parse_queries(endless, "standard input")  # type: ignore[arg-type]
    assert MAX_QUERY_BYTES == 64 * 1024 * 1024
    assert endless.read_bytes == MAX_QUERY_BYTES + 1


def test_bytes_past_the_first_piece_are_decoded_and_located_exactly() -> None:
    """A character split between two pieces reads whole; a bad byte is named at its offset
    in the whole input, a BOM counted."""
    text = "x" * 65535 + "é\nnext query\n"
    assert parse_queries(io.BytesIO(text.encode())) == ["x" * 65535 + "é", "next query"]
    data = b"\xef\xbb\xbf" + b"q" * 99_997 + b"\n\xff"
    with pytest.raises(ConfigError, match=r"byte 0xff at offset 100001\)"):
        parse_queries(io.BytesIO(data), "query file q.txt")
    with pytest.raises(ConfigError, match=r"byte 0xc3 at offset 3\)"):
        parse_queries(b"abc\xc3", "query file q.txt")  # ends inside a character


def test_a_fifo_is_still_read_as_a_query_file(tmp_path: Path) -> None:
    fifo = tmp_path / "queries"
    os.mkfifo(fifo)

    def write() -> None:
        with open(fifo, "wb") as pipe:
            pipe.write(b"What is SOF?\n# skipped\nWho wrote SAM?\n")

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    assert read_queries(fifo) == ["What is SOF?", "Who wrote SAM?"]
    writer.join(10)


def test_dev_stdin_is_still_a_query_file(env: dict[str, str]) -> None:
    result = sof(["run", "--file", "/dev/stdin", "--plan", "CalculatorTool", "--json"], env,
                 input=b"What is 2+2?\nWhat is 15% of 240?\n")
    assert result.returncode == 0, result.stderr
    assert b'"count": 2' in result.stdout


def test_process_substitution_is_still_a_query_file(env: dict[str, str]) -> None:
    """``sof run --file <(printf ...)``: the shell passes ``/dev/fd/N``, a pipe."""
    read, write = os.pipe()
    os.write(write, b"What is 2+2?\n")
    os.close(write)
    try:
        result = sof(["run", "--file", f"/dev/fd/{read}", "--plan", "CalculatorTool",
                      "--json"], env, pass_fds=(read,))
    finally:
        os.close(read)
    assert result.returncode == 0, result.stderr
    assert b'"count": 1' in result.stdout


# --- 2. an output encoding that cannot hold the answer -------------------------------------


@pytest.mark.parametrize(("encoding", "expected"), [
    ("ascii", b"caf\\xe9 \\u2014 \\u65e5\\u672c?\n"),
    ("latin-1", b"caf\xe9 \\u2014 \\u65e5\\u672c?\n"),
    ("utf-8", "café — 日本?\n".encode()),
])
def test_what_stdout_cannot_encode_is_escaped(
    env: dict[str, str], encoding: str, expected: bytes
) -> None:
    env["PYTHONIOENCODING"] = encoding
    result = sof(["run", "café — 日本?", "--plan", "CalculatorTool", "--output",
                  "input_query"], env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == expected


def test_a_plugin_command_prints_through_the_same_stdout(env: dict[str, str]) -> None:
    """``sof memory search`` with an ASCII stdout: its hits, escaped, and exit 0."""
    added = sof(["memory", "add", "Le café de Zoë ouvre à 8h", "--source", "café.md"], env)
    assert added.returncode == 0, added.stderr
    env["PYTHONIOENCODING"] = "ascii"
    result = sof(["memory", "search", "cafe"], env)
    assert result.returncode == 0, result.stderr
    assert b"Le caf\\xe9 de Zo\\xeb ouvre \\xe0 8h" in result.stdout


# --- 3. output that cannot be written ------------------------------------------------------


@pytest.mark.parametrize("args", [
    ["run", "What is 15% of 240?", "--plan", "CalculatorTool"],
    ["skills"], ["config", "show"], ["memory", "stats"], ["--help"],
])
def test_output_to_a_full_disk_is_one_expected_error_line(
    env: dict[str, str], args: list[str]
) -> None:
    with open("/dev/full", "wb") as full:
        result = sof(args, env, stdout=full)
    assert result.returncode == 1
    assert result.stderr.decode().splitlines()[-1:] == [FULL], result.stderr
    assert b"traceback" not in result.stderr.lower()
    assert b"Exception ignored" not in result.stderr


def test_output_over_the_file_size_limit_is_the_same_error(
    env: dict[str, str], tmp_path: Path
) -> None:
    with open(tmp_path / "out.txt", "wb") as out:
        result = sof(["skills"], env, stdout=out, limit=_limit(resource.RLIMIT_FSIZE, 0))
    assert result.returncode == 1
    assert result.stderr.decode() == "sof: error: could not write the output: File too large\n"


def test_a_reader_gone_keeps_its_handling(env: dict[str, str]) -> None:
    """``sof skills | head -0``: the rest of the output is dropped, nothing said, exit 0."""
    read, write = os.pipe()
    os.close(read)
    try:
        result = sof(["skills"], env, stdout=write)
    finally:
        os.close(write)
    assert (result.returncode, result.stderr) == (0, b"")


# --- 4. messages that cannot be written ----------------------------------------------------


@pytest.mark.parametrize("args", [
    ["config", "set", "sof_rollout_percentage", "150"],  # sof's own usage error
    ["run", "--no-such-option"],  # argparse's
    ["run", "--file", "/dev/zero"],
])
def test_a_usage_error_is_exit_2_when_stderr_cannot_take_it(
    env: dict[str, str], tmp_path: Path, args: list[str]
) -> None:
    with open("/dev/full", "wb") as full:
        assert sof(args, env, stderr=full).returncode == 2
    errors = tmp_path / "errors.txt"
    with open(errors, "wb") as stream:
        result = sof(args, env, stderr=stream, limit=_limit(resource.RLIMIT_FSIZE, 0))
    assert result.returncode == 2
    assert errors.read_bytes() == b""


# --- 5. a locale that is not UTF-8 ---------------------------------------------------------


def test_utf8_arguments_are_text_under_a_c_locale(env: dict[str, str]) -> None:
    env.update(LC_ALL="C", PYTHONUTF8="0")
    result = sof(["run", "café?", "--plan", "CalculatorTool", "--output", "input_query"], env)
    assert (result.returncode, result.stdout) == (0, b"caf\\xe9?\n"), result.stderr
    for option, key, shown in (("--context", "user_context", b'{\n  "k": "caf\\u00e9"\n}\n'),
                               ("--session", "session_id", b"caf\\xe9\n"),
                               ("--user", "user_id", b"caf\\xe9\n")):
        value = "k=café" if option == "--context" else "café"
        given = sof(["run", "q", option, value, "--plan", "CalculatorTool", "--output", key],
                    env)
        assert (given.returncode, given.stdout) == (0, shown), given.stderr
    planned = sof(["plan", "café?", "--json"], env)
    assert planned.returncode == 0, planned.stderr
    assert b'"query": "caf\\u00e9?"' in planned.stdout
    invalid = sof(["run", b"caf\xff?", "--plan", "CalculatorTool"], env)
    assert invalid.returncode == 2
    assert invalid.stderr.startswith(b"sof: error: invalid UIF: input_query")
    value = sof(["config", "set", "sof_rollout_percentage", "café"], env)
    assert value.returncode == 2
    assert b"unable to parse string as a number (got 'caf\\xe9')" in value.stderr
    assert b"not valid UTF-8" in sof(["config", "set", "sof_rollout_percentage", b"\xff"],
                                     env).stderr
