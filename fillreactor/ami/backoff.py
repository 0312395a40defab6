"""Reconnect spacing: tenacity's full-jitter exponential wait, so many links coming back do not storm.

Rules this module keeps:

* The wait before the n-th consecutive reconnect attempt is ``U(0, min(cap, multiplier * 2**(n-1)))``
  (tenacity ``wait_random_exponential``, the "Full Jitter" of spec/AMI.md B 3.4): never above the
  cap, never negative, and drawn independently per link, so fifty links dropped by one outage
  spread their attempts over the window instead of retrying at the same instant.
* The very first connection of a link is not delayed; every reconnect is, including the first
  after a long good session (it waits U(0, multiplier)): a shared outage drops every link at once.
* Counting restarts at 1 only after a session that stayed ready for a while (the link decides,
  ``LinkSettings.reconnect_reset_after``): a server that accepts and drops at once keeps backing off.
"""

from __future__ import annotations

import tenacity


class ReconnectBackoff:
    """The delays of one link; ``next_delay()`` after each failed or ended session."""

    def __init__(self, multiplier: float, cap: float) -> None:
        self.wait = tenacity.wait_random_exponential(multiplier=multiplier, max=cap)
        self.multiplier = multiplier
        self.cap = cap
        self.failures = 0
        # tenacity's wait strategies read only attempt_number from the retry state
        self._state = tenacity.RetryCallState(tenacity.AsyncRetrying(), fn=None, args=(), kwargs={})

    def upper_bound(self, attempt: int) -> float:
        """The top of the window before consecutive attempt ``attempt`` (1-based)."""
        return min(self.cap, self.multiplier * 2.0 ** min(attempt - 1, 60))

    def delay_for(self, attempt: int) -> float:
        self._state.attempt_number = attempt
        return float(self.wait(self._state))

    def next_delay(self) -> float:
        self.failures += 1
        return self.delay_for(self.failures)

    def reset(self) -> None:
        self.failures = 0
