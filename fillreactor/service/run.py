"""``fillreactor run``: the FILL dialer service, or one pass (``--once``).

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
    parser.add_argument(
        "--config",
        default=None,
        metavar="FILE",
        help="fillreactor's own settings (INI, [fillreactor]); default /etc/fillreactor.conf if present",
    )
    parser.add_argument(
        "--trigger",
        choices=("event", "timer"),
        default=None,
        help="event: plan the moment usage crosses a threshold (default); timer: every 2.5 s as the Perl",
    )
    parser.add_argument("--trace", action="store_true", help="write the verbose event trace to stderr")


def run(args: argparse.Namespace) -> int:
    if not args.once:
        return run_service(args)
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


# -- the service ---------------------------------------------------------------------------------
def service_overrides(args: argparse.Namespace) -> dict[str, object]:
    """The settings the command line gives (None: not given, the file or the default decides)."""
    values: dict[str, object] = {}
    for name in ("shortage_source", "dial_via", "trigger"):
        value = getattr(args, name, None)
        if value is not None:
            values[name] = value
    if getattr(args, "per_server_pacing", False):
        values["per_server_pacing"] = True
    if getattr(args, "trace", False):
        values["trace"] = True
    if args.stale_claim_age != Settings().stale_claim_age:
        values["stale_claim_age"] = args.stale_claim_age
    return values


def run_service(args: argparse.Namespace) -> int:
    from pathlib import Path

    from fillreactor.astguiclient import ConfigError, load_conf
    from fillreactor.service import logs
    from fillreactor.service.settings import load_settings

    logs.configure(args.log_level.lower())
    try:
        conf = load_conf(args.conf)
        settings = load_settings(
            Path(args.config) if args.config else None,
            service_overrides(args),
            config_required=bool(args.config),
        )
    except ConfigError as error:
        print(f"fillreactor run: {error}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return asyncio.run(serve(conf, settings, dry_run=args.dry_run))
    except KeyboardInterrupt:
        return 0


async def serve(conf: object, settings: Settings, *, dry_run: bool = False, shadow: bool = False) -> int:
    """Run the service until SIGTERM/SIGINT or the kill file; the exit status."""
    import signal

    from fillreactor.astguiclient import AstguiclientConf
    from fillreactor.reactor.service import ReactorService
    from fillreactor.reactor.trace import TraceFilter, TraceRecord
    from fillreactor.service.logs import attach_vicidial_file, kill_file_present
    from fillreactor.service.systemd import Notifier

    assert isinstance(conf, AstguiclientConf)
    log = logging.getLogger("fillreactor")
    trace = None
    if settings.trace:

        def write(record: TraceRecord) -> None:
            sys.stderr.write(record.line() + "\n")

        trace = TraceFilter(write, settings.trace_servers, settings.trace_campaigns)
    service = ReactorService(conf, settings, trace=trace, dry_run=dry_run, shadow=shadow)
    notifier = Notifier()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    helpers: list[asyncio.Task[None]] = [loop.create_task(notifier.run_watchdog(), name="watchdog")]

    async def housekeeping() -> None:
        await service.started.wait()
        host = service.host_row or {}
        if host.get("vd_server_logs") == "Y":
            attach_vicidial_file(conf.path_logs)
        while not stop.is_set():
            notifier.status(service.status_line())
            if kill_file_present(conf.path_home):
                log.warning("%s/VDADfull.kill found: stopping, as the Perl FILL does", conf.path_home)
                stop.set()
            await asyncio.sleep(2.0)

    helpers.append(loop.create_task(housekeeping(), name="housekeeping"))
    log.info(
        "fillreactor starting: host %s, database %s, shortage source %s, dial via %s, trigger %s",
        conf.server_ip, conf.database_label, settings.shortage_source, settings.dial_via, settings.trigger,
    )
    try:
        code = await service.run(stop, ready=lambda: notifier.ready(service.status_line()))
    finally:
        notifier.stopping("stopped")
        for task in helpers:
            task.cancel()
        await asyncio.gather(*helpers, return_exceptions=True)
    log.info("fillreactor stopped")
    return code
