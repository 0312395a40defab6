"""Several simulated Asterisk servers in one process: a VICIdial cluster's dialers.

Rules this module keeps:

* Servers are named ``dialer1``…``dialerN`` and listen on 127.0.0.1, on ephemeral ports when
  ``base_port`` is 0, else on ``base_port + i``.
* All servers share one time base (same scale, same start epoch), so their Uniqueid counters start
  at the same ``<epoch>.0`` and collide as real ones do.
* Each server has its own outcome rules object (tests may change one server's rules), its own copy
  of ``orders`` (``OrderRules``; varied by default), and its own dial-level load generator when
  ``load_cps`` > 0. ``seed`` and any other ``ServerConfig`` field (``server_options``, e.g.
  ``timestamp_events=True``) apply to every server; each server still draws its own random choices
  (its name is part of its seed).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

from fillreactor.simulator.load import DialLevelLoad
from fillreactor.simulator.orders import OrderRules
from fillreactor.simulator.outcomes import CallTiming, OutcomeRules
from fillreactor.simulator.server import ServerConfig, SimulatedAsterisk
from fillreactor.simulator.timebase import TimeBase


class SimulatedCluster:
    def __init__(
        self,
        count: int = 3,
        *,
        base_port: int = 0,
        host: str = "127.0.0.1",
        username: str = "cron",
        secret: str = "1234",
        time_scale: float = 1.0,
        start_epoch: float | None = None,
        timing: CallTiming | None = None,
        load_cps: float = 0.0,
        load_max_concurrent: int = 50,
        seed: int = 0,
        orders: OrderRules | None = None,
        **server_options: Any,
    ) -> None:
        self.time = TimeBase(time_scale, start_epoch)
        self.username, self.secret = username, secret
        self.servers: list[SimulatedAsterisk] = []
        for index in range(count):
            config = ServerConfig(
                name=f"dialer{index + 1}",
                host=host,
                port=base_port + index if base_port else 0,
                users={username: secret},
                seed=seed,
                **server_options,
            )
            server_orders = (
                dataclasses.replace(orders, failure_response_weights=dict(orders.failure_response_weights))
                if orders is not None
                else OrderRules()
            )
            rules = OutcomeRules(timing=timing or CallTiming(), orders=server_orders)
            self.servers.append(SimulatedAsterisk(config, time=self.time, rules=rules))
        self.loads: list[DialLevelLoad] = []
        if load_cps > 0:
            self.loads = [
                DialLevelLoad(server, calls_per_second=load_cps, max_concurrent=load_max_concurrent)
                for server in self.servers
            ]

    def __iter__(self) -> Iterator[SimulatedAsterisk]:
        return iter(self.servers)

    def __getitem__(self, index: int) -> SimulatedAsterisk:
        return self.servers[index]

    def __len__(self) -> int:
        return len(self.servers)

    async def start(self) -> None:
        for server in self.servers:
            await server.start()
        for load in self.loads:
            load.start()

    async def stop(self) -> None:
        for load in self.loads:
            await load.stop()
        for server in self.servers:
            await server.stop()

    async def __aenter__(self) -> SimulatedCluster:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()
