"""``fillreactor simulate``: run a simulated Asterisk cluster until interrupted.

Rules this module keeps:

* One line per server on stdout, flushed at once: ``<name> <host>:<port> <username> <secret>``, then
  ``ready``; scripts and tests read these lines to find ephemeral ports. After ``ready`` every
  change of a server's state is one line ``<name> <state>`` (``shutting_down``, ``down``,
  ``booting``, ``up``).
* SIGINT and SIGTERM stop the servers cleanly and the command exits 0. SIGUSR1 restarts every server
  gracefully (``core restart now``: hangups, Shutdown, refused for ``--restart-down-for``), SIGUSR2
  crashes every server (EOF, refused for ``--crash-down-for``), both then boot again.
* Listens on 127.0.0.1 unless ``--host`` says otherwise. Every option is checked before anything
  listens: a nonsense value is a one-line error and exit status 2.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from fillreactor.simulator.cluster import SimulatedCluster
from fillreactor.simulator.orders import ORDER_MODES, OrderRules
from fillreactor.simulator.outcomes import CallTiming
from fillreactor.simulator.server import DELIVERIES, UP, SimulatedAsterisk


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--servers", type=int, default=3, help="number of simulated Asterisk servers")
    parser.add_argument("--base-port", type=int, default=0, help="first port (0 = ephemeral ports)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--username", default="cron", help="AMI username")
    parser.add_argument("--secret", default="1234", help="AMI secret")
    parser.add_argument("--time-scale", type=float, default=1.0, help="real seconds per simulated second")
    parser.add_argument("--load-cps", type=float, default=0.0, help="dial-level calls/s per server")
    parser.add_argument("--load-max-calls", type=int, default=50, help="live dial-level calls per server")
    parser.add_argument("--ring", type=float, default=2.0, help="ring time (s) before answer/busy")
    parser.add_argument("--talk", type=float, default=6.0, help="talk time (s) before the trunk hangs up")
    parser.add_argument(
        "--vdad-wait", type=float, default=5.0, help="time (s) the answered leg stays in 8365"
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of every random choice (event orders, splits)"
    )
    parser.add_argument(
        "--order", choices=ORDER_MODES, default="varied", help="event orders: varied per call, or as captured"
    )
    parser.add_argument(
        "--timestamp-events", action="store_true", help="add Timestamp: to events (timestampevents=yes)"
    )
    parser.add_argument(
        "--delivery",
        choices=[d.replace("_", "-") for d in DELIVERIES],
        default="per-event",
        help="per-event: a write per event (as Asterisk); burst: a call step's events back to back",
    )
    parser.add_argument(
        "--split-writes", action="store_true", help="cut the byte stream at arbitrary offsets (a WAN link)"
    )
    parser.add_argument("--split-max-bytes", type=int, default=256, help="largest piece with --split-writes")
    parser.add_argument(
        "--listing-row-interval",
        type=float,
        default=None,
        help="simulated seconds per CoreShowChannel row: the listing spans events (default: atomic)",
    )
    parser.add_argument("--boot-time", type=float, default=0.2, help="seconds listening before FullyBooted")
    parser.add_argument(
        "--restart-down-for", type=float, default=2.0, help="graceful restart: seconds refused"
    )
    parser.add_argument("--crash-down-for", type=float, default=2.4, help="crash: seconds refused")


def run(args: argparse.Namespace) -> int:
    problem = _check(args)
    if problem:
        print(f"fillreactor simulate: {problem}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_serve(args))
    except OSError as error:  # a port in use, an address not on this host: say so, no traceback
        reason = error.strerror or str(error)
        print(f"fillreactor simulate: cannot listen on {args.host}: {reason}", file=sys.stderr)
        return 1


def _check(args: argparse.Namespace) -> str:
    if args.servers < 1:
        return "--servers must be at least 1"
    if not 0 <= args.base_port <= 65535 - args.servers:
        return "--base-port must leave room for one port per server (0 = ephemeral ports)"
    if args.time_scale <= 0:
        return "--time-scale must be positive"
    if args.load_cps < 0 or args.load_max_calls < 0:
        return "--load-cps and --load-max-calls cannot be negative"
    if min(args.ring, args.talk, args.vdad_wait) < 0:
        return "--ring, --talk and --vdad-wait cannot be negative"
    if args.split_max_bytes < 1:
        return "--split-max-bytes must be at least 1"
    if args.listing_row_interval is not None and args.listing_row_interval < 0:
        return "--listing-row-interval cannot be negative"
    if min(args.boot_time, args.restart_down_for, args.crash_down_for) < 0:
        return "--boot-time, --restart-down-for and --crash-down-for cannot be negative"
    return ""


def _cluster(args: argparse.Namespace) -> SimulatedCluster:
    return SimulatedCluster(
        args.servers,
        base_port=args.base_port,
        host=args.host,
        username=args.username,
        secret=args.secret,
        time_scale=args.time_scale,
        timing=CallTiming(ring=args.ring, talk=args.talk, vdad_wait=args.vdad_wait),
        load_cps=args.load_cps,
        load_max_concurrent=args.load_max_calls,
        seed=args.seed,
        orders=OrderRules(mode=args.order),
        timestamp_events=args.timestamp_events,
        delivery=args.delivery.replace("-", "_"),
        split_writes=args.split_writes,
        split_max_bytes=args.split_max_bytes,
        listing_row_interval=args.listing_row_interval,
        boot_time=args.boot_time,
        restart_down_for=args.restart_down_for,
        crash_down_for=args.crash_down_for,
    )


async def _report_states(server: SimulatedAsterisk) -> None:
    reported = [server.state]
    while True:
        await server.wait_until(lambda: server.state != reported[-1])
        reported.append(server.state)
        print(f"{server.name} {server.state}", flush=True)


def _outage(cluster: SimulatedCluster, kind: str, tasks: set[asyncio.Task[object]]) -> None:
    for server in cluster:
        if server.state != UP:
            continue  # already in an outage: one at a time
        if kind == "restart":
            fault = server.faults.graceful_shutdown(restart=True, wait=False)
        else:
            fault = server.faults.crash()
        task: asyncio.Task[object] = asyncio.ensure_future(fault)
        tasks.add(task)
        task.add_done_callback(tasks.discard)


async def _serve(args: argparse.Namespace) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    cluster = _cluster(args)
    async with cluster:
        reporters = [loop.create_task(_report_states(server)) for server in cluster]
        faults: set[asyncio.Task[object]] = set()
        loop.add_signal_handler(signal.SIGUSR1, _outage, cluster, "restart", faults)
        loop.add_signal_handler(signal.SIGUSR2, _outage, cluster, "crash", faults)
        for server in cluster:
            print(f"{server.name} {server.host}:{server.port} {args.username} {args.secret}", flush=True)
        print("ready", flush=True)  # every handler is in place: a signal from now on is handled
        try:
            await stop.wait()
        finally:
            for task in reporters:
                task.cancel()
            await asyncio.gather(*reporters, return_exceptions=True)
    return 0
