"""Finished runs: a bounded store for ``GET /v1/runs`` and fan-out to event-stream readers.

The store keeps the last ``size`` runs (oldest dropped first), so a long-lived server's
memory does not grow with traffic. Runs finish on worker threads; readers of the event
stream wait on their own event loop, so each reader gets a bounded queue fed through
``call_soon_threadsafe``. A reader too slow to keep up loses events (counted in
``dropped``), never the server's memory.
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from typing import Any

#: Events a slow stream reader may fall behind by before new ones are dropped for it.
READER_QUEUE_SIZE = 256
#: The fields of a run ``GET /v1/runs`` lists (the whole record is at ``/v1/runs/{id}``).
SUMMARY_FIELDS = ("run_id", "query", "status", "duration_ms", "plan", "finished_at",
                  "failed_skills")


def summary(record: dict[str, Any]) -> dict[str, Any]:
    """A run in one line's worth of data: what the list and the event stream carry."""
    data = {key: record.get(key) for key in SUMMARY_FIELDS}
    route = record.get("route") or {}
    data["path"] = route.get("path")
    data["fallback"] = route.get("fallback", False)
    data["fallback_reason"] = route.get("fallback_reason")
    data["ok"] = route.get("ok", record.get("status") in ("success", "partial"))
    return data


class _Reader:
    __slots__ = ("dropped", "loop", "queue")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(READER_QUEUE_SIZE)
        self.dropped = 0

    def offer(self, event: dict[str, Any]) -> None:  # runs on the reader's loop
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped += 1


class RunStore:
    """The last ``size`` runs by id, and the readers of the finished-runs stream."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._runs: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self._readers: set[_Reader] = set()
        self.total = 0

    def add(self, record: dict[str, Any]) -> None:
        with self._lock:
            self._runs[record["run_id"]] = record
            self._runs.move_to_end(record["run_id"])
            while len(self._runs) > self.size:
                self._runs.popitem(last=False)
            self.total += 1
            readers = list(self._readers)
        event = summary(record)
        for reader in readers:
            try:
                reader.loop.call_soon_threadsafe(reader.offer, event)
            except RuntimeError:  # that reader's loop has closed: it is gone
                self.unsubscribe(reader)

    def get(self, run_id: str) -> dict[str, Any] | None:
        with self._lock:
            return self._runs.get(run_id)

    def recent(self, limit: int) -> list[dict[str, Any]]:
        """The newest ``limit`` runs, newest first, as summaries."""
        with self._lock:
            records = list(self._runs.values())[-limit:] if limit > 0 else []
        return [summary(r) for r in reversed(records)]

    def records(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._runs.values())

    def subscribe(self) -> _Reader:
        reader = _Reader(asyncio.get_running_loop())
        with self._lock:
            self._readers.add(reader)
        return reader

    def unsubscribe(self, reader: _Reader) -> None:
        with self._lock:
            self._readers.discard(reader)

    @property
    def readers(self) -> int:
        with self._lock:
            return len(self._readers)
