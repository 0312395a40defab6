"""Seeding and expectations for the dialer's one-pass scenarios.

Expected rows are written here from the spec's row templates (spec/VICIDIAL_FILL.md 5.3-5.5, 2.7 t,
2.7 i-j) and the Perl's statements (bin/AST_VDauto_dial_FILL.pl 2.14, lines cited), never from
fillreactor's code: nothing in this module imports fillreactor.core.outbound_call or the dialer.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fillreactor.core.outbound_call import PassTime
from fillreactor.testing.seed import Cluster, Seeder

HOST = "10.10.10.11"  # the FILL host (VARserver_ip of the test conf): seed.cluster's agent server
B1 = "10.10.10.12"  # balance1, rank 2
B2 = "10.10.10.13"  # balance2, rank 1
CAMPAIGN = "FILLTEST"
LIST = 1001
NOW = datetime(2026, 11, 26, 10, 15, 52)

STRICT = "STRICT_ALL_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_AUTO_CREATE_USER,NO_ENGINE_SUBSTITUTION"
NON_STRICT = ""


def zone_localtime(zone: ZoneInfo):
    def localtime(epoch: int) -> tuple[datetime, bool]:
        moment = datetime.fromtimestamp(epoch, zone)
        return moment.replace(tzinfo=None), bool(moment.dst())

    return localtime


def pass_at(local: datetime, zone: str = "UTC") -> PassTime:
    """The pass "now" for a wall time of the FILL host in ``zone``."""
    tz = ZoneInfo(zone)
    epoch = int(local.replace(tzinfo=tz).timestamp()) if zone != "UTC" else calendar.timegm(local.timetuple())
    return PassTime.at(epoch, zone_localtime(tz))


def call_id(now: datetime, lead_id: int) -> str:
    """Spec 5.3: "V" + MMDDhhmmss without its first digit + the lead id padded to 10 digits."""
    return "V" + now.strftime("%m%d%H%M%S")[1:] + f"{lead_id:010d}"


def sql(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


async def fill_cluster(seed: Seeder, now: datetime = NOW, **options: Any) -> Cluster:
    """``seed.cluster`` (one campaign short on 10.10.10.11, balance servers .12 rank 2 and .13 rank 1,
    Asterisk 18) with its stats row stamped 5 s before the pass, so it is fresh (spec 2.2.3)
    whatever the real clock says."""
    cluster = await seed.cluster(**options)
    await fresh_stats(seed, now)
    return cluster


async def fresh_stats(seed: Seeder, now: datetime = NOW, age: float = 5.0) -> None:
    await seed.execute(
        "UPDATE vicidial_campaign_server_stats SET update_time = %s", (now - timedelta(seconds=age),)
    )


async def db_now(seed: Seeder) -> datetime:
    rows = await seed.fetch_all("SELECT NOW() AS now")
    return rows[0]["now"]


@dataclass
class Call:
    """One expected OUTBALANCE call: the inputs the rows are made from (defaults: seed.cluster's)."""

    lead_id: int
    server: str
    number: str
    """The phone number dialed (before any cut to a column width)."""
    campaign: str = CAMPAIGN
    list_id: int = LIST
    phone_code: str = "1"
    alt_dial: str = "NONE"
    dial_string: str | None = None
    """Default: prefix 9 + phone code + number (spec 2.7 n, p)."""
    exten: str = "138368"
    """8368 with Asterisk 18's routing prefix 13 (spec 2.7 s)."""
    context: str = "default"
    timeout: str = "60000"
    cid: str = "0000000000"
    cid_type: str = "CAMPAIGN_CID"
    """The schema default campaign_cid has 10 characters, > 6: always sent (spec 2.9 note)."""
    queue_priority: int = 50
    host: str = HOST
    tf_state: str = ""

    def id(self, now: datetime) -> str:
        return call_id(now, self.lead_id)

    def channel(self) -> str:
        dial = self.dial_string if self.dial_string is not None else "9" + self.phone_code + self.number
        return f"Local/{dial}@{self.context}"

    def cid_string(self, now: datetime) -> str:
        return f'"{self.id(now)}" <{self.cid}>' if self.cid else self.id(now)


def auto_call_row(call: Call, now: datetime, auto_call_id: int) -> dict[str, Any]:
    """Spec 5.5 / line 1302: the columns FILL sets, the rest the schema's defaults."""
    return {
        "auto_call_id": auto_call_id,
        "server_ip": call.server,
        "campaign_id": call.campaign,
        "status": "SENT",
        "lead_id": call.lead_id,
        "uniqueid": None,
        "callerid": call.id(now),
        "channel": None,
        "phone_code": call.phone_code,
        "phone_number": call.number[:18],
        "call_time": now,
        "call_type": "OUTBALANCE",
        "stage": "START",
        "alt_dial": call.alt_dial,
        "queue_priority": call.queue_priority,
        "agent_only": "",
        "agent_grab": "",
        "queue_position": 1,
        "extension": "",
        "agent_grab_extension": "",
    }


def manager_row(call: Call, now: datetime, man_id: int, status: str = "NEW") -> dict[str, Any]:
    """Spec 5.4 / line 1295: the 19 values of the Perl's positional insert."""
    note = (
        f"VDACnote: {call.campaign}|{call.lead_id}|{call.phone_code}|{call.number}|OUTBALANCE|{call.alt_dial}"
        f"|{call.queue_priority}|{call.host}|{call.cid_type}"
    )
    return {
        "man_id": man_id,
        "uniqueid": "",
        "entry_date": now,
        "status": status,
        "response": "N",
        "server_ip": call.server,
        "channel": "",
        "action": "Originate",
        "callerid": call.id(now),
        "cmd_line_b": f"Exten: {call.exten}",
        "cmd_line_c": f"Context: {call.context}",
        "cmd_line_d": f"Channel: {call.channel()}"[:200],
        "cmd_line_e": "Priority: 1",
        "cmd_line_f": f"Callerid: {call.cid_string(now)}"[:100],
        "cmd_line_g": f"Timeout: {call.timeout}",
        "cmd_line_h": "",
        "cmd_line_i": "",
        "cmd_line_j": "",
        "cmd_line_k": note[:100],  # VARCHAR(100): a non-strict server cuts it (spec 6.12)
    }


def dial_log_row(call: Call, now: datetime) -> dict[str, Any]:
    """Line 1307."""
    return {
        "caller_code": call.id(now),
        "lead_id": call.lead_id,
        "server_ip": call.server,
        "call_date": now,
        "extension": call.exten,
        "channel": call.channel()[:100],
        "context": call.context,
        "timeout": int(call.timeout),
        "outbound_cid": call.cid_string(now)[:100],
        "sip_hangup_cause": 0,
        "sip_hangup_reason": "",
        "uniqueid": "",
    }


def dial_cid_log_row(call: Call, now: datetime) -> dict[str, Any]:
    """Line 1313."""
    return {
        "caller_code": call.id(now),
        "call_date": now,
        "call_type": "OUTBALANCE",
        "call_alt": call.alt_dial,
        "outbound_cid": call.cid[:20],
        "outbound_cid_type": call.cid_type,
    }


def lead_24hour_row(call: Call) -> dict[str, Any]:
    """Line 1310 (call_date is the database's NOW(), checked apart)."""
    return {
        "lead_id": call.lead_id,
        "list_id": call.list_id,
        "phone_number": call.number[:18],
        "phone_code": call.phone_code,
        "state": call.tf_state[:2],
        "call_type": "AUTO",
    }


@dataclass
class Window:
    """The database clock before and after a pass: NOW() columns fall inside."""

    start: datetime
    end: datetime

    def holds(self, moment: datetime | None) -> bool:
        return moment is not None and self.start <= moment <= self.end


@dataclass
class Tables:
    """Every table a pass may touch, read back after it."""

    hopper: list[dict[str, Any]]
    auto_calls: list[dict[str, Any]]
    manager: list[dict[str, Any]]
    dial_log: list[dict[str, Any]]
    dial_cid_log: list[dict[str, Any]]
    lead_24hour: list[dict[str, Any]]
    daily_leads: list[dict[str, Any]]
    daily_phones: list[dict[str, Any]]
    ascb: list[dict[str, Any]]
    leads: dict[int, dict[str, Any]]
    balance_fill: dict[str, int]
    calldate: dict[str, datetime | None]
    lastcalldate: dict[int, datetime | None]
    areacodes: list[dict[str, Any]] = field(default_factory=list)
    cid_groups: list[dict[str, Any]] = field(default_factory=list)


async def read_tables(seed: Seeder) -> Tables:
    async def natural(table: str) -> list[dict[str, Any]]:
        # tables without a key: the insertion order, which is the Perl's call order
        return await seed.fetch_all(f"SELECT * FROM {table}")

    leads = {
        row["lead_id"]: row
        for row in await seed.rows(
            "vicidial_list",
            columns=[
                "lead_id",
                "called_count",
                "called_since_last_reset",
                "user",
                "last_local_call_time",
                "status",
            ],
            order_by="lead_id",
        )
    }
    return Tables(
        hopper=await seed.rows(
            "vicidial_hopper",
            columns=["hopper_id", "lead_id", "campaign_id", "status", "user"],
            order_by="hopper_id",
        ),
        auto_calls=await seed.rows("vicidial_auto_calls", order_by="auto_call_id"),
        manager=await seed.rows("vicidial_manager", order_by="man_id"),
        dial_log=await natural("vicidial_dial_log"),
        dial_cid_log=await natural("vicidial_dial_cid_log"),
        lead_24hour=await natural("vicidial_lead_24hour_calls"),
        daily_leads=await seed.rows("vicidial_lead_call_daily_counts", order_by="lead_id"),
        daily_phones=await seed.rows("vicidial_phone_number_call_daily_counts", order_by="phone_number"),
        ascb=await natural("vicidial_recent_ascb_calls"),
        leads=leads,
        balance_fill={
            r["campaign_id"]: r["balance_trunk_fill"]
            for r in await seed.rows("vicidial_campaign_stats", columns=["campaign_id", "balance_trunk_fill"])
        },
        calldate={
            r["campaign_id"]: r["campaign_calldate"]
            for r in await seed.rows("vicidial_campaigns", columns=["campaign_id", "campaign_calldate"])
        },
        lastcalldate={
            r["list_id"]: r["list_lastcalldate"]
            for r in await seed.rows("vicidial_lists", columns=["list_id", "list_lastcalldate"])
        },
        areacodes=await seed.rows("vicidial_campaign_cid_areacodes"),
        cid_groups=await seed.rows("vicidial_cid_groups", columns=["cid_group_id", "cid_auto_rotate_calls"]),
    )


def without(rows: Sequence[dict[str, Any]], *columns: str) -> list[dict[str, Any]]:
    return [{k: v for k, v in row.items() if k not in columns} for row in rows]


def assert_calls(
    tables: Tables,
    calls: Sequence[Call],
    now: datetime,
    window: Window,
    *,
    first_auto_call_id: int = 1,
    existing_auto_calls: int = 0,
    manager_status: str = "NEW",
    daily_leads: dict[int, tuple[int, int]] | None = None,
    daily_phones: dict[str, int] | None = None,
) -> None:
    """Every row the calls write, exactly (spec 2.7 i-j, t): vac, vm, the three logs, the daily counts.

    ``daily_leads``/``daily_phones`` default to one call each (a fresh day's counts are 1, line 932/934).
    """
    new_auto = tables.auto_calls[existing_auto_calls:]
    assert without(new_auto, "last_update_time") == [
        auto_call_row(call, now, first_auto_call_id + n) for n, call in enumerate(calls)
    ]
    assert all(window.holds(row["last_update_time"]) for row in new_auto)  # left to its default
    assert tables.manager == [manager_row(call, now, n + 1, manager_status) for n, call in enumerate(calls)]
    assert tables.dial_log == [dial_log_row(call, now) for call in calls]
    assert tables.dial_cid_log == [dial_cid_log_row(call, now) for call in calls]
    assert without(tables.lead_24hour, "call_date") == [lead_24hour_row(call) for call in calls]
    assert all(window.holds(row["call_date"]) for row in tables.lead_24hour)  # NOW() (line 1310)
    # daily counts: lead_id, the lead's list_id (the named correction of $PSCBlist_id), 1 per call
    expected_leads = daily_leads or {call.lead_id: (1, 1) for call in calls}
    lists = {call.lead_id: call.list_id for call in calls}
    assert without(tables.daily_leads, "modify_date") == [
        {
            "lead_id": lead,
            "list_id": lists[lead],
            "called_count_total": total,
            "called_count_auto": auto,
            "called_count_manual": 0,
        }
        for lead, (total, auto) in sorted(expected_leads.items())
    ]
    phones: dict[str, int] = {}
    for call in calls:
        phones[call.number[:18]] = phones.get(call.number[:18], 0) + 1
    expected_phones = daily_phones or phones
    assert without(tables.daily_phones, "modify_date") == [
        {"phone_number": number, "called_count": count} for number, count in sorted(expected_phones.items())
    ]
    assert all(window.holds(row["modify_date"]) for row in tables.daily_leads + tables.daily_phones)


def assert_leads_dialed(
    tables: Tables, dialed: dict[int, tuple[int, str, datetime]], untouched: Sequence[int] = ()
) -> None:
    """Line 927: called_count, called_since_last_reset, user VDAD, last_local_call_time; status kept."""
    for lead, (count, cslr, llct) in dialed.items():
        row = tables.leads[lead]
        assert (
            row["called_count"],
            row["called_since_last_reset"],
            row["user"],
            row["last_local_call_time"],
        ) == (
            count,
            cslr,
            "VDAD",
            llct,
        ), lead
        assert row["status"] == "NEW"
    for lead in untouched:
        row = tables.leads[lead]
        assert (row["user"], row["last_local_call_time"]) == (None, None), lead


def assert_nothing_written(tables: Tables) -> None:
    assert tables.auto_calls == [] and tables.manager == [] and tables.dial_log == []
    assert tables.dial_cid_log == [] and tables.lead_24hour == [] and tables.daily_leads == []
    assert tables.daily_phones == [] and tables.ascb == []
    assert all(row["user"] is None for row in tables.leads.values())


def hopper_rows(*rows: tuple[int, int, str, str | None], campaign: str = CAMPAIGN) -> list[dict[str, Any]]:
    return [
        {"hopper_id": hid, "lead_id": lead, "campaign_id": campaign, "status": status, "user": user}
        for hid, lead, status, user in rows
    ]


def ready(ids: Sequence[int], campaign: str = CAMPAIGN) -> list[dict[str, Any]]:
    """Untouched hopper rows of seed.hopper (hopper_id = lead_id, READY, user NULL)."""
    return hopper_rows(*((n, n, "READY", None) for n in ids), campaign=campaign)


def conf_text(dsn: Any, server_ip: str = HOST, logs: str = "/tmp") -> str:
    return (
        "# astguiclient.conf written by the dialer tests\n"
        f"PATHhome => /usr/share/astguiclient\nPATHlogs => {logs}\n"
        f"VARserver_ip => {server_ip}\nVARDB_server => {dsn.host}\nVARDB_database => {dsn.database}\n"
        f"VARDB_user => {dsn.user}\nVARDB_pass => {dsn.password}\nVARDB_port => {dsn.port}\n"
    )
