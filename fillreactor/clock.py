"""Clocks: the only source of time in fillreactor.

The core never reads a clock; the shell reads one and passes numbers in. ``SystemClock`` is the
real one; ``VirtualClock`` is for tests and fixture replay, where time moves only when told to.
``monotonic()`` drives timeouts and pacing; ``wall()`` is the local wall time that VICIdial rows
and call ids carry.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def monotonic(self) -> float: ...

    def wall(self) -> datetime: ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> datetime:
        return datetime.now()


class VirtualClock:
    """A clock that moves only through ``advance``; wall time moves with it."""

    def __init__(self, start: datetime | None = None, monotonic_start: float = 1000.0) -> None:
        self._start_wall = start or datetime(2026, 11, 26, 10, 15, 52)
        self._start_mono = monotonic_start
        self._now = monotonic_start

    def monotonic(self) -> float:
        return self._now

    def wall(self) -> datetime:
        return self._start_wall + timedelta(seconds=self._now - self._start_mono)

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock does not go back")
        self._now += seconds
