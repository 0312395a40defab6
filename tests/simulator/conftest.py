"""Fixtures for the simulator tests: a fast simulated server and a raw client logged out.

``server`` plays every call in the captured order (the capture comparisons need it); tests of the
varied orders build their own server with ``OrderRules()`` (varied is the simulator's default).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from ami_sim_helpers import FAST, RawAmiClient

from fillreactor.simulator import (
    CallTiming,
    OrderRules,
    OutcomeRules,
    ServerConfig,
    SimulatedAsterisk,
    TimeBase,
)


@pytest.fixture
async def server() -> AsyncIterator[SimulatedAsterisk]:
    rules = OutcomeRules(timing=CallTiming(ring=2.0, talk=6.0, vdad_wait=5.0), orders=OrderRules("captured"))
    async with SimulatedAsterisk(ServerConfig(name="dialer1"), time=TimeBase(FAST), rules=rules) as sim:
        yield sim


@pytest.fixture
async def client(server: SimulatedAsterisk) -> AsyncIterator[RawAmiClient]:
    ami = await RawAmiClient.connect(*server.address)
    yield ami
    await ami.close()
