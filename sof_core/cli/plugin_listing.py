"""The plugins ``sof plugins`` lists, loaded so that no plugin can end the command.

``sof plugins`` must list every installed plugin whatever one of them does while it is
loaded. Python catches what a plugin raises (``sys.exit`` included), but not a plugin that
ends the process itself: ``os._exit``, a crash in native code (a segfault through
``ctypes``), a fatal signal. Loaded in the ``sof`` process, such a plugin took the command
with it: its exit code and nothing printed.

So ``load_listing`` loads the plugins in a forked child, as ``PluginManager.load`` always
does, and the child sends the records back (``PluginRecord.to_dict``, rebuilt field for
field, so the listing prints byte for byte as if loaded here) with the contested skill
names. Before each plugin's code runs (its import, its registration hooks, its
``sof_configure``) the child writes which plugin and what is running to a temporary file,
straight to the kernel: when the child dies, the last of those lines names the plugin that
was running. A new child then loads the plugins again with that one marked failed, saying
how the process ended and while what ("ended the process with exit code 4 while it was
imported", "the process was killed by signal SIGSEGV while its sof_configure() ran"), and
so on until a child finishes: one retry per such plugin.

Why a fork and not a child Python process (``sof plugins check`` starts one,
``cli/contract_command.py``): a fork costs a few milliseconds (the child has SOF imported
already) where a new interpreter costs a second start-up, and the common case, no plugin
ending the process, loads every plugin exactly once, as before. Why not loading here first
and only then falling back: a plugin that ends the process leaves nothing to fall back
from. A file, not a pipe: the child's lines never wait for the parent to read them, and a
process the plugin started that keeps the descriptor open cannot keep the parent waiting
(it waits for its child alone).

A plugin whose import hangs is given up on at ``plugin_import_timeout``, in the child, as
before; the child then ends (its hung import thread with it). Where there is no ``fork``
(Windows), or the process runs other threads (a host calling ``main()``; a fork copies
only the calling thread), or autoload is off (no plugin code runs), the plugins are loaded
in this process, as before: there, a plugin that ends the process still ends the command.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pickle
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any, NoReturn

from sof_core.cli.output import UsageError
from sof_core.errors import PluginError, PluginLoadError
from sof_core.plugins.loader import PluginManager, PluginRecord

if TYPE_CHECKING:
    from sof_core.config import SOFConfig
    from sof_core.plugins.importer import DeadlineImporter

log = logging.getLogger("sof.plugins")

#: What was running, by the phase a child reports, as the failed plugin's error says it.
_PHASES = {
    "import": "while it was imported",
    "register": "while its registration hooks ran",
    "configure": "while its sof_configure() ran",
}
#: Exit status of a child whose load raised (the exception is in its file).
_RAISED = 3


@dataclass
class Listing:
    """What ``sof plugins`` prints: every plugin's record (built-ins included) and the
    skill names several plugins offer that no setting settles."""

    records: list[PluginRecord]
    contested: dict[str, list[str]] = field(default_factory=dict)


def load_listing(config: SOFConfig) -> Listing:
    """The installed plugins loaded under ``config``, strict mode included (its error is
    the caller's to report, after the listing); one that ends the process is listed as
    failed. Raises what loading raises outside strict mode (a ``PluginError``)."""
    if not (config.plugins_autoload and _can_fork()):
        return _load(config, {}, None)
    ended: dict[str, str] = {}
    while True:
        listing, running, code = _load_forked(config, ended)
        if listing is not None:
            return listing
        if running is None or running[0] in ended:  # no plugin's code was running
            raise UsageError(
                f"the process loading the installed plugins {_death(code, 'it')} while no "
                "plugin's code was running; `sof --version` lists them without importing "
                "any", 1)
        plugin, phase = running
        ended[plugin] = (f"{_death(code, 'the process')} {_PHASES[phase]}; a plugin must "
                         "raise an exception, not end the process")


def _can_fork() -> bool:
    """A fork copies the calling thread alone: only a process of one thread forks."""
    return hasattr(os, "fork") and threading.active_count() == 1


# --- the loading itself (in the child, or here) ----------------------------------------------


def _load(config: SOFConfig, ended: Mapping[str, str],
          report: Callable[[str, str, str], None] | None) -> Listing:
    """Load as ``sof plugins`` always did; ``ended``: plugins marked failed unloaded."""
    manager = _ReportingManager(config, ended, report)
    try:
        manager.load()
    except PluginError:
        if not config.strict_plugins:
            raise
    every = list(manager.records.values())
    if not config.plugins_autoload:  # none was loaded: list them, from metadata, as off
        for record in manager.discover():
            if record.status == "discovered":
                record.status = "disabled"
                record.error = ("plugin autoload is off (SOF_DISABLE_PLUGIN_AUTOLOAD, "
                                "plugins_autoload = false)")
            every.append(record)
    return Listing(every, manager.registry.contested())


class _ReportingManager(PluginManager):
    """A ``PluginManager`` that says which installed plugin's code it is about to run
    (``report(event, plugin, phase)``), and leaves out, as failed, the plugins that ended
    the process (``ended``: why, by name)."""

    def __init__(self, config: SOFConfig, ended: Mapping[str, str],
                 report: Callable[[str, str, str], None] | None) -> None:
        super().__init__(config)
        self._ended = ended
        self._report = report or (lambda event, plugin, phase: None)

    def _load_entry_point(self, record: PluginRecord, importer: DeadlineImporter) -> None:
        why = self._ended.get(record.name)
        if why is not None and record.status == "discovered":
            error = PluginLoadError(record.name, why)
            self._records[record.name] = record
            record.status, record.error = "failed", str(error)
            record.error_type = type(error).__name__
            self.registry.note_failure(record.name, why)
            self._alert("plugin_failed", str(error), {"plugin": record.name})
            log.warning("plugin %s skipped: %s", record.name, error)
            return
        self._report("enter", record.name, "import")
        try:
            super()._load_entry_point(record, importer)
        finally:
            self._report("leave", record.name, "")

    def _collect(self, record: PluginRecord, *, contest: bool) -> dict[str, list[str]]:
        if record.source == "entry-point":  # the same plugin, on to its hooks
            self._report("enter", record.name, "register")
        return super()._collect(record, contest=contest)

    def _configure_impl(self, impl: Any) -> None:
        record = self._records.get(impl.plugin_name)
        if record is None or record.source != "entry-point":  # a built-in: SOF's own code
            super()._configure_impl(impl)
            return
        self._report("enter", record.name, "configure")
        try:
            super()._configure_impl(impl)
        finally:
            self._report("leave", record.name, "")


# --- the forked child --------------------------------------------------------------------------


def _load_forked(config: SOFConfig, ended: Mapping[str, str]
                 ) -> tuple[Listing | None, tuple[str, str] | None, int]:
    """One child's load: (the listing, None, 0) when it finished, else (None, the plugin
    whose code was running when it died and the phase, or None; its exit code, negative
    for the signal that killed it)."""
    with tempfile.TemporaryFile(prefix="sof-plugins-") as events:
        for stream in (sys.stdout, sys.stderr):  # or the child would write them again
            with contextlib.suppress(OSError, ValueError, AttributeError):
                stream.flush()
        pid = os.fork()
        if pid == 0:
            _child(events, config, ended)
        status = _wait(pid)
        events.seek(0)
        lines = events.read().decode("utf-8", "replace").splitlines()
    running: tuple[str, str] | None = None
    for event, data in _parsed(lines):
        if event == "enter":
            running = (data["plugin"], data["phase"])
        elif event == "leave":
            running = None
        elif event == "listing":
            records = [PluginRecord(**record) for record in data["records"]]
            return Listing(records, data["contested"]), None, 0
        elif event == "raised":
            raise pickle.loads(bytes.fromhex(data["exception"]))
    return None, running, status


def _child(events: IO[bytes], config: SOFConfig, ended: Mapping[str, str]) -> NoReturn:
    """Load, write each step and then the listing to ``events``; never returns."""
    code = 0
    fd = events.fileno()

    def write(event: str, data: dict[str, Any]) -> None:
        line = (json.dumps([event, data]) + "\n").encode("utf-8")
        while line:  # straight to the kernel: it is there if the next step ends the process
            line = line[os.write(fd, line):]

    try:
        try:
            listing = _load(config, ended, lambda event, plugin, phase: write(
                event, {"plugin": plugin, "phase": phase}))
            write("listing", {"records": [r.to_dict() for r in listing.records],
                              "contested": listing.contested})
        except BaseException as exc:  # raised in this process by the same code: the same
            code = _RAISED
            write("raised", {"exception": _pickled(exc).hex()})
    finally:
        for stream in (sys.stdout, sys.stderr):  # what a plugin printed, and the warnings
            with contextlib.suppress(BaseException):
                stream.flush()
        os._exit(code)


def _pickled(exc: BaseException) -> bytes:
    """``exc`` to raise again in the parent: SOF's and Python's own exceptions as they are;
    another's (a plugin's class: unpickling it would import the plugin in the parent) or one
    that does not pickle as a ``RuntimeError`` with its type and words."""
    module = type(exc).__module__
    if module == "builtins" or module.startswith("sof_core."):
        with contextlib.suppress(Exception):
            return pickle.dumps(exc)
    return pickle.dumps(RuntimeError(f"{type(exc).__name__}: {exc}"))


def _wait(pid: int) -> int:
    """The child's exit code (negative: the signal that killed it); the child is killed
    if this process is interrupted while waiting (Ctrl-C reaches both)."""
    try:
        _, status = os.waitpid(pid, 0)
    except BaseException:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        raise
    return os.waitstatus_to_exitcode(status)


def _parsed(lines: list[str]) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for line in lines:
        try:
            event, data = json.loads(line)
        except ValueError:  # the last line, cut short by the death of the child
            continue
        events.append((str(event), dict(data)))
    return events


def _death(code: int, process: str) -> str:
    """How ``process`` ended: "ended the process with exit code 4" (said of a plugin when
    ``process`` is "the process"), "the process was killed by signal SIGSEGV"."""
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = str(-code)
        return f"{process} was killed by signal {name}"
    if process == "the process":
        return f"ended the process with exit code {code}"
    return f"{process} ended with exit code {code}"


__all__ = ["Listing", "load_listing"]
