"""``fillreactor demo``: the real service against a simulated cluster and a scratch database.

What it runs: three simulated Asterisk 22 servers (``fillreactor.simulator``) on 127.0.0.1; a
scratch database with the VICIdial schema on the local MariaDB (or, when nothing answers on
127.0.0.1:3306, a private ``mariadbd`` started from the installed binary in a temporary datadir);
a seeded cluster (agents, leads, hopper, the ``servers`` rows pointing at the simulators); the
VICIdial processes fillreactor relies on, played by ``fillreactor.testing.vicidial`` (the agent
server's own dialer with its ``vicidial_auto_calls`` rows, the agent screens' heartbeat, the
cleanup of ended calls); and then exactly the code ``fillreactor run`` runs
(``ReactorService``), for a bounded time, with a shortage that comes and goes (agents pause half
way through and come back). It prints what happened and removes everything it created.

Rules this module keeps: nothing here decides anything fillreactor decides (no copy of the
reactor: the service is the service); every number printed comes from the service's own
counters, the simulators' records or the database's rows.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fillreactor.reactor.service import ReactorService
from fillreactor.reactor.trace import TraceRecord
from fillreactor.service.settings import Settings
from fillreactor.simulator import CallTiming, SimulatedCluster
from fillreactor.store.database import Database, DatabaseAddress
from fillreactor.testing.database import Dsn, connect, create_database, drop_database, test_dsn
from fillreactor.testing.mariadb import server_or_private
from fillreactor.testing.seed import Seeder
from fillreactor.testing.vicidial import AgentDialer, AgentHeartbeat, CallCleanup

DEMO_CAMPAIGN = "DEMO"
AGENT_SERVER = "10.10.10.11"
BALANCE_SERVERS = ("10.10.10.12", "10.10.10.13")
AGENT_TRUNKS = 20
LIST_ID = 9001
LEADS = 3000

Output = Callable[[str], None]


@dataclass
class DemoStats:
    seconds: float = 0.0
    originates: dict[str, int] = field(default_factory=dict)
    answered: int = 0
    failed: int = 0
    plans: int = 0
    events: int = 0
    latency_p50_ms: float | None = None
    latency_p99_ms: float | None = None
    rows: dict[str, int] = field(default_factory=dict)
    most_fill_live: int = 0
    over_limit: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)


def demo_settings(database: str = "") -> Settings:
    return Settings().with_values(
        {
            # its own lock: GET_LOCK names are global to the MariaDB server the scratch database is on
            "lock_name": f"fillreactor-demo-{database}"[:64],
            "agents_refresh": 0.5,
            "config_refresh": 5.0,
            "stats_refresh": 1.0,
            "lock_check": 1.0,
            "ping_interval": 2.0,
            "stale_claim_age": 0.0,
        }
    )


async def seed_demo(seed: Seeder, sims: SimulatedCluster, agents: int, level: float) -> None:
    """The database side: A short of trunks with the agents, two balance servers (rank 2 and 1)."""
    await seed.system_settings(outbound_calls_per_second=50)
    await seed.server(
        "agent1",
        AGENT_SERVER,
        max_vicidial_trunks=AGENT_TRUNKS,
        asterisk_version="22.10.1",
        telnet_host=sims[0].host,
        telnet_port=sims[0].port,
        vd_server_logs="N",
    )
    for index, (ip, rank, offlimits) in enumerate(((BALANCE_SERVERS[0], 2, 22), (BALANCE_SERVERS[1], 1, 0))):
        await seed.server(
            f"balance{index + 1}",
            ip,
            max_vicidial_trunks=30,
            vicidial_balance_active="Y",
            vicidial_balance_rank=rank,
            balance_trunks_offlimits=offlimits,
            asterisk_version="22.10.1",
            telnet_host=sims[index + 1].host,
            telnet_port=sims[index + 1].port,
        )
    await seed.campaign(DEMO_CAMPAIGN, auto_dial_level=f"{level:g}", dial_timeout=30)
    await seed.lead_list(LIST_ID, DEMO_CAMPAIGN)
    numbers = [f"3125{n:06d}" for n in range(1, LEADS * 2) if n % 10_000 not in (0, 1111, 9999)][:LEADS]
    lead_ids = await seed.leads(LIST_ID, phone_numbers=numbers)
    await seed.hopper(DEMO_CAMPAIGN, lead_ids)
    await seed.live_agents(agents, AGENT_SERVER, DEMO_CAMPAIGN)


def _fill_records(sims: SimulatedCluster) -> dict[str, list[Any]]:
    return {
        ip: [r for r in sim.originates if r.session_id is not None]
        for ip, sim in zip(BALANCE_SERVERS, list(sims)[1:], strict=True)
    }


async def run_demo(
    *,
    seconds: float = 12.0,
    time_scale: float = 0.25,
    agents: int = 10,
    level: float = 3.0,
    explain: bool = False,
    server: Dsn | None = None,
    out: Output = print,
) -> DemoStats:
    stats = DemoStats()
    with server_or_private(server or test_dsn()) as (reachable, private):
        dsn = await asyncio.to_thread(create_database, reachable)
        where = "a private mariadbd" if private is not None else f"{reachable.host}:{reachable.port}"
        out(
            f"fillreactor demo: scratch database {dsn.database} on {where}; agent server {AGENT_SERVER} "
            f"({AGENT_TRUNKS} trunks, {agents} agents of {DEMO_CAMPAIGN} at dial level {level:g}), "
            f"balance servers {BALANCE_SERVERS[0]} (rank 2, 8 of 30 trunks for balance) and "
            f"{BALANCE_SERVERS[1]} (rank 1, 30)"
        )
        try:
            await _run(
                dsn,
                stats,
                seconds=seconds,
                time_scale=time_scale,
                agents=agents,
                level=level,
                explain=explain,
                out=out,
            )
        finally:
            await asyncio.to_thread(drop_database, dsn)
            out(
                f"scratch database {dsn.database} dropped" + (", private mariadbd stopped" if private else "")
            )
    return stats


async def _run(
    dsn: Dsn,
    stats: DemoStats,
    *,
    seconds: float,
    time_scale: float,
    agents: int,
    level: float,
    explain: bool,
    out: Output,
) -> None:
    timing = CallTiming(ring=2.0, talk=8.0, vdad_wait=10.0)
    async with SimulatedCluster(3, time_scale=time_scale, timing=timing) as sims:
        connection = await connect(dsn)
        try:
            await seed_demo(Seeder(connection), sims, agents, level)
        finally:
            connection.close()
        database = await Database.open(DatabaseAddress.from_dsn(dsn))
        conf = dsn.astguiclient_conf(AGENT_SERVER, path="(demo)")

        def trace(record: TraceRecord) -> None:
            if record.kind == "plan" and (explain or not record.detail.startswith("  ")):
                if explain or ("no calls" not in record.detail and "(not dialing)" not in record.detail):
                    out(f"  plan {record.campaign}: {record.detail.strip()}")
            elif record.kind == "leader":
                out(f"  {record.detail}")
            elif record.kind == "link" and "dialable" in record.detail:
                out(f"  {record.server}: {record.detail}")

        service = ReactorService(conf, demo_settings(conf.db_name), trace=trace)
        stop = asyncio.Event()
        helpers: list[CallCleanup | AgentHeartbeat | AgentDialer] = [
            CallCleanup(database, list(sims)),
            AgentHeartbeat(database),
        ]
        own = AgentDialer(
            database, sims[0], AGENT_SERVER, DEMO_CAMPAIGN, target=AGENT_TRUNKS, first_lead_id=500_000
        )
        helpers.append(own)
        for helper in helpers:
            helper.start()
        task = asyncio.get_running_loop().create_task(service.run(stop))
        loop = asyncio.get_running_loop()
        started = loop.time()
        paused = False
        try:
            await asyncio.wait_for(service.started.wait(), 20)
            ticks = max(1, round(seconds))
            for tick in range(ticks):
                await asyncio.sleep(seconds / ticks)  # pacing the printout, not synchronisation
                if tick == ticks // 3 and not paused:
                    await database.execute(
                        "UPDATE vicidial_live_agents SET status = 'PAUSED' ORDER BY live_agent_id LIMIT %s",
                        (max(1, agents // 2),),
                    )
                    paused = True
                    out(f"  -- {max(1, agents // 2)} agents pause: the shortage goes away --")
                elif tick == 2 * ticks // 3 and paused:
                    await database.execute("UPDATE vicidial_live_agents SET status = 'READY'")
                    paused = False
                    out("  -- the agents are back: the shortage returns --")
                out(_status_line(service, sims, loop.time() - started, stats))
        finally:
            stop.set()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 20)
            for helper in helpers:
                await helper.stop()
            await _collect(service, sims, database, stats, loop.time() - started)
            await database.close()
    _report(stats, out)


def _status_line(service: ReactorService, sims: SimulatedCluster, elapsed: float, stats: DemoStats) -> str:
    status = service.status()
    parts = []
    for server in status["servers"]:
        limit = server["limit"]
        if server["usage"] > (limit or 0):
            stats.over_limit.append(f"{server['server_ip']} {server['usage']}/{limit} at {elapsed:.1f}s")
        parts.append(f"{server['server_ip']} {server['usage']:>2}/{limit} lines")
    fill = sum(
        len([r for r in records if r.call is not None and r.call.live])
        for records in _fill_records(sims).values()
    )
    stats.most_fill_live = max(stats.most_fill_live, fill)
    shortage = sum(c["shortage"] for c in status["campaigns"])
    return f"t={elapsed:4.1f}s  " + " | ".join(parts) + f" | shortage {shortage}, FILL calls live {fill}"


async def _collect(
    service: ReactorService, sims: SimulatedCluster, database: Database, stats: DemoStats, elapsed: float
) -> None:
    stats.seconds = elapsed
    records = _fill_records(sims)
    stats.originates = {ip: len(rs) for ip, rs in records.items()}
    finished = [
        r.call for rs in records.values() for r in rs if r.call is not None and r.call.reason is not None
    ]
    stats.answered = sum(1 for call in finished if call.reason == 4)
    stats.failed = sum(1 for call in finished if call.reason != 4)
    stats.plans = service.core.counters.plans
    stats.events = service.core.counters.events
    p50, p99 = service.latency.percentile(0.5), service.latency.percentile(0.99)
    stats.latency_p50_ms = None if p50 is None else p50 * 1000
    stats.latency_p99_ms = None if p99 is None else p99 * 1000
    for table, where in (
        ("vicidial_manager", "action = 'Originate'"),
        ("vicidial_dial_log", "1"),
        ("vicidial_dial_cid_log", "call_type = 'OUTBALANCE'"),
        ("vicidial_lead_24hour_calls", "1"),
    ):
        stats.rows[table] = int(await database.fetch_value(f"SELECT COUNT(*) FROM {table} WHERE {where}"))
    stats.rows["vicidial_list called"] = int(
        await database.fetch_value("SELECT COUNT(*) FROM vicidial_list WHERE called_count > 0")
    )


def _report(stats: DemoStats, out: Output) -> None:
    latency = (
        "no calls"
        if stats.latency_p50_ms is None
        else f"p50 {stats.latency_p50_ms:.2f} ms, p99 {stats.latency_p99_ms:.2f} ms"
    )
    per_server = ", ".join(f"{ip} {n}" for ip, n in stats.originates.items())
    out(
        f"done in {stats.seconds:.1f} s: {sum(stats.originates.values())} OUTBALANCE calls ({per_server}); "
        f"{stats.answered} answered, {stats.failed} failed; {stats.plans} plans from {stats.events} AMI"
        " events"
    )
    out(f"reaction latency (trigger event read -> Originate written): {latency}")
    out("rows written: " + ", ".join(f"{table} {count}" for table, count in stats.rows.items()))
    out(
        "never above a server's trunks: "
        + ("yes" if not stats.over_limit else "NO " + "; ".join(stats.over_limit))
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seconds", type=float, default=12.0, help="how long to run (real seconds)")
    parser.add_argument(
        "--time-scale", type=float, default=0.25, help="real seconds per simulated second (calls run faster)"
    )
    parser.add_argument("--agents", type=int, default=10, help="agents of the DEMO campaign")
    parser.add_argument("--level", type=float, default=3.0, help="dial level of the DEMO campaign")
    parser.add_argument("--explain", action="store_true", help="print every plan's full explanation")
    parser.add_argument(
        "--dsn",
        default=None,
        help="the MariaDB server for the scratch database (default $FILLREACTOR_TEST_DSN or "
        "mysql://root@127.0.0.1:3306; a private mariadbd when it does not answer)",
    )


def run(args: argparse.Namespace) -> int:
    if args.seconds <= 0 or args.time_scale <= 0 or args.agents < 1 or args.level < 0:
        print("fillreactor demo: --seconds and --time-scale must be positive, --agents >= 1, --level >= 0")
        return 2
    from fillreactor.service import logs

    logs.configure("warning", journald=False)
    server = Dsn.parse(args.dsn) if args.dsn else None
    stats = asyncio.run(
        run_demo(
            seconds=args.seconds,
            time_scale=args.time_scale,
            agents=args.agents,
            level=args.level,
            explain=args.explain,
            server=server,
        )
    )
    return 0 if not stats.over_limit else 1
