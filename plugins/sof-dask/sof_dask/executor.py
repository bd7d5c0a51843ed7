"""``DaskExecutor``: each stage's skills run as tasks on a Dask distributed cluster.

Per skill, only what it may see is sent: the skill instance, its declared inputs and the
UIF's other fields, pickled here (``sof_core.pack_call``: by name, or by value with
cloudpickle for a class the workers cannot import) so that a skill that cannot travel is
reported as ``SkillNotPicklableError`` naming it (also on an in-process cluster, which
would not otherwise serialise). The worker returns what the skill changed; the writes are
replayed through the skill's normal view, so undeclared writes, type checks and the
deterministic merge order are exactly the local ones.

The cluster: ``plugin_settings["dask"]["scheduler"]`` or ``SOF_DASK_SCHEDULER`` names a
running scheduler; otherwise one in-process ``LocalCluster`` per process is started on
first use (``n_workers``, ``threads_per_worker`` and ``processes`` settings size it).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sof_core import (
    UIF,
    ConfigError,
    Outcome,
    RunContext,
    SkillTimeoutError,
    Step,
    UndeclaredWriteError,
    call_payload,
    check_returned,
    pack_call,
    replay_changes,
    skill_view,
)
from sof_core import SkillNotPicklableError as NotPicklable
from sof_dask.errors import DaskUnavailableError, SkillNotPicklableError
from sof_dask.remote import SkillRaised, run_skill

if TYPE_CHECKING:
    from distributed import Client

ENV_SCHEDULER = "SOF_DASK_SCHEDULER"
_NOT_RETRIED = (SkillNotPicklableError, UndeclaredWriteError, SkillTimeoutError,
                DaskUnavailableError)

_lock = threading.Lock()
_clients: dict[str, Client] = {}
_local: dict[str, Any] = {}


class DaskExecutor:
    """Runs every stage's skills as Dask tasks (a stage of one skill too: it is remote)."""

    name = "dask"
    concurrent = True

    def __init__(self, address: str | None = None, connect_timeout: float | None = None) -> None:
        self._address = address
        self._connect_timeout = connect_timeout
        self._client: Client | None = None

    # --- the cluster ---------------------------------------------------------------------

    def client(self, settings: dict[str, Any]) -> Client:
        """The client for the configured scheduler, or for this process's LocalCluster."""
        _check_settings(settings)
        if self._client is None or not _live(self._client):
            address = self._address or settings.get("scheduler") or os.environ.get(ENV_SCHEDULER)
            timeout = self._connect_timeout or float(settings.get("connect_timeout", 10))
            self._client = _connect(address, timeout) if address else _local_client(settings)
        return self._client

    # --- the executor protocol -----------------------------------------------------------

    def run_stage(self, run: RunContext, steps: Sequence[Step]) -> list[Outcome]:
        client = self.client(run.config.settings_for("dask"))
        started = time.monotonic()
        pending: list[tuple[Step, UIF, Any, Any, Any]] = []
        outcomes: dict[int, Outcome] = {}
        isolated: list[tuple[int, _IsolatedCall]] = []
        for index, step in enumerate(steps):
            if step.isolation == "process":
                isolated.append((index, _IsolatedCall(run, step)))
                continue
            view, data = skill_view(run.uif, step)
            guard = data
            run.before_skill(step, view)
            try:
                payload = _pack(step, run.uif)
            except SkillNotPicklableError as exc:
                outcomes[index] = Outcome(step, None, None, None, None, exc, 0.0, 1)
                continue
            future = client.submit(run_skill, payload, pure=False, key=_key(step))
            pending.append((step, view, data, guard, (index, payload, future)))
        for step, view, data, guard, (index, payload, future) in pending:
            outcomes[index] = self._collect(client, run.uif, step, view, data, guard, payload,
                                            future, started, run.config.retry_backoff)
        for index, call in isolated:
            outcomes[index] = call.outcome()
        return [outcomes[i] for i in range(len(steps))]

    def _collect(self, client: Client, uif: UIF, step: Step, view: UIF, data: Any, guard: Any,
                 payload: bytes, future: Any, started: float, backoff: float) -> Outcome:
        """Wait for one task; replay its writes, or retry it, or time it out."""
        attempts = 1
        deadline = None if step.timeout is None else started + step.timeout
        while True:
            try:
                changes = _result(client, future, deadline, step)
                replay_changes(step, view, changes)
                result = check_returned(step, view, view)
                return Outcome(step, result, view, data, guard, None,
                               time.monotonic() - started, attempts)
            except _NOT_RETRIED as exc:
                return Outcome(step, None, None, None, None, exc,
                               time.monotonic() - started, attempts)
            except _TimedOut:
                with contextlib.suppress(Exception):  # a client that just stopped: gone anyway
                    future.cancel()
                timed_out = SkillTimeoutError(
                    f"did not finish within {step.timeout}s on the Dask cluster; abandoned",
                    step.name,
                )
                return Outcome(step, None, None, None, None, timed_out,
                               time.monotonic() - started, attempts)
            except SkillRaised as raised:
                # SystemExit is retried as the local executors retry it; KeyboardInterrupt
                # (and any other) is not: the run reports it, then raises a Ctrl-C.
                error = raised.original()
                if not isinstance(error, SystemExit) or attempts > step.retries:
                    return Outcome(step, None, None, None, None, error,
                                   time.monotonic() - started, attempts)
            except Exception as exc:
                if not _live(client):
                    return Outcome(step, None, None, None, None, _stopped(step, exc),
                                   time.monotonic() - started, attempts)
                if attempts > step.retries:
                    return Outcome(step, None, None, None, None, exc,
                                   time.monotonic() - started, attempts)
            attempts += 1
            if backoff:
                time.sleep(backoff * (2 ** (attempts - 2)))
            view, data = skill_view(uif, step)
            guard = data
            try:
                future = client.submit(run_skill, payload, pure=False, key=_key(step))
            except Exception as exc:
                return Outcome(step, None, None, None, None,
                               _stopped(step, exc) if not _live(client) else exc,
                               time.monotonic() - started, attempts)

    def close(self) -> None:
        """Forget the client (the shared LocalCluster stays up until the process exits)."""
        self._client = None


class _IsolatedCall:
    """An isolated step (``isolation = "process"``) of a Dask stage, run as the local
    executors run it: in one of this process's isolation workers (clean environment, limits,
    killed at its deadline; a tool's permissions and sandbox), never on the cluster, whose
    workers may be threads of this very process. ``run.execute`` does that in the calling
    thread, so each gets a daemon thread of its own, beside the stage's Dask tasks."""

    def __init__(self, run: RunContext, step: Step) -> None:
        self._step = step
        self._result: Outcome | None = None
        self._thread = threading.Thread(target=self._run, args=(run,), daemon=True,
                                        name=f"sof-dask-isolated-{step.name}")
        self._thread.start()

    def _run(self, run: RunContext) -> None:
        try:
            self._result = run.execute(self._step)
        except BaseException as exc:  # execute reports a skill's errors; this is SOF's own
            self._result = Outcome(self._step, None, None, None, None, exc, 0.0, 1)

    def outcome(self) -> Outcome:
        """Wait for it: the worker is killed at the step's deadline, so this returns then."""
        self._thread.join()
        assert self._result is not None
        return self._result


# --- sending and receiving -------------------------------------------------------------------


def _pack(step: Step, uif: UIF) -> bytes:
    """The skill, its declared inputs and the other UIF fields, pickled (or a typed error):
    by name what the workers can import, by value what they cannot (``sof_core.pack_call``)."""
    try:
        return pack_call(step.name, call_payload(step, uif))
    except NotPicklable as exc:
        raise SkillNotPicklableError(step.name, exc.what, exc.reason) from exc


#: What ``plugin_settings["dask"]`` may hold.
SETTINGS = ("scheduler", "connect_timeout", "n_workers", "threads_per_worker", "processes",
            "dashboard_address")


def _check_settings(settings: dict[str, Any]) -> None:
    """A misspelt key must not pass silently: ``scheduler_address`` would otherwise start
    a private LocalCluster and run every skill on the wrong cluster."""
    import difflib

    for key in settings:
        if key not in SETTINGS:
            near = difflib.get_close_matches(key, SETTINGS, n=1, cutoff=0.5)
            hint = f"did you mean {near[0]!r}? " if near else ""
            raise ConfigError(
                f"unknown Dask setting plugin_settings.dask.{key}; {hint}the settings are "
                + ", ".join(SETTINGS), key=f"plugin_settings.dask.{key}")


def _key(step: Step) -> str:
    import uuid

    return f"sof-{step.name}-{uuid.uuid4().hex}"


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _dask_timeout() -> type[BaseException]:
    from distributed import TimeoutError as DaskTimeout

    return DaskTimeout  # type: ignore[no-any-return]


class _TimedOut(Exception):
    """The step's deadline passed with its task unfinished (never what the skill raised:
    a ``TimeoutError`` of the skill's own is its failure, retried like any other)."""


#: How often a wait for a task looks at whether its client can still hear from it.
_POLL = 0.5


def _result(client: Client, future: Any, deadline: float | None, step: Step) -> Any:
    """``future.result()``, waited for in slices: a cluster whose event loop stopped while
    the task ran is noticed at once, instead of waited on until the step's deadline."""
    waits = (TimeoutError, _dask_timeout())
    while True:
        wait = _POLL if deadline is None else min(_POLL, max(0.0, deadline - time.monotonic()))
        try:
            return future.result(timeout=wait)
        except waits:
            if future.status == "error":  # the task's own error, a TimeoutError
                raise
        if future.status in ("finished", "error"):
            continue  # done just now: collect it
        if not _live(client):
            raise _stopped(step, None)
        if deadline is not None and time.monotonic() >= deadline:
            raise _TimedOut


def _stopped(step: Step, cause: BaseException | None) -> DaskUnavailableError:
    """The error of a step whose client (or in-process cluster) stopped under it."""
    why = f" ({_reason(cause)})" if cause is not None else ""
    error = DaskUnavailableError(
        f"the Dask client stopped while {step.name!r} ran{why}; the next run connects "
        "again (a LocalCluster of this process is started afresh)"
    )
    error.__cause__ = cause
    return error


# --- clients -------------------------------------------------------------------------------


class _Attempt:
    """One connection attempt to a scheduler, shared by every run that asks meanwhile."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.client: Client | None = None
        self.error: DaskUnavailableError | None = None


#: Attempts under way, by address: a run that finds one waits for its outcome instead of
#: queueing a connection of its own behind it (64 runs against a scheduler that is down
#: would otherwise each wait for every earlier run's ``connect_timeout``).
_attempts: dict[str, _Attempt] = {}


def _connect(address: str, timeout: float) -> Client:
    """The kept client for ``address``, or a new one: the connection is made on a thread of
    its own, and waited for within about ``timeout`` however the scheduler behaves."""
    with _lock:
        client = _clients.get(address)
        if client is not None and _live(client):
            return client
        attempt = _attempts.get(address)
        if attempt is None:
            attempt = _attempts[address] = _Attempt()
            threading.Thread(target=_attempt_connection, args=(attempt, address, timeout),
                             name=f"sof-dask-connect {address}", daemon=True).start()
    if not attempt.done.wait(timeout + _GRACE):
        with _lock:
            if _attempts.get(address) is attempt:  # abandoned: the next run tries again
                del _attempts[address]
        raise DaskUnavailableError(
            f"no answer from the Dask scheduler at {address!r} within {timeout:g} s "
            f"(plugin_settings.dask.connect_timeout); check that it is up and reachable"
        )
    if attempt.error is not None:  # a fresh exception per run: tracebacks are per thread
        raise DaskUnavailableError(str(attempt.error)) from attempt.error.__cause__
    assert attempt.client is not None
    return attempt.client


#: How much longer than ``connect_timeout`` a run waits for a connection attempt (the
#: handshake alone is bounded by ``connect_timeout``; this covers Dask's own set-up after it).
_GRACE = 5.0


class _Silent(Exception):
    """The scheduler's port accepted the connection but nothing answered the handshake."""


def _handshake(address: str, timeout: float) -> None:
    """Raise unless something at ``address`` answers Dask's connection handshake within
    ``timeout``. ``Client(timeout=...)`` bounds only the TCP connect: against a port that
    accepts and never answers (a black-holed port, another service) its handshake read
    waits for ever, on a loop thread that cannot be stopped. Here it runs on a loop of its
    own, cancelled at the deadline."""
    import asyncio

    from distributed import Security
    from distributed.comm.core import connect

    async def shake() -> None:
        comm = await connect(address, timeout=timeout,
                             **Security().get_connection_args("client"))
        await comm.close()

    async def bounded() -> None:
        try:  # a refused port: connect() gives up at ``timeout`` itself, with its reason
            await asyncio.wait_for(shake(), timeout + 0.25)
        except asyncio.TimeoutError:
            raise _Silent(f"it accepted the connection but did not answer within "
                          f"{timeout:g} s; is a Dask scheduler listening there?") from None

    asyncio.run(bounded())


def _attempt_connection(attempt: _Attempt, address: str, timeout: float) -> None:
    """Connect (on its own thread); the outcome is kept for every run waiting on it. A
    failure is not remembered past the attempt: the next run tries again, so a scheduler
    that comes up is used at once."""
    from distributed import Client

    started = time.monotonic()
    try:
        _handshake(address, timeout)
        left = max(1.0, timeout - (time.monotonic() - started))
        attempt.client = Client(address, timeout=left, set_as_default=False)
    except Exception as exc:
        reason = str(exc) if isinstance(exc, _Silent) else _reason(exc)
        error = DaskUnavailableError(
            f"cannot reach the Dask scheduler at {address!r} ({reason}); start "
            f"it, or unset plugin_settings.dask.scheduler / {ENV_SCHEDULER} to use a "
            "LocalCluster"
        )
        error.__cause__ = exc
        attempt.error = error
    finally:
        surplus = None
        with _lock:
            kept = _attempts.get(address) is attempt
            if kept:
                del _attempts[address]
            if attempt.client is not None:
                other = _clients.get(address)
                if kept or other is None or not _live(other):
                    _clients[address] = attempt.client
                else:  # abandoned, and a later attempt connected meanwhile
                    surplus = attempt.client
        attempt.done.set()
        _close_quietly(surplus)


def _local_client(settings: dict[str, Any]) -> Client:
    """This process's LocalCluster, started on first use and closed at exit."""
    with _lock:
        client = _local.get("client")
        if client is not None and not _live(client):
            # closed by someone, or its event loop stopped (a task let SystemExit through
            # to it): start afresh rather than fail every run with "IOLoop is closed"
            _close_quietly(client, _local.pop("cluster", None))
            client = None
        if client is None:
            from distributed import Client, LocalCluster

            try:
                cluster = LocalCluster(
                    n_workers=int(settings.get("n_workers", 1)),
                    threads_per_worker=int(settings.get("threads_per_worker", 16)),
                    processes=bool(settings.get("processes", False)),
                    dashboard_address=settings.get("dashboard_address", ":0"),
                )
                client = Client(cluster, set_as_default=False)
            except Exception as exc:
                raise DaskUnavailableError(
                    f"could not start a Dask LocalCluster ({_reason(exc)}); check the "
                    "plugin_settings.dask values or set a scheduler address"
                ) from exc
            if not _local.get("registered"):
                atexit.register(_close_local)
            _local.update(cluster=cluster, client=client, registered=True)
        return client


def _close_local() -> None:
    with _lock:
        client, cluster = _local.pop("client", None), _local.pop("cluster", None)
    _close_quietly(client, cluster)


def _close_quietly(*closables: Any) -> None:
    for closable in closables:
        if closable is not None:
            with contextlib.suppress(Exception):  # shutting down anyway
                closable.close()


#: A client in any other state (``closing``, ``closed``) can send nothing again: a client
#: whose scheduler stays away longer than it retries closes itself.
_LIVE_STATES = frozenset({"newly-created", "connecting", "running"})


def _live(client: Client) -> bool:
    """Whether ``client`` can still send and hear: its state is a live one, and its event
    loop still runs (an in-process LocalCluster's loop, which its client shares, stops for
    good when a task lets ``SystemExit`` through to it: every call then raises "IOLoop is
    closed", whatever the client's state says)."""
    if getattr(client, "status", None) not in _LIVE_STATES:
        return False
    loop = getattr(getattr(client, "loop", None), "asyncio_loop", None)
    if loop is None:
        return True  # nothing to tell by: trust the state
    return not loop.is_closed() and loop.is_running()


def close_clients(address: str | None = None) -> int:
    """Close the clients kept for scheduler ``address`` (every scheduler when ``None``).

    Clients are kept per scheduler address for the life of the process. Call this before
    you stop a scheduler this process used, so its client does not retry it in the
    background (and log the failure when it gives up). The next run connects again. The
    process's own LocalCluster is not touched (it closes at exit). Returns how many
    clients were closed.
    """
    with _lock:
        chosen = [a for a in _clients if address is None or a == address]
        closing = [_clients.pop(a) for a in chosen]
    _close_quietly(*closing)
    return len(closing)
