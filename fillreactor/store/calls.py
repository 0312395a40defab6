"""All SQL of placing OUTBALANCE calls: the claim, the reads, every row write, releases, recovery.

Rules this module keeps (spec 2.7-2.11, 5.1-5.5; the values come from ``core.outbound_call``):

* The claim is the Perl's (line 651): ``UPDATE vicidial_hopper SET status='QUEUE',
  user='VDFC_<server>' WHERE campaign_id=C AND status='READY' ORDER BY priority DESC, hopper_id
  LIMIT n``, plus the leader fence in the same WHERE (``store.leader.Fence``). The claimed rows
  are then read in one statement with their ``vicidial_list`` and ``vicidial_lists`` rows (LEFT
  JOINs: a missing lead or list reads as NULL), in the claim's order; claim and read go in one
  multi-statement round trip (``claim_and_read``).
* Batches: one statement per table for a batch of calls, multi-row, the rows in the calls' order
  (so auto-increment ids keep the order the Perl's one-by-one inserts give). The lead counters are
  one ``UPDATE ... CASE lead_id``; the daily counts are upserts that add up when a phone number
  appears twice in a batch; the CID counters one ``UPDATE`` each for areacodes and groups. The
  statements of a chunk before its Originates are sent in one round trip (``write_call_rows``),
  those after an entry's Originates in another (``finish_calls``).
* Hopper rows: INCALL by hopper_id (only rows this batch claimed); DELETE by lead_id (as the Perl:
  any other hopper row of the same lead goes too); a release puts a claimed row back to
  ``READY`` with ``user=''`` (how VICIdial's own scripts release rows), guarded by status and tag.
* Values are bound parameters; the only SQL text built here is placeholders and constant names.
  ``NOW()`` columns (``core.outbound_call.DB_NOW``) are the database's clock, as in the Perl.
* The ENUM error value of a ``called_since_last_reset`` overflow can only be stored by
  ``UPDATE IGNORE`` in strict mode; that form is used for the lead update only when a batch holds
  such a lead, so no other error is ever silenced.
* Start-up recovery (``find_stale_claims`` / ``recover_claims``): ``VDFC_`` rows in QUEUE were
  claimed but never written: released. INCALL rows were being written: when an OUTBALANCE
  Originate row of that lead exists in ``vicidial_manager`` (written within ``placed_window``), the
  call went out and the hopper row is deleted as the Perl would have; otherwise it is released.
  A ``vicidial_auto_calls`` row with no Originate row at all never left: it is undone.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from fillreactor.core.outbound_call import (
    CID_COUNT_MAX,
    DAILY_COUNT_MAX,
    DB_NOW,
    LEAD_TEXT_FIELDS,
    ROTATE_COUNT_MAX,
    AltPhone,
    Callback,
    CampaignDialSettings,
    CidPick,
    CidRow,
    FillHost,
    HopperEntry,
    Lead,
    ListOverrides,
    OutboundCall,
    TargetServer,
    perl_num,
    perl_text,
    perl_true,
    sql_key,
)
from fillreactor.store.database import BatchError, Database, StoreError
from fillreactor.store.leader import Fence

TAG_PREFIX = "VDFC_"
ROWS_PER_STATEMENT = 500
PLACED_WINDOW = timedelta(hours=1)


def claim_tag(server_ip: str) -> str:
    """The hopper ``user`` of a FILL claim for a server (the 2.14 tag, spec 5.1)."""
    return TAG_PREFIX + server_ip


def _marks(count: int) -> str:
    return ", ".join(["%s"] * count)


def _chunks(items: Sequence[Any], size: int = ROWS_PER_STATEMENT) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# -- what a dial batch needs to know ----------------------------------------------------------


@dataclass(frozen=True)
class DialContext:
    """Settings read once per dial batch (three statements)."""

    host: FillHost
    servers: Mapping[str, TargetServer]
    server_cps: Mapping[str, int]
    outbound_calls_per_second: int | None
    call_limit_24hour: bool
    campaigns: Mapping[str, CampaignDialSettings]

    def target(self, server_ip: str) -> TargetServer:
        return self.servers.get(server_ip) or TargetServer(server_ip)

    def campaign(self, campaign_id: str) -> CampaignDialSettings:
        return self.campaigns.get(campaign_id) or CampaignDialSettings(campaign_id)


SYSTEM_SQL = "SELECT outbound_calls_per_second, call_limit_24hour FROM system_settings LIMIT 1"
SERVERS_SQL = (
    "SELECT server_ip, asterisk_version, routing_prefix, outbound_calls_per_second, local_gmt,"
    " ext_context, answer_transfer_agent, vd_server_logs FROM servers"
)
CAMPAIGN_COLUMNS = (
    "dial_timeout",
    "dial_prefix",
    "campaign_cid",
    "campaign_vdad_exten",
    "omit_phone_code",
    "auto_alt_dial",
    "queue_priority",
    "use_custom_cid",
    "cid_group_id",
    "scheduled_callbacks_auto_reschedule",
    "dial_timeout_lead_container",
    "cid_group_id_two",
)


async def read_dial_context(db: Database, host_ip: str, campaigns: Iterable[str]) -> DialContext:
    """system_settings, servers (the FILL host's row and every target's), the campaigns' settings
    with their lead containers (spec 2.1.6-2.1.7, 2.3.1, 2.7e)."""
    system = await db.fetch_one(SYSTEM_SQL)
    host = FillHost(host_ip)
    servers: dict[str, TargetServer] = {}
    cps: dict[str, int] = {}
    for ip, version, prefix, server_cps, gmt, context, transfer, logs in await db.fetch_all(SERVERS_SQL):
        if ip in servers:  # no key on server_ip: the first row wins, as the Perl's fetch of one row
            continue
        servers[ip] = TargetServer(ip, perl_text(version), perl_text(prefix))
        cps[ip] = int(server_cps or 0)
        if ip == host_ip:
            gmt_text, context_text, transfer_text = perl_text(gmt), perl_text(context), perl_text(transfer)
            host = FillHost(
                host_ip,
                local_gmt=perl_num(gmt_text) if perl_true(gmt_text) else 0.0,
                ext_context=context_text if perl_true(context_text) else "",
                answer_transfer_agent=transfer_text if perl_true(transfer_text) else "",
                server_logs="Y" in perl_text(logs),
            )
    wanted = sorted(set(campaigns))
    settings: dict[str, CampaignDialSettings] = {}
    if wanted:
        columns = ", ".join(f"c.{name}" for name in CAMPAIGN_COLUMNS)
        rows = await db.fetch_all(
            f"SELECT c.campaign_id, {columns}, sc.container_entry FROM vicidial_campaigns c"
            " LEFT JOIN vicidial_settings_containers sc ON sc.container_id = c.dial_timeout_lead_container"
            f" WHERE c.campaign_id IN ({_marks(len(wanted))})",
            wanted,
        )
        for row in rows:
            values = {name: perl_text(value) for name, value in zip(CAMPAIGN_COLUMNS, row[1:-1], strict=True)}
            entry = row[-1]
            settings[row[0]] = CampaignDialSettings(
                row[0], **values, container_entry=None if entry is None else perl_text(entry)
            )
    return DialContext(
        host=host,
        servers=servers,
        server_cps=cps,
        outbound_calls_per_second=None if system is None or system[0] is None else int(system[0]),
        call_limit_24hour=system is not None and perl_num(system[1]) > 0,
        campaigns=settings,
    )


# -- claim and the claimed rows ---------------------------------------------------------------


@dataclass(frozen=True)
class ClaimedRow:
    """A claimed (or, for a dry run, peeked) hopper row with its lead and list."""

    hopper: HopperEntry
    lead: Lead | None
    lists: ListOverrides | None


_LEAD_SELECT = ", ".join(f"l.`{name}`" for name in LEAD_TEXT_FIELDS)
_ROWS_SQL = (
    "SELECT h.hopper_id, h.lead_id, h.campaign_id, h.user, h.alt_dial, h.source, h.priority,"
    f" l.lead_id, {_LEAD_SELECT}, ls.list_id, ls.campaign_cid_override, ls.cid_group_id, ls.dial_prefix"
    " FROM vicidial_hopper h"
    " LEFT JOIN vicidial_list l ON l.lead_id = h.lead_id"
    " LEFT JOIN vicidial_lists ls ON ls.list_id = l.list_id"
)


def _claimed_row(row: Sequence[Any]) -> ClaimedRow:
    hopper_id, lead_id, campaign, user, alt_dial, source, priority = row[:7]
    hopper = HopperEntry(
        int(hopper_id),
        int(lead_id),
        perl_text(campaign),
        perl_text(user),
        perl_text(alt_dial),
        perl_text(source),
        int(priority or 0),
    )
    lead_fields = row[8 : 8 + len(LEAD_TEXT_FIELDS)]
    lead = (
        None
        if row[7] is None
        else Lead(int(row[7]), {n: perl_text(v) for n, v in zip(LEAD_TEXT_FIELDS, lead_fields, strict=True)})
    )
    list_row = row[8 + len(LEAD_TEXT_FIELDS) :]
    lists = (
        None
        if list_row[0] is None
        else ListOverrides(perl_text(list_row[1]), perl_text(list_row[2]), perl_text(list_row[3]))
    )
    return ClaimedRow(hopper, lead, lists)


def _claim_statement(campaign_id: str, server_ip: str, count: int, fence: Fence | None) -> Statement:
    """The Perl's claim of up to ``count`` READY rows of a campaign for a server, fenced."""
    fenced = f" AND {fence.sql}" if fence is not None else ""
    params: list[Any] = [claim_tag(server_ip), campaign_id]
    if fence is not None:
        params.extend(fence.params)
    params.append(int(count))
    return (
        "UPDATE vicidial_hopper SET status = 'QUEUE', user = %s WHERE campaign_id = %s AND status = 'READY'"
        f"{fenced} ORDER BY priority DESC, hopper_id LIMIT %s",
        params,
    )


async def claim(db: Database, campaign_id: str, server_ip: str, count: int, fence: Fence | None) -> int:
    """Claim up to ``count`` READY rows of a campaign for a server; how many were claimed."""
    if count <= 0:
        return 0
    result = await db.execute(*_claim_statement(campaign_id, server_ip, count, fence))
    return result.rowcount


async def claim_and_read(
    db: Database, campaign_id: str, server_ip: str, count: int, fence: Fence | None
) -> tuple[int, list[ClaimedRow]]:
    """The claim and the read of the rows it took, with their lead and list, in one round trip:
    how many rows were claimed, and those rows in the claim's order.

    The read cannot be limited to what the UPDATE took (LIMIT takes no expression): it reads up to
    ``count`` rows under the tag and keeps the first as many as were claimed, the rows a read with
    that limit returns (every QUEUE row of the campaign under the tag is this claim's while the
    server's lock is held). ``BatchError`` index 1: claimed, the read failed.
    """
    if count <= 0:
        return 0, []
    results, rows = await db.write_then_read(
        [_claim_statement(campaign_id, server_ip, count, fence)],
        f"{_ROWS_SQL} WHERE h.campaign_id = %s AND h.status = 'QUEUE' AND h.user = %s"
        " ORDER BY h.priority DESC, h.hopper_id LIMIT %s",
        (campaign_id, claim_tag(server_ip), int(count)),
    )
    claimed = results[0].rowcount
    return claimed, [_claimed_row(row) for row in rows[:claimed]]


async def peek_ready(db: Database, campaign_id: str, count: int) -> list[ClaimedRow]:
    """The READY rows a claim would take next (``--dry-run``: nothing is written)."""
    rows = await db.fetch_all(
        f"{_ROWS_SQL} WHERE h.campaign_id = %s AND h.status = 'READY'"
        " ORDER BY h.priority DESC, h.hopper_id LIMIT %s",
        (campaign_id, int(count)),
    )
    return [_claimed_row(row) for row in rows]


async def mark_incall(db: Database, hopper_ids: Sequence[int]) -> None:
    """QUEUE -> INCALL for the rows about to be dialed (spec 2.7c)."""
    for batch in _chunks(list(hopper_ids)):
        await db.execute(
            f"UPDATE vicidial_hopper SET status = 'INCALL' WHERE hopper_id IN ({_marks(len(batch))})",
            batch,
            idempotent=True,
        )


async def release_claims(db: Database, rows: Sequence[HopperEntry]) -> int:
    """Claimed rows back to READY (``user=''``); only rows still carrying their claim tag."""
    released = 0
    for batch in _chunks(list(rows)):
        tags = sorted({row.user for row in batch})
        result = await db.execute(
            "UPDATE vicidial_hopper SET status = 'READY', user = ''"
            f" WHERE hopper_id IN ({_marks(len(batch))}) AND status IN ('QUEUE', 'INCALL')"
            f" AND user IN ({_marks(len(tags))})",
            [row.hopper_id for row in batch] + tags,
            idempotent=True,
        )
        released += result.rowcount
    return released


async def release_tag(db: Database, campaign_id: str, server_ip: str) -> int:
    """Every QUEUE row of a campaign under a server's claim tag back to READY (a claim whose rows could
    not be read; only safe while that server's claims are serialized, as the dialer does)."""
    result = await db.execute(
        "UPDATE vicidial_hopper SET status = 'READY', user = ''"
        " WHERE campaign_id = %s AND status = 'QUEUE' AND user = %s",
        (campaign_id, claim_tag(server_ip)),
        idempotent=True,
    )
    return result.rowcount


async def delete_hopper_leads(db: Database, lead_ids: Sequence[int]) -> int:
    """``DELETE FROM vicidial_hopper WHERE lead_id`` (spec 2.7m): every hopper row of those leads."""
    deleted = 0
    for batch in _chunks(sorted(set(lead_ids))):
        result = await db.execute(
            f"DELETE FROM vicidial_hopper WHERE lead_id IN ({_marks(len(batch))})", batch, idempotent=True
        )
        deleted += result.rowcount
    return deleted


# -- conditional reads of a batch -------------------------------------------------------------


async def read_alt_phones(db: Database, lead_ids: Sequence[int]) -> dict[int, list[AltPhone]]:
    found: dict[int, list[AltPhone]] = {}
    for batch in _chunks(sorted(set(lead_ids))):
        rows = await db.fetch_all(
            "SELECT lead_id, alt_phone_id, alt_phone_count, phone_code, phone_number"
            f" FROM vicidial_list_alt_phones WHERE lead_id IN ({_marks(len(batch))}) ORDER BY alt_phone_id",
            batch,
        )
        for lead_id, alt_id, count, code, number in rows:
            found.setdefault(int(lead_id), []).append(
                AltPhone(
                    int(alt_id), None if count is None else int(count), perl_text(code), perl_text(number)
                )
            )
    return found


async def read_callbacks(db: Database, lead_ids: Sequence[int]) -> dict[int, Callback]:
    """Each lead's first ``status='LIVE' AND recipient='ANYONE'`` callback (spec 2.7l)."""
    found: dict[int, Callback] = {}
    for batch in _chunks(sorted(set(lead_ids))):
        rows = await db.fetch_all(
            "SELECT lead_id, callback_id, callback_time, lead_status, list_id FROM vicidial_callbacks"
            f" WHERE lead_id IN ({_marks(len(batch))}) AND status = 'LIVE' AND recipient = 'ANYONE'"
            " ORDER BY callback_id",
            batch,
        )
        for lead_id, callback_id, when, status, list_id in rows:
            found.setdefault(
                int(lead_id),
                Callback(
                    int(callback_id), when, perl_text(status), None if list_id is None else int(list_id)
                ),
            )
    return found


async def read_phone_code_states(db: Database, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """``SELECT state FROM vicidial_phone_codes WHERE country_code=? AND areacode=?`` for many keys;
    the first row of a key wins, as the Perl's one fetch."""
    wanted = sorted(set(keys))
    found: dict[tuple[str, str], str] = {}
    for batch in _chunks(wanted):
        params = [value for key in batch for value in key]
        rows = await db.fetch_all(
            "SELECT country_code, areacode, state FROM vicidial_phone_codes"
            f" WHERE (country_code, areacode) IN ({', '.join(['(%s, %s)'] * len(batch))})",
            params,
        )
        for code, areacode, state in rows:
            for key in batch:
                # country_code is numeric (the text is compared as a number), areacode as text
                if (
                    key not in found
                    and perl_num(key[0]) == float(code or 0)
                    and sql_key(key[1]) == sql_key(perl_text(areacode))
                ):
                    found[key] = perl_text(state)
    return found


async def read_cid_rows(db: Database, owners: Sequence[str]) -> list[CidRow]:
    """Active ``vicidial_campaign_cid_areacodes`` rows of CID groups or campaigns, with the group's type."""
    rows: list[CidRow] = []
    for batch in _chunks(sorted(set(owners))):
        fetched = await db.fetch_all(
            "SELECT a.campaign_id, a.areacode, a.outbound_cid, a.call_count_today, g.cid_group_type"
            " FROM vicidial_campaign_cid_areacodes a"
            " LEFT JOIN vicidial_cid_groups g ON g.cid_group_id = a.campaign_id"
            f" WHERE a.campaign_id IN ({_marks(len(batch))}) AND a.active = 'Y'"
            " ORDER BY a.campaign_id, a.areacode, a.outbound_cid",
            batch,
        )
        rows.extend(
            CidRow(perl_text(owner), perl_text(areacode), perl_text(cid), int(count or 0), perl_text(kind))
            for owner, areacode, cid, count, kind in fetched
        )
    return rows


# -- the rows of placed calls -----------------------------------------------------------------


Statement = tuple[str, Sequence[Any]]


def _insert_statements(table: str, rows: Sequence[Mapping[str, Any]], suffix: str = "") -> list[Statement]:
    """One multi-row INSERT per batch; a ``DB_NOW`` value is written as ``NOW()``."""
    if not rows:
        return []
    columns = list(rows[0])
    statements: list[Statement] = []
    for batch in _chunks(list(rows)):
        params: list[Any] = []
        values: list[str] = []
        for row in batch:
            marks = []
            for column in columns:
                value = row[column]
                if value is DB_NOW:
                    marks.append("NOW()")
                else:
                    marks.append("%s")
                    params.append(value)
            values.append("(" + ", ".join(marks) + ")")
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES {', '.join(values)}{suffix}"
        statements.append((sql, params))
    return statements


# the one coercion asked for (UPDATE IGNORE): 'Y11' stored as the ENUM error value ''
_CSLR_TRUNCATED = "Data truncated for column 'called_since_last_reset'"


def _lead_statements(calls: Sequence[OutboundCall]) -> tuple[list[Statement], bool]:
    """vicidial_list counters of the dialed leads (spec 2.7i), one statement per batch; whether one
    of them is an UPDATE IGNORE (``_CSLR_TRUNCATED`` is then expected)."""
    statements: list[Statement] = []
    ignoring = False
    for batch in _chunks(list(calls)):
        ignore = " IGNORE" if any(call.cslr_overflow for call in batch) else ""
        ignoring = ignoring or bool(ignore)
        params: list[Any] = []
        cases = []
        for column in ("called_since_last_reset", "called_count", "last_local_call_time"):
            whens = []
            for call in batch:
                whens.append("WHEN %s THEN %s")
                params.extend((call.lead_id, call.lead_update()[column]))
            cases.append(f"{column} = CASE lead_id {' '.join(whens)} ELSE {column} END")
        params.extend(call.lead_id for call in batch)
        statements.append((
            f"UPDATE{ignore} vicidial_list SET {', '.join(cases)}, user = 'VDAD'"
            f" WHERE lead_id IN ({_marks(len(batch))})",
            params,
        ))
    return statements, ignoring


def _daily_statements(calls: Sequence[OutboundCall]) -> list[Statement]:
    """The two daily-count upserts (spec 2.7j), each count held to its TINYINT UNSIGNED range."""
    return _insert_statements(
        "vicidial_lead_call_daily_counts",
        [{**call.daily_lead_row(), "called_count_total": 1, "called_count_auto": 1} for call in calls],
        " ON DUPLICATE KEY UPDATE modify_date = NOW(), list_id = VALUES(list_id),"
        f" called_count_total = LEAST(called_count_total + 1, {DAILY_COUNT_MAX}),"
        f" called_count_auto = LEAST(called_count_auto + 1, {DAILY_COUNT_MAX})",
    ) + _insert_statements(
        "vicidial_phone_number_call_daily_counts",
        [{**call.daily_phone_row(), "called_count": 1} for call in calls],
        " ON DUPLICATE KEY UPDATE modify_date = NOW(),"
        f" called_count = LEAST(called_count + 1, {DAILY_COUNT_MAX})",
    )


async def mark_attempt_sent(db: Database, call_id: str, server_ip: str, status: str = "SENT") -> None:
    await db.execute(
        "UPDATE vicidial_manager SET status = %s WHERE callerid = %s AND server_ip = %s"
        " AND action = 'Originate' AND status = 'DEAD'",
        (status, call_id, server_ip),
        idempotent=True,
    )


async def settle_attempt(db: Database, call: OutboundCall, went_out: bool) -> None:
    """An Originate that got no answer, decided: it went out (its Originate row SENT, its hopper
    row deleted) or it did not (its rows undone, its lead back to READY)."""
    if went_out:
        await mark_attempt_sent(db, call.call_id, call.server_ip)
        await delete_hopper_leads(db, [call.lead_id])
        return
    await undo_attempts(db, [(call.call_id, call.server_ip)])
    claim = HopperEntry(call.hopper_id, call.lead_id, call.campaign_id, claim_tag(call.server_ip))
    await release_claims(db, [claim])


def _dial_log_statements(calls: Sequence[OutboundCall]) -> list[Statement]:
    """vicidial_dial_log and vicidial_recent_ascb_calls: written with the Originate, because VICIdial
    reads them while the call is alive (FastAGI_log.pl updates the dial log at hangup, the answer AGI
    reads it; the dead-call reschedule looks the callback call up by caller_code)."""
    callbacks = [row for row in (call.recent_ascb_row() for call in calls) if row is not None]
    return _insert_statements("vicidial_dial_log", [call.dial_log_row() for call in calls]) + (
        _insert_statements("vicidial_recent_ascb_calls", callbacks)
    )


def _late_log_statements(calls: Sequence[OutboundCall]) -> list[Statement]:
    """vicidial_lead_24hour_calls and vicidial_dial_cid_log: records nothing reads while the call is
    alive (the 24-hour limit and reports count them later), so a batch may write them at its end."""
    return _insert_statements("vicidial_lead_24hour_calls", [call.lead_24hour_row() for call in calls]) + (
        _insert_statements("vicidial_dial_cid_log", [call.dial_cid_log_row() for call in calls])
    )


def _cid_pick_statements(picks: Sequence[CidPick]) -> list[Statement]:
    """``call_count_today + 1`` per pick (spec 2.9.2); ``cid_auto_rotate_calls + 1`` for NONE groups."""
    statements: list[Statement] = []
    by_row: dict[tuple[str, str, str], int] = {}
    for pick in picks:
        key = (pick.owner, pick.areacode, pick.outbound_cid)
        by_row[key] = by_row.get(key, 0) + 1
    if by_row:
        params: list[Any] = []
        whens = []
        for (owner, areacode, cid), count in by_row.items():
            whens.append("WHEN campaign_id = %s AND areacode = %s AND outbound_cid = %s THEN %s")
            params.extend((owner, areacode, cid, count))
        keys = [value for key in by_row for value in key]
        statements.append((
            "UPDATE vicidial_campaign_cid_areacodes SET call_count_today = LEAST(call_count_today +"
            f" CASE {' '.join(whens)} ELSE 0 END, {CID_COUNT_MAX})"
            f" WHERE (campaign_id, areacode, outbound_cid) IN ({', '.join(['(%s, %s, %s)'] * len(by_row))})",
            params + keys,
        ))
    groups: dict[str, int] = {}
    for pick in picks:
        if pick.rotate_group is not None:
            groups[pick.rotate_group] = groups.get(pick.rotate_group, 0) + 1
    if groups:
        params = []
        whens = []
        for group, count in groups.items():
            whens.append("WHEN %s THEN %s")
            params.extend((group, count))
        statements.append((
            "UPDATE vicidial_cid_groups SET cid_auto_rotate_calls = LEAST(cid_auto_rotate_calls +"
            f" CASE cid_group_id {' '.join(whens)} ELSE 0 END, {ROTATE_COUNT_MAX})"
            f" WHERE cid_group_id IN ({_marks(len(groups))})",
            params + list(groups),
        ))
    return statements


# -- one round trip each: the rows before a chunk's Originates, the rows after an entry's -------


@dataclass(frozen=True)
class RowsNotWritten:
    """The first table of a batch not (wholly) written, and why; the tables before it were."""

    table: str
    error: StoreError


CALL_ROW_TABLES = ("vicidial_list", "vicidial_auto_calls", "vicidial_manager", "vicidial_dial_log")


async def write_call_rows(
    db: Database, calls: Sequence[OutboundCall], manager_status: str
) -> RowsNotWritten | None:
    """The rows of a chunk of calls before their Originates, in one round trip and this order:
    vicidial_list (spec 2.7i), vicidial_auto_calls, the vicidial_manager Originate rows, the dial
    logs (read while the call is alive: ``_dial_log_statements``). ``None`` when all were written.

    A lost connection raises ``StoreUnavailable``: which of them were applied is then unknown.
    """
    leads, ignoring = _lead_statements(calls)
    parts = (
        leads,
        _insert_statements("vicidial_auto_calls", [call.auto_call_row() for call in calls]),
        _insert_statements("vicidial_manager", [call.manager_row(manager_status) for call in calls]),
        _dial_log_statements(calls),
    )
    tables = [table for table, part in zip(CALL_ROW_TABLES, parts, strict=True) for _ in part]
    with warnings.catch_warnings():
        if ignoring:
            warnings.filterwarnings("ignore", message=_CSLR_TRUNCATED)
        try:
            await db.execute_batch([statement for part in parts for statement in part])
        except BatchError as error:
            return RowsNotWritten(tables[error.index], error)
    return None


@dataclass
class FinishProblems:
    marks: StoreError | None = None
    """Originate rows not turned SENT (left DEAD: the recovery asks the server's AMI, as after a crash)."""
    records: StoreError | None = None
    """The daily counts, 24-hour, CID log rows or CID counts not (wholly) written."""
    hopper: StoreError | None = None
    """The sent leads' hopper rows not deleted (they stay INCALL: the recovery finishes the job)."""


def _sent_mark_statements(calls: Sequence[OutboundCall], status: str) -> list[Statement]:
    """Each call's Originate row from "not sent yet" (DEAD) to ``status``, by server too: one call
    id (the lead, the second) may have a refused attempt on another server."""
    return [
        (
            "UPDATE vicidial_manager SET status = %s WHERE callerid = %s AND server_ip = %s"
            " AND action = 'Originate' AND status = 'DEAD'",
            (status, call.call_id, call.server_ip),
        )
        for call in calls
    ]


async def mark_calls_sent(db: Database, calls: Sequence[OutboundCall], status: str = "SENT") -> None:
    """``_sent_mark_statements`` in one round trip."""
    await db.execute_batch(_sent_mark_statements(calls, status))


async def finish_calls(
    db: Database,
    sent: Sequence[OutboundCall],
    picks: Sequence[CidPick],
    unmarked: Sequence[OutboundCall] = (),
    sent_status: str = "SENT",
) -> FinishProblems:
    """After an entry's Originates, in one round trip: the SENT marks of the calls not marked yet,
    the daily counts (spec 2.7j), the 24-hour and CID log rows, the CID counts, and last the hopper
    rows of the sent leads deleted (spec 2.7m). A part that fails does not keep the later ones from
    being written (they are sent again on their own)."""
    problems = FinishProblems()
    marks = _sent_mark_statements(unmarked, sent_status)
    records = _daily_statements(sent) + _late_log_statements(sent) + _cid_pick_statements(picks)
    lead_ids = sorted({call.lead_id for call in sent})
    deletes: list[Statement] = [
        (f"DELETE FROM vicidial_hopper WHERE lead_id IN ({_marks(len(batch))})", batch)
        for batch in _chunks(lead_ids)
    ]
    parts = [("marks", marks), ("records", records), ("hopper", deletes)]
    while parts:
        try:
            await db.execute_batch([statement for _name, part in parts for statement in part])
            return problems
        except BatchError as error:
            index = error.index
            while index >= len(parts[0][1]):  # the part the failing statement belongs to
                index -= len(parts[0][1])
                parts.pop(0)
            setattr(problems, parts.pop(0)[0], error)
        except StoreError as error:  # lost: what was applied is unknown; the idempotent parts again
            problems.records = error
            for name, part in parts:
                if name == "records":
                    continue
                try:
                    for sql, params in part:
                        await db.execute(sql, params, idempotent=True)
                except StoreError as again:
                    setattr(problems, name, again)
            return problems
    return problems


async def undo_unsent(db: Database, calls: Sequence[OutboundCall]) -> None:
    """Rows of calls that were written but never left: the vac row goes, the Originate row is DEAD."""
    ids = [call.call_id for call in calls]
    for batch in _chunks(ids):
        await db.execute(
            f"DELETE FROM vicidial_auto_calls WHERE callerid IN ({_marks(len(batch))})"
            " AND call_type = 'OUTBALANCE' AND status = 'SENT'",
            batch,
            idempotent=True,
        )
        await db.execute(
            f"UPDATE vicidial_manager SET status = 'DEAD' WHERE callerid IN ({_marks(len(batch))})"
            " AND action = 'Originate' AND status IN ('NEW', 'SENT')",
            batch,
            idempotent=True,
        )


async def undo_attempts(db: Database, attempts: Sequence[tuple[str, str]]) -> None:
    """``undo_unsent`` for ``(call id, server)`` pairs the recovery found never went out."""
    for call_id, server in attempts:
        await db.execute(
            "DELETE FROM vicidial_auto_calls WHERE callerid = %s AND server_ip = %s"
            " AND call_type = 'OUTBALANCE' AND status = 'SENT'",
            (call_id, server),
            idempotent=True,
        )


# -- after the calls: campaigns and lists -----------------------------------------------------


async def write_balance_fill(db: Database, fills: Mapping[str, int]) -> None:
    """``balance_trunk_fill`` per campaign (spec 2.8), one statement; SMALLINT UNSIGNED range."""
    if not fills:
        return
    campaigns = sorted(fills)
    params: list[Any] = []
    whens = []
    for campaign in campaigns:
        whens.append("WHEN %s THEN %s")
        params.extend((campaign, max(0, min(65535, int(fills[campaign])))))
    await db.execute(
        f"UPDATE vicidial_campaign_stats SET balance_trunk_fill = CASE campaign_id {' '.join(whens)}"
        f" ELSE balance_trunk_fill END WHERE campaign_id IN ({_marks(len(campaigns))})",
        params + campaigns,
        idempotent=True,
    )


async def reset_balance_fill(db: Database) -> None:
    """No balance server or no shortage: every campaign's ``balance_trunk_fill`` is 0 (spec 2.2.7)."""
    await db.execute("UPDATE vicidial_campaign_stats SET balance_trunk_fill = 0", idempotent=True)


async def write_campaign_calldate(db: Database, campaigns: Iterable[str], when: str) -> None:
    """``campaign_calldate`` of the campaigns that placed calls (spec 2.8)."""
    wanted = sorted(set(campaigns))
    if wanted:
        await db.execute(
            "UPDATE vicidial_campaigns SET campaign_calldate = %s"
            f" WHERE campaign_id IN ({_marks(len(wanted))})",
            [when, *wanted],
            idempotent=True,
        )


async def write_list_lastcalldate(db: Database, list_ids: Iterable[int], when: str) -> None:
    """``list_lastcalldate`` of the lists dialed (spec 2.11)."""
    wanted = sorted(set(list_ids))
    if wanted:
        await db.execute(
            f"UPDATE vicidial_lists SET list_lastcalldate = %s WHERE list_id IN ({_marks(len(wanted))})",
            [when, *wanted],
            idempotent=True,
        )


# -- start-up recovery ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StaleClaim:
    hopper_id: int
    lead_id: int
    campaign_id: str
    user: str
    status: str
    originated: bool = False
    """An OUTBALANCE Originate row of this lead exists and is not DEAD (the call went out: NEW is
    sent by AST_manager_send.pl; DEAD is an Originate refused, undone or not sent yet)."""
    unconfirmed: tuple[tuple[str, str], ...] = ()
    """``(call id, server)`` of this lead's DEAD Originate rows whose ``vicidial_auto_calls`` row is
    still there: written, and maybe sent (a crash right after the write, or no reply from Asterisk).
    Only the server's AMI can tell (``went_out`` of ``recover_claims``)."""
    unsent: tuple[tuple[str, str], ...] = ()
    """``(call id, server)`` of this lead's SENT ``vicidial_auto_calls`` rows with no Originate row
    at all: stopped between the two inserts, so the Originate cannot have left (its row comes first
    in both ways of sending). Undone without asking anyone: left, each would count as a line."""

    @property
    def key(self) -> tuple[int, int, str, str]:
        return (self.hopper_id, self.lead_id, self.user, self.status)

    @property
    def entry(self) -> HopperEntry:
        return HopperEntry(self.hopper_id, self.lead_id, self.campaign_id, self.user)


@dataclass
class Recovery:
    released: list[StaleClaim] = field(default_factory=list)
    deleted: list[StaleClaim] = field(default_factory=list)
    undecided: list[StaleClaim] = field(default_factory=list)
    """Claims whose call may have gone out and the server cannot tell yet: looked at again later."""


async def find_stale_claims(
    db: Database, now: datetime, placed_window: timedelta = PLACED_WINDOW
) -> list[StaleClaim]:
    """Every FILL claim (``VDFC_`` tag) in QUEUE or INCALL, with whether its call went out."""
    since = (now - placed_window).replace(microsecond=0)
    rows = await db.fetch_all(
        "SELECT h.hopper_id, h.lead_id, h.campaign_id, h.user, h.status,"
        " h.status = 'INCALL' AND EXISTS(SELECT 1 FROM vicidial_manager m WHERE m.action = 'Originate'"
        "  AND m.callerid LIKE 'V%%' AND SUBSTRING(m.callerid, 11, 10) = LPAD(h.lead_id, 10, '0')"
        "  AND m.cmd_line_k LIKE '%%|OUTBALANCE|%%' AND m.status <> 'DEAD' AND m.entry_date >= %s)"
        " FROM vicidial_hopper h WHERE h.user LIKE 'VDFC\\_%%' AND h.status IN ('QUEUE', 'INCALL')"
        " ORDER BY h.hopper_id",
        (since,),
    )
    claims = [
        StaleClaim(int(hid), int(lead), perl_text(camp), perl_text(user), perl_text(status), bool(placed))
        for hid, lead, camp, user, status, placed in rows
    ]
    doubtful = [c for c in claims if c.status == "INCALL" and not c.originated]
    if not doubtful:
        return claims
    attempts: dict[int, list[tuple[str, str]]] = {}
    unsent: dict[int, list[tuple[str, str]]] = {}
    for batch in _chunks([c.lead_id for c in doubtful]):
        found = await db.fetch_all(
            # an attempt is its vicidial_auto_calls row with a DEAD Originate row (not marked sent),
            # or with none at all (see StaleClaim.unsent)
            "SELECT vac.lead_id, vac.callerid, vac.server_ip, m.callerid IS NOT NULL"
            " FROM vicidial_auto_calls vac"
            " LEFT JOIN vicidial_manager m ON m.callerid = vac.callerid AND m.server_ip = vac.server_ip"
            "  AND m.action = 'Originate'"
            f" WHERE vac.call_type = 'OUTBALANCE' AND vac.lead_id IN ({_marks(len(batch))})"
            "  AND (m.status = 'DEAD' OR (m.callerid IS NULL AND vac.status = 'SENT'))"
            " ORDER BY vac.auto_call_id",
            list(batch),
        )
        for lead, callerid, server, has_originate_row in found:
            kind = attempts if has_originate_row else unsent
            kind.setdefault(int(lead), []).append((perl_text(callerid), perl_text(server)))
    return [
        replace(
            claim,
            unconfirmed=tuple(attempts.get(claim.lead_id, ())),
            unsent=tuple(unsent.get(claim.lead_id, ())),
        )
        if claim in doubtful
        else claim
        for claim in claims
    ]


WentOut = Callable[[str, str], bool | None]
"""``(call id, server) -> True`` (the server had the call), ``False`` (it had not), ``None`` (cannot tell)."""


async def recover_claims(
    db: Database, stale: Sequence[StaleClaim], went_out: WentOut | None = None
) -> Recovery:
    """Release the claims whose call never went out, delete the hopper rows of those that did.

    A claim with unconfirmed attempts is decided by ``went_out`` (the service's AMI view); without an
    answer (no ``went_out``, or ``None``) it is left for a later pass. The rows of attempts that did
    not go out are undone (``undo_unsent``), so they are not counted as calls in flight.
    """
    recovery = Recovery()
    placed: list[StaleClaim] = []
    unplaced: list[StaleClaim] = []
    undo: list[tuple[str, str]] = []
    confirmed: list[tuple[str, str]] = []
    for claim in stale:
        undo.extend(claim.unsent)
        if claim.originated:
            placed.append(claim)
            continue
        answers = [None if went_out is None else went_out(cid, server) for cid, server in claim.unconfirmed]
        if any(answer is True for answer in answers):
            placed.append(claim)
            confirmed.extend(a for a, ok in zip(claim.unconfirmed, answers, strict=True) if ok)
        elif any(answer is None for answer in answers):
            recovery.undecided.append(claim)
        else:
            unplaced.append(claim)
            undo.extend(claim.unconfirmed)
    if undo:
        await undo_attempts(db, undo)
    for call_id, server in confirmed:
        await mark_attempt_sent(db, call_id, server)
    for batch in _chunks(placed):
        result = await db.execute(
            f"DELETE FROM vicidial_hopper WHERE hopper_id IN ({_marks(len(batch))})"
            " AND status = 'INCALL' AND user LIKE 'VDFC\\_%%'",
            [claim.hopper_id for claim in batch],
            idempotent=True,
        )
        if result.rowcount:
            recovery.deleted.extend(batch)
    if unplaced:
        await release_claims(db, [claim.entry for claim in unplaced])
        recovery.released.extend(unplaced)
    return recovery
