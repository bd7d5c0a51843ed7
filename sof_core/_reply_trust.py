"""Which packages a deployment or a skill may trust whole in an isolated process's reply
(``isolation_reply_packages``), shared by the settings, the skill declarations and the
reply loader (``sof_core.security.unpickling``). Kept outside the layers, like
``_timeouts``: settings and skills both read it.
"""

from __future__ import annotations

#: Packages that can never be trusted whole: each holds a way to run code, touch files or
#: processes, or reach any other object (``builtins.getattr``, ``os.system``,
#: ``operator.attrgetter``, ``functools.partial``), so trusting one trusts everything.
NEVER_TRUSTED = frozenset({
    "_io", "_pickle", "_thread", "asyncio", "builtins", "code", "codecs", "copyreg", "ctypes",
    "functools", "importlib", "io", "marshal", "multiprocessing", "nt", "operator", "os",
    "pickle", "posix", "pty", "runpy", "shutil", "signal", "socket", "sof_core",
    "subprocess", "sys", "threading", "types",
})


def package_problem(name: object) -> str | None:
    """Why ``name`` cannot be listed in ``isolation_reply_packages`` (None when it can)."""
    if not isinstance(name, str) or not name.isidentifier():
        return f"{name!r} is not a top-level package name (like 'numpy')"
    if name in NEVER_TRUSTED:
        return (f"{name!r} cannot be trusted whole: it can run any code in the host; write "
                "plain data instead")
    return None
