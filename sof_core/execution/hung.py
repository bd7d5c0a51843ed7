"""Skill calls abandoned at their deadline and still running: counted, and quarantined.

Python cannot stop a thread, so a skill abandoned at its timeout goes on running in a thread
of its own until it returns. Each engine counts such calls per skill; a skill with more than
``max_hung_calls_per_skill`` of them still running is quarantined: it fails fast with
``SkillQuarantinedError`` (no new thread is spent on it) until enough of them return.
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import TYPE_CHECKING, Any

from sof_core.errors import SkillQuarantinedError

if TYPE_CHECKING:
    from sof_core.config import SOFConfig


class HungCalls:
    """One engine's abandoned calls still running, per skill (thread-safe)."""

    def __init__(self, config: SOFConfig) -> None:
        self._config = config
        self._lock = threading.Lock()
        self._running: dict[str, int] = {}
        self._abandoned: dict[str, int] = {}
        #: Skills failing fast; runs read it without the lock (a set of names, usually empty).
        self.quarantined: set[str] = set()
        _all.add(self)

    def _after_fork(self) -> None:
        """In a forked child the parent's hung threads do not exist: none is running."""
        self._lock = threading.Lock()
        self._running.clear()
        self.quarantined.clear()

    def configure(self, config: SOFConfig) -> None:
        """The engine's new settings: their limit counts from the next abandoned call."""
        self._config = config

    @property
    def limit(self) -> int | None:
        limit: int | None = self._config.max_hung_calls_per_skill
        return limit

    def abandoned(self, skill: str) -> tuple[int, bool]:
        """A call of ``skill`` was abandoned: (its calls still running, newly quarantined)."""
        limit = self.limit
        with self._lock:
            running = self._running[skill] = self._running.get(skill, 0) + 1
            self._abandoned[skill] = self._abandoned.get(skill, 0) + 1
            newly = limit is not None and running > limit and skill not in self.quarantined
            if newly:
                self.quarantined.add(skill)
        return running, newly

    def returned(self, skill: str) -> None:
        """An abandoned call of ``skill`` came back (its result was thrown away)."""
        limit = self.limit
        with self._lock:
            running = self._running.get(skill, 0) - 1
            if running > 0:
                self._running[skill] = running
            else:
                self._running.pop(skill, None)
            if skill in self.quarantined and (limit is None or running <= limit):
                self.quarantined.discard(skill)

    def error(self, skill: str) -> SkillQuarantinedError:
        """The error a quarantined skill fails with."""
        with self._lock:
            running = self._running.get(skill, 0)
        return SkillQuarantinedError(
            f"quarantined: {running} earlier calls of it are still running after their "
            f"timeout (more than max_hung_calls_per_skill = {self.limit}); it fails fast "
            "until they return. Fix or isolate the skill (isolation = \"process\" kills it "
            "at its deadline), or raise the limit",
            skill,
        )

    def running(self) -> dict[str, int]:
        """Abandoned calls still running, per skill."""
        with self._lock:
            return dict(self._running)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "abandoned_calls": dict(self._running),
                "abandoned_total": dict(self._abandoned),
                "quarantined": sorted(self.quarantined),
                "max_hung_calls_per_skill": self.limit,
            }


_all: weakref.WeakSet[HungCalls] = weakref.WeakSet()


def _forget_after_fork() -> None:
    for calls in list(_all):
        calls._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)
