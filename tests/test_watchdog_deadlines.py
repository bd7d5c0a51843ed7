"""One watchdog per process: a heap of deadlines and one daemon thread that wakes at the
earliest (issue 10, item 3). Nothing polls, so a short deadline armed after a long one is
still seen at its time; cancelled entries never fire; a failing callback stops nothing."""

from __future__ import annotations

import threading
import time

from sof_core.execution.deadlines import clock
from sof_core.execution.watchdog import Watchdog, watchdog


def test_callbacks_fire_in_deadline_order_whatever_the_arming_order() -> None:
    dog = Watchdog()
    fired: list[str] = []
    done = threading.Event()
    now = clock()
    for name, delay in (("c", 0.15), ("a", 0.05), ("b", 0.1)):
        dog.arm(now + delay, lambda _now, name=name: fired.append(name))
    dog.arm(now + 0.2, lambda _now: done.set())
    assert done.wait(5)
    assert fired == ["a", "b", "c"]


def test_a_sooner_deadline_wakes_the_thread_sleeping_until_a_later_one() -> None:
    dog = Watchdog()
    seen = threading.Event()
    dog.arm(clock() + 3600, lambda _now: None)  # the thread now sleeps for an hour
    time.sleep(0.05)
    armed = clock()
    dog.arm(armed + 0.05, lambda now: seen.set())
    assert seen.wait(2)  # a hang bound: without the wake-up it would fire in an hour
    assert dog.pending() == 1


def test_cancelled_deadlines_never_fire_and_a_failing_callback_stops_nothing() -> None:
    dog = Watchdog()
    fired: list[str] = []
    done = threading.Event()
    now = clock()
    cancelled = dog.arm(now + 0.05, lambda _now: fired.append("cancelled"))
    dog.arm(now + 0.06, lambda _now: 1 / 0)
    dog.arm(now + 0.07, lambda _now: fired.append("after the failure"))
    dog.arm(now + 0.1, lambda _now: done.set())
    dog.cancel(cancelled)
    assert done.wait(5)
    assert fired == ["after the failure"]


def test_the_process_watchdog_is_one_daemon_thread() -> None:
    first = watchdog()
    assert watchdog() is first
    seen = threading.Event()
    first.arm(clock() + 0.01, lambda _now: seen.set())
    assert seen.wait(2)
    threads = [t for t in threading.enumerate() if t.name == "sof-watchdog"]
    assert threads and all(t.daemon for t in threads)


def test_cancelled_deadlines_do_not_pile_up_until_they_are_due() -> None:
    # Every run arms a deadline far ahead and cancels it when it ends.
    dog = Watchdog()
    far = clock() + 3600
    for _ in range(10_000):
        dog.cancel(dog.arm(far, lambda _now: None))
    live = dog.arm(far, lambda _now: None)
    assert dog.pending() == 1
    assert len(dog._heap) < 1_000
    dog.cancel(live)
