"""``fillreactor simulate``: run a simulated Asterisk cluster until interrupted.

Rules this module keeps:

* One line per server on stdout, flushed at once: ``<name> <host>:<port> <username> <secret>``, then
  ``ready``; scripts and tests read these lines to find ephemeral ports.
* SIGINT and SIGTERM stop the servers cleanly and the command exits 0.
* Listens on 127.0.0.1 unless ``--host`` says otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from fillreactor.simulator.cluster import SimulatedCluster
from fillreactor.simulator.outcomes import CallTiming


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
    return ""


async def _serve(args: argparse.Namespace) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    cluster = SimulatedCluster(
        args.servers,
        base_port=args.base_port,
        host=args.host,
        username=args.username,
        secret=args.secret,
        time_scale=args.time_scale,
        timing=CallTiming(ring=args.ring, talk=args.talk, vdad_wait=args.vdad_wait),
        load_cps=args.load_cps,
        load_max_concurrent=args.load_max_calls,
    )
    async with cluster:
        for server in cluster:
            print(f"{server.name} {server.host}:{server.port} {args.username} {args.secret}", flush=True)
        print("ready", flush=True)
        await stop.wait()
    return 0
