"""The reads of ``fillreactor check``: the schema, the leader lock's holder, signs of another FILL.

Rules this module keeps:

* Read only: nothing here writes, locks or claims. Every statement is parameterised; the only
  identifiers are constants of this module.
* The schema is compared with what fillreactor expects (``expected_schema``): every table and column
  of the shipped ``vicidial.sql`` (the tables FILL and the OUTBALANCE call lifecycle touch). The
  snapshot's optional tables and ``vicidial_campaigns`` columns (``store.snapshot.OPTIONAL_*``,
  older VICIdial versions lack them) and ``system_settings.allow_shared_dial`` are optional.
* Signs of another FILL dialing: hopper rows claimed with a ``VDFC_`` tag (the Perl FILL's and
  fillreactor's claim, spec 2.7.1: a claim lasts only while its leads are dialed), and
  ``OUTBALANCE`` calls in ``vicidial_dial_cid_log`` (one row per FILL call, spec 2.7.t.5) and
  ``vicidial_auto_calls`` placed in the last minutes. Whether they are fillreactor's own is told
  by the leader lock (``lock_holder``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from functools import cache

from fillreactor.schema import schema_statements
from fillreactor.store.database import Database
from fillreactor.store.snapshot import OPTIONAL_CAMPAIGN_COLUMNS, OPTIONAL_TABLES

COLUMNS_SQL = "SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE()"
VERSION_SQL = "SELECT VERSION()"
LOCK_HOLDER_SQL = "SELECT IS_USED_LOCK(%s)"
CLAIMS_SQL = (
    "SELECT user, status, COUNT(*) FROM vicidial_hopper WHERE user LIKE 'VDFC\\_%%'"
    " GROUP BY user, status ORDER BY user, status"
)
RECENT_CID_LOG_SQL = (
    "SELECT COUNT(*), MAX(call_date) FROM vicidial_dial_cid_log"
    " WHERE call_type = 'OUTBALANCE' AND call_date > NOW() - INTERVAL %s MINUTE"
)
RECENT_AUTO_CALLS_SQL = (
    "SELECT server_ip, COUNT(*), MAX(call_time) FROM vicidial_auto_calls"
    " WHERE call_type = 'OUTBALANCE' AND call_time > NOW() - INTERVAL %s MINUTE"
    " GROUP BY server_ip ORDER BY server_ip"
)
SYSTEM_ROWS_SQL = "SELECT COUNT(*) FROM system_settings"
BALANCE_SERVERS_SQL = "SELECT server_ip FROM servers WHERE vicidial_balance_active = 'Y'"
OPTIONAL_COLUMNS = frozenset(
    {("vicidial_campaigns", column) for column in OPTIONAL_CAMPAIGN_COLUMNS}
    | {("system_settings", "allow_shared_dial")}
)

_CREATE = re.compile(r"^\s*CREATE\s+TABLE\s+`?(\w+)`?\s*\((.*)\)[^)]*$", re.IGNORECASE | re.DOTALL)
_NOT_COLUMNS = ("PRIMARY", "UNIQUE", "INDEX", "KEY", "FULLTEXT", "CONSTRAINT", "FOREIGN", "CHECK")


@cache
def expected_schema() -> dict[str, tuple[str, ...]]:
    """Table -> its columns, in file order, from the shipped ``vicidial.sql``."""
    tables: dict[str, tuple[str, ...]] = {}
    for statement in schema_statements():
        match = _CREATE.match(statement)
        if match is None:
            continue
        columns = []
        depth, part = 0, ""
        for char in match.group(2) + ",":
            if char == "(":
                depth += 1
            elif char == ")":
                depth -= 1
            if char == "," and depth == 0:
                words = part.split()
                if words and words[0].upper() not in _NOT_COLUMNS:
                    columns.append(words[0].strip("`"))
                part = ""
            else:
                part += char
        tables[match.group(1)] = tuple(columns)
    return tables


@dataclass(frozen=True)
class SchemaReport:
    missing_tables: tuple[str, ...]
    missing_columns: tuple[tuple[str, str], ...]
    missing_optional: tuple[str, ...]
    """Optional tables and ``table.column`` names that are not there."""

    @property
    def ok(self) -> bool:
        return not self.missing_tables and not self.missing_columns


def compare_schema(present: dict[str, set[str]]) -> SchemaReport:
    """What of ``expected_schema`` is missing from ``present`` (table -> columns), optional apart."""
    missing_tables: list[str] = []
    missing_columns: list[tuple[str, str]] = []
    optional: list[str] = []
    for table, columns in expected_schema().items():
        if table not in present:
            (optional if table in OPTIONAL_TABLES else missing_tables).append(table)
            continue
        have = {c.lower() for c in present[table]}
        for column in columns:
            if column.lower() not in have:
                if (table, column) in OPTIONAL_COLUMNS:
                    optional.append(f"{table}.{column}")
                else:
                    missing_columns.append((table, column))
    return SchemaReport(tuple(missing_tables), tuple(missing_columns), tuple(optional))


async def read_schema(db: Database) -> dict[str, set[str]]:
    present: dict[str, set[str]] = {}
    for table, column in await db.fetch_all(COLUMNS_SQL):
        present.setdefault(str(table), set()).add(str(column))
    return present


async def server_version(db: Database) -> str:
    return str(await db.fetch_value(VERSION_SQL, default="?"))


async def lock_holder(db: Database, lock_name: str) -> int | None:
    """The connection id holding the leader lock, or None when it is free."""
    value = await db.fetch_value(LOCK_HOLDER_SQL, (lock_name,))
    return None if value is None else int(value)


async def fill_claims(db: Database) -> list[tuple[str, str, int]]:
    """(claim tag, hopper status, rows) of every ``VDFC_`` claim in the hopper now."""
    return [(str(u), str(s), int(n)) for u, s, n in await db.fetch_all(CLAIMS_SQL)]


@dataclass(frozen=True)
class RecentFill:
    calls_logged: int
    last_logged: datetime | None
    live_by_server: tuple[tuple[str, int], ...]


async def recent_fill_calls(db: Database, minutes: int) -> RecentFill:
    row = await db.fetch_one(RECENT_CID_LOG_SQL, (minutes,))
    count, last = (int(row[0] or 0), row[1]) if row else (0, None)
    live = await db.fetch_all(RECENT_AUTO_CALLS_SQL, (minutes,))
    return RecentFill(count, last, tuple((str(ip), int(n)) for ip, n, _ in live))


async def system_settings_rows(db: Database) -> int:
    return int(await db.fetch_value(SYSTEM_ROWS_SQL, default=0))


async def balance_servers(db: Database) -> set[str]:
    """The servers FILL places calls on (``servers.vicidial_balance_active = 'Y'``)."""
    return {str(ip) for (ip,) in await db.fetch_all(BALANCE_SERVERS_SQL)}
