"""The bot's one clock: every domain time (rows' stamps, digests, spike windows, due times, the
export's metrics) is read here, so a drill can run the whole bot on simulated time.

Real time by default. A drill installs a `DrillClock` (the stream's first post is "now", then N×
faster than real time, held still while the drill itself works); a `SimulatedClock` just runs N×
faster; tests install a `ManualClock` and move it by hand.

Infrastructure time is different: the job queue's leases, heartbeats and the scheduler's lock
are about real processes dying, so they read `real_now()`, never the simulated clock.
`tests/test_clock.py` checks that nothing else in bot/, handlers/ or models/ reads the system
clock directly.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...

    def sleep_until(self, when: datetime) -> None:
        """Block until the clock reads `when` (at once if it already does)."""
        ...


def real_now() -> datetime:
    """The machine's time, timezone-aware UTC: for leases and heartbeats, never for domain time."""
    return datetime.now(UTC)


class SystemClock:
    """Real time."""

    def now(self) -> datetime:
        return real_now()

    def sleep_until(self, when: datetime) -> None:
        delay = (when - self.now()).total_seconds()
        if delay > 0:
            time.sleep(delay)


class SimulatedClock:
    """Time that starts at `start` and runs `speed` times faster than real time."""

    def __init__(self, start: datetime, speed: float) -> None:
        if start.tzinfo is None:
            raise ValueError("a simulated clock starts at a timezone-aware time")
        if speed <= 0:
            raise ValueError("a simulated clock's speed is above 0")
        self.start = start.astimezone(UTC)
        self.speed = speed
        self._origin = time.monotonic()

    def now(self) -> datetime:
        return self.start + timedelta(seconds=(time.monotonic() - self._origin) * self.speed)

    def sleep_until(self, when: datetime) -> None:
        delay = (when - self.now()).total_seconds() / self.speed
        if delay > 0:
            time.sleep(delay)


class DrillClock:
    """A drill's time: starts at `start`, runs `speed` times faster than real time while the drill waits
    for its next event (`sleep_until`), and stands still while the drill works.

    So the drill's own work (posting a batch, a spike check, a scripted step and the app's answer) takes
    no simulated time, however slow the machine: every event happens at exactly its simulated moment.
    Anyone else reading the clock while the drill waits (a person clicking in Slack) sees it run.
    """

    def __init__(self, start: datetime, speed: float) -> None:
        if start.tzinfo is None:
            raise ValueError("a drill clock starts at a timezone-aware time")
        if speed <= 0:
            raise ValueError("a drill clock's speed is above 0")
        self.speed = speed
        self._held = start.astimezone(UTC)
        self._running: tuple[float, datetime] | None = None  # (monotonic start, target) while waiting
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            if self._running is None:
                return self._held
            since, target = self._running
            return min(target, self._held + timedelta(seconds=(time.monotonic() - since) * self.speed))

    def sleep_until(self, when: datetime) -> None:
        """Let time run until `when`, then hold it there (at once if it is already past)."""
        when = when.astimezone(UTC)
        with self._lock:
            if when <= self._held:
                return
            self._running = (time.monotonic(), when)
        time.sleep((when - self._held).total_seconds() / self.speed)
        with self._lock:
            self._held, self._running = when, None


class ManualClock:
    """Time that moves only when told to (tests). `sleep_until` moves it there at once."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("a manual clock starts at a timezone-aware time")
        self._now = start.astimezone(UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, delta: timedelta) -> datetime:
        """Move the clock forward by `delta`; the new time."""
        if delta < timedelta(0):
            raise ValueError("a clock does not go backwards")
        with self._lock:
            self._now += delta
            return self._now

    def sleep_until(self, when: datetime) -> None:
        with self._lock:
            self._now = max(self._now, when.astimezone(UTC))


_current: Clock = SystemClock()


def current() -> Clock:
    """The clock the bot runs on."""
    return _current


def now() -> datetime:
    """The current domain time, timezone-aware UTC."""
    return _current.now()


def sleep_until(when: datetime) -> None:
    """Block until the bot's clock reads `when`."""
    _current.sleep_until(when)


@contextmanager
def running_on(clock: Clock) -> Iterator[Clock]:
    """Run the whole process on `clock` inside the block (a drill, a test), then on the one before."""
    global _current
    previous, _current = _current, clock
    try:
        yield clock
    finally:
        _current = previous
