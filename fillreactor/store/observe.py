"""Cheap reads of what the Perl FILL did, for shadow mode (``fillreactor.shadow``). Reads only.

Rules this module keeps (spec/VICIDIAL_FILL.md 2.7t, 2.8, 5.4, 5.5, 6.5, 6.7, 6.12):

* The Perl FILL's calls are its OUTBALANCE ``vicidial_auto_calls`` rows (``SENT``, the V call id,
  ``call_time`` = its loop time) and their ``vicidial_manager`` Originate rows (inserted just
  before, same ``callerid``, ``VDACnote ...|OUTBALANCE|...`` in ``cmd_line_k``).
* New rows are read by increasing id: ``auto_call_id > last`` / ``man_id > last``, in id order,
  a bounded batch at a time; auto-increment ids only grow, so nothing is read twice and nothing
  inserted later is missed. ``vicidial_manager`` (MyISAM, grows all day) is read as a range of its
  primary key. ``vicidial_auto_calls`` is a MEMORY table holding only live calls: its primary key
  is a HASH index, so MariaDB tests the ``>`` over those few hundred rows, but only new rows are
  sent. A row that lived less than one poll interval is not seen.
* Which of the Perl's calls still exist is asked by primary key (``IN`` of the ids seen alive);
  the only whole read of the OUTBALANCE rows is ``balance_calls`` at start-up.
* ``shortage_rows`` is the Perl FILL's input (spec 2.2.3: ``local_trunk_shortage > 0`` and
  ``update_time`` within 1200 s, here on the database's clock) with each row's age in seconds;
  ``balance_trunk_fill`` is the small per-campaign column the Perl writes after each campaign (2.8).
* Every value is a bound parameter; ids are integers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fillreactor.store.database import Database

BATCH = 500
STATS_FRESH_SECONDS = 1200
VDACNOTE_OUTBALANCE = "%|OUTBALANCE|%"

_CALL_COLUMNS = "auto_call_id, server_ip, campaign_id, callerid, call_time, status"
LAST_AUTO_CALL_SQL = "SELECT COALESCE(MAX(auto_call_id), 0) FROM vicidial_auto_calls"
BALANCE_CALLS_SQL = (
    f"SELECT {_CALL_COLUMNS} FROM vicidial_auto_calls WHERE call_type = 'OUTBALANCE' ORDER BY auto_call_id"
)
NEW_BALANCE_CALLS_SQL = (
    f"SELECT {_CALL_COLUMNS} FROM vicidial_auto_calls"
    " WHERE auto_call_id > %s AND call_type = 'OUTBALANCE' ORDER BY auto_call_id LIMIT %s"
)
PRESENT_SQL = "SELECT auto_call_id FROM vicidial_auto_calls WHERE auto_call_id IN ({marks})"
LAST_MANAGER_SQL = "SELECT COALESCE(MAX(man_id), 0) FROM vicidial_manager"
NEW_ORIGINATES_SQL = (
    "SELECT man_id, server_ip, callerid, status, entry_date FROM vicidial_manager"
    " WHERE man_id > %s AND action = 'Originate' AND cmd_line_k LIKE %s ORDER BY man_id LIMIT %s"
)
SHORTAGE_ROWS_SQL = (
    "SELECT campaign_id, server_ip, local_trunk_shortage,"
    " UNIX_TIMESTAMP(NOW()) - UNIX_TIMESTAMP(update_time) FROM vicidial_campaign_server_stats"
    f" WHERE local_trunk_shortage > 0 AND update_time > NOW() - INTERVAL {STATS_FRESH_SECONDS} SECOND"
    " ORDER BY campaign_id, server_ip"
)
BALANCE_FILL_SQL = "SELECT campaign_id, balance_trunk_fill FROM vicidial_campaign_stats ORDER BY campaign_id"


@dataclass(frozen=True, slots=True)
class BalanceCallRow:
    auto_call_id: int
    server_ip: str
    campaign_id: str
    callerid: str
    call_time: datetime | None
    status: str


@dataclass(frozen=True, slots=True)
class OriginateRow:
    man_id: int
    server_ip: str
    callerid: str
    status: str
    entry_date: datetime | None


@dataclass(frozen=True, slots=True)
class ShortageRow:
    campaign_id: str
    server_ip: str
    shortage: int
    age: float
    """Seconds since ``update_time`` (database clock)."""


def _call(row: Sequence[Any]) -> BalanceCallRow:
    auto_call_id, server, campaign, callerid, call_time, status = row
    return BalanceCallRow(
        int(auto_call_id),
        str(server),
        campaign or "",
        callerid or "",
        call_time if isinstance(call_time, datetime) else None,
        status or "",
    )


async def last_auto_call_id(db: Database) -> int:
    return int(await db.fetch_value(LAST_AUTO_CALL_SQL, default=0) or 0)


async def last_manager_id(db: Database) -> int:
    return int(await db.fetch_value(LAST_MANAGER_SQL, default=0) or 0)


async def balance_calls(db: Database) -> list[BalanceCallRow]:
    """Every OUTBALANCE row there now (start-up: the calls already in flight)."""
    return [_call(row) for row in await db.fetch_all(BALANCE_CALLS_SQL)]


async def new_balance_calls(db: Database, after_id: int, limit: int = BATCH) -> list[BalanceCallRow]:
    """OUTBALANCE rows with ``auto_call_id > after_id``, oldest first, at most ``limit``."""
    rows = await db.fetch_all(NEW_BALANCE_CALLS_SQL, (int(after_id), int(limit)))
    return [_call(row) for row in rows]


async def present_auto_calls(db: Database, ids: Iterable[int]) -> set[int]:
    """Which of ``ids`` still have their ``vicidial_auto_calls`` row (primary-key lookups)."""
    wanted = sorted({int(i) for i in ids})
    present: set[int] = set()
    for start in range(0, len(wanted), BATCH):
        batch = wanted[start : start + BATCH]
        marks = ", ".join(["%s"] * len(batch))
        present.update(int(r[0]) for r in await db.fetch_all(PRESENT_SQL.format(marks=marks), batch))
    return present


async def new_fill_originates(db: Database, after_id: int, limit: int = BATCH) -> list[OriginateRow]:
    """FILL Originate rows (VDACnote says OUTBALANCE) with ``man_id > after_id``, oldest first."""
    rows = await db.fetch_all(NEW_ORIGINATES_SQL, (int(after_id), VDACNOTE_OUTBALANCE, int(limit)))
    return [
        OriginateRow(
            int(man_id),
            str(server),
            callerid or "",
            status or "",
            entry_date if isinstance(entry_date, datetime) else None,
        )
        for man_id, server, callerid, status, entry_date in rows
    ]


async def shortage_rows(db: Database) -> list[ShortageRow]:
    """The shortages the Perl FILL reads now, each with its age."""
    rows = await db.fetch_all(SHORTAGE_ROWS_SQL)
    return [
        ShortageRow(campaign or "", str(server), int(shortage), float(age or 0))
        for campaign, server, shortage, age in rows
    ]


async def balance_trunk_fill(db: Database) -> dict[str, int]:
    """``vicidial_campaign_stats.balance_trunk_fill`` per campaign."""
    return {str(c): int(v or 0) for c, v in await db.fetch_all(BALANCE_FILL_SQL)}
