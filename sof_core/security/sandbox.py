"""Keeping a tool without the "network" permission off the network.

Such a tool runs in an isolation worker started inside a sandbox that has no network:

- ``unshare``: the worker is started as ``unshare --net`` (root, or CAP_SYS_ADMIN), else
  ``unshare --map-root-user --net`` (an unprivileged user namespace), in a network
  namespace of its own with only a loopback device that is down: every IP connection,
  local or not, fails with ENETUNREACH, whatever library or C extension makes it.
- ``bwrap``: bubblewrap with ``--unshare-net`` (the rest of the file system as it is),
  where bubblewrap is installed and allowed to create namespaces.
- ``audit``: the documented in-process fallback, for hosts where neither works (most
  containers without CAP_SYS_ADMIN, macOS): the worker's audit hook (``guard``) refuses
  creating IP sockets, connecting, binding, sending and name lookups from Python code. Code
  that makes system calls itself (a C extension, ctypes) is not stopped by it.

``network_isolation`` in the tool policy picks one ("auto": the first that works here, in
the order above). Whichever is used, the audit hook also refuses Unix-socket connections
of such a tool, which a network namespace does not cover.

Each kind is probed once per process by starting ``true`` under it.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
from dataclasses import dataclass

#: The kinds in the order "auto" tries them.
KINDS = ("unshare", "bwrap", "audit")


@dataclass(frozen=True)
class Sandbox:
    """How no-network workers are started: ``prefix`` goes before the worker's command;
    ``kind`` is "unshare", "bwrap" or "audit" (no prefix: the audit hook does it all)."""

    kind: str
    prefix: tuple[str, ...] = ()

    @property
    def namespace(self) -> bool:
        """Whether the kernel keeps the worker off the network (not only the audit hook)."""
        return self.kind != "audit"


AUDIT = Sandbox("audit")
_CANDIDATES: dict[str, tuple[tuple[str, ...], ...]] = {
    "unshare": (("unshare", "--net"), ("unshare", "--map-root-user", "--net")),
    "bwrap": (("bwrap", "--dev-bind", "/", "/", "--unshare-net", "--die-with-parent"),),
}
_found: dict[str, Sandbox | None] = {}
_lock = threading.Lock()


class SandboxUnavailableError(RuntimeError):
    """The configured ``network_isolation`` cannot be used on this host."""


def network_sandbox(mode: str = "auto") -> Sandbox:
    """The sandbox no-network tools run in for ``mode`` ("auto", "unshare", "bwrap",
    "audit"); ``SandboxUnavailableError`` when an explicit kind does not work here."""
    if mode == "audit":
        return AUDIT
    if mode == "auto":
        for kind in KINDS[:-1]:
            found = available(kind)
            if found is not None:
                return found
        return AUDIT
    if mode not in _CANDIDATES:
        raise SandboxUnavailableError(
            f"tool_policy.network_isolation {mode!r} is not one of auto, " + ", ".join(KINDS)
        )
    found = available(mode)
    if found is None:
        tried = " / ".join(" ".join(prefix) for prefix in _CANDIDATES[mode])
        raise SandboxUnavailableError(
            f"tool_policy.network_isolation is {mode!r}, but `{tried} true` does not work on "
            "this host (not installed, or not allowed to create namespaces); set it to "
            "\"auto\" to use what works, or to \"audit\" for the in-process fallback"
        )
    return found


def available(kind: str) -> Sandbox | None:
    """The working variant of ``kind`` on this host (probed once), or None."""
    if kind == "audit":
        return AUDIT
    if kind in _found:
        return _found[kind]
    with _lock:
        if kind not in _found:
            _found[kind] = _probe(kind)
        return _found[kind]


def _probe(kind: str) -> Sandbox | None:
    for prefix in _CANDIDATES.get(kind, ()):
        program = shutil.which(prefix[0])
        if program is None:
            return None
        command = (program, *prefix[1:])
        true = shutil.which("true") or "/bin/true"
        try:
            done = subprocess.run(
                [*command, true], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, timeout=10, check=False,
            )
        except (OSError, subprocess.SubprocessError):
            continue
        if done.returncode == 0:
            return Sandbox(kind, command)
    return None


def forget_probes() -> None:
    """Probe again on next use (tests; a host whose privileges changed)."""
    with _lock:
        _found.clear()
