"""Plan and shortage timings on a 200-server, 500-campaign cluster (goal: <= 2 ms per trigger).

Prints p50 / p99 / mean for: a plan for one triggered campaign, for a handful (5), a full-cluster
plan (reference), and one server's shortage recomputation, each also in ``Mode.PARITY`` (the Perl
arithmetic) in the same process as the baseline. Usage: ``python tests/bench/bench_plan.py [-n N]``.
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))

from fillreactor.core.cluster import (
    AgentTally,
    AutoCallCounts,
    CampaignConfig,
    ClusterSnapshot,
    LiveCounts,
    ServerConfig,
    ServerTrunk,
    SystemSettings,
    TrunkRestriction,
)
from fillreactor.core.planner import Mode, plan
from fillreactor.core.shortage import Demand, compute_server_shortages, compute_shortages
from fillreactor.core.shortage_table import shortage_table

SERVERS, CAMPAIGNS = 200, 500


def build(seed: int = 7) -> tuple[ClusterSnapshot, LiveCounts]:
    rng = random.Random(seed)
    servers = {}
    for n in range(SERVERS):
        ip = f"10.{n // 250}.{n % 250}.1"
        servers[ip] = ServerConfig(ip, rng.randint(48, 96), n % 2 == 0, rng.randint(0, 8), rng.randint(0, 3))
    ips = sorted(servers)
    campaigns = {
        f"C{n:04d}": CampaignConfig(f"C{n:04d}", auto_dial_level=rng.choice([1.0, 2.0, 2.5, 3.0]))
        for n in range(CAMPAIGNS)
    }
    agents, trunks, campaign_usage, epochs = {}, {}, {}, {}
    groups: list[tuple[str, str, str, str, str, int]] = []  # vicidial_auto_calls GROUP BY rows
    for campaign in campaigns:
        for ip in rng.sample(ips, 4):
            agents[(campaign, ip)] = AgentTally(rng.randint(0, 12), rng.randint(0, 4), rng.randint(0, 1))
            campaign_usage[(campaign, ip)] = rng.randint(0, 20)
            epochs[(campaign, ip)] = str(1_700_000_000 + rng.randint(0, 3600))
            groups.append((ip, campaign, "OUT", "LIVE", "V", campaign_usage[(campaign, ip)]))
        for ip in rng.sample(ips, 2):
            restriction = rng.choice(list(TrunkRestriction))
            trunks[(campaign, ip)] = ServerTrunk(ip, campaign, rng.randint(0, 4), restriction)
            groups.append((ip, campaign, "OUTBALANCE", "LIVE", "V", rng.randint(0, 2)))
    for ip in ips:  # inbound and manual calls: counted from their rows
        groups.append((ip, "INGROUP", "IN", "LIVE", "Y", rng.randint(0, 4)))
        groups.append((ip, "MANUAL", "OUT", "XFER", "M", rng.randint(0, 2)))
    usage = {ip: sum(n for (c, s), n in campaign_usage.items() if s == ip) for ip in ips}
    snapshot = ClusterSnapshot(
        SystemSettings(),
        servers,
        campaigns,
        trunks=trunks,
        agents=agents,
        fill_agents={c: 3 for c in campaigns},
        auto_calls=AutoCallCounts.from_rows(groups),
        agent_call_epochs=epochs,
    )
    return snapshot, LiveCounts(usage, campaign_usage, frozenset(ips))


def timed(fn: Callable[[], object], n: int) -> list[float]:
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def report(label: str, samples: list[float]) -> None:
    ordered = sorted(samples)
    p50 = ordered[len(ordered) // 2]
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    print(f"  {label:<42} p50 {p50:8.3f} ms  p99 {p99:8.3f} ms  mean {statistics.fmean(samples):8.3f} ms")


def main(argv: list[str]) -> None:
    n = 300
    for arg in argv:
        if arg.startswith("-n"):
            n = int(arg.split("=", 1)[1]) if "=" in arg else n
    snapshot, live = build()
    demand = Demand.from_results(compute_shortages(snapshot, live).values())
    short = list(demand.campaigns())
    rng = random.Random(1)
    print(
        f"cluster: {SERVERS} servers ({snapshot.balance_server_count} balance), {CAMPAIGNS} campaigns,"
        f" {len(short)} with a shortage; {n} samples each"
    )
    for mode in (Mode.CORRECTED, Mode.PARITY):
        print(f" {mode.value}:")
        report(
            "plan, 1 triggered campaign",
            timed(lambda m=mode: plan(snapshot, demand, live, campaigns=[rng.choice(short)], mode=m), n),
        )
        report(
            "plan, 5 triggered campaigns",
            timed(lambda m=mode: plan(snapshot, demand, live, campaigns=rng.sample(short, 5), mode=m), n),
        )
        report(
            "plan, full cluster (reference)", timed(lambda m=mode: plan(snapshot, demand, live, mode=m), 10)
        )
    ips = sorted(snapshot.servers)
    report(
        "shortage recompute, 1 server",
        timed(lambda: compute_server_shortages(snapshot, live, rng.choice(ips)), n),
    )
    report(
        "shortage recompute + Demand.with_server",
        timed(
            lambda: demand.with_server((ip := rng.choice(ips)), compute_server_shortages(snapshot, live, ip)),
            n,
        ),
    )
    report("snapshot build (derived indexes)", timed(lambda: build(), 3))
    report(
        "fillreactor shortage table, every server (parity)",
        timed(lambda: shortage_table(snapshot, LiveCounts.from_rows(snapshot.auto_calls), parity=True), 3),
    )


if __name__ == "__main__":
    main(sys.argv[1:])
