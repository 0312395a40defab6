"""``fillreactor run``: the FILL dialer service, or one pass (``--once``).

Rules this module keeps:

* Options: ``--conf FILE`` (default /etc/astguiclient.conf, read only when no other file is
  given), ``--config FILE`` (fillreactor's settings, default /etc/fillreactor.conf when it exists),
  ``--once``, ``--dry-run``, and one option per setting of ``settings.SETTINGS``
  (``--name-with-dashes``), made from that table, so the command line cannot drift from it. The
  command line wins over the file; every bad value is one line naming the file or "command line",
  the key and what is allowed, and the exit status is 2.
* With ``--once`` the source of demand defaults to ``stats`` and the way to send to ``manager``
  (a single pass has no AMI links); asking for ``live`` or ``ami`` there is refused with a message
  saying what to use.
* The service (``serve``) is what systemd runs (spec/AMI.md D 5.2):

  - ``READY=1`` once the reactor has started (database open, first snapshot read, links started),
    not once every server is connected; ``STATUS=`` the reactor's status line, sent when it
    changes; ``WATCHDOG=1`` from a task of this event loop (a stalled loop stops it).
  - SIGTERM / SIGINT: ``STOPPING=1``, the reactor stops (dialing off, unsent claims released);
    if it has not finished after ``STOP_DEADLINE`` seconds (less than the unit's
    ``TimeoutStopSec``) it is cancelled, so systemd never has to SIGKILL a dialing process.
  - SIGHUP: ``RELOADING=1``, the settings are read again (the same file and command line), handed
    to ``service.reload`` (links stay up) and every change is logged; then ``READY=1``. A bad file
    is logged and the running settings stay.
  - ``<PATHhome>/VDADfull.kill`` is looked for every ``HOUSEKEEPING_SECONDS``: removed, and the
    service stops cleanly (spec 8.2). When the FILL host's ``servers.vd_server_logs`` is ``Y``,
    the log also goes to ``<PATHlogs>/vdautodial_FILL.<date>`` (spec 8.3).
  - The trace (``--trace``) goes to stderr (colour on a terminal) or ``--trace-file``, filtered by
    ``--trace-server`` / ``--trace-campaign``; the status socket and the metrics endpoint are
    started with the reactor (``service.extra_tasks``).

* Logs go to stderr with journald priority prefixes; what a pass did goes to stdout. No secret is
  printed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fillreactor.astguiclient import DEFAULT_PATH, ConfigError
from fillreactor.once import EXIT_USAGE, OnceOptions, run_once
from fillreactor.service.settings import (
    Settings,
    add_setting_arguments,
    command_line_values,
    load_settings,
    parse_command_line,
)

HOUSEKEEPING_SECONDS = 2.0
STOP_DEADLINE = 15.0  # < systemd.STOP_TIMEOUT_SECONDS (20): the reactor drains in DRAIN_SECONDS (10)
# settings that serve() itself sets up once: a change waits for a restart
RESTART_TO_APPLY = ("trace", "trace_file", "metrics_port", "status_socket")

log = logging.getLogger("fillreactor")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--conf",
        default=str(DEFAULT_PATH),
        metavar="FILE",
        help="VICIdial's astguiclient.conf: the database, VARserver_ip, PATHlogs (default %(default)s)",
    )
    parser.add_argument(
        "--config",
        default=None,
        metavar="FILE",
        help="fillreactor's own settings (INI, [fillreactor]); default /etc/fillreactor.conf if present",
    )
    parser.add_argument("--once", action="store_true", help="one planning and dialing pass, then exit")
    parser.add_argument(
        "--dry-run", action="store_true", help="print the plan and the calls it would place; write nothing"
    )
    parser.add_argument(
        "--shadow",
        action="store_true",
        help="run beside the Perl FILL: plan as in production, claim, write and originate nothing,"
        " and compare with the calls the Perl FILL placed",
    )
    parser.add_argument(
        "--shadow-report",
        default=None,
        metavar="FILE",
        help="with --shadow: append one JSON line per decision pair to FILE"
        " (summarise it with `fillreactor shadow-report FILE`)",
    )
    add_setting_arguments(parser)


def _config_path(args: argparse.Namespace) -> Path | None:
    return Path(args.config) if getattr(args, "config", None) else None


def _print_errors(error: ConfigError, stream: Any) -> None:
    for line in str(error).splitlines():
        print(f"fillreactor run: {line}", file=stream)


def run(args: argparse.Namespace) -> int:
    if args.shadow_report and not args.shadow:
        print("fillreactor run: --shadow-report needs --shadow")
        return EXIT_USAGE
    if args.once and args.shadow:
        print("fillreactor run: --shadow runs beside the Perl FILL as a service: leave out --once")
        return EXIT_USAGE
    if not args.once:
        return run_service(args)
    given = command_line_values(args)
    try:
        parsed = parse_command_line(given)
        settings = load_settings(_config_path(args), parsed, config_required=bool(args.config))
    except ConfigError as error:
        _print_errors(error, sys.stdout)
        return EXIT_USAGE
    logging.basicConfig(
        level=getattr(logging, settings.log_level.upper()),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    options = OnceOptions(
        conf_path=args.conf,
        dry_run=args.dry_run,
        # a pass has no AMI links: only what the command line asks for overrides these two
        shortage_source=parsed.get("shortage_source", "stats"),
        dial_via=parsed.get("dial_via", "manager"),
        per_server_pacing=settings.per_server_pacing,
        stale_claim_age=settings.stale_claim_age,
        lock_name=settings.lock_name,
    )
    return asyncio.run(run_once(options))


# -- the service ---------------------------------------------------------------------------------
def run_service(args: argparse.Namespace) -> int:
    from fillreactor.astguiclient import load_conf
    from fillreactor.service import logs

    given = command_line_values(args)
    config_path = _config_path(args)

    def read_settings() -> Settings:
        return load_settings(config_path, config_required=config_path is not None, command_line=given)

    try:
        conf = load_conf(args.conf)
        settings = read_settings()
    except ConfigError as error:
        _print_errors(error, sys.stderr)
        return EXIT_USAGE
    logs.configure(settings.log_level)
    try:
        return asyncio.run(
            serve(
                conf,
                settings,
                dry_run=args.dry_run,
                shadow=args.shadow,
                shadow_report=args.shadow_report,
                reload_settings=read_settings,
            )
        )
    except KeyboardInterrupt:
        return 0


def _trace_sink(settings: Settings) -> tuple[Any, Any]:
    """The trace filter for the reactor and the sink to close at the end (None when off)."""
    from fillreactor.reactor.trace import FileSink, StreamSink, TraceFilter

    if not settings.trace:
        return None, None
    sink: FileSink | StreamSink
    if settings.trace_file:
        sink = FileSink(settings.trace_file)
        sink.open()  # OSError: a path that cannot be written fails at start-up, not silently later
    else:
        sink = StreamSink(sys.stderr)
    return TraceFilter(sink, settings.trace_servers, settings.trace_campaigns), sink


async def serve(
    conf: object,
    settings: Settings,
    *,
    dry_run: bool = False,
    shadow: bool = False,
    shadow_report: str | None = None,
    reload_settings: Callable[[], Settings] | None = None,
    notifier: Any = None,
    stop: asyncio.Event | None = None,
    housekeeping_interval: float = HOUSEKEEPING_SECONDS,
    service_options: dict[str, Any] | None = None,
    on_service: Callable[[Any], None] | None = None,
) -> int:
    """Run the service until SIGTERM/SIGINT, ``stop`` or the kill file; the exit status.

    ``notifier`` (default: one for ``$NOTIFY_SOCKET``), ``stop``, ``housekeeping_interval``,
    ``service_options`` (more ``ReactorService`` arguments) and ``on_service`` (called with the
    service once built) are for tests and embedding.
    """
    from fillreactor.astguiclient import AstguiclientConf
    from fillreactor.reactor.service import ReactorService
    from fillreactor.reactor.trace import FileSink
    from fillreactor.service.logs import attach_vicidial_file, detach, kill_file_present
    from fillreactor.service.metrics import MetricsServer, build_registry
    from fillreactor.service.status import CampaignNeeds, StatusServer, status_payload
    from fillreactor.service.systemd import Notifier

    assert isinstance(conf, AstguiclientConf)
    try:
        trace, trace_sink = _trace_sink(settings)
    except OSError as error:
        log.error("trace file %s cannot be written: %s", settings.trace_file, error.strerror or error)
        return EXIT_USAGE
    service = ReactorService(
        conf, settings, trace=trace, dry_run=dry_run, shadow=shadow, **(service_options or {})
    )
    needs = CampaignNeeds()
    service.decision_observers.append(needs)
    shadow_runner = None
    if shadow:
        from fillreactor.shadow.metrics import ShadowCollector
        from fillreactor.shadow.runner import attach

        try:
            shadow_runner = attach(service, report_path=shadow_report)
        except ValueError as error:
            log.error("%s", error)
            return EXIT_USAGE

    def payload() -> dict[str, Any]:
        status = status_payload(service, needs)
        if shadow_runner is not None:
            status["shadow"] = shadow_runner.status()
        return status

    status_server = StatusServer(settings.status_socket, payload)
    service.extra_tasks.append(status_server.serve)
    if settings.metrics_port:
        registry = build_registry(service, needs)
        if shadow_runner is not None:
            registry.register(ShadowCollector(shadow_runner))
        metrics = MetricsServer(registry, settings.metrics_port)
        service.extra_tasks.append(metrics.serve)
    if on_service is not None:
        on_service(service)
    notifier = notifier if notifier is not None else Notifier()
    stop = stop if stop is not None else asyncio.Event()
    loop = asyncio.get_running_loop()
    reloads: list[asyncio.Task[None]] = []

    async def reload() -> None:
        notifier.reloading()
        try:
            assert reload_settings is not None
            new = reload_settings()
        except ConfigError as error:
            for line in str(error).splitlines():
                log.error("reload refused, the running settings stay: %s", line)
            notifier.ready(f"reload refused: {str(error).splitlines()[0]}")
            return
        old = service.settings
        lines = [
            f"{line.split(' ', 1)[0]} changed: takes effect after a restart"
            if line.split(" ", 1)[0] in RESTART_TO_APPLY
            else line
            for line in service.reload(new)
        ]
        if trace is not None:
            trace.set_filters(new.trace_servers, new.trace_campaigns)
        if new.log_level != old.log_level:
            logging.getLogger().setLevel(getattr(logging, new.log_level.upper()))
        for line in lines or ["nothing changed"]:
            log.warning("reload: %s", line)
        notifier.ready(service.status_line())

    def on_hangup() -> None:
        if reload_settings is None:
            log.warning("SIGHUP: nothing to reload from (no settings source)")
            return
        if any(not task.done() for task in reloads):
            return  # one at a time; a burst of SIGHUPs reads the file once more at most
        reloads.append(loop.create_task(reload(), name="reload"))

    handled = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    loop.add_signal_handler(signal.SIGHUP, on_hangup)
    helpers: list[asyncio.Task[None]] = [loop.create_task(notifier.run_watchdog(), name="watchdog")]
    fill_log: list[logging.Handler] = []

    async def housekeeping() -> None:
        await service.started.wait()
        host = service.host_row or {}
        if host.get("vd_server_logs") == "Y":
            fill_log.append(attach_vicidial_file(conf.path_logs))
            log.info(
                "logging also to %s/vdautodial_FILL.<date> (servers.vd_server_logs is Y)", conf.path_logs
            )
        last_status = ""
        while not stop.is_set():
            text = service.status_line()
            if text != last_status:
                notifier.status(text)
                last_status = text
            if kill_file_present(conf.path_home):
                log.warning("%s/VDADfull.kill found: stopping, as the Perl FILL does", conf.path_home)
                stop.set()
                return
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(housekeeping_interval):
                    await stop.wait()

    helpers.append(loop.create_task(housekeeping(), name="housekeeping"))
    log.info(
        "fillreactor starting: host %s, database %s, shortage source %s, dial via %s, trigger %s",
        conf.server_ip,
        conf.database_label,
        settings.shortage_source,
        settings.dial_via,
        settings.trigger,
    )
    running = loop.create_task(service.run(stop, ready=lambda: notifier.ready(service.status_line())))
    stopping = loop.create_task(stop.wait())
    code = 1
    try:
        await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not running.done():
            notifier.stopping("stopping: dialing off, releasing unsent claims")
            log.info("stopping")
            done, _ = await asyncio.wait({running}, timeout=STOP_DEADLINE)
            if not done:
                log.error("the reactor did not stop within %g s: cancelled", STOP_DEADLINE)
                running.cancel()
                await asyncio.gather(running, return_exceptions=True)
        if running.done() and not running.cancelled():
            failure = running.exception()
            if failure is None:
                code = running.result()
            else:
                log.error("the reactor failed: %r", failure)
    finally:
        notifier.stopping("stopped")
        for signum in handled:
            loop.remove_signal_handler(signum)
        for task in (stopping, *helpers, *reloads):
            task.cancel()
        if not running.done():
            running.cancel()
        await asyncio.gather(running, stopping, *helpers, *reloads, return_exceptions=True)
        log.info("fillreactor stopped")
        for handler in fill_log:
            detach(handler)
        if isinstance(trace_sink, FileSink):
            trace_sink.close()
    return code
