"""Pacing of FILL calls: a token bucket, with time passed in.

Rules this module keeps (spec 2.2.4, 4.6, 9.3.11):

* The rate is calls per second. The cluster-wide rate is ``system_settings.outbound_calls_per_second``
  when it is 1-1000, else 40/s: the Perl FILL's ``per_call_delay = 1000 / cps`` ms, or 25 ms when
  the value is out of range (``fill_rate``). A server's own rate
  (``servers.outbound_calls_per_second``, honoured with ``--per-server-pacing``; the Perl FILL
  ignores it) follows AST_VDauto_dial.pl's rule instead: 1-200, else 40/s (``server_rate``).
* The Perl sleeps after every call; the bucket instead lets a burst of ``capacity`` calls go at
  once and then refills at ``rate``. The default capacity is a tenth of a second's worth (at least
  one call), so calls are written a few at a time without ever exceeding the rate over any window
  longer than that tenth of a second.
* A bucket starts full. ``take`` never takes part of what it was asked for; ``wait_time`` says how
  long until it could. Time only moves forward: a ``now`` earlier than the last one is ignored.
* Pure: no clock, no sleeping. The dialer reads its clock and sleeps; this only does arithmetic.
"""

from __future__ import annotations

import math

FILL_FALLBACK_RATE = 40.0
FILL_MAX_RATE = 1000
SERVER_MAX_RATE = 200
BURST_SECONDS = 0.1


def fill_rate(calls_per_second: int | float | None) -> float:
    """The Perl FILL's rule (lines 347-350): 1-1000 calls per second, else 40."""
    if calls_per_second is not None and 0 < calls_per_second < FILL_MAX_RATE + 1:
        return float(calls_per_second)
    return FILL_FALLBACK_RATE


def server_rate(calls_per_second: int | float | None) -> float:
    """AST_VDauto_dial.pl's rule for ``servers.outbound_calls_per_second``: 1-200, else 40."""
    if calls_per_second is not None and 0 < calls_per_second < SERVER_MAX_RATE + 1:
        return float(calls_per_second)
    return FILL_FALLBACK_RATE


def default_capacity(rate: float) -> float:
    """A tenth of a second's worth of calls, at least one."""
    return float(max(1, math.ceil(rate * BURST_SECONDS)))


class TokenBucket:
    """``rate`` tokens per second up to ``capacity``; one token per call."""

    def __init__(self, rate: float, now: float, capacity: float | None = None) -> None:
        if rate <= 0:
            raise ValueError(f"a bucket needs a positive rate, got {rate}")
        self.rate = float(rate)
        self.capacity = float(capacity if capacity is not None else default_capacity(rate))
        if self.capacity < 1:
            raise ValueError(f"a bucket must hold at least one token, got {self.capacity}")
        self.tokens = self.capacity
        self.stamp = now

    def _refill(self, now: float) -> None:
        if now > self.stamp:
            self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now

    def available(self, now: float) -> int:
        """Whole tokens that could be taken at ``now``."""
        self._refill(now)
        return int(self.tokens + 1e-9)

    def take(self, now: float, count: int = 1) -> bool:
        """Take ``count`` tokens if they are all there; False (and nothing taken) otherwise."""
        self._refill(now)
        if self.tokens + 1e-9 >= count:
            self.tokens -= count
            return True
        return False

    def wait_time(self, now: float, count: int = 1) -> float:
        """Seconds from ``now`` until ``count`` tokens are there (0 when they already are)."""
        if count > self.capacity:
            raise ValueError(f"{count} tokens can never be there at once (capacity {self.capacity})")
        self._refill(now)
        missing = count - self.tokens
        return 0.0 if missing <= 1e-9 else missing / self.rate

    def set_rate(self, rate: float, now: float, capacity: float | None = None) -> None:
        """A new rate (system_settings re-read): tokens earned so far are kept, up to the new capacity."""
        if rate <= 0:
            raise ValueError(f"a bucket needs a positive rate, got {rate}")
        self._refill(now)
        self.rate = float(rate)
        self.capacity = float(capacity if capacity is not None else default_capacity(rate))
        self.tokens = min(self.tokens, self.capacity)
