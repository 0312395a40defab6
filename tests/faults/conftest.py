"""Fixtures of the fault tests: an echo server and a fault proxy in front of it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from fault_helpers import EchoServer

from fillreactor.testing.faultproxy import FaultProxy


@pytest.fixture
async def echo() -> AsyncIterator[EchoServer]:
    async with EchoServer() as server:
        yield server


@pytest.fixture
async def proxy(echo: EchoServer) -> AsyncIterator[FaultProxy]:
    async with FaultProxy(echo.address) as running:
        yield running
