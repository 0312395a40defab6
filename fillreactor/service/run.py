"""``fillreactor run``: the FILL dialer. Today one pass (``--once``); the service comes next.

Rules this module keeps:

* Options: ``--conf FILE`` (default /etc/astguiclient.conf, read only when no other file is
  given), ``--once``, ``--dry-run``, ``--shortage-source stats|live``, ``--dial-via manager|ami``,
  ``--per-server-pacing``, ``--stale-claim-age SECONDS``, ``--log-level``.
* With ``--once`` the source of demand defaults to ``stats`` and the way to send to ``manager``
  (a single pass has no AMI links); asking for ``live`` or ``ami`` there is refused with a message
  saying what to use. Without ``--once`` it prints one line and exits 2 (the service mode is not
  built yet).
* Logs go to stderr at ``--log-level``; what a pass did goes to stdout. No secret is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from fillreactor.astguiclient import DEFAULT_PATH
from fillreactor.once import EXIT_USAGE, OnceOptions, run_once
from fillreactor.service.settings import Settings

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--conf",
        default=str(DEFAULT_PATH),
        metavar="FILE",
        help="VICIdial's astguiclient.conf: the database, VARserver_ip, PATHlogs (default %(default)s)",
    )
    parser.add_argument("--once", action="store_true", help="one planning and dialing pass, then exit")
    parser.add_argument(
        "--dry-run", action="store_true", help="print the plan and the calls it would place; write nothing"
    )
    parser.add_argument(
        "--shortage-source",
        choices=("stats", "live"),
        default=None,
        help="demand from vicidial_campaign_server_stats (as the Perl FILL) or from live line counts"
        " (default: live for the service, stats with --once)",
    )
    parser.add_argument(
        "--dial-via",
        choices=("manager", "ami"),
        default=None,
        help="manager: vicidial_manager NEW rows for AST_manager_send.pl; ami: over the AMI session,"
        " the row written SENT (default: ami for the service, manager with --once)",
    )
    parser.add_argument(
        "--per-server-pacing",
        action="store_true",
        help="also pace each server at its servers.outbound_calls_per_second (the Perl FILL does not)",
    )
    parser.add_argument(
        "--stale-claim-age",
        type=float,
        default=Settings().stale_claim_age,
        metavar="SECONDS",
        help="start-up recovery: a VDFC_ claim still there after this long is released (default %(default)s)",
    )
    parser.add_argument("--log-level", choices=LOG_LEVELS, default="INFO", help="default %(default)s")


def run(args: argparse.Namespace) -> int:
    if not args.once:
        print("fillreactor run: the service mode is not built yet (use --once for one pass)")
        return EXIT_USAGE
    if args.stale_claim_age < 0:
        print("fillreactor run: --stale-claim-age must be 0 or more seconds")
        return EXIT_USAGE
    logging.basicConfig(
        level=getattr(logging, args.log_level),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    options = OnceOptions(
        conf_path=args.conf,
        dry_run=args.dry_run,
        shortage_source=args.shortage_source or "stats",
        dial_via=args.dial_via or "manager",
        per_server_pacing=args.per_server_pacing,
        stale_claim_age=args.stale_claim_age,
    )
    return asyncio.run(run_once(options))
