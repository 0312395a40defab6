"""End-to-end harness: simulated Asterisk servers, the real test database, the real service.

``live_cluster`` seeds a FILL cluster whose ``servers`` rows point at simulated servers on
127.0.0.1, starts the VICIdial stand-ins (each agent server's own dialer keeps its calls and
their ``vicidial_auto_calls`` rows; every ended call's row is cleaned up, as VICIdial does) and runs
``ReactorService`` in a task, as ``fillreactor run`` does. Tests await conditions on the simulators'
own records or on the database (``eventually``), never sleep.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from fillreactor.astguiclient import AstguiclientConf
from fillreactor.reactor.service import ReactorService
from fillreactor.reactor.trace import TraceCollector
from fillreactor.service.settings import Settings
from fillreactor.simulator import CallTiming, SimulatedAsterisk, SimulatedCluster
from fillreactor.store.database import Database, DatabaseAddress
from fillreactor.testing.database import Dsn
from fillreactor.testing.seed import Seeder
from fillreactor.testing.settings import quick_settings
from fillreactor.testing.vicidial import AgentDialer, AgentHeartbeat, CallCleanup

A, B, C = "10.10.10.11", "10.10.10.12", "10.10.10.13"
CAMPAIGN = "FILLE2E"
LIST_ID = 2001
# A real-time second is ten simulated seconds: answered calls talk ~30 simulated s = 3 s here.
TIME_SCALE = 0.1
TIMING = CallTiming(ring=1.0, talk=40.0, vdad_wait=40.0)


def conf_for(dsn: Dsn, server_ip: str = A) -> AstguiclientConf:
    return dsn.astguiclient_conf(server_ip)


def fast_settings(**overrides: Any) -> Settings:
    # GET_LOCK names are global to the MariaDB server: one per test process, so test runs side by
    # side (and a leftover holder) never take each other's lock
    return quick_settings(**{"lock_name": f"fillreactor-test-{os.getpid()}", **overrides})


def numbers(count: int, start: int = 1) -> list[str]:
    """Phone numbers that the simulator answers (never ...0000 busy, ...1111 congestion, ...9999)."""
    out: list[str] = []
    n = start
    while len(out) < count:
        if n % 10_000 not in (0, 1111, 9999):
            out.append(f"3125{n:06d}")
        n += 1
    return out


@dataclass
class Harness:
    sims: SimulatedCluster
    service: ReactorService
    database: Database
    seed: Seeder
    trace: TraceCollector
    stop: asyncio.Event
    task: asyncio.Task[int]
    dialers: list[AgentDialer] = field(default_factory=list)
    cleanup: CallCleanup | None = None

    def sim(self, server_ip: str) -> SimulatedAsterisk:
        return self.sims[[A, B, C, "10.10.10.14", "10.10.10.15"].index(server_ip)]

    def fill_originates(self, server_ip: str) -> list[Any]:
        """The Originates fillreactor sent to a server (the simulator's own records)."""
        return [r for r in self.sim(server_ip).originates if r.session_id is not None]

    async def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        return await self.database.fetch_dicts(sql, params)

    async def eventually(self, condition: Callable[[], Any], timeout: float = 15.0) -> None:
        """Await ``condition()`` (sync or async) becoming true, re-checked on the services' progress."""
        async with asyncio.timeout(timeout):
            while True:
                value = condition()
                if asyncio.iscoroutine(value):
                    value = await value
                if value:
                    return
                await asyncio.sleep(0.02)  # polling the database: the only thing that cannot be awaited


async def seed_cluster(
    seed: Seeder,
    sims: SimulatedCluster,
    *,
    agents: int = 10,
    level: str = "3",
    agent_trunks: int = 20,
    balance: tuple[tuple[int, int, int], ...] = ((30, 22, 2), (30, 0, 1)),
    leads: int = 200,
) -> None:
    """A 10.10.10.11 (agents), then one balance server per (trunks, offlimits, rank)."""
    await seed.system_settings(outbound_calls_per_second=1000)
    ips = [A, B, C, "10.10.10.14", "10.10.10.15"]
    await seed.server(
        "agent1", A, max_vicidial_trunks=agent_trunks, asterisk_version="22.10.1",
        telnet_host="127.0.0.1", telnet_port=sims[0].port,
    )
    for index, (trunks, offlimits, rank) in enumerate(balance, start=1):
        await seed.server(
            f"bal{index}", ips[index], max_vicidial_trunks=trunks, vicidial_balance_active="Y",
            balance_trunks_offlimits=offlimits, vicidial_balance_rank=rank, asterisk_version="22.10.1",
            telnet_host="127.0.0.1", telnet_port=sims[index].port,
        )
    await seed.campaign(CAMPAIGN, auto_dial_level=level, dial_timeout=30)
    await seed.lead_list(LIST_ID, CAMPAIGN)
    lead_ids = await seed.leads(LIST_ID, phone_numbers=numbers(leads))
    await seed.hopper(CAMPAIGN, lead_ids)
    await seed.live_agents(agents, A, CAMPAIGN)


@contextlib.asynccontextmanager
async def live_cluster(
    dsn: Dsn,
    seed: Seeder,
    *,
    servers: int = 3,
    agent_calls: int = 20,
    settings: Settings | None = None,
    start_service: bool = True,
    timing: CallTiming = TIMING,
    service_options: dict[str, Any] | None = None,
    **seeding: Any,
) -> AsyncIterator[Harness]:
    async with SimulatedCluster(servers, time_scale=TIME_SCALE, timing=timing) as sims:
        await seed_cluster(seed, sims, **seeding)
        database = await Database.open(DatabaseAddress.from_dsn(dsn))
        trace = TraceCollector()
        options: dict[str, Any] = {"pacing": False, **(service_options or {})}
        service = ReactorService(conf_for(dsn), settings or fast_settings(), trace=trace, **options)
        stop = asyncio.Event()
        cleanup = CallCleanup(database, list(sims))
        cleanup.start()
        heartbeat = AgentHeartbeat(database)
        heartbeat.start()
        dialers = []
        if agent_calls:
            dialer = AgentDialer(database, sims[0], A, CAMPAIGN, target=agent_calls, first_lead_id=500_000)
            dialer.start()
            dialers.append(dialer)
        task = asyncio.get_running_loop().create_task(service.run(stop))
        harness = Harness(sims, service, database, seed, trace, stop, task, dialers, cleanup)
        try:
            if start_service:
                await asyncio.wait_for(service.started.wait(), 10)
            yield harness
        finally:
            stop.set()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 20)
            for dialer in dialers:
                await dialer.stop()
            await cleanup.stop()
            await heartbeat.stop()
            await database.close()
