"""Reaction latency: a freed balance line's Hangup bytes -> the replacing Originate's bytes, event vs timer.

What runs: the real ``ReactorService`` (default settings, ``--dial-via ami``, every row write on,
``pacing=False`` so ``outbound_calls_per_second`` pacing is not part of the figure) on a scratch
database of the real MariaDB, in this process; the simulated servers in another process
(``simproc.py reaction``), with the VICIdial stand-ins (ended calls' rows deleted, agents'
heartbeat) there too. One agent server (100 READY agents at dial level 10, 0 trunks: a shortage
of 1000, spec 4.4) and ``--balance`` balance servers of ``--trunks`` lines each, all taken by
fillreactor's own answered FILL calls, so the need always remains.

A trigger hangs up one FILL call on a random balance server; Poisson arrivals at ``--rate`` per
second, ``--triggers`` of them. The latency is measured from the outside by the simulator
process: from right after the Hangup that leaves the call without a channel carrying its call id
is written to the socket, to the arrival of the next Originate on that server (FIFO pairing). In
between: the reactor reads and normalises the events, the model frees the line, the trigger
fires, the plan is made, the dialer claims the lead (``UPDATE vicidial_hopper``), reads it, writes
``vicidial_list``, ``vicidial_auto_calls``, ``vicidial_manager`` (the Originate's audit row), the
dial log, and the Originate is written. The service's own ``service.latency`` samples (read of the trigger's
bytes -> Originate handed to the socket, first call of each plan entry) are printed beside it.

The same workload then runs with ``trigger=timer`` (2.5 s, as the Perl FILL's loop): there the
service's own samples start at the timer tick, so only the outside figure is the reaction.

No process is pinned by default: with the reactor on cpu 0 and the simulators on cpu 1
(``--pin=both``), MariaDB's threads woken by each statement run on the reactor's cpu and the
reactor waits for it about twice as long (measured: runnable-but-waiting 18% against 8%).

Usage: ``python tests/bench/run.py reaction [--triggers=1000] [--timer-triggers=N] [--rate=40]
[--balance=10] [--trunks=30] [--pin=none|both] [--set=setting:value,...]``; ``--timer-triggers=0``
skips the timer run; ``--set`` changes service settings, for experiments (the figures of record
use the defaults).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchlib
from benchlib import Child, conf_for, fmt_ms, option, summary_ms

from fillreactor.reactor.service import ReactorService
from fillreactor.service.settings import Settings
from fillreactor.testing.database import Dsn, connect, create_database, drop_database, test_dsn
from fillreactor.testing.seed import Seeder

AGENT = "10.30.0.1"
CAMPAIGN = "BENCHRX"
LIST_ID = 7001
GOAL_P99_MS = 10.0


def balance_ip(n: int) -> str:
    return f"10.30.1.{n + 1}"


async def seed_cluster(seed: Seeder, ports: list[int], *, trunks: int, leads: int) -> None:
    await seed.system_settings(outbound_calls_per_second=1000)
    await seed.server(
        "agent1",
        AGENT,
        max_vicidial_trunks=0,
        asterisk_version="22.10.1",
        telnet_host="127.0.0.1",
        telnet_port=ports[0],
    )
    for n, port in enumerate(ports[1:]):
        await seed.server(
            f"bal{n + 1}",
            balance_ip(n),
            max_vicidial_trunks=trunks,
            vicidial_balance_active="Y",
            vicidial_balance_rank=len(ports) - n,
            asterisk_version="22.10.1",
            telnet_host="127.0.0.1",
            telnet_port=port,
        )
    await seed.campaign(CAMPAIGN, auto_dial_level="10", dial_timeout=30)
    await seed.lead_list(LIST_ID, CAMPAIGN)
    lead_ids = await seed.leads(LIST_ID, phone_numbers=benchlib.answered_numbers(leads))
    await seed.hopper(CAMPAIGN, lead_ids)
    await seed.live_agents(100, AGENT, CAMPAIGN)


async def run_mode(trigger: str, triggers: int, args: dict[str, Any]) -> dict[str, Any]:
    dsn: Dsn = create_database(test_dsn())
    child = Child(
        "reaction",
        {
            "balance": args["balance"],
            "trunks": args["trunks"],
            "time_scale": 0.01,
            "seed": 7,
            "dsn": benchlib.dsn_text(dsn),
            "rate": args["rate"],
            "triggers": triggers,
            "drain_timeout": 15 if trigger == "event" else 30,
            "cpu": args["child_cpu"],
        },
    )
    stop = asyncio.Event()
    task: asyncio.Task[int] | None = None
    try:
        await child.start()
        ports = (await child.expect("ports"))["ports"]
        connection = await connect(dsn)
        seed = Seeder(connection)
        leads = args["balance"] * args["trunks"] + triggers + 200
        await seed_cluster(seed, ports, trunks=args["trunks"], leads=leads)
        connection.close()
        await child.send(seeded=True)
        values: dict[str, Any] = {"trigger": trigger, "lock_name": f"bench-{uuid.uuid4().hex[:12]}"}
        values.update(args.get("settings", {}))
        settings = Settings().with_values(values)
        service = ReactorService(conf_for(dsn, AGENT), settings, pacing=False)
        task = asyncio.get_running_loop().create_task(service.run(stop))
        await asyncio.wait_for(service.started.wait(), 30)
        steady = await child.expect("steady", timeout=180)
        base = len(service.latency.samples)
        plans, events = service.core.counters.plans, service.core.counters.events
        statements = service.database.counts.reads + service.database.counts.writes if service.database else 0
        cpu = time.process_time()
        _ran, waited = benchlib.schedstat()
        started = time.monotonic()
        await child.send(go=True)
        result = await child.expect("samples", timeout=triggers / args["rate"] * 3 + 120)
        cpu = time.process_time() - cpu
        waited = (benchlib.schedstat()[1] - waited) / max(1e-9, time.monotonic() - started)
        own = list(service.latency.samples)[base:]
        result.update(
            service_samples=own,
            plans=service.core.counters.plans - plans,
            events=service.core.counters.events - events,
            live=steady["live"],
            cpu=cpu,
            waited=waited,
            statements=(service.database.counts.reads + service.database.counts.writes - statements)
            if service.database
            else 0,
        )
        return result
    finally:
        stop.set()
        if task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 30)
        await child.stop()
        drop_database(dsn)


def experiment(text: str) -> dict[str, Any]:
    """``--set=name:value,...``: service settings changed for an experiment (the default is none)."""
    values: dict[str, Any] = {}
    for item in filter(None, text.split(",")):
        name, _, value = item.partition(":")
        default = getattr(Settings(), name)
        values[name] = (
            type(default)(value) if not isinstance(default, bool) else value in ("1", "yes", "true")
        )
    return values


def describe(label: str, result: dict[str, Any]) -> dict[str, float]:
    outside = summary_ms(result["samples"])
    own = summary_ms(result["service_samples"])
    print(
        f"  {label:<6} outside  n={outside['n']:>5}  p50 {fmt_ms(outside['p50']):>10}"
        f"  p99 {fmt_ms(outside['p99']):>10}"
        f"  max {fmt_ms(outside['max']):>10}   (hangup written -> Originate read, simulator's stamps)"
    )
    print(
        f"  {'':<6} service  n={own['n']:>5}  p50 {fmt_ms(own['p50']):>10}  p99 {fmt_ms(own['p99']):>10}"
        f"  max {fmt_ms(own['max']):>10}   (service.latency: its read of the trigger -> Originate written)"
    )
    print(
        f"  {'':<6} {result['originates']} Originates, {result['plans']} plans,"
        f" {result['events']:,} AMI events;"
        f" early {result['early']}, unanswered {result['unanswered']}, skipped {result['skipped']},"
        f" triggers issued over {result['issued_seconds']:.1f} s"
    )
    n = max(1, result["originates"])
    print(
        f"  {'':<6} reactor CPU {result['cpu']:.2f} s ({result['cpu'] / n * 1000:.2f} ms per placed call),"
        f" {result['statements']:,} statements ({result['statements'] / n:.1f} per placed call,"
        " snapshot refreshes included);"
        f" runnable but waiting for the CPU {result['waited'] * 100:.1f}% of the time"
    )
    return outside


async def measure(argv: list[str]) -> None:
    args: dict[str, Any] = {
        "balance": int(option(argv, "balance", "10")),
        "trunks": int(option(argv, "trunks", "30")),
        "rate": float(option(argv, "rate", "40")),
        "settings": experiment(option(argv, "set", "")),
        "child_cpu": None if option(argv, "pin", "none") == "none" else 1,
    }
    triggers = int(option(argv, "triggers", "1000"))
    timer_triggers = int(option(argv, "timer-triggers", str(triggers)))
    if args["settings"]:
        print(f"  EXPERIMENT: settings changed from the defaults: {args['settings']}")
    print(
        f"reaction latency: {args['balance']} balance servers x {args['trunks']} lines full of FILL calls,"
        f" need remaining; triggers at {args['rate']:g}/s (Poisson), pacing off, all rows written"
    )
    pin = option(argv, "pin", "none")  # see the module docstring
    with benchlib.pinned(0) if pin == "both" else contextlib.nullcontext("unpinned") as where:
        print(
            f"  this process (the reactor): {where};"
            f" the simulators: {'cpu 1' if pin == 'both' else 'unpinned'};"
            f" MariaDB: unpinned; {benchlib.load_average()}"
        )
        event = await run_mode("event", triggers, args)
        e = describe("event", event)
        timer = await run_mode("timer", timer_triggers, args) if timer_triggers > 0 else None
        t = describe("timer", timer) if timer is not None else summary_ms([])
    ratio_p50 = t["p50"] / e["p50"] if e["p50"] else float("nan")
    ratio_p99 = t["p99"] / e["p99"] if e["p99"] else float("nan")
    print(f"  timer / event: p50 x{ratio_p50:,.0f}, p99 x{ratio_p99:,.0f}")
    met = e["p99"] <= GOAL_P99_MS
    print(f"  goal p99 <= {GOAL_P99_MS:g} ms: {'met' if met else 'MISSED'} ({fmt_ms(e['p99'])})")
    own = summary_ms(event["service_samples"])
    benchlib.record(
        "reaction",
        f"event trigger, {e['n']} triggers: p50 / p99 / max",
        f"{fmt_ms(e['p50'])} / {fmt_ms(e['p99'])} / {fmt_ms(e['max'])}",
        "p99 <= 10 ms",
        met,
    )
    benchlib.record(
        "reaction",
        "  service.latency (own stamps): p50 / p99 / max",
        f"{fmt_ms(own['p50'])} / {fmt_ms(own['p99'])} / {fmt_ms(own['max'])}",
    )
    benchlib.record(
        "reaction",
        f"timer trigger 2.5 s, {t['n']} triggers: p50 / p99 / max",
        f"{fmt_ms(t['p50'])} / {fmt_ms(t['p99'])} / {fmt_ms(t['max'])}",
    )
    benchlib.record(
        "reaction",
        "timer / event (p50, p99)",
        f"x{ratio_p50:,.0f}, x{ratio_p99:,.0f}",
        "x100",
        ratio_p50 >= 100,
    )


def main(argv: list[str]) -> None:
    benchlib.run_fresh(__file__, argv, measured)


def measured(argv: list[str]) -> None:
    logging.basicConfig(level=logging.ERROR)
    asyncio.run(measure(argv))


if __name__ == "__main__":
    main(sys.argv[1:])
