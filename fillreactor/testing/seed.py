"""Seeding a VICIdial cluster state into the test database in a few lines, and reading it back.

Rules this module keeps:

* Every seeding call writes exactly the rows it says (no hidden side rows, except where VICIdial
  always pairs them: a campaign gets its ``vicidial_campaign_stats`` row) and returns what it
  created (ids, or the key it was given) so a test can assert on exact rows.
* Defaults are VICIdial-shaped: schema defaults, except where a test of FILL needs a working
  cluster (a campaign is ``RATIO`` at dial level 1 and active; agents are ``READY`` and
  ``outbound_autodial='Y'``). Any other column can be passed by its VICIdial name.
* Generated values are deterministic per ``Seeder``: phone numbers ``<areacode>555<nnnn>``,
  agent users ``agent<nnn>``, call ids built by ``fillreactor.core.callid`` from the seeder's clock.
* All values are bound parameters. Table and column names cannot be, so they are checked: a
  table must be one of the schema's ``TABLES`` and a column a plain identifier.
* Times the database should stamp (``last_update_time``, ``update_time``) are left to its
  ``CURRENT_TIMESTAMP`` default unless given, so "fresh" means fresh by the server's clock.
* Every query runs under ``asyncio.timeout``: a hung server fails the test instead of hanging it.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import aiomysql

from fillreactor.core.callid import build_call_id
from fillreactor.schema import TABLES

Row = dict[str, Any]

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
# Rows per multi-row INSERT: keeps statements well under max_allowed_packet.
_INSERT_BATCH = 500
QUERY_TIMEOUT_SECONDS = 10.0


def _table(name: str) -> str:
    if name not in TABLES:
        raise ValueError(f"unknown table {name!r}: not in the fillreactor schema")
    return f"`{name}`"


def _column(name: str) -> str:
    if not _IDENTIFIER.match(name):
        raise ValueError(f"bad column name {name!r}")
    return f"`{name}`"


def _where(where: Mapping[str, Any]) -> tuple[str, list[Any]]:
    if not where:
        return "", []
    clauses, params = [], []
    for column, value in where.items():
        if value is None:
            clauses.append(f"{_column(column)} IS NULL")
        elif isinstance(value, (list, tuple, set, frozenset)):
            values = list(value)
            if not values:
                clauses.append("FALSE")
                continue
            clauses.append(f"{_column(column)} IN ({', '.join(['%s'] * len(values))})")
            params.extend(values)
        else:
            clauses.append(f"{_column(column)} = %s")
            params.append(value)
    return " WHERE " + " AND ".join(clauses), params


def _present(values: Mapping[str, Any]) -> dict[str, Any]:
    """The values that were given: ``None`` means "leave it to the schema default"."""
    return {column: value for column, value in values.items() if value is not None}


@dataclass(frozen=True)
class Cluster:
    """What ``Seeder.cluster`` built: one campaign on a short agent server plus balance servers."""

    campaign_id: str
    list_id: int
    agent_server_ip: str
    balance_server_ips: tuple[str, ...]
    lead_ids: tuple[int, ...]
    hopper_ids: tuple[int, ...]
    live_agent_ids: tuple[int, ...]
    local_trunk_shortage: int

    @property
    def server_ips(self) -> tuple[str, ...]:
        return (self.agent_server_ip, *self.balance_server_ips)


class Seeder:
    """Writes VICIdial rows through one aiomysql connection (autocommit) and reads them back."""

    def __init__(
        self,
        connection: aiomysql.Connection,
        *,
        now: Callable[[], datetime] = datetime.now,
        query_timeout: float = QUERY_TIMEOUT_SECONDS,
    ) -> None:
        self.connection = connection
        self._now = now
        self._query_timeout = query_timeout
        self._phone_serial = 0
        self._agent_serial = 0

    def now(self) -> datetime:
        """The seeder's wall clock, to the second (VICIdial DATETIME columns have no fraction)."""
        return self._now().replace(microsecond=0)

    # -- generic SQL ---------------------------------------------------------------------------

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> tuple[int, int]:
        """Run one statement; (rowcount, lastrowid)."""
        async with asyncio.timeout(self._query_timeout):
            async with self.connection.cursor() as cursor:
                await cursor.execute(sql, tuple(params))
                return cursor.rowcount, cursor.lastrowid

    async def fetch_all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Rows of a query as dicts keyed by column name."""
        async with asyncio.timeout(self._query_timeout):
            async with self.connection.cursor(aiomysql.DictCursor) as cursor:
                await cursor.execute(sql, tuple(params))
                return list(await cursor.fetchall())

    async def rows(
        self,
        table: str,
        *,
        columns: Sequence[str] | None = None,
        order_by: str | Sequence[str] | None = None,
        **where: Any,
    ) -> list[Row]:
        """Rows of ``table`` matching ``column=value`` filters (a list/tuple value means IN, None IS NULL).

        Ordered by ``order_by`` if given, else by every selected column, so results are stable.
        """
        selected = ", ".join(_column(c) for c in columns) if columns else "*"
        clause, params = _where(where)
        if order_by is None:
            ordering = list(columns) if columns else await self._column_names(table)
        else:
            ordering = [order_by] if isinstance(order_by, str) else list(order_by)
        order = " ORDER BY " + ", ".join(_column(c) for c in ordering) if ordering else ""
        return await self.fetch_all(f"SELECT {selected} FROM {_table(table)}{clause}{order}", params)

    async def count(self, table: str, **where: Any) -> int:
        clause, params = _where(where)
        result = await self.fetch_all(f"SELECT COUNT(*) AS n FROM {_table(table)}{clause}", params)
        return int(result[0]["n"])

    async def insert(self, table: str, **values: Any) -> int:
        """Insert one row; its auto-increment id (0 for tables without one)."""
        columns = list(values)
        sql = (
            f"INSERT INTO {_table(table)} ({', '.join(_column(c) for c in columns)})"
            f" VALUES ({', '.join(['%s'] * len(columns))})"
        )
        _, last_id = await self.execute(sql, [values[c] for c in columns])
        return int(last_id or 0)

    async def insert_many(self, table: str, rows: Sequence[Mapping[str, Any]]) -> list[int]:
        """Insert rows that share the same columns; their auto-increment ids in order.

        Multi-row INSERTs on MyISAM/MEMORY take consecutive ids (table lock), so the ids are the
        first id of each batch plus the row's position in it.
        """
        if not rows:
            return []
        columns = list(rows[0])
        if any(list(row) != columns for row in rows):
            raise ValueError("insert_many: every row must have the same columns in the same order")
        row_placeholder = "(" + ", ".join(["%s"] * len(columns)) + ")"
        head = f"INSERT INTO {_table(table)} ({', '.join(_column(c) for c in columns)}) VALUES "
        ids: list[int] = []
        for start in range(0, len(rows), _INSERT_BATCH):
            batch = rows[start : start + _INSERT_BATCH]
            params = [row[c] for row in batch for c in columns]
            inserted, first_id = await self.execute(head + ", ".join([row_placeholder] * len(batch)), params)
            if inserted != len(batch):
                raise RuntimeError(f"insert_many into {table}: {inserted} of {len(batch)} rows inserted")
            ids.extend(range(first_id, first_id + len(batch)) if first_id else [0] * len(batch))
        return ids

    async def _column_names(self, table: str) -> list[str]:
        result = await self.fetch_all(
            "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE()"
            " AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION",
            (table,),
        )
        return [row["COLUMN_NAME"] for row in result]

    # -- configuration -------------------------------------------------------------------------

    async def system_settings(
        self,
        *,
        version: str = "2.14-917a",
        outbound_calls_per_second: int = 10,
        outbound_autodial_active: str = "1",
        disable_auto_dial: str = "0",
        call_limit_24hour: str = "0",
        allow_shared_dial: str = "0",
        **columns: Any,
    ) -> None:
        """The single ``system_settings`` row (any previous row is replaced)."""
        await self.execute("DELETE FROM system_settings")
        await self.insert(
            "system_settings",
            version=version,
            outbound_calls_per_second=outbound_calls_per_second,
            outbound_autodial_active=outbound_autodial_active,
            disable_auto_dial=disable_auto_dial,
            call_limit_24hour=call_limit_24hour,
            allow_shared_dial=allow_shared_dial,
            **columns,
        )

    async def server(
        self,
        server_id: str,
        server_ip: str,
        *,
        active: str = "Y",
        max_vicidial_trunks: int = 23,
        vicidial_balance_active: str = "N",
        balance_trunks_offlimits: int = 0,
        vicidial_balance_rank: int = 0,
        asterisk_version: str = "1.4.21.2",
        routing_prefix: str = "13",
        telnet_host: str = "localhost",
        telnet_port: int = 5038,
        ASTmgrUSERNAME: str = "cron",
        ASTmgrSECRET: str = "1234",
        ext_context: str = "default",
        local_gmt: str = "-5.00",
        answer_transfer_agent: str = "8365",
        **columns: Any,
    ) -> str:
        """A ``servers`` row; returns its server_ip (the join key everywhere)."""
        await self.insert(
            "servers",
            server_id=server_id,
            server_ip=server_ip,
            active=active,
            max_vicidial_trunks=max_vicidial_trunks,
            vicidial_balance_active=vicidial_balance_active,
            balance_trunks_offlimits=balance_trunks_offlimits,
            vicidial_balance_rank=vicidial_balance_rank,
            asterisk_version=asterisk_version,
            routing_prefix=routing_prefix,
            telnet_host=telnet_host,
            telnet_port=telnet_port,
            ASTmgrUSERNAME=ASTmgrUSERNAME,
            ASTmgrSECRET=ASTmgrSECRET,
            ext_context=ext_context,
            local_gmt=local_gmt,
            answer_transfer_agent=answer_transfer_agent,
            **columns,
        )
        return server_ip

    async def campaign(
        self,
        campaign_id: str = "TESTCAMP",
        *,
        campaign_name: str | None = None,
        active: str = "Y",
        dial_method: str = "RATIO",
        auto_dial_level: str = "1",
        dial_timeout: int = 60,
        dial_prefix: str = "9",
        campaign_cid: str = "0000000000",
        campaign_vdad_exten: str = "8368",
        queue_priority: int = 50,
        auto_alt_dial: str = "NONE",
        balance_trunk_fill: int = 0,
        **columns: Any,
    ) -> str:
        """A ``vicidial_campaigns`` row and its ``vicidial_campaign_stats`` row; the campaign_id."""
        await self.insert(
            "vicidial_campaigns",
            campaign_id=campaign_id,
            campaign_name=campaign_name if campaign_name is not None else f"Campaign {campaign_id}",
            active=active,
            dial_method=dial_method,
            auto_dial_level=auto_dial_level,
            dial_timeout=dial_timeout,
            dial_prefix=dial_prefix,
            campaign_cid=campaign_cid,
            campaign_vdad_exten=campaign_vdad_exten,
            queue_priority=queue_priority,
            auto_alt_dial=auto_alt_dial,
            **columns,
        )
        await self.insert(
            "vicidial_campaign_stats", campaign_id=campaign_id, balance_trunk_fill=balance_trunk_fill
        )
        return campaign_id

    async def lead_list(
        self,
        list_id: int = 101,
        campaign_id: str = "TESTCAMP",
        *,
        active: str = "Y",
        list_name: str | None = None,
        **columns: Any,
    ) -> int:
        """A ``vicidial_lists`` row; its list_id."""
        await self.insert(
            "vicidial_lists",
            list_id=list_id,
            campaign_id=campaign_id,
            active=active,
            list_name=list_name if list_name is not None else f"List {list_id}",
            **columns,
        )
        return list_id

    # -- leads and hopper ----------------------------------------------------------------------

    def next_phone_number(self, areacode: str = "312") -> str:
        """``<areacode>555<nnnn>``, counting up per seeder: deterministic and distinct."""
        number = f"{areacode}555{self._phone_serial:04d}"
        self._phone_serial += 1
        return number

    async def leads(
        self,
        list_id: int = 101,
        count: int = 1,
        *,
        phone_numbers: Sequence[str] | None = None,
        areacode: str = "312",
        phone_code: str = "1",
        status: str = "NEW",
        gmt_offset_now: Decimal | str = "-5.00",
        state: str = "IL",
        called_since_last_reset: str = "N",
        called_count: int = 0,
        entry_date: datetime | None = None,
        **columns: Any,
    ) -> list[int]:
        """``count`` leads in ``list_id`` (or one per given phone number); their lead_ids in order.

        Extra ``columns`` apply to every lead. ``entry_list_id`` is the list, as when VICIdial loads a lead.
        """
        numbers = (
            list(phone_numbers)
            if phone_numbers is not None
            else [self.next_phone_number(areacode) for _ in range(count)]
        )
        entered = entry_date or self.now()
        rows = [
            {
                "entry_date": entered,
                "status": status,
                "list_id": list_id,
                "gmt_offset_now": gmt_offset_now,
                "called_since_last_reset": called_since_last_reset,
                "phone_code": phone_code,
                "phone_number": number,
                "state": state,
                "called_count": called_count,
                "entry_list_id": list_id,
                **columns,
            }
            for number in numbers
        ]
        return await self.insert_many("vicidial_list", rows)

    async def lead(self, list_id: int = 101, **columns: Any) -> int:
        """One lead; its lead_id."""
        (lead_id,) = await self.leads(list_id, 1, **columns)
        return lead_id

    async def hopper(
        self,
        campaign_id: str,
        lead_ids: Sequence[int],
        *,
        status: str = "READY",
        priority: int = 0,
        alt_dial: str = "NONE",
        source: str = "",
        user: str | None = None,
        list_id: int | None = None,
    ) -> list[int]:
        """``vicidial_hopper`` rows for leads, as the hopper loader writes them; their hopper_ids.

        list_id, gmt_offset_now, state and vendor_lead_code are copied from the lead; a lead that
        does not exist (to test the "lead vanished" path) takes ``list_id`` (default 0).
        """
        leads = {
            row["lead_id"]: row
            for row in await self.rows(
                "vicidial_list",
                columns=["lead_id", "list_id", "gmt_offset_now", "state", "vendor_lead_code"],
                lead_id=list(lead_ids),
            )
        }
        rows = []
        for lead_id in lead_ids:
            lead = leads.get(lead_id, {})
            rows.append(
                {
                    "lead_id": lead_id,
                    "campaign_id": campaign_id,
                    "status": status,
                    "user": user,
                    "list_id": list_id if list_id is not None else lead.get("list_id", 0),
                    "gmt_offset_now": lead.get("gmt_offset_now") or Decimal("0.00"),
                    "state": lead.get("state") or "",
                    "alt_dial": alt_dial,
                    "priority": priority,
                    "source": source,
                    "vendor_lead_code": lead.get("vendor_lead_code") or "",
                }
            )
        return await self.insert_many("vicidial_hopper", rows)

    # -- agents, trunks, stats, calls ----------------------------------------------------------

    async def live_agent(
        self,
        server_ip: str,
        campaign_id: str,
        *,
        user: str | None = None,
        status: str = "READY",
        outbound_autodial: str = "Y",
        dial_campaign_id: str = "",
        last_update_time: datetime | None = None,
        last_call_time: datetime | None = None,
        lead_id: int = 0,
        callerid: str = "",
        conf_exten: str | None = None,
        extension: str | None = None,
        **columns: Any,
    ) -> int:
        """A ``vicidial_live_agents`` row; its live_agent_id.

        ``last_update_time`` defaults to the server's now (the agent counts as logged in);
        ``user``/``conf_exten``/``extension`` are generated (agent001, 8600051, SIP/agent001).
        """
        serial = self._agent_serial
        self._agent_serial += 1
        user = user or f"agent{serial + 1:03d}"
        return await self.insert(
            "vicidial_live_agents",
            **_present(
                {
                    "user": user,
                    "server_ip": server_ip,
                    "conf_exten": conf_exten or str(8600051 + serial),
                    "extension": extension or f"SIP/{user}",
                    "status": status,
                    "lead_id": lead_id,
                    "campaign_id": campaign_id,
                    "callerid": callerid,
                    "last_call_time": last_call_time or self.now(),
                    "last_update_time": last_update_time,
                    "outbound_autodial": outbound_autodial,
                    "dial_campaign_id": dial_campaign_id,
                    **columns,
                }
            ),
        )

    async def live_agents(self, count: int, server_ip: str, campaign_id: str, **options: Any) -> list[int]:
        """``count`` agents alike (see ``live_agent``); their live_agent_ids."""
        return [await self.live_agent(server_ip, campaign_id, **options) for _ in range(count)]

    async def server_trunk(
        self,
        server_ip: str,
        campaign_id: str,
        dedicated_trunks: int,
        trunk_restriction: str = "OVERFLOW_ALLOWED",
    ) -> None:
        """A ``vicidial_server_trunks`` row (VICIdial keeps one per campaign and server)."""
        await self.insert(
            "vicidial_server_trunks",
            server_ip=server_ip,
            campaign_id=campaign_id,
            dedicated_trunks=dedicated_trunks,
            trunk_restriction=trunk_restriction,
        )

    async def campaign_server_stats(
        self,
        campaign_id: str,
        server_ip: str,
        local_trunk_shortage: int = 0,
        *,
        update_time: datetime | None = None,
    ) -> None:
        """A ``vicidial_campaign_server_stats`` row as AST_VDauto_dial.pl writes it.

        ``update_time`` defaults to the server's now; no uniqueness is enforced, like VICIdial.
        """
        await self.insert(
            "vicidial_campaign_server_stats",
            **_present(
                {
                    "campaign_id": campaign_id,
                    "server_ip": server_ip,
                    "local_trunk_shortage": local_trunk_shortage,
                    "update_time": update_time,
                }
            ),
        )

    async def auto_call(
        self,
        server_ip: str,
        campaign_id: str,
        *,
        lead_id: int = 0,
        status: str = "SENT",
        call_type: str = "OUT",
        callerid: str | None = None,
        phone_code: str = "1",
        phone_number: str | None = None,
        call_time: datetime | None = None,
        alt_dial: str = "MAIN",
        queue_priority: int = 50,
        uniqueid: str | None = None,
        channel: str | None = None,
        **columns: Any,
    ) -> int:
        """A ``vicidial_auto_calls`` row; its auto_call_id.

        ``callerid`` defaults to the ``V`` call id of ``lead_id`` at ``call_time`` (the seeder's now),
        ``phone_number`` to the next generated number.
        """
        placed = call_time or self.now()
        return await self.insert(
            "vicidial_auto_calls",
            **_present(
                {
                    "server_ip": server_ip,
                    "campaign_id": campaign_id,
                    "status": status,
                    "lead_id": lead_id,
                    "uniqueid": uniqueid,
                    "callerid": callerid if callerid is not None else build_call_id(placed, lead_id),
                    "channel": channel,
                    "phone_code": phone_code,
                    "phone_number": phone_number or self.next_phone_number(),
                    "call_time": placed,
                    "call_type": call_type,
                    "alt_dial": alt_dial,
                    "queue_priority": queue_priority,
                    **columns,
                }
            ),
        )

    async def auto_calls(self, count: int, server_ip: str, campaign_id: str, **options: Any) -> list[int]:
        """``count`` calls alike (see ``auto_call``); lead ids count up from ``lead_id``: call ids differ."""
        first_lead = options.pop("lead_id", 1)
        return [
            await self.auto_call(server_ip, campaign_id, lead_id=first_lead + offset, **options)
            for offset in range(count)
        ]

    # -- a whole cluster -----------------------------------------------------------------------

    async def cluster(
        self,
        *,
        campaign_id: str = "FILLTEST",
        list_id: int = 1001,
        auto_dial_level: str = "3",
        agents: int = 4,
        agent_server_trunks: int = 6,
        local_trunk_shortage: int = 6,
        balance_server_trunks: int = 23,
        leads: int = 20,
        asterisk_version: str = "18.21.0",
    ) -> Cluster:
        """The typical FILL situation in one call.

        * ``system_settings`` (10 calls per second);
        * ``agent1`` 10.10.10.11: the agents' server, short of trunks (``agent_server_trunks`` lines,
          not balance-active), with ``agents`` READY autodial agents of the campaign and a
          ``vicidial_campaign_server_stats`` row carrying ``local_trunk_shortage``;
        * ``balance1`` 10.10.10.12 (rank 2) and ``balance2`` 10.10.10.13 (rank 1):
          ``vicidial_balance_active='Y'``, ``balance_server_trunks`` lines each;
        * the campaign (RATIO at ``auto_dial_level``) with its stats row, one active list, ``leads``
          leads and a READY hopper row for each.
        """
        await self.system_settings()
        agent_server = await self.server(
            "agent1",
            "10.10.10.11",
            max_vicidial_trunks=agent_server_trunks,
            asterisk_version=asterisk_version,
        )
        balance_servers = (
            await self.server(
                "balance1",
                "10.10.10.12",
                max_vicidial_trunks=balance_server_trunks,
                vicidial_balance_active="Y",
                vicidial_balance_rank=2,
                asterisk_version=asterisk_version,
            ),
            await self.server(
                "balance2",
                "10.10.10.13",
                max_vicidial_trunks=balance_server_trunks,
                vicidial_balance_active="Y",
                vicidial_balance_rank=1,
                asterisk_version=asterisk_version,
            ),
        )
        await self.campaign(campaign_id, auto_dial_level=auto_dial_level)
        await self.lead_list(list_id, campaign_id)
        lead_ids = await self.leads(list_id, leads)
        hopper_ids = await self.hopper(campaign_id, lead_ids)
        agent_ids = await self.live_agents(agents, agent_server, campaign_id)
        await self.campaign_server_stats(campaign_id, agent_server, local_trunk_shortage)
        return Cluster(
            campaign_id=campaign_id,
            list_id=list_id,
            agent_server_ip=agent_server,
            balance_server_ips=balance_servers,
            lead_ids=tuple(lead_ids),
            hopper_ids=tuple(hopper_ids),
            live_agent_ids=tuple(agent_ids),
            local_trunk_shortage=local_trunk_shortage,
        )
