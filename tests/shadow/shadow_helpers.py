"""Shadow-mode harness: simulated Asterisk servers, the real test database, a shadow ReactorService
on a stepped clock, the comparison attached, and the Perl FILL double on the same clock.

Time: the service, the comparison and the double share one ``SteppedClock`` that moves only when
the test advances it, so every plan, Perl loop and observation of one step carries that step's
time exactly; the hand-worked lead times are differences of the steps. Real time only carries the
work between steps (AMI events, refreshes, polls), which the test awaits as conditions
(``settle``), never as sleeps.

Stand-ins (fillreactor.testing): ``AgentDialer`` keeps each agent server's own calls (OUT rows),
``CallCleanup`` deletes the row of every call that ends, the ``PerlFillDouble`` writes its rows
on its 2.5 s timer and places its calls on the simulators. Nothing else writes: agents are seeded
fresh for an hour (no heartbeat), so every other table must be unchanged at the end (``Digest``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from fillreactor.astguiclient import AstguiclientConf
from fillreactor.core.callid import build_call_id
from fillreactor.reactor.service import ReactorService
from fillreactor.reactor.trace import TraceCollector
from fillreactor.schema import TABLES
from fillreactor.service.settings import Settings
from fillreactor.shadow.runner import ShadowRunner, attach
from fillreactor.simulator import CallTiming, SimulatedAsterisk, SimulatedCluster
from fillreactor.store.database import Database, DatabaseAddress
from fillreactor.testing.database import Dsn
from fillreactor.testing.perl_fill import PerlFillDouble, SteppedClock
from fillreactor.testing.seed import Seeder
from fillreactor.testing.settings import quick_settings
from fillreactor.testing.vicidial import AgentDialer, CallCleanup

A, B, C, D = "10.10.10.11", "10.10.10.12", "10.10.10.13", "10.10.10.14"
IPS = (A, B, C, D)
CAMPAIGN = "FILLSHD"
LIST_ID = 3001
TIME_SCALE = 0.1
# Calls stay up until hung up: the counts a test works out by hand do not drift while it runs.
TIMING = CallTiming(ring=1.0, talk=None, vdad_wait=None)
# The tables the stand-ins write; every other table must be byte for byte the same at the end.
STAND_IN_TABLES = ("vicidial_auto_calls", "vicidial_manager", "vicidial_campaign_stats")


def conf_for(dsn: Dsn, server_ip: str = A) -> AstguiclientConf:
    return dsn.astguiclient_conf(server_ip)


def fast_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "agents_refresh": 0.1, "stats_refresh": 0.1, "ping_interval": 5.0, "ping_timeout": 3.0, **overrides
    }
    return quick_settings(**values)


async def seed_servers(
    seed: Seeder, sims: SimulatedCluster, balance: Iterable[tuple[int, int, int]], agent_trunks: int = 20
) -> None:
    """A (agents) and one balance server per (max_vicidial_trunks, offlimits, rank), on the sims."""
    await seed.system_settings(outbound_calls_per_second=1000)
    await seed.server(
        "agent1", A, max_vicidial_trunks=agent_trunks, asterisk_version="22.10.1",
        telnet_host="127.0.0.1", telnet_port=sims[0].port,
    )  # fmt: skip
    for index, (trunks, offlimits, rank) in enumerate(balance, start=1):
        await seed.server(
            f"bal{index}", IPS[index], max_vicidial_trunks=trunks, vicidial_balance_active="Y",
            balance_trunks_offlimits=offlimits, vicidial_balance_rank=rank, asterisk_version="22.10.1",
            telnet_host="127.0.0.1", telnet_port=sims[index].port,
        )  # fmt: skip


async def seed_campaign(
    seed: Seeder, campaign: str, *, agents: int, level: str, server: str = A, fresh: bool = True
) -> None:
    """A campaign with ``agents`` READY agents on ``server``: fresh for an hour, or 5 minutes old."""
    await seed.campaign(campaign, auto_dial_level=level, dial_timeout=30)
    when = seed.now() + (timedelta(hours=1) if fresh else -timedelta(minutes=5))
    for _ in range(agents):
        await seed.live_agent(server, campaign, last_update_time=when)


def place_orphans(sim: SimulatedAsterisk, count: int, first_lead_id: int = 900_001) -> list[Any]:
    """Live V calls without a ``vicidial_auto_calls`` row (a row cleaned up while its channels stay
    up): the AMI model counts them as lines, the Perl's row count does not."""
    calls = []
    for lead_id in range(first_lead_id, first_lead_id + count):
        call_id = build_call_id(datetime.now(), lead_id)
        calls.append(sim.place_call(f"9{3125000000 + lead_id}", f'"{call_id}" <0000000000>', exten="8368"))
    return calls


RowFilter = Callable[[dict[str, Any]], bool]


class Digest:
    """Every row of every table (a hash per table compares them; rows sorted: MEMORY tables have no
    order). ``skip`` leaves tables out; ``ignore`` drops the rows a test wrote itself, by table."""

    def __init__(self, rows: dict[str, list[dict[str, Any]]]) -> None:
        self.rows = rows

    @classmethod
    async def of(cls, database: Database, skip: Iterable[str] = ()) -> Digest:
        skipped = set(skip)
        rows = {}
        for table in TABLES:
            if table not in skipped:
                rows[table] = await database.fetch_dicts(f"SELECT * FROM `{table}`")  # names from the schema
        return cls(rows)

    def hashes(self, ignore: dict[str, RowFilter] | None = None) -> dict[str, str]:
        out = {}
        for table, rows in self.rows.items():
            drop = (ignore or {}).get(table)
            kept = [r for r in rows if drop is None or not drop(r)]
            text = "\n".join(sorted(repr(sorted(r.items())) for r in kept))
            out[table] = hashlib.sha256(text.encode()).hexdigest()
        return out

    def changed(self, other: Digest, ignore: dict[str, RowFilter] | None = None) -> list[str]:
        mine, theirs = self.hashes(ignore), other.hashes(ignore)
        return sorted(t for t in mine if mine[t] != theirs.get(t))


@dataclass
class Shadow:
    sims: SimulatedCluster
    service: ReactorService
    runner: ShadowRunner
    database: Database
    seed: Seeder
    clock: SteppedClock
    trace: TraceCollector
    double: PerlFillDouble
    report_path: Path
    stop: asyncio.Event
    task: asyncio.Task[int]
    dialers: list[AgentDialer] = field(default_factory=list)
    cleanup: CallCleanup | None = None
    before: Digest | None = None

    def sim(self, server_ip: str) -> SimulatedAsterisk:
        return self.sims[IPS.index(server_ip)]

    @property
    def t(self) -> float:
        """Seconds on the stepped clock since the start."""
        return self.clock.monotonic() - 1000.0

    def advance_to(self, t: float) -> None:
        self.clock.advance(t - self.t)

    async def settle(self, condition: Callable[[], bool], timeout: float = 10.0) -> None:
        try:
            await self.runner.wait_for(condition, timeout)
        except TimeoutError:
            raise AssertionError(f"not settled after {timeout} s:\n{self.describe()}") from None

    def describe(self) -> str:
        """What the service and the comparison hold now (for a failure message)."""
        core = self.service.core
        plans = [r.line() for r in self.trace.records if r.kind in ("plan", "shadow", "link")][-40:]
        return "\n".join(
            [
                f"t={self.t} dialable={sorted(core.dialable_servers())} open={self.open_wants()}",
                f"demand={dict(core.demand().by_campaign)} loops={len(self.double.loops)}",
                f"dialers={[len(d.live) for d in self.dialers]}",
                f"totals={self.runner.comparison.totals.as_dict()}",
                *plans,
            ]
        )

    async def ready(self, servers: Iterable[str]) -> None:
        """Links to ``servers`` live and resynced, every agent server's own calls up: the start of a
        test's schedule (demand seeded after this gives one plan on a settled cluster)."""
        wanted = set(servers)
        await self.settle(
            lambda: (
                wanted <= self.service.core.dialable_servers()
                and all(len(d.live) == d.target for d in self.dialers)
            )
        )

    def open_wants(self) -> dict[tuple[str, str], int]:
        return self.runner.comparison.outstanding()

    def figures(self, campaign: str, server: str) -> Any:
        return self.runner.comparison.totals.pairs.get((campaign, server))

    async def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        return await self.database.fetch_dicts(sql, params)

    async def stop_service(self) -> None:
        self.stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.shield(self.task), 20)

    async def changed_tables(self, ignore: dict[str, RowFilter] | None = None) -> list[str]:
        """Tables the stand-ins do not write that changed since the start (must be none), leaving
        out the rows the test itself wrote (``ignore``)."""
        assert self.before is not None
        after = await Digest.of(self.database, STAND_IN_TABLES)
        return self.before.changed(after, ignore)


@contextlib.asynccontextmanager
async def shadow_cluster(
    dsn: Dsn,
    seed: Seeder,
    report_path: Path,
    setup: Callable[[Seeder, SimulatedCluster], Awaitable[None]],
    *,
    servers: int = 3,
    agent_calls: Iterable[tuple[str, str, int]] = ((A, CAMPAIGN, 20),),
    settings: Settings | None = None,
) -> AsyncIterator[Shadow]:
    async with SimulatedCluster(servers, time_scale=TIME_SCALE, timing=TIMING) as sims:
        await setup(seed, sims)
        database = await Database.open(DatabaseAddress.from_dsn(dsn), maxsize=8)
        before = await Digest.of(database, STAND_IN_TABLES)
        clock = SteppedClock(start=datetime.now().replace(microsecond=0))
        trace = TraceCollector()
        service = ReactorService(
            conf_for(dsn), settings or fast_settings(), clock=clock, trace=trace, shadow=True, pacing=False
        )
        runner = attach(
            service, report_path=report_path, poll_interval=0.1, poll_min_gap=0.01, stats_interval=0.1
        )
        cleanup = CallCleanup(database, list(sims))
        cleanup.start()
        dialers = []
        for index, (server_ip, campaign, target) in enumerate(agent_calls):
            dialer = AgentDialer(
                database, sims[IPS.index(server_ip)], server_ip, campaign, target=target,
                first_lead_id=500_000 + 10_000 * index,
            )  # fmt: skip
            dialer.start()
            dialers.append(dialer)
        double = PerlFillDouble(
            database, host_ip=A, clock=clock, servers={ip: sims[i] for i, ip in enumerate(IPS[:servers])}
        )
        stop = asyncio.Event()
        task = asyncio.get_running_loop().create_task(service.run(stop))
        shadow = Shadow(
            sims, service, runner, database, seed, clock, trace, double, report_path, stop, task,
            dialers, cleanup, before,
        )  # fmt: skip
        try:
            await asyncio.wait_for(service.started.wait(), 10)
            await asyncio.wait_for(runner.started.wait(), 10)
            yield shadow
        finally:
            await double.stop()
            await shadow.stop_service()
            for dialer in dialers:
                await dialer.stop()
            await cleanup.stop()
            await database.close()


def parse_tables(text: str) -> dict[str, dict[str, dict[str, str]]]:
    """The tables ``fillreactor shadow-report`` prints: title -> first cell -> column -> cell."""
    tables: dict[str, dict[str, dict[str, str]]] = {}
    for block in text.split("\n\n"):
        lines = block.strip("\n").splitlines()
        if len(lines) < 2 or not lines[0].startswith("Per "):
            continue
        header = re.split(r"\s{2,}", lines[1].strip())
        tables[lines[0]] = {
            cells[0]: dict(zip(header, cells, strict=False))
            for cells in (re.split(r"\s{2,}", line.strip()) for line in lines[2:])
        }
    return tables
