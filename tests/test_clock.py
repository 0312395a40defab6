"""Clocks (fillreactor.clock): the virtual clock moves only when told to."""

from __future__ import annotations

from datetime import datetime

import pytest

from fillreactor.clock import SystemClock, VirtualClock


def test_virtual_clock_moves_wall_and_monotonic_time_together() -> None:
    clock = VirtualClock(start=datetime(2026, 11, 26, 10, 0, 0), monotonic_start=5.0)
    assert clock.monotonic() == 5.0
    clock.advance(2.5)
    assert clock.monotonic() == 7.5
    assert clock.wall() == datetime(2026, 11, 26, 10, 0, 2, 500000)


def test_virtual_clock_refuses_to_go_back() -> None:
    with pytest.raises(ValueError):
        VirtualClock().advance(-1)


def test_system_clock_is_monotonic() -> None:
    clock = SystemClock()
    first = clock.monotonic()
    assert clock.monotonic() >= first
    assert isinstance(clock.wall(), datetime)
