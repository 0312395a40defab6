"""Reconnect spacing: the numbers of the full-jitter wait, and that many links do not retry together.

The bounds are the formula of spec/AMI.md B 3.4 (tenacity ``wait_random_exponential``):
the wait before consecutive attempt n is uniform on [0, min(cap, multiplier * 2**(n-1))].
"""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from fillreactor.ami.backoff import ReconnectBackoff
from fillreactor.ami.config import LinkSettings


def test_the_production_windows_double_up_to_the_cap() -> None:
    settings = LinkSettings()
    backoff = ReconnectBackoff(settings.reconnect_multiplier, settings.reconnect_max)
    # 0.5 s doubling: 0.5, 1, 2, 4, 8, 16, then the 30 s cap for ever
    assert [backoff.upper_bound(n) for n in range(1, 10)] == [0.5, 1, 2, 4, 8, 16, 30, 30, 30]
    assert backoff.upper_bound(10_000) == 30


@given(
    multiplier=st.floats(0.001, 5.0),
    cap=st.floats(0.01, 120.0),
    attempts=st.integers(1, 40),
    seed=st.integers(0, 2**32 - 1),
)
def test_every_wait_is_inside_its_window(multiplier: float, cap: float, attempts: int, seed: int) -> None:
    random.seed(seed)
    backoff = ReconnectBackoff(multiplier, cap)
    for n in range(1, attempts + 1):
        delay = backoff.next_delay()
        assert 0.0 <= delay <= min(cap, multiplier * 2 ** (n - 1)) + 1e-9
    assert backoff.failures == attempts
    backoff.reset()  # after a session that stayed ready: the next wait is in the first window again
    assert backoff.next_delay() <= multiplier + 1e-9


def test_the_waits_fill_their_window() -> None:
    """Full jitter: over many draws the waits reach both ends of [0, bound], not a fixed point."""
    random.seed(1)
    backoff = ReconnectBackoff(0.5, 30.0)
    for attempt in (1, 4, 9):
        bound = backoff.upper_bound(attempt)
        draws = [backoff.delay_for(attempt) for _ in range(400)]
        assert min(draws) < 0.05 * bound and max(draws) > 0.95 * bound
        assert abs(sum(draws) / len(draws) - bound / 2) < 0.1 * bound  # the mean of U(0, bound)


@given(seed=st.integers(0, 2**32 - 1), attempt=st.integers(1, 12))
def test_fifty_links_coming_back_together_spread_their_attempts(seed: int, attempt: int) -> None:
    """After a shared outage, fifty links at the same attempt number do not retry at one instant.

    With 50 independent U(0, b) draws, more than 20 in any tenth of the window has a probability
    below 1e-6 (binomial tail), and a spread under half the window below 50 * 2**-49.
    """
    random.seed(seed)
    links = [ReconnectBackoff(0.5, 30.0) for _ in range(50)]
    for backoff in links:
        backoff.failures = attempt - 1
    delays = sorted(backoff.next_delay() for backoff in links)
    bound = links[0].upper_bound(attempt)
    assert len(set(delays)) == 50
    assert delays[-1] - delays[0] > bound / 2
    window = bound / 10
    most_together = max(sum(1 for d in delays if start <= d < start + window) for start in delays)
    assert most_together <= 20
