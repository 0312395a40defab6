"""``fillreactor check``: can fillreactor run here, and is the Perl FILL out of the way? One table.

Rules this module keeps:

* Every check is one row: result (``ok``, ``warn``, ``FAIL``, ``skip``), what was checked, on what,
  and one line of detail that says what to do. ``FAIL`` means it blocks running (or makes it
  unsafe: two FILLs dialing one hopper); ``warn`` is worth knowing; ``skip`` a check that could not
  be made because an earlier one failed. The exit status is 1 when any row is ``FAIL``, else 0
  (2 for a bad command line). README's troubleshooting section explains every row (``EXPLAINED``).
* The rows, in order: astguiclient.conf; fillreactor's settings (the INI file and the same
  setting options as ``fillreactor run``, so an admin checks the very command line the unit runs);
  keepalive ``7`` in ``VARactive_keepalives`` (ADMIN_keepalive_ALL.pl restarts the Perl FILL within
  a minute, spec 8.1); a Perl FILL process on this host (``/proc``, as the keepalive's ``ps`` looks
  for ``AST_VDauto_dial_FILL.pl``); the database; the schema (``store.checks``); the
  ``system_settings`` row; this host's ``servers`` row; the leader lock; signs of another FILL
  dialing (``VDFC_`` hopper claims, recent ``OUTBALANCE`` calls) while no fillreactor holds the
  lock; then per Asterisk server its AMI login and what its user may do (``ami_probe``), probed
  concurrently, each bounded by ``--timeout``.
* Read only: nothing is written, claimed, locked or originated. Secrets are never printed.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fillreactor.astguiclient import DEFAULT_PATH, AstguiclientConf, ConfigError, load_conf
from fillreactor.service.settings import (
    Settings,
    SettingsError,
    add_setting_arguments,
    command_line_values,
    load_settings,
)

OK, WARN, FAIL, SKIP = "ok", "warn", "FAIL", "skip"
EXIT_OK, EXIT_BLOCKED, EXIT_USAGE = 0, 1, 2
PERL_FILL = "AST_VDauto_dial_FILL.pl"
DEFAULT_RECENT_MINUTES = 5
DEFAULT_AMI_TIMEOUT = 5.0

# check name -> what a FAIL (or warn) means and what to do: README's troubleshooting list
EXPLAINED: dict[str, str] = {
    "astguiclient.conf": "the file is missing, unreadable or lacks a key fillreactor needs (``VARDB_*``, "
    "``VARserver_ip``): fix the file or give the right one with ``--conf``.",
    "settings": "a value in fillreactor.conf or on the command line is not allowed: the detail names "
    "the file or the command line, the key and what is allowed.",
    "keepalive 7": "``VARactive_keepalives`` still holds 7, so ``ADMIN_keepalive_ALL.pl`` (cron, every "
    "minute) starts ``AST_VDauto_dial_FILL.pl`` on this host: remove the 7 (see `Going live`_) before "
    "fillreactor dials.",
    "Perl FILL process": "``AST_VDauto_dial_FILL.pl`` runs on this host: stop it (see `Going live`_) "
    "after removing keepalive 7.",
    "database": "the database of astguiclient.conf cannot be reached or refuses the login.",
    "schema": "a table or column fillreactor reads or writes is missing (an older or damaged VICIdial "
    "schema); warn: an optional one is missing and its shortage term is not modelled.",
    "system_settings": "the ``system_settings`` table has no row: VICIdial is not set up.",
    "this host": "warn: no ``servers`` row has this host's ``VARserver_ip``: the Originates use the "
    "fallbacks ``ext_context`` 'default' and exten 8365, and the FILL log file is off.",
    "leader lock": "warn: another fillreactor holds the leader lock; this one would stand by.",
    "another FILL": "``VDFC_`` hopper claims or ``OUTBALANCE`` calls of the last minutes while no "
    "fillreactor holds the lock: another FILL (the Perl one, keepalive 7 on some server) is dialing. "
    "Turn it off there first: two FILLs on one cluster over-dial.",
    "servers rows": "a ``servers`` row cannot be used for an AMI link (missing ``telnet_host``/"
    "``telnet_port``, user or secret): fix it in the admin web page.",
    "AMI login": "the server's AMI (``servers.telnet_host:telnet_port``) cannot be reached, or refuses "
    "the user (``servers.ASTmgrUSERNAME*`` as ``ami_user`` says) with ``ASTmgrSECRET``: check "
    "``/etc/asterisk/manager.conf`` on that server.",
    "AMI permissions": "the AMI user lacks a permission in manager.conf: ``write=originate`` "
    "(Originate; needed with ``dial_via = ami`` on balance servers), ``write=system`` or "
    "``reporting`` (CoreShowChannels; always needed), ``read=system`` (FullyBooted; always needed), "
    "``write=system`` (Filter; a warning only). ``read=call`` (the channel events) cannot be checked "
    "without a call: make sure the user has it.",
}


@dataclass
class Row:
    result: str
    check: str
    target: str
    detail: str


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)

    def add(self, result: str, check: str, target: str, detail: str) -> None:
        self.rows.append(Row(result, check, target, detail))

    @property
    def blocking(self) -> list[Row]:
        return [r for r in self.rows if r.result == FAIL]

    def text(self) -> str:
        heads = ("RESULT", "CHECK", "TARGET", "DETAIL")
        widths = [max(len(heads[i]), *(len(self._cell(r, i)) for r in self.rows)) for i in range(3)]
        lines = ["  ".join(h.ljust(w) for h, w in zip(heads[:3], widths, strict=True)) + "  " + heads[3]]
        for row in self.rows:
            cells = [self._cell(row, i).ljust(widths[i]) for i in range(3)]
            lines.append(("  ".join(cells) + "  " + row.detail).rstrip())
        warnings = sum(1 for r in self.rows if r.result == WARN)
        blocking = len(self.blocking)
        if blocking:
            lines.append(
                f"\n{blocking} problem{'s' * (blocking != 1)} block{'s' * (blocking == 1)} running"
                f" (FAIL), {warnings} warning{'s' * (warnings != 1)}: see README, Troubleshooting"
            )
        else:
            lines.append(f"\nnothing blocks running; {warnings} warning{'s' * (warnings != 1)}")
        return "\n".join(lines) + "\n"

    @staticmethod
    def _cell(row: Row, index: int) -> str:
        return (row.result, row.check, row.target)[index]


# -- the checks that need no database -------------------------------------------------------------
def perl_fill_processes(proc: Path = Path("/proc")) -> list[tuple[int, str]]:
    """(pid, command line) of every process running ``AST_VDauto_dial_FILL.pl`` on this host."""
    found = []
    own = os.getpid()
    try:
        entries = list(proc.iterdir())
    except OSError:
        return []
    for entry in entries:
        if not entry.name.isdigit() or int(entry.name) == own:
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue  # gone meanwhile, or not ours to read
        words = [a.decode("utf-8", "replace") for a in args if a]
        if any(Path(word).name == PERL_FILL for word in words):
            found.append((int(entry.name), " ".join(words)))
    return sorted(found)


def check_keepalive(report: Report, conf: AstguiclientConf) -> None:
    value = conf.active_keepalives
    if "7" in value:
        report.add(
            FAIL,
            "keepalive 7",
            "VARactive_keepalives",
            f"{value} has 7: ADMIN_keepalive_ALL.pl "
            f"restarts {PERL_FILL} here within a minute; remove the 7 (README, going live)",
        )
    else:
        report.add(
            OK,
            "keepalive 7",
            "VARactive_keepalives",
            f"{value or '(not set)'}: no 7, the Perl FILL is not kept alive on this host",
        )


def check_processes(report: Report, proc: Path) -> None:
    running = perl_fill_processes(proc)
    if running:
        for pid, command in running:
            report.add(FAIL, "Perl FILL process", "this host", f"pid {pid} runs it: {command[:120]}")
    else:
        report.add(OK, "Perl FILL process", "this host", f"no {PERL_FILL} running")


# -- the database ---------------------------------------------------------------------------------
async def check_database(
    report: Report, conf: AstguiclientConf, settings: Settings, recent_minutes: int
) -> tuple[list[dict[str, Any]], set[str]] | None:
    """The database rows; the servers rows and the balance servers for the AMI checks (None: no database)."""
    from fillreactor.store import checks
    from fillreactor.store.database import Database, DatabaseAddress, StoreError
    from fillreactor.store.servers import read_host_row, read_link_rows

    address = DatabaseAddress.from_conf(conf)
    try:
        database = await Database.open(address, connect_timeout=5.0, retry_attempts=1)
    except StoreError as error:
        report.add(FAIL, "database", str(address), str(error))
        return None
    try:
        try:
            version = await checks.server_version(database)
            report.add(OK, "database", str(address), f"connected (server {version})")
            schema = checks.compare_schema(await checks.read_schema(database))
        except StoreError as error:
            report.add(FAIL, "database", str(address), f"connected, but a read failed: {error}")
            return None
        expected = checks.expected_schema()
        if schema.ok:
            total = sum(len(c) for c in expected.values())
            report.add(
                OK,
                "schema",
                address.database,
                f"all {len(expected)} tables and {total} columns fillreactor uses are there",
            )
        else:
            missing = [f"table {t}" for t in schema.missing_tables]
            missing += [f"{t}.{c}" for t, c in schema.missing_columns]
            report.add(FAIL, "schema", address.database, "missing: " + ", ".join(missing))
        if schema.missing_optional:
            report.add(
                WARN,
                "schema",
                address.database,
                "optional, not there (its term is not modelled): " + ", ".join(schema.missing_optional),
            )
        if schema.missing_tables and {"servers", "vicidial_hopper"} & set(schema.missing_tables):
            return None
        await _check_rows(report, database, conf, settings, recent_minutes)
        try:
            host = await read_host_row(database, conf.server_ip)
            rows = await read_link_rows(database)
            balance = await checks.balance_servers(database)
        except StoreError as error:
            report.add(FAIL, "servers rows", address.database, f"cannot be read: {error}")
            return None
        if host is None:
            report.add(
                WARN,
                "this host",
                conf.server_ip,
                "no servers row with this VARserver_ip: Originates "
                "use ext_context 'default' and exten 8365; no FILL log file",
            )
        else:
            logs = "Y: the FILL log goes to " + conf.path_logs if host.get("vd_server_logs") == "Y" else "N"
            report.add(
                OK,
                "this host",
                conf.server_ip,
                f"servers row {host.get('server_id')!s}, vd_server_logs {logs}",
            )
        return rows, balance
    finally:
        await database.close()


async def _check_rows(
    report: Report, database: Any, conf: AstguiclientConf, settings: Settings, recent_minutes: int
) -> None:
    from fillreactor.store import checks
    from fillreactor.store.database import StoreError

    try:
        if await checks.system_settings_rows(database) == 0:
            report.add(FAIL, "system_settings", "system_settings", "no row: VICIdial is not set up here")
        else:
            report.add(OK, "system_settings", "system_settings", "one row")
    except StoreError as error:
        report.add(FAIL, "system_settings", "system_settings", f"cannot be read: {error}")
    try:
        holder = await checks.lock_holder(database, settings.lock_name)
    except StoreError as error:
        report.add(FAIL, "leader lock", settings.lock_name, f"IS_USED_LOCK failed: {error}")
        return
    if holder is None:
        report.add(OK, "leader lock", settings.lock_name, "free: a fillreactor started now would dial")
    else:
        report.add(
            WARN,
            "leader lock",
            settings.lock_name,
            f"held by connection {holder}: a fillreactor runs; another one would stand by",
        )
    try:
        claims = await checks.fill_claims(database)
        recent = await checks.recent_fill_calls(database, recent_minutes)
    except StoreError as error:
        report.add(WARN, "another FILL", "vicidial_hopper", f"could not be checked: {error}")
        return
    signs = [f"{n} {status} hopper rows claimed by {tag}" for tag, status, n in claims]
    if recent.calls_logged:
        signs.append(
            f"{recent.calls_logged} OUTBALANCE calls in vicidial_dial_cid_log in the last "
            f"{recent_minutes} minutes (last {recent.last_logged})"
        )
    signs += [
        f"{n} OUTBALANCE calls placed on {ip} in vicidial_auto_calls" for ip, n in recent.live_by_server
    ]
    if not signs:
        report.add(
            OK,
            "another FILL",
            "vicidial_hopper",
            f"no VDFC_ claims, no OUTBALANCE call in the last {recent_minutes} minutes",
        )
    elif holder is not None:
        report.add(
            OK,
            "another FILL",
            "vicidial_hopper",
            "FILL activity, from the fillreactor holding the lock: " + "; ".join(signs),
        )
    else:
        report.add(
            FAIL,
            "another FILL",
            "vicidial_hopper",
            "; ".join(signs) + ": another FILL (the Perl one?) is dialing and no fillreactor holds the lock",
        )


# -- AMI ------------------------------------------------------------------------------------------
async def check_ami(
    report: Report, rows: Iterable[dict[str, Any]], balance: set[str], settings: Settings, timeout: float
) -> None:
    from fillreactor.ami.config import targets_from_rows
    from fillreactor.service.ami_probe import probe

    rows = list(rows)
    targets, problems = targets_from_rows(rows, settings.ami_username_column)
    for problem in problems:
        report.add(FAIL, "servers rows", "servers", problem)
    if not targets:
        report.add(WARN, "AMI login", "servers", "no active Asterisk server in the servers table")
        return
    results = await asyncio.gather(*(probe(t, timeout=timeout) for t in targets))
    for target, result in zip(targets, results, strict=True):
        where = f"{target.server} ({target.address})"
        if not result.logged_in:
            report.add(FAIL, "AMI login", where, result.error)
            continue
        report.add(OK, "AMI login", where, f"{result.banner or 'no banner'}, user {target.username!r}")
        problems_fail, problems_warn, allowed = [], [], []
        if not result.may("CoreShowChannels"):
            problems_fail.append("no CoreShowChannels (write=system or reporting): the link never resyncs")
        if not result.fully_booted:
            problems_fail.append(
                "no FullyBooted after the login (read=system, or Asterisk still booting): "
                "the link never uses this server"
            )
        if result.may("Originate"):
            allowed.append("Originate")
        elif settings.dial_via == "ami" and target.server in balance:
            problems_fail.append("no Originate (write=originate): balance calls cannot be sent here")
        elif settings.dial_via == "ami":
            problems_warn.append("no Originate (write=originate): needed once it is a balance server")
        if result.may("Filter"):
            allowed.append("Filter")
        elif settings.ami_filter:
            problems_warn.append("no Filter (write=system): the link goes on unfiltered, every event is sent")
        problems_warn += result.notes
        if problems_fail:
            report.add(FAIL, "AMI permissions", where, "; ".join(problems_fail + problems_warn))
        elif problems_warn:
            report.add(WARN, "AMI permissions", where, "; ".join(problems_warn))
        else:
            report.add(
                OK,
                "AMI permissions",
                where,
                "may " + ", ".join(["CoreShowChannels", *allowed]) + "; reads system events",
            )


# -- the command ----------------------------------------------------------------------------------
async def run_checks(
    conf_path: str | Path,
    config_path: Path | None = None,
    command_line: dict[str, Any] | None = None,
    *,
    config_required: bool = False,
    recent_minutes: int = DEFAULT_RECENT_MINUTES,
    ami_timeout: float = DEFAULT_AMI_TIMEOUT,
    proc: Path = Path("/proc"),
) -> Report:
    report = Report()
    conf: AstguiclientConf | None
    try:
        conf = load_conf(conf_path)
        report.add(
            OK,
            "astguiclient.conf",
            str(conf_path),
            f"database {conf.database_label}, this host "
            f"{conf.server_ip}, PATHhome {conf.path_home}, PATHlogs {conf.path_logs}",
        )
    except ConfigError as error:
        conf = None
        report.add(FAIL, "astguiclient.conf", str(conf_path), str(error))
    where = str(config_path) if config_path else "defaults"
    try:
        settings = load_settings(config_path, config_required=config_required, command_line=command_line)
        report.add(
            OK,
            "settings",
            where,
            f"shortage {settings.shortage_source}, "
            f"dial via {settings.dial_via}, "
            f"trigger {settings.trigger}, AMI user column {settings.ami_username_column}",
        )
    except SettingsError as error:
        settings = Settings()
        for problem in error.problems:
            report.add(FAIL, "settings", where, problem)
    if conf is None:
        report.add(SKIP, "database", "-", "needs astguiclient.conf")
        check_processes(report, proc)
        return report
    check_keepalive(report, conf)
    check_processes(report, proc)
    found = await check_database(report, conf, settings, recent_minutes)
    if found is None:
        report.add(SKIP, "AMI login", "-", "the servers come from the database")
        return report
    await check_ami(report, found[0], found[1], settings, ami_timeout)
    return report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--conf",
        default=str(DEFAULT_PATH),
        metavar="FILE",
        help="VICIdial's astguiclient.conf (default %(default)s)",
    )
    parser.add_argument(
        "--config",
        default=None,
        metavar="FILE",
        help="fillreactor's settings (INI); default /etc/fillreactor.conf if present",
    )
    parser.add_argument(
        "--recent",
        type=int,
        default=DEFAULT_RECENT_MINUTES,
        metavar="MINUTES",
        help="how far back OUTBALANCE calls count as another FILL dialing (default %(default)s)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_AMI_TIMEOUT,
        metavar="SECONDS",
        help="per AMI server (default %(default)s)",
    )
    add_setting_arguments(parser, title="settings (as for `fillreactor run`)")


def run(args: argparse.Namespace) -> int:
    if args.recent < 1 or not 0 < args.timeout <= 60:
        print(
            "fillreactor check: --recent must be 1 or more minutes, --timeout 0-60 seconds", file=sys.stderr
        )
        return EXIT_USAGE
    logging.basicConfig(level=logging.ERROR, stream=sys.stderr, format="%(name)s: %(message)s")
    report = asyncio.run(
        run_checks(
            args.conf,
            Path(args.config) if args.config else None,
            command_line_values(args),
            config_required=bool(args.config),
            recent_minutes=args.recent,
            ami_timeout=args.timeout,
        )
    )
    sys.stdout.write(report.text())
    return EXIT_BLOCKED if report.blocking else EXIT_OK


# -- README's troubleshooting list ---------------------------------------------------------------
EXPLAINED_BEGIN = ".. BEGIN CHECK LIST (made by fillreactor.service.check.explained_rst: do not edit)"
EXPLAINED_END = ".. END CHECK LIST"


def explained_rst() -> str:
    """README's list of what each ``check`` row means when it is not ok."""
    lines = [EXPLAINED_BEGIN, ""]
    for name, text in EXPLAINED.items():
        lines += [f"``{name}``", f"    {text}", ""]
    lines.append(EXPLAINED_END)
    return "\n".join(lines) + "\n"
