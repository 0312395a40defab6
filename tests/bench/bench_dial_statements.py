"""Statements per placed call of one FILL pass, counted by the database server itself.

A cluster of ``--servers`` balance servers and ``--campaigns`` campaigns short by ``--calls`` in
total is seeded into a scratch database; one pass runs and the server's own ``Questions`` counter
(``SHOW GLOBAL STATUS``) is read around it, so every statement is counted, the connections' own set-up
included. Two figures: the whole ``run --once`` pass (connect, leader lock, recovery scan, snapshot,
stats, dialing, balance_trunk_fill) and the dialing alone (``Dialer.dial``: claims, reads, row
writes, hopper deletes, campaign/list dates), next to the Perl FILL's 14.9 per call (1,390
statements for 93 calls on 5 servers, spec 9.3.10 / issue 7). Pacing runs on a virtual clock, at
the system rates given (``--cps``, default 1000, 40 and 10): a chunk is a tenth of a second's worth
of calls, so a lower rate cuts the writes into more chunks (at 10/s every call is its own chunk,
as every call is its own moment in the Perl's 100 ms sleeps).

The counter is global: run it on a quiet server. Usage:
``python tests/bench/bench_dial_statements.py [--calls=100] [--servers=5] [--campaigns=6] [--cps=1000,40,10]``
"""

from __future__ import annotations

import asyncio
import math
import sys
import tempfile
import uuid
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))

from fillreactor.clock import VirtualClock
from fillreactor.core.cluster import LiveCounts
from fillreactor.core.planner import plan
from fillreactor.dialer import Dialer, ManagerOriginator, pass_time
from fillreactor.once import OnceOptions, run_once
from fillreactor.store import Database, DatabaseAddress
from fillreactor.store.snapshot import load_snapshot, read_stats_demand
from fillreactor.testing.database import TestDatabase, connect, create_database, drop_database, test_dsn
from fillreactor.testing.seed import Seeder

HOST = "10.20.0.1"
PERL_PER_CALL = 1390 / 93
COUNTERS = ("Questions", "Com_select", "Com_insert", "Com_update", "Com_delete")


def option(argv: list[str], name: str, default: str) -> str:
    for arg in argv:
        if arg.startswith(f"--{name}="):
            return arg.split("=", 1)[1]
    return default


async def counters(seed: Seeder) -> dict[str, int]:
    rows = await seed.fetch_all("SHOW GLOBAL STATUS WHERE Variable_name IN ('" + "','".join(COUNTERS) + "')")
    return {row["Variable_name"]: int(row["Value"]) for row in rows}


async def seed_cluster(
    seed: Seeder, calls: int, servers: int, campaigns: int, cps: int, now: datetime
) -> None:
    await seed.system_settings(outbound_calls_per_second=cps)
    await seed.server("fill", HOST, max_vicidial_trunks=200, asterisk_version="18.21.0")
    trunks = math.ceil(calls / servers) + 2
    for n in range(servers):
        await seed.server(
            f"bal{n}",
            f"10.20.1.{n + 1}",
            max_vicidial_trunks=trunks,
            vicidial_balance_active="Y",
            vicidial_balance_rank=servers - n,
            asterisk_version="18.21.0",
        )
    for n in range(campaigns):
        campaign = f"CAMP{n}"
        shortage = calls // campaigns + (1 if n < calls % campaigns else 0)
        await seed.campaign(campaign)
        await seed.lead_list(5000 + n, campaign)
        await seed.hopper(campaign, await seed.leads(5000 + n, shortage + 5))
        await seed.live_agents(2, HOST, campaign)
        await seed.campaign_server_stats(campaign, HOST, shortage, update_time=now - timedelta(seconds=5))


async def measure(dsn, calls: int, servers: int, campaigns: int, cps: int) -> dict[str, dict[str, int]]:
    clock = VirtualClock(datetime.now().replace(microsecond=0))

    async def sleep(seconds: float) -> None:
        clock.advance(seconds)
        await asyncio.sleep(0)

    results: dict[str, dict[str, int]] = {}
    testdb = TestDatabase(dsn)
    try:
        with tempfile.TemporaryDirectory() as scratch:
            conf = Path(scratch) / "astguiclient.conf"
            conf.write_text(
                f"PATHlogs => {scratch}\nVARserver_ip => {HOST}\nVARDB_server => {dsn.host}\n"
                f"VARDB_port => {dsn.port}\nVARDB_user => {dsn.user}\nVARDB_pass => {dsn.password}\n"
                f"VARDB_database => {dsn.database}\n"
            )
            for part in ("pass", "dialing"):
                testdb.reset()
                connection = await connect(dsn)
                seed = Seeder(connection, now=clock.wall)
                await seed_cluster(seed, calls, servers, campaigns, cps, clock.wall())
                idle = await counters(seed)
                base = await counters(seed)
                overhead = {k: base[k] - idle[k] for k in COUNTERS}  # the SHOW itself
                if part == "pass":
                    options = OnceOptions(
                        str(conf), stale_claim_age=0, lock_name=f"bench-{uuid.uuid4().hex[:8]}"
                    )
                    code = await run_once(options, clock=clock, sleep=sleep, out=lambda line: None)
                    assert code == 0, code
                else:
                    db = await Database.open(DatabaseAddress.from_dsn(dsn))
                    snapshot = await load_snapshot(db)
                    now = pass_time(clock)
                    demand = await read_stats_demand(db, now.local)
                    result = plan(snapshot, demand, LiveCounts(dialable=frozenset(snapshot.servers)))
                    dialer = Dialer(db, ManagerOriginator(), host_ip=HOST, clock=clock, sleep=sleep)
                    base = await counters(seed)
                    await dialer.dial(result.entries, now=now)
                    await db.close()
                after = await counters(seed)
                placed = await seed.count("vicidial_auto_calls")
                entries = await seed.fetch_all(
                    "SELECT COUNT(DISTINCT campaign_id, server_ip) AS n FROM vicidial_auto_calls"
                )
                results[part] = {k: after[k] - base[k] - overhead[k] for k in COUNTERS}
                results[part]["placed"] = placed
                results[part]["entries"] = int(entries[0]["n"])
                connection.close()
    finally:
        testdb.close(drop=False)
    return results


def main(argv: list[str]) -> None:
    calls = int(option(argv, "calls", "100"))
    servers = int(option(argv, "servers", "5"))
    campaigns = int(option(argv, "campaigns", "6"))
    rates = [int(r) for r in option(argv, "cps", "1000,40,10").split(",")]
    dsn = create_database(test_dsn())
    try:
        print(f"one FILL pass: {calls} calls short over {campaigns} campaigns, {servers} balance servers")
        for cps in rates:
            results = asyncio.run(measure(dsn, calls, servers, campaigns, cps))
            for part, label in (
                ("pass", "whole run --once pass"),
                ("dialing", "dialing alone (Dialer.dial)"),
            ):
                r = results[part]
                per_call = r["Questions"] / max(1, r["placed"])
                print(
                    f"  cps {cps:>4}  {label:<28} {r['Questions']:>5} statements for {r['placed']} calls"
                    f" ({r['entries']} campaign/server batches): {per_call:5.2f} per placed call"
                    f"  [select {r['Com_select']}, insert {r['Com_insert']}, update {r['Com_update']},"
                    f" delete {r['Com_delete']}]"
                )
        print(
            f"  the Perl FILL: {PERL_PER_CALL:.1f} statements per placed call (1,390 for 93 calls, 5 servers)"
        )
    finally:
        drop_database(dsn)


if __name__ == "__main__":
    main(sys.argv[1:])
