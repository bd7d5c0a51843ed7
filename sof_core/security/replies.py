"""What a sandboxed tool call sends back when it raised: shared by the isolation worker
(``sof_core.execution._worker``) and the forked child (``sof_core.security.forked``), so the
host decodes both the same way and a refused connection is explained the same way.

Standard library and ``sof_core.errors`` only: the worker imports it in every call's error
path and stays light.
"""

from __future__ import annotations

import errno
import io
import pickle
from collections.abc import Collection
from typing import Any

from sof_core._tracebacks import traceback_text
from sof_core.errors import ToolPermissionError

#: What connecting fails with inside a network namespace: no route (``unshare``: even
#: loopback is down), or refused (bubblewrap's loopback has nothing listening).
NO_NETWORK = frozenset({errno.ENETUNREACH, errno.ENETDOWN, errno.EHOSTUNREACH,
                        errno.ECONNREFUSED})


def raised(exc: BaseException) -> tuple[Any, ...]:
    """The skill's exception, pickled if it survives a round trip, and as text.

    Pickled by its own ``__reduce_ex__``, not the reducers registered with ``copyreg``:
    ``tblib.pickling_support.install()`` (``distributed`` calls it) registers one for every
    exception class that sends it through a ``tblib`` function, which the host does not
    load from an isolated process (``sof_core.security.unpickling``). Its traceback goes as
    text anyway.
    """
    text = traceback_text(exc, exc.__traceback__)
    data: bytes | None
    try:
        buffer = io.BytesIO()
        pickler = pickle.Pickler(buffer, pickle.HIGHEST_PROTOCOL)
        pickler.dispatch_table = {}  # the classes' own reduction only
        pickler.dump(exc)
        data = buffer.getvalue()
        pickle.loads(data)
    except BaseException:
        data = None
    return ("raised", data, type(exc).__name__, str(exc), text)


def network_refused(skill: str, exc: OSError, deny: Collection[str]) -> BaseException:
    """``exc`` itself, or, when a tool without "network" failed to connect, a
    ``ToolPermissionError`` that says why (the sandbox), not just the errno."""
    if "network" not in deny or exc.errno not in NO_NETWORK or isinstance(
        exc, ToolPermissionError
    ):
        return exc
    error = ToolPermissionError(
        skill, "network",
        f"{exc.strerror or exc}: the tool has no 'network' permission, so it runs in a "
        "sandbox without a network; declare permissions = {'network'} on it if it must "
        "(the tool policy may still deny it)",
    )
    error.__cause__ = exc
    return error
