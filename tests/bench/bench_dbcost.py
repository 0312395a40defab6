"""Database cost, counted by the database server itself: statements per placed call, and per idle minute.

Both figures come from ``SHOW GLOBAL STATUS`` differences (``Questions`` and ``Com_*``), so every
statement of every connection is counted (the leader lock's own connection, the pool's set-up),
on a private ``mariadbd`` started from the installed binary (``fillreactor.testing.mariadb``),
where nothing else runs; ``--shared-db`` uses the test server instead (then it must be quiet).
The ``SHOW`` statements of the measurement itself are subtracted (measured back to back).

1. **Per placed call**: ``bench_dial_statements``' figure (one FILL pass of ``--calls`` calls over
   ``--servers`` balance servers and ``--campaigns`` campaigns; the whole ``run --once`` pass and
   the dialing alone), at ``outbound_calls_per_second`` 1000: the Perl FILL 2.14 needs 14.9
   (1,390 statements for 93 calls); goal: at most 4.
2. **Per idle minute**: the running service (``ReactorService``, default settings: agents and
   auto-calls every 1 s, stats every 2.5 s, configuration every 10 s, lock check every 2 s) on a
   cluster of ``--idle-servers`` simulated servers (in this process; AMI costs no statement) and
   ``--idle-campaigns`` campaigns with agents and nothing short, for ``--idle-seconds`` (after a
   warm-up of one configuration refresh), extrapolated to a minute. The agents' heartbeat (one
   ``UPDATE`` a second, VICIdial's agent screens, not fillreactor) runs too and its statements are
   subtracted by count. The Perl FILL: 96 per idle minute (about 4 per 2.5 s loop, spec
   [V-count]); goal: no more. The service's own per-statement tally gives the breakdown.

Usage: ``python tests/bench/run.py dbcost [--calls=100] [--servers=5] [--campaigns=6]
[--idle-seconds=30] [--idle-servers=10] [--idle-campaigns=20] [--idle-warmup=S] [--shared-db]``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_dial_statements
import benchlib
from benchlib import conf_for, flag, option

from fillreactor.reactor.service import ReactorService
from fillreactor.service.settings import Settings
from fillreactor.simulator import SimulatedCluster
from fillreactor.store.database import Database, DatabaseAddress
from fillreactor.testing.database import Dsn, connect, create_database, drop_database, test_dsn
from fillreactor.testing.mariadb import PrivateMariaDB
from fillreactor.testing.seed import Seeder
from fillreactor.testing.vicidial import AgentHeartbeat

COUNTERS = ("Questions", "Com_select", "Com_insert", "Com_update", "Com_delete", "Com_set_option")
PERL_IDLE_PER_MINUTE = 96
PER_CALL_GOAL = 4.0


@contextlib.contextmanager
def database_server(shared: bool) -> Iterator[tuple[Dsn, str]]:
    if shared:
        yield test_dsn(), "the shared test server"
        return
    with PrivateMariaDB() as private:
        yield private.dsn, "a private mariadbd"


async def counters(seed: Seeder) -> dict[str, int]:
    names = "','".join(COUNTERS)
    rows = await seed.fetch_all(f"SHOW GLOBAL STATUS WHERE Variable_name IN ('{names}')")
    return {row["Variable_name"]: int(row["Value"]) for row in rows}


def ip(n: int) -> str:
    return f"10.50.0.{n + 1}"


async def seed_idle(seed: Seeder, ports: list[int], campaigns: int) -> None:
    """Every server 100 trunks, balance-active; each campaign 2 READY agents at dial level 1 on two
    servers: goal 2 per (campaign, server), far below the trunks: nothing short (spec 4.4)."""
    await seed.system_settings(outbound_calls_per_second=100)
    for n, port in enumerate(ports):
        await seed.server(
            f"ast{n + 1}",
            ip(n),
            max_vicidial_trunks=100,
            vicidial_balance_active="Y",
            vicidial_balance_rank=n,
            asterisk_version="22.10.1",
            telnet_host="127.0.0.1",
            telnet_port=port,
        )
    for c in range(campaigns):
        campaign = f"IDLE{c:02d}"
        await seed.campaign(campaign, auto_dial_level="1")
        for k in range(2):
            await seed.live_agents(2, ip((c + k * 3) % len(ports)), campaign)


class Tally:
    """The service's own statements by kind (first words of the SQL), for the breakdown."""

    def __init__(self, database: Database) -> None:
        self.kinds: Counter[str] = Counter()
        run = database._run

        async def counted(sql: str, params: Any, **options: Any) -> Any:
            self.kinds[" ".join(sql.split()[:4])[:48]] += 1
            return await run(sql, params, **options)

        database._run = counted  # type: ignore[method-assign]


async def idle_minute(
    dsn: Dsn, servers: int, campaigns: int, seconds: float, warmup: float | None
) -> dict[str, Any]:
    scratch = create_database(dsn)
    stop = asyncio.Event()
    task: asyncio.Task[int] | None = None
    try:
        async with SimulatedCluster(servers) as sims:
            connection = await connect(scratch)
            seed = Seeder(connection)
            await seed_idle(seed, [s.port for s in sims], campaigns)
            database = await Database.open(DatabaseAddress.from_dsn(scratch), maxsize=6)
            tally = Tally(database)
            heartbeat_db = await Database.open(DatabaseAddress.from_dsn(scratch), maxsize=1)
            heartbeat = AgentHeartbeat(heartbeat_db)
            heartbeat.start()
            settings = Settings().with_values({"lock_name": f"bench-{uuid.uuid4().hex[:12]}"})
            service = ReactorService(conf_for(scratch, ip(0)), settings, database=database)
            task = asyncio.get_running_loop().create_task(service.run(stop))
            await asyncio.wait_for(service.started.wait(), 30)
            async with asyncio.timeout(30):
                while len(service.links.ready_servers()) < servers or not service.core.dialing:
                    await asyncio.sleep(0.05)  # polling the service's own state (a benchmark)
            # warm-up: one whole cycle of every refresh, so the interval is the steady state
            await asyncio.sleep(settings.config_refresh + 0.5 if warmup is None else warmup)
            idle = await counters(seed)
            base = await counters(seed)
            overhead = {k: base[k] - idle[k] for k in COUNTERS}
            own_base = database.counts.total
            kinds_base = Counter(tally.kinds)
            beats = heartbeat_db.counts.total
            plans = service.core.counters.plans
            calls = service.core.counters.calls_sent
            started = time.monotonic()
            await asyncio.sleep(seconds)
            after = await counters(seed)
            elapsed = time.monotonic() - started
            beats = heartbeat_db.counts.total - beats
            delta = {k: after[k] - base[k] - overhead[k] for k in COUNTERS}
            own = database.counts.total - own_base
            kinds = tally.kinds - kinds_base
            result = {
                "seconds": elapsed,
                "server": delta["Questions"] - beats,
                "by_com": {k: delta[k] for k in COUNTERS if k != "Questions"},
                "heartbeat": beats,
                "own": own,
                "kinds": dict(kinds.most_common()),
                "plans": service.core.counters.plans - plans,
                "calls": service.core.counters.calls_sent - calls,
                "short": sum(service.core.demand().total(c) for c in service.core.demand().campaigns()),
            }
            stop.set()
            await asyncio.wait_for(task, 30)
            task = None
            await heartbeat.stop()
            await heartbeat_db.close()
            await database.close()
            connection.close()
            return result
    finally:
        stop.set()
        if task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 30)
        drop_database(scratch)


def main(argv: list[str]) -> None:
    benchlib.run_fresh(__file__, argv, measured)


def measured(argv: list[str]) -> None:
    logging.basicConfig(level=logging.ERROR)
    calls = int(option(argv, "calls", "100"))
    servers = int(option(argv, "servers", "5"))
    campaigns = int(option(argv, "campaigns", "6"))
    idle_seconds = float(option(argv, "idle-seconds", "30"))
    idle_servers = int(option(argv, "idle-servers", "10"))
    idle_campaigns = int(option(argv, "idle-campaigns", "20"))
    warmup_text = option(argv, "idle-warmup", "")
    warmup = float(warmup_text) if warmup_text else None
    with database_server(flag(argv, "shared-db")) as (server, where):
        print(f"database cost, counted by the server's own SHOW GLOBAL STATUS on {where}")
        scratch = create_database(server)
        try:
            results = asyncio.run(bench_dial_statements.measure(scratch, calls, servers, campaigns, 1000))
        finally:
            drop_database(scratch)
        for part, label in (("pass", "whole run --once pass"), ("dialing", "dialing alone (Dialer.dial)")):
            r = results[part]
            per_call = r["Questions"] / max(1, r["placed"])
            print(
                f"  per placed call, {label:<28} {r['Questions']:>5} statements for {r['placed']} calls"
                f" ({r['entries']} campaign/server batches): {per_call:5.2f} per call"
                f"  [select {r['Com_select']}, insert {r['Com_insert']}, update {r['Com_update']},"
                f" delete {r['Com_delete']}]"
            )
            benchlib.record(
                "db cost",
                f"statements per placed call, {label} ({r['placed']} calls, {servers} servers,"
                f" {campaigns} campaigns)",
                f"{per_call:.2f}",
                f"<= {PER_CALL_GOAL:g} (Perl 14.9)",
                per_call <= PER_CALL_GOAL,
            )
        idle = asyncio.run(idle_minute(server, idle_servers, idle_campaigns, idle_seconds, warmup))
    scale = 60.0 / idle["seconds"]
    per_minute = idle["server"] * scale
    print(
        f"  idle: {idle_campaigns} campaigns, {idle_servers} servers, nothing short (demand {idle['short']},"
        f" {idle['plans']} plans, {idle['calls']} calls) for {idle['seconds']:.1f} s,"
        f" x{scale:.2f} to a minute:"
    )
    print(
        f"    {per_minute:,.0f} statements per idle minute by the server's count"
        f" ({idle['server']} in {idle['seconds']:.1f} s, the heartbeat's {idle['heartbeat']} taken out;"
        f" {', '.join(f'{k[4:]} {v}' for k, v in idle['by_com'].items())});"
        f" the service's own count {idle['own'] * scale:,.0f}; the Perl FILL: {PERL_IDLE_PER_MINUTE}"
    )
    for kind, count in list(idle["kinds"].items())[:12]:
        print(f"      {count * scale:7,.0f}/min  {kind}")
    benchlib.record(
        "db cost",
        f"statements per idle minute ({idle_campaigns} campaigns, {idle_servers} servers, nothing"
        f" short; {idle['seconds']:.0f} s x{scale:.1f})",
        f"{per_minute:,.0f}",
        f"<= {PERL_IDLE_PER_MINUTE} (Perl)",
        per_minute <= PERL_IDLE_PER_MINUTE,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
