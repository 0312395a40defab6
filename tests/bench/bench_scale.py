"""Scale: 200 servers, 500 campaigns, 50,000 live channels: memory, event-to-plan latency, refresh cost.

The cluster (a scratch database on the real MariaDB, and ``simproc.py scale`` in another process):

* ``--scale-servers`` servers: the last ``--scale-balance`` are balance servers, the others agent
  servers. ``--scale-channels`` live channels, 4 per call (the originated Local pair and the trunk
  pair), spread evenly: every call has its ``V`` call id and its ``vicidial_auto_calls`` row
  (``OUT``, of a campaign with agents on that server; on a balance server, of that server's own
  campaign without agents), so the resync lists them and one batched lookup per 500 ids tells
  their campaigns.
* ``--scale-campaigns`` campaigns: one per balance server (its own calls, no agents), the others
  with 10 READY agents at dial level 2 on each of two agent servers (agent screens' heartbeat
  every second). Every server's trunks are its live calls: on an agent server the goal (about 6
  campaigns x 20 = 120) against 62 live calls (spec 4.4) gives shortages everywhere, and every
  balance server is full, so the need remains.

The service (``ReactorService``, default settings, ``dry_run``: plans are made and traced, nothing
is dialed) runs in this process. Measured:

* **memory**: this process's resident set (VmRSS) before the service starts (interpreter,
  imports) and with every link resynced, every call looked up and the triggers done; the peak
  (VmHWM). Goal: under 300 MB.
* **event-to-plan**: ``--scale-triggers`` times, one call of a random balance server hangs up
  (4 Hangup events): the first plan decision after it, from the service's read of the freeing
  Hangup (``triggered_at``) and from the simulator's write of it (its stamp, the same monotonic
  clock), to the decision handed to the service's observers (the plan computed).
* **snapshot refresh**: ``SnapshotLoader.load()`` on this database (before the service starts, its
  own pool): the first load, loads with nothing changed (the same object back), with one agent's
  status changed, with one ``vicidial_auto_calls`` row added; and inside the running service the
  cost of applying a changed snapshot (``ReactorCore.on_snapshot``: new shortages, triggers).

Usage: ``python tests/bench/run.py scale [--scale-servers=200] [--scale-campaigns=500]
[--scale-channels=50000] [--scale-triggers=200] [--scale-flips=4] [--scale-settle=S] [--plan-slice=S]``
(``--plan-slice`` changes the service's setting, for an experiment).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchlib
import simproc
from benchlib import Child, conf_for, fmt_ms, option, summary_ms

from fillreactor.core.callid import build_call_id
from fillreactor.reactor.core import PlanDecision
from fillreactor.reactor.service import ReactorService
from fillreactor.service.settings import Settings
from fillreactor.store.database import Database, DatabaseAddress
from fillreactor.store.snapshot import SnapshotLoader
from fillreactor.testing.database import Dsn, connect, create_database, drop_database, test_dsn
from fillreactor.testing.seed import Seeder

GOAL_MB = 300
AGENTS_PER_PAIR = 10


def ip(n: int) -> str:
    return f"10.60.{n // 200}.{n % 200 + 1}"


class Layout:
    """Who is where (the same numbers for the seed and the printout)."""

    def __init__(self, servers: int, balance: int, campaigns: int, channels: int) -> None:
        self.servers = servers
        self.agent_servers = servers - balance
        self.balance = list(range(self.agent_servers, servers))
        self.own = {b: f"B{b:04d}" for b in self.balance}  # a balance server's own campaign
        self.dialing = [f"C{c:04d}" for c in range(max(0, campaigns - balance))]
        self.hosts = {
            name: (c % self.agent_servers, (c * 7 + 3) % self.agent_servers)
            for c, name in enumerate(self.dialing)
        }
        self.calls = simproc.scale_layout(servers, channels)

    def campaigns_on(self, server: int) -> list[str]:
        if server in self.own:
            return [self.own[server]]
        return [c for c, hosts in self.hosts.items() if server in hosts] or [self.dialing[0]]


async def seed_cluster(seed: Seeder, layout: Layout, ports: list[int]) -> None:
    # 12,500 live calls do not fit a MEMORY table made under the server's default 16 MB
    # max_heap_table_size (big VICIdial clusters raise it): the table is made again with room
    await seed.execute("SET SESSION max_heap_table_size = 536870912")
    await seed.execute("ALTER TABLE vicidial_auto_calls ENGINE=MEMORY")
    await seed.system_settings(outbound_calls_per_second=100)
    for n, port in enumerate(ports):
        balance = n in layout.own
        await seed.server(
            f"ast{n + 1}",
            ip(n),
            max_vicidial_trunks=len(layout.calls[n]),
            vicidial_balance_active="Y" if balance else "N",
            vicidial_balance_rank=n if balance else 0,
            asterisk_version="22.10.1",
            telnet_host="127.0.0.1",
            telnet_port=port,
        )
    for campaign in [*layout.dialing, *layout.own.values()]:
        await seed.campaign(campaign, auto_dial_level="2")
    now = seed.now()
    agents = []
    serial = 0
    for campaign, hosts in layout.hosts.items():
        for server in hosts:
            for _ in range(AGENTS_PER_PAIR):
                serial += 1
                agents.append(
                    {
                        "user": f"u{serial:05d}",
                        "server_ip": ip(server),
                        "conf_exten": str(8600000 + serial),
                        "extension": f"SIP/u{serial:05d}",
                        "status": "READY",
                        "lead_id": 0,
                        "campaign_id": campaign,
                        "callerid": "",
                        "last_call_time": now,
                        "last_update_time": now,
                        "outbound_autodial": "Y",
                    }
                )
    for start in range(0, len(agents), 2000):
        await seed.insert_many("vicidial_live_agents", agents[start : start + 2000])
    rows = []
    for n, call_ids in enumerate(layout.calls):
        campaigns = layout.campaigns_on(n)
        for k, call_id in enumerate(call_ids):
            rows.append(
                {
                    "server_ip": ip(n),
                    "campaign_id": campaigns[k % len(campaigns)],
                    "status": "LIVE",
                    "lead_id": int(call_id[-10:]),
                    "callerid": call_id,
                    "phone_code": "1",
                    "phone_number": f"312555{k:04d}",
                    "call_time": now,
                    "call_type": "OUT",
                    "alt_dial": "MAIN",
                    "queue_priority": 50,
                }
            )
    for start in range(0, len(rows), 2000):
        await seed.insert_many("vicidial_auto_calls", rows[start : start + 2000])


async def timed(samples: list[float], job: Callable[[], Any]) -> Any:
    started = time.perf_counter()
    result = await job()
    samples.append(time.perf_counter() - started)
    return result


async def refresh_costs(dsn: Dsn, seed: Seeder, layout: Layout, repeat: int) -> dict[str, Any]:
    database = await Database.open(DatabaseAddress.from_dsn(dsn))
    loader = SnapshotLoader(database)
    out: dict[str, Any] = {}
    try:
        first: list[float] = []
        before = database.counts.total
        snapshot = await timed(first, loader.load)
        out["statements"] = database.counts.total - before
        out["first"] = first
        same: list[float] = []
        spent: dict[str, list[float]] = {}
        run = database._run

        async def clocked(sql: str, params: Any, **options: Any) -> Any:
            started = time.perf_counter()
            try:
                return await run(sql, params, **options)
            finally:
                spent.setdefault(" ".join(sql.split()[:5])[:40], []).append(time.perf_counter() - started)

        database._run = clocked  # type: ignore[method-assign]
        cpu = time.process_time()
        for _ in range(repeat):
            again = await timed(same, loader.load)
        out["unchanged_cpu"] = (time.process_time() - cpu) / max(1, repeat)
        database._run = run  # type: ignore[method-assign]
        out["by_statement"] = {k: statistics.median(v) for k, v in spent.items()}
        out["unchanged"] = same
        out["unchanged_same_object"] = again is snapshot
        agents: list[float] = []
        for n in range(repeat):
            status = "PAUSED" if n % 2 == 0 else "READY"
            await seed.execute(
                "UPDATE vicidial_live_agents SET status = %s ORDER BY live_agent_id LIMIT 1", (status,)
            )
            await timed(agents, loader.load)
        out["agents_changed"] = agents
        calls: list[float] = []
        for n in range(repeat):
            await seed.execute(
                "INSERT INTO vicidial_auto_calls (server_ip, campaign_id, status, lead_id, callerid,"
                " phone_code,"
                " phone_number, call_time, call_type, alt_dial, queue_priority) VALUES"
                " (%s, %s, 'SENT', %s, %s, '1', '3125550000', NOW(), 'OUT', 'MAIN', 50)",
                (
                    ip(0),
                    layout.dialing[0],
                    9_000_000 + n,
                    build_call_id(datetime(2026, 1, 5, 11, 0, 0), 9_000_000 + n),
                ),
            )
            await timed(calls, loader.load)
        out["calls_changed"] = calls
        await seed.execute("DELETE FROM vicidial_auto_calls WHERE lead_id >= 9000000")
        await loader.load()
        out["servers"] = len(snapshot.servers)
        out["campaigns"] = len(snapshot.campaigns)
    finally:
        await database.close()
    return out


async def measure(argv: list[str]) -> dict[str, Any]:
    servers = int(option(argv, "scale-servers", "200"))
    balance = int(option(argv, "scale-balance", str(max(1, servers // 4))))
    campaigns = int(option(argv, "scale-campaigns", "500"))
    channels = int(option(argv, "scale-channels", "50000"))
    triggers = int(option(argv, "scale-triggers", "200"))
    repeat = int(option(argv, "scale-repeat", "10"))
    layout = Layout(servers, balance, campaigns, channels)
    dsn = create_database(test_dsn())
    child = Child(
        "scale",
        {"servers": servers, "channels": channels, "seed": 5, "cpu": 1, "dsn": benchlib.dsn_text(dsn)},
    )
    stop = asyncio.Event()
    task: asyncio.Task[int] | None = None
    result: dict[str, Any] = {"servers": servers, "campaigns": campaigns, "balance": balance}
    try:
        await child.start()
        hello = await child.expect("ports", timeout=300)
        result["channels"] = hello["channels"]
        connection = await connect(dsn)
        seed = Seeder(connection)
        await seed_cluster(seed, layout, hello["ports"])
        result["refresh"] = await refresh_costs(dsn, seed, layout, repeat)
        gc.collect()
        result["rss_before"] = benchlib.rss_mb()
        await child.send(heartbeat=True)
        values: dict[str, Any] = {"lock_name": f"bench-{uuid.uuid4().hex[:12]}"}
        plan_slice = option(argv, "plan-slice", "")
        if plan_slice:  # an experiment: the default is the service's
            values["plan_slice"] = float(plan_slice)
        settings = Settings().with_values(values)
        result["plan_slice"] = settings.plan_slice
        service = ReactorService(conf_for(dsn, ip(0)), settings, dry_run=True)
        decisions: list[
            tuple[float, float | None, int]
        ] = []  # (stamp, triggered_at, campaigns): no plan kept

        def observe(decision: PlanDecision) -> None:
            decisions.append((time.monotonic(), decision.triggered_at, len(decision.campaigns)))

        service.decision_observers.append(observe)
        applied: list[float] = []
        on_snapshot = service.core.on_snapshot

        def timed_snapshot(snapshot: Any, now: float) -> None:
            changed = snapshot is not service.core.snapshot
            started = time.perf_counter()
            on_snapshot(snapshot, now)
            if changed:
                applied.append(time.perf_counter() - started)

        service.core.on_snapshot = timed_snapshot  # type: ignore[method-assign]
        started = time.monotonic()
        task = asyncio.get_running_loop().create_task(service.run(stop))
        await asyncio.wait_for(service.started.wait(), 60)
        core = service.core
        async with asyncio.timeout(120):
            while (
                len(service.links.ready_servers()) < servers
                or core.model.has_pending_lookups()
                or sum(core.model.usage(ip(n)) for n in range(servers)) < sum(map(len, layout.calls))
            ):
                await asyncio.sleep(0.05)  # polling the service's own state (a benchmark)
        result["ready_seconds"] = time.monotonic() - started
        result["usage"] = sum(core.model.usage(ip(n)) for n in range(servers))
        result["short"] = sum(core.demand().total(c) for c in core.demand().campaigns())
        result["short_campaigns"] = len(list(core.demand().campaigns()))
        # a refresh or two with everything loaded
        await asyncio.sleep(float(option(argv, "scale-settle", str(settings.agents_refresh * 2))))
        inside: list[float] = []
        outside: list[float] = []
        planned: list[int] = []
        slices: list[int] = []
        whole: list[float] = []
        missed = 0
        rng = __import__("random").Random(11)
        full = {n: len(layout.calls[n]) for n in layout.balance}
        for _ in range(triggers):
            server = rng.choice(layout.balance)
            seen = len(decisions)
            sent_at = time.monotonic()
            await child.send(hangup=server)
            reply = await child.expect("hung_up")
            try:
                async with asyncio.timeout(3):
                    while not any((t or 0) >= sent_at for _, t, _n in decisions[seen:]):
                        await asyncio.sleep(0.001)
            except TimeoutError:
                missed += 1
            else:
                first = next(i for i in range(seen, len(decisions)) if (decisions[i][1] or 0) >= sent_at)
                stamp, triggered_at, campaigns = decisions[first]
                assert triggered_at is not None
                inside.append(stamp - triggered_at)
                outside.append(stamp - reply["at"])
                planned.append(campaigns)
                async with asyncio.timeout(5):
                    while core.wants_plan:
                        await asyncio.sleep(0.001)
                slices.append(len(decisions) - first)
                whole.append(decisions[-1][0] - triggered_at)
            # a new call takes the line again (dry run: the service places none), so the next
            # Hangup there frees a line of a full server again
            await child.send(refill=server)
            await child.expect("refilled")
            async with asyncio.timeout(5):
                while core.model.usage(ip(server)) < full[server] or core.wants_plan:
                    await asyncio.sleep(0.001)
            await asyncio.sleep(0.02)
        result.update(
            inside=inside, outside=outside, planned=planned, missed=missed, slices=slices, whole=whole
        )
        for n in range(int(option(argv, "scale-flips", "4"))):  # changed snapshots applied by the service
            await seed.execute(
                "UPDATE vicidial_live_agents SET status = %s ORDER BY live_agent_id LIMIT 1",
                ("PAUSED" if n % 2 == 0 else "READY",),
            )
            await asyncio.sleep(settings.agents_refresh + 0.3)
        result["applied"] = applied[1:]  # the first is the start-up snapshot
        gc.collect()
        result["rss_after"] = benchlib.rss_mb()
        result["rss_peak"] = peak_mb()
        connection.close()
    finally:
        stop.set()
        if task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 60)
        await child.stop()
        drop_database(dsn)
    return result


def peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def ms(samples: list[float]) -> str:
    if not samples:
        return "n/a"
    return f"p50 {fmt_ms(statistics.median(samples) * 1000)} max {fmt_ms(max(samples) * 1000)}"


def main(argv: list[str]) -> None:
    benchlib.run_fresh(__file__, argv, measured)


def measured(argv: list[str]) -> None:
    logging.basicConfig(level=logging.ERROR)
    with benchlib.pinned(0) as where:
        print(f"scale: this process (the reactor) {where}, the simulators cpu 1; {benchlib.load_average()}")
        r = asyncio.run(measure(argv))
    refresh = r["refresh"]
    print(
        f"  cluster: {r['servers']} servers ({r['balance']} balance), {r['campaigns']} campaigns,"
        f" {r['channels']:,} live channels ({r['usage']:,} lines in use in the model);"
        f" {r['short_campaigns']} campaigns short by {r['short']:,} calls;"
        f" ready in {r['ready_seconds']:.1f} s"
    )
    met = r["rss_after"] < GOAL_MB
    print(
        f"  memory: {r['rss_after']:.0f} MB resident with the cluster loaded (before the service:"
        f" {r['rss_before']:.0f} MB; peak {r['rss_peak']:.0f} MB);"
        f" goal < {GOAL_MB} MB: {'met' if met else 'MISSED'}"
    )
    inside, outside = summary_ms(r["inside"]), summary_ms(r["outside"])
    print(
        f"  event-to-plan, {inside['n'] + r['missed']} triggers"
        f" ({r['missed']} without a plan within 3 s), about"
        f" {statistics.median(r['planned']) if r['planned'] else 0:.0f} campaigns in the first slice:"
    )
    print(
        f"    from the service's read of the Hangup: p50 {fmt_ms(inside['p50'])} p99 {fmt_ms(inside['p99'])}"
        f" max {fmt_ms(inside['max'])}; from the simulator's write: p50 {fmt_ms(outside['p50'])}"
        f" p99 {fmt_ms(outside['p99'])} max {fmt_ms(outside['max'])}"
    )
    if r["slices"]:
        print(
            "    every campaign with unmet need is planned again:"
            f" {statistics.median(r['slices']):.0f} slices"
            f" (plan_slice {r['plan_slice'] * 1000:g} ms) per trigger, the last one"
            f" {ms(r['whole'])} after the read"
        )
    print(
        f"  snapshot refresh (SnapshotLoader.load, {refresh['statements']} statements): first"
        f" {fmt_ms(refresh['first'][0] * 1000)}; unchanged {ms(refresh['unchanged'])}"
        f" (this process's CPU {fmt_ms(refresh['unchanged_cpu'] * 1000)} a load)"
        f" (same object back: {refresh['unchanged_same_object']});"
        f" one agent changed {ms(refresh['agents_changed'])};"
        f" one call row added {ms(refresh['calls_changed'])}"
    )
    for sql, seconds in sorted(refresh["by_statement"].items(), key=lambda kv: -kv[1])[:4]:
        print(f"    {fmt_ms(seconds * 1000):>10}  {sql}")
    print(f"  a changed snapshot applied in the service (ReactorCore.on_snapshot): {ms(r['applied'])}")
    benchlib.record(
        "scale",
        f"resident memory, {r['servers']} servers / {r['campaigns']} campaigns / {r['channels']:,} channels",
        f"{r['rss_after']:.0f} MB (peak {r['rss_peak']:.0f})",
        f"< {GOAL_MB} MB",
        met,
    )
    benchlib.record(
        "scale",
        "event-to-plan (service read -> plan): p50 / p99 / max",
        f"{fmt_ms(inside['p50'])} / {fmt_ms(inside['p99'])} / {fmt_ms(inside['max'])}",
    )
    benchlib.record(
        "scale",
        "snapshot refresh: unchanged / agent changed / call added (p50)",
        f"{fmt_ms(statistics.median(refresh['unchanged']) * 1000)} / "
        f"{fmt_ms(statistics.median(refresh['agents_changed']) * 1000)} / "
        f"{fmt_ms(statistics.median(refresh['calls_changed']) * 1000)}",
    )
    if r["applied"]:
        benchlib.record(
            "scale",
            "changed snapshot applied (on_snapshot, p50)",
            fmt_ms(statistics.median(r["applied"]) * 1000),
        )


if __name__ == "__main__":
    main(sys.argv[1:])
