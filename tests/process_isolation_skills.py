"""Skills for tests/test_process_isolation*.py. They live in an importable module, so they
travel to a worker by name as an installed plugin's skills do (the ones defined in the test
file, in functions or in a script travel by value: see the tests "where an isolated skill
class may live")."""

from __future__ import annotations

import asyncio
import ctypes
import os
import threading
import time
from pathlib import Path

from sof_core import UIF, BaseSkillModule, current_deadline


def publish(path: Path, text: str) -> None:
    """Writes ``text`` to ``path`` whole: the test polls for the file from another process,
    and a plain ``write_text`` lets it see the file created but still empty."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text)
    os.replace(partial, path)


class Where(BaseSkillModule):
    """Reports the process it ran in and what of the environment it saw."""

    skill_name = "Where"
    skill_description = "writes its pid and the environment variables it can see"
    required_inputs = ["input_query"]
    optional_inputs = ["wanted_env"]
    output_keys = ["pid", "seen_env", "final_response"]
    isolation = "process"
    max_execution_time = 20.0

    def execute(self, uif: UIF) -> UIF:
        data = uif.intermediate_data
        names = data.get("wanted_env") or []
        data["pid"] = os.getpid()
        data["seen_env"] = {name: os.environ.get(name) for name in names}
        uif.final_response = f"answered {uif.input_query!r}"
        uif.add_log_entry("answered", self.skill_name)
        return uif


class Local(BaseSkillModule):
    """Declares nothing about isolation: config can still isolate it."""

    skill_name = "Local"
    skill_description = "writes its pid"
    output_keys = ["local_pid"]
    max_execution_time = 20.0

    def execute(self, uif: UIF) -> UIF:
        uif.intermediate_data["local_pid"] = os.getpid()
        return uif


class _Hang(BaseSkillModule):
    """Writes where it runs to the file named by ``pid_file``, then hangs (subclasses)."""

    required_inputs = ["pid_file"]
    output_keys = ["never"]
    isolation = "process"
    max_execution_time = 0.5

    def execute(self, uif: UIF) -> UIF:
        publish(Path(uif.intermediate_data["pid_file"]), f"{os.getpid()} {os.getppid()}")
        self.hang()
        uif.intermediate_data["never"] = True
        return uif

    def hang(self) -> None:
        raise NotImplementedError


class Sleeper(_Hang):
    skill_name = "Sleeper"
    skill_description = "sleeps far past its deadline"

    def hang(self) -> None:
        time.sleep(60)


class Spinner(_Hang):
    skill_name = "Spinner"
    skill_description = "spins the CPU far past its deadline"

    def hang(self) -> None:
        while True:
            pass


class CpuHog(BaseSkillModule):
    skill_name = "CpuHog"
    skill_description = "spins past its CPU limit, well within its deadline"
    output_keys = ["never"]
    isolation = "process"
    isolation_limits = {"cpu_seconds": 1}
    max_execution_time = 20.0

    def execute(self, uif: UIF) -> UIF:
        while True:
            pass


class MemoryHog(BaseSkillModule):
    skill_name = "MemoryHog"
    skill_description = "allocates far past its memory limit"
    output_keys = ["never"]
    isolation = "process"
    isolation_limits = {"memory_mb": 64}
    max_execution_time = 20.0

    def execute(self, uif: UIF) -> UIF:
        hoard = [bytearray(16 * 2**20) for _ in range(64)]  # 1 GB in 16 MB blocks
        uif.intermediate_data["never"] = len(hoard)
        return uif


class FileHog(BaseSkillModule):
    skill_name = "FileHog"
    skill_description = "opens files past its limit"
    output_keys = ["never"]
    isolation = "process"
    isolation_limits = {"open_files": 32}
    max_execution_time = 20.0

    def execute(self, uif: UIF) -> UIF:
        handles = [open(os.devnull) for _ in range(100)]  # noqa: SIM115
        uif.intermediate_data["never"] = len(handles)
        return uif


class Segfault(BaseSkillModule):
    skill_name = "Segfault"
    skill_description = "dereferences a null pointer through ctypes"
    output_keys = ["never"]
    isolation = "process"
    max_execution_time = 20.0

    def execute(self, uif: UIF) -> UIF:
        ctypes.string_at(0)
        return uif


class Exits(BaseSkillModule):
    skill_name = "Exits"
    skill_description = "ends its process with os._exit"
    output_keys = ["never"]
    isolation = "process"
    max_execution_time = 20.0

    def execute(self, uif: UIF) -> UIF:
        os._exit(3)


class BigOutput(BaseSkillModule):
    """Writes ``megabytes`` MB of text, under an output limit of 1 MB."""

    skill_name = "BigOutput"
    skill_description = "writes a large string"
    required_inputs = ["megabytes"]
    output_keys = ["blob"]
    isolation = "process"
    isolation_limits = {"output_mb": 1}
    max_execution_time = 20.0

    def execute(self, uif: UIF) -> UIF:
        size = int(uif.intermediate_data["megabytes"] * 2**20)
        uif.intermediate_data["blob"] = "x" * size
        return uif


class ForgesReply(BaseSkillModule):
    """Writes a reply header announcing ``megabytes`` MB to its worker's socket, then waits:
    what a skill can do to the host, since it runs in the worker's process."""

    skill_name = "ForgesReply"
    skill_description = "writes a forged length to the worker's socket"
    required_inputs = ["megabytes"]
    output_keys = ["never"]
    isolation = "process"
    max_execution_time = 20.0

    def execute(self, uif: UIF) -> UIF:
        import socket
        import struct
        import sys

        channel = socket.socket(fileno=os.dup(int(sys.argv[1])))  # the worker's end
        channel.sendall(struct.pack("!Q", int(uif.intermediate_data["megabytes"] * 2**20)))
        time.sleep(30)
        return uif


class ForgesReplyUncapped(ForgesReply):
    skill_name = "ForgesReplyUncapped"
    isolation_limits = {"output_mb": None, "memory_mb": 64}


class Escapes(BaseSkillModule):
    """Starts a daemon that leaves the worker's process group (double fork and ``setsid``),
    writes its pid to ``pid_file``, then hangs past its deadline."""

    skill_name = "Escapes"
    skill_description = "starts a process in a session of its own, then hangs"
    required_inputs = ["pid_file"]
    output_keys = ["never"]
    isolation = "process"
    max_execution_time = 1.0

    def execute(self, uif: UIF) -> UIF:
        path = Path(uif.intermediate_data["pid_file"])
        if os.fork() == 0:  # the daemon's parent: leaves the group, forks it and exits
            os.setsid()
            if os.fork() == 0:
                publish(path, str(os.getpid()))
                time.sleep(120)
            os._exit(0)
        time.sleep(60)
        return uif


class Daemonizes(BaseSkillModule):
    """Starts a short-lived daemon (double fork and ``setsid``) that writes its pid to
    ``pid_file`` and exits 0.1 s later; returns at once with its worker's pid."""

    skill_name = "Daemonizes"
    skill_description = "starts a short-lived daemon and returns"
    required_inputs = ["pid_file"]
    output_keys = ["worker_pid"]
    isolation = "process"
    max_execution_time = 10.0

    def execute(self, uif: UIF) -> UIF:
        path = Path(uif.intermediate_data["pid_file"])
        middle = os.fork()
        if middle == 0:
            os.setsid()
            if os.fork() == 0:
                publish(path, str(os.getpid()))
                time.sleep(0.1)
            os._exit(0)
        os.waitpid(middle, 0)
        uif.intermediate_data["worker_pid"] = os.getpid()
        return uif


class Raises(BaseSkillModule):
    skill_name = "Raises"
    skill_description = "raises a ValueError"
    output_keys = ["never"]
    max_execution_time = 20.0

    def execute(self, uif: UIF) -> UIF:
        raise ValueError("bad input 42")


class WritesUndeclared(BaseSkillModule):
    skill_name = "WritesUndeclared"
    skill_description = "writes a key it did not declare"
    output_keys = ["declared"]
    max_execution_time = 20.0

    def execute(self, uif: UIF) -> UIF:
        uif.intermediate_data["declared"] = 1
        uif.intermediate_data["undeclared"] = 2
        return uif


class SetsError(BaseSkillModule):
    skill_name = "SetsError"
    skill_description = "calls set_error"
    output_keys = ["declared"]
    max_execution_time = 20.0

    def execute(self, uif: UIF) -> UIF:
        uif.set_error("the backend said no")
        return uif


class HoldsLock(BaseSkillModule):
    skill_name = "HoldsLock"
    skill_description = "keeps a lock in its instance state"
    output_keys = ["never"]
    isolation = "process"
    max_execution_time = 20.0

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()

    def execute(self, uif: UIF) -> UIF:
        return uif


class HoldsLambda(BaseSkillModule):
    skill_name = "HoldsLambda"
    skill_description = "keeps a lambda in its instance state (plain pickle refuses it)"
    required_inputs = ["n"]
    output_keys = ["scaled"]
    isolation = "process"
    max_execution_time = 20.0

    def __init__(self) -> None:
        super().__init__()
        self.scale = lambda n: n * 3

    def execute(self, uif: UIF) -> UIF:
        uif.intermediate_data["scaled"] = [self.scale(uif.intermediate_data["n"]), os.getpid()]
        return uif


class MakesThing(BaseSkillModule):
    skill_name = "MakesThing"
    skill_description = "writes an object that cannot be pickled (in-thread)"
    output_keys = ["thing"]
    max_execution_time = 20.0

    def execute(self, uif: UIF) -> UIF:
        uif.intermediate_data["thing"] = threading.Lock()
        return uif


class ReadsThing(BaseSkillModule):
    skill_name = "ReadsThing"
    skill_description = "reads an input that cannot be pickled"
    required_inputs = ["thing"]
    output_keys = ["never"]
    isolation = "process"
    max_execution_time = 20.0

    def execute(self, uif: UIF) -> UIF:
        return uif


class WritesGenerator(BaseSkillModule):
    skill_name = "WritesGenerator"
    skill_description = "writes a value that cannot be pickled back"
    output_keys = ["gen"]
    isolation = "process"
    max_execution_time = 20.0

    def execute(self, uif: UIF) -> UIF:
        uif.intermediate_data["gen"] = (i for i in range(3))
        return uif


class AsyncWhere(BaseSkillModule):
    skill_name = "AsyncWhere"
    skill_description = "an async skill that writes its pid"
    output_keys = ["async_pid"]
    isolation = "process"
    max_execution_time = 20.0

    async def execute(self, uif: UIF) -> UIF:
        await asyncio.sleep(0)
        uif.intermediate_data["async_pid"] = os.getpid()
        return uif


class IsolatedRaises(Raises):
    isolation = "process"


class IsolatedWritesUndeclared(WritesUndeclared):
    isolation = "process"


class IsolatedSetsError(SetsError):
    isolation = "process"


class ReadsDeadline(BaseSkillModule):
    """Writes the time its ``current_deadline()`` leaves it, as the worker sees it."""

    skill_name = "ReadsDeadline"
    skill_description = "reads sof_core.current_deadline() in its isolated process"
    required_inputs = ["input_query"]
    output_keys = ["left", "view_left", "same_on_view"]
    max_execution_time = 20.0
    isolation = "process"

    def execute(self, uif: UIF) -> UIF:
        deadline = current_deadline()
        uif.intermediate_data["left"] = None if deadline is None else deadline - time.monotonic()
        uif.intermediate_data["view_left"] = uif.remaining_time()
        uif.intermediate_data["same_on_view"] = uif.current_deadline() == deadline
        return uif


class Signals(BaseSkillModule):
    """Signals what an isolated skill may (a process it started) and may not (the host,
    every process): signal 0 only, harmless if the refusal ever failed."""

    skill_name = "Signals"
    skill_description = "reports which signals its worker let it send"
    required_inputs = ["input_query"]
    output_keys = ["signalled"]
    isolation = "process"
    max_execution_time = 20.0

    def execute(self, uif: UIF) -> UIF:
        import subprocess

        outcome: dict[str, str] = {}
        child = subprocess.Popen(["sleep", "30"])
        for name, target in (("own child", child.pid), ("itself", os.getpid()),
                             ("host", os.getppid()), ("everyone", -1)):
            try:
                os.kill(target, 0)
                outcome[name] = "sent"
            except PermissionError as exc:
                outcome[name] = str(exc)
        child.kill()  # its own child: allowed (Popen.kill is os.kill)
        child.wait()
        outcome["killed child"] = str(child.returncode)
        uif.intermediate_data["signalled"] = outcome
        return uif


class UsesItsTime(BaseSkillModule):
    """Does what docs/operations.md advises: works for the time it is told is left, less
    a small margin for sending its reply."""

    skill_name = "UsesItsTime"
    skill_description = "sleeps until shortly before the deadline it reads in its process"
    required_inputs = ["input_query"]
    output_keys = {"left": float}
    max_execution_time = 1.0
    isolation = "process"

    def execute(self, uif: UIF) -> UIF:
        left = uif.remaining_time()
        assert left is not None
        time.sleep(max(0.0, left - 0.1))
        uif.intermediate_data["left"] = float(left)
        return uif


# --- what an isolated skill may send back (tests/test_isolation_replies.py) ----------------


class _MakesDirectory:
    """Unpickled, it makes the directory ``path``: in the host, since the worker never
    unpickles what it sends."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.mkdir, (self.path,))


class WritesAPayload(BaseSkillModule):
    """Writes an object that runs ``os.mkdir(marker)`` when unpickled."""

    skill_name = "WritesAPayload"
    skill_description = "writes an object whose unpickling makes a directory"
    required_inputs = ["marker"]
    output_keys = ["payload"]
    isolation = "process"
    max_execution_time = 20.0

    def execute(self, uif: UIF) -> UIF:
        uif.intermediate_data["payload"] = _MakesDirectory(uif.intermediate_data["marker"])
        return uif


class _Payload(Exception):
    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str]]:
        # chdir, not mkdir: the worker unpickles an exception once itself (to check that it
        # survives the trip), and only the host's working directory tells where it ran.
        return (os.chdir, (self.path,))


class RaisesAPayload(BaseSkillModule):
    """Raises an exception that runs ``os.chdir(marker)`` when unpickled."""

    skill_name = "RaisesAPayload"
    skill_description = "raises an exception whose unpickling makes a directory"
    required_inputs = ["marker"]
    output_keys = ["never"]
    isolation = "process"
    max_execution_time = 20.0

    def execute(self, uif: UIF) -> UIF:
        raise _Payload(uif.intermediate_data["marker"])


class TakesOverItsWorker(BaseSkillModule):
    """Code that took over its worker: replaces how the worker pickles its reply, so the
    bytes the host reads are forged, naming ``os.mkdir`` outright."""

    skill_name = "TakesOverItsWorker"
    skill_description = "forges the worker's reply"
    required_inputs = ["marker"]
    output_keys = ["forged"]
    isolation = "process"
    max_execution_time = 20.0

    def execute(self, uif: UIF) -> UIF:
        import pickle

        from sof_core.execution import _worker

        marker = uif.intermediate_data["marker"]
        forged = pickle.dumps(("ok", {"data": {"forged": _MakesDirectory(marker)}}))

        class Forger:
            HIGHEST_PROTOCOL = pickle.HIGHEST_PROTOCOL

            @staticmethod
            def dumps(*args: object, **kwargs: object) -> bytes:
                return forged

            loads = staticmethod(pickle.loads)

        import sys

        # The worker runs as ``python -m sof_core.execution._worker``: its module is
        # ``__main__`` (``_worker`` imported above is another copy).
        sys.modules["__main__"].pickle = Forger  # type: ignore[attr-defined]
        _worker.pickle = Forger  # type: ignore[assignment]
        uif.intermediate_data["forged"] = 1
        return uif


class Record:
    """A class of the skill's own package: its instances come back."""

    def __init__(self, text: str) -> None:
        self.text = text


class WritesValues(BaseSkillModule):
    """Writes plain data, standard value types and a class of its own package."""

    skill_name = "WritesValues"
    skill_description = "writes values of many kinds"
    required_inputs = ["input_query"]
    output_keys = ["values"]
    isolation = "process"
    max_execution_time = 20.0

    def execute(self, uif: UIF) -> UIF:
        import collections
        import datetime
        import decimal
        import fractions
        import pathlib
        import uuid

        uif.intermediate_data["values"] = {
            "plain": [1, 2.5, "three", b"four", None, True, (5, 6), {7}, frozenset({8})],
            "when": datetime.datetime(2026, 11, 28, 1, 2, 3, tzinfo=datetime.timezone.utc),
            "money": decimal.Decimal("1.10"),
            "ratio": fractions.Fraction(1, 3),
            "id": uuid.UUID(int=7),
            "path": pathlib.PurePosixPath("/a/b"),
            "counts": collections.Counter("aab"),
            "record": Record("mine"),
        }
        return uif


class WritesANamespace(BaseSkillModule):
    """Writes an instance of another package's class (``argparse.Namespace``)."""

    skill_name = "WritesANamespace"
    skill_description = "writes an argparse.Namespace"
    required_inputs = ["input_query"]
    output_keys = ["namespace"]
    isolation = "process"
    max_execution_time = 20.0

    def execute(self, uif: UIF) -> UIF:
        import argparse

        uif.intermediate_data["namespace"] = argparse.Namespace(answer=42)
        return uif


class TrustsArgparse(WritesANamespace):
    skill_name = "TrustsArgparse"
    isolation_reply_packages = ("argparse",)


class RaisesJSONError(BaseSkillModule):
    """Raises an exception class of a module the host has imported (``json``)."""

    skill_name = "RaisesJSONError"
    skill_description = "raises json.JSONDecodeError"
    required_inputs = ["input_query"]
    output_keys = ["never"]
    isolation = "process"
    max_execution_time = 20.0

    def execute(self, uif: UIF) -> UIF:
        import json

        json.loads("{not json")
        return uif


class Napper(BaseSkillModule):
    """Sleeps ``nap`` seconds in its worker; ``Napper0`` ... ``Napper7`` are one wide stage
    that can keep every worker of the pool busy."""

    required_inputs = ["nap"]
    isolation = "process"
    max_execution_time = 10.0

    def execute(self, uif: UIF) -> UIF:
        time.sleep(uif.intermediate_data["nap"])
        uif.intermediate_data[self.output_keys[0]] = True
        return uif


NAPPERS: list[type[Napper]] = []
for _number in range(8):
    _napper = type(f"Napper{_number}", (Napper,), {
        "skill_name": f"Napper{_number}", "skill_description": "sleeps in its worker",
        "output_keys": [f"napped{_number}"], "__module__": __name__,
    })
    globals()[_napper.__name__] = _napper
    NAPPERS.append(_napper)
