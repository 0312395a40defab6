"""One planning and dialing pass, like one loop of the Perl FILL: ``fillreactor run --once``.

Rules this module keeps (spec 2.1-2.11; issue 7 point 8):

* Everything comes from the astguiclient.conf named (``--conf``; /etc/astguiclient.conf is read
  only when no other file is given): the database, this host's ``VARserver_ip``, ``PATHlogs``.
* "now" is taken once, at the start: the call ids' date part, the 20-minute staleness limit of
  the stats, every date the rows carry.
* The pass, in order: the leader lock (``GET_LOCK``, never waited for); the start-up recovery of
  stale ``VDFC_`` claims (rows seen twice ``stale_claim_age`` seconds apart; 0 = at once); the
  snapshot; the stats demand (``--shortage-source stats``, exactly the Perl's read); the plan
  (``Mode.CORRECTED``; every balance server dialable, as there are no AMI links); the dialing of
  every entry in plan order; then ``balance_trunk_fill``: the plan's value per campaign, or 0 for
  every campaign when nothing is short. A kill switch (spec 2.2.6) dials nothing and writes nothing.
* ``--dry-run`` reads only: no lock, no recovery, no claim; it prints the plan and the calls it
  would place (computed from the READY rows a claim would take).
* Exit codes: 0 the pass ran; 1 the database could not be reached or a statement failed; 2 bad
  configuration or options; 3 another instance holds the leader lock (nothing was done).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from fillreactor.astguiclient import ConfigError, load_conf
from fillreactor.clock import Clock, SystemClock
from fillreactor.core.cluster import LiveCounts
from fillreactor.core.outbound_call import LocalTime, OutboundCall, PassTime
from fillreactor.core.planner import PlanStatus, plan
from fillreactor.dialer import (
    Dialer,
    DialReport,
    ManagerOriginator,
    Originator,
    Sleep,
    pass_time,
    recover_stale_claims,
    system_localtime,
)
from fillreactor.service.settings import Settings
from fillreactor.store import calls as store
from fillreactor.store.database import Database, DatabaseAddress, StoreError
from fillreactor.store.leader import LeaderLock
from fillreactor.store.snapshot import load_snapshot, read_stats_demand

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_STORE = 1
EXIT_USAGE = 2
EXIT_NOT_LEADER = 3

Output = Callable[[str], None]


@dataclass(frozen=True)
class OnceOptions:
    conf_path: str
    dry_run: bool = False
    shortage_source: str = "stats"
    dial_via: str = "manager"
    per_server_pacing: bool = False
    stale_claim_age: float = Settings().stale_claim_age
    lock_name: str = Settings().lock_name
    sql_mode: str | None = None
    """The session sql_mode (tests run every pass in strict and non-strict mode); None: the server's."""


def describe_call(call: OutboundCall) -> str:
    cid = f"{call.cid_string} ({call.ccid_type})" if call.ccid else f"{call.cid_string} (no caller id number)"
    return (
        f"  {call.campaign_id} -> {call.server_ip}: lead {call.lead_id} {call.call_id}"
        f" {call.channel} Exten {call.exten} Callerid {cid} Timeout {call.timeout_text}"
    )


def describe_report(report: DialReport) -> list[str]:
    lines = []
    for entry in report.entries:
        text = (
            f"  {entry.entry.campaign} on {entry.entry.server}: planned {entry.entry.calls},"
            f" claimed {entry.claimed}, placed {entry.placed}"
        )
        if entry.missing_leads:
            text += f", no lead row {entry.missing_leads} (released)"
        if entry.duplicates:
            text += f", duplicate {entry.duplicates}"
        if entry.busy_leads:
            text += f", being dialed elsewhere {entry.busy_leads} (released)"
        if entry.error:
            text += f"; {entry.error}"
        lines.append(text)
    return lines


async def run_once(
    options: OnceOptions,
    *,
    clock: Clock | None = None,
    sleep: Sleep = asyncio.sleep,
    localtime: LocalTime = system_localtime,
    now: PassTime | None = None,
    pacing: bool = True,
    originator: Originator | None = None,
    out: Output = print,
) -> int:
    """One pass; the exit code (see the module rules)."""
    try:
        conf = load_conf(options.conf_path)
    except ConfigError as error:
        out(f"fillreactor run: {error}")
        return EXIT_USAGE
    if options.shortage_source != "stats":
        out(
            "fillreactor run --once: --shortage-source live needs the live line counts of the AMI links,"
            " which a single pass does not have; use --shortage-source stats"
        )
        return EXIT_USAGE
    if options.dial_via == "ami" and originator is None:
        out(
            "fillreactor run --once: --dial-via ami needs the AMI sender of the service, which is not"
            " built yet; use --dial-via manager (AST_manager_send.pl sends the Originate)"
        )
        return EXIT_USAGE
    address = DatabaseAddress.from_conf(conf)
    try:
        db = await Database.open(address, sql_mode=options.sql_mode)
    except StoreError as error:
        out(f"fillreactor run: {error}")
        return EXIT_STORE
    clock = clock or SystemClock()
    try:
        start = now or pass_time(clock, localtime)
        return await _pass(
            db,
            address,
            conf.server_ip,
            conf.path_logs,
            options,
            start,
            clock,
            sleep,
            localtime,
            pacing,
            originator or ManagerOriginator(),
            out,
        )
    except StoreError as error:
        out(f"fillreactor run: {error}")
        return EXIT_STORE
    finally:
        await db.close()


async def _pass(
    db: Database,
    address: DatabaseAddress,
    host_ip: str,
    logs_dir: str,
    options: OnceOptions,
    now: PassTime,
    clock: Clock,
    sleep: Sleep,
    localtime: LocalTime,
    pacing: bool,
    originator: Originator,
    out: Output,
) -> int:
    leader: LeaderLock | None = None
    if not options.dry_run:
        leader = LeaderLock(address, options.lock_name)
        if not await leader.acquire():
            holder = await leader.holder()
            await leader.release()
            out(
                f"fillreactor run: another instance holds the leader lock {options.lock_name!r}"
                f" (database connection {holder}): not dialing"
            )
            return EXIT_NOT_LEADER
    try:
        if not options.dry_run:
            recovery = await recover_stale_claims(
                db, now=now.local, min_age=options.stale_claim_age, sleep=sleep
            )
            if recovery.released or recovery.deleted:
                out(
                    f"recovered stale claims: {len(recovery.released)} released to READY,"
                    f" {len(recovery.deleted)} deleted (their Originate had been written)"
                )
        snapshot = await load_snapshot(db)
        demand = await read_stats_demand(db, now.local)
        # no AMI links in a single pass: every server may be dialed, as by the Perl
        result = plan(snapshot, demand, LiveCounts(dialable=frozenset(snapshot.servers)))
        out(f"fillreactor run --once at {now.sql}{' (dry run)' if options.dry_run else ''}")
        for line in result.explain():
            out(line)
        dialer = Dialer(
            db,
            originator,
            host_ip=host_ip,
            leader=leader,
            clock=clock,
            sleep=sleep,
            localtime=localtime,
            pacing=pacing,
            per_server_pacing=options.per_server_pacing,
            logs_dir=logs_dir,
        )
        if options.dry_run:
            calls = await dialer.preview(result.entries, now=now)
            out(f"calls that would be placed: {len(calls)}")
            for call in calls:
                out(describe_call(call))
            out("dry run: nothing was written")
            return EXIT_OK
        if result.status is PlanStatus.PLANNED:
            report = await dialer.dial(result.entries, now=now)
            await store.write_balance_fill(db, result.balance_trunk_fill)
            out(f"calls placed: {report.placed} of {sum(e.calls for e in result.entries)} planned")
            for line in describe_report(report):
                out(line)
        elif result.reset_balance_fill:
            await store.reset_balance_fill(db)
            out("no calls: balance_trunk_fill reset to 0")
        else:
            out("no calls")
        return EXIT_OK
    finally:
        if leader is not None:
            await leader.release()
