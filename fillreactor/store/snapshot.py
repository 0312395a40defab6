"""Snapshot reads: the database facts the shortage formula and the planner read, as one ``ClusterSnapshot``.

Rules this module keeps (spec/VICIDIAL_FILL.md 2.2-2.5, 4.1-4.4a; core/cluster.py says what each
field means; AST_VDauto_dial.pl build 240917 line numbers in brackets):

* One statement per part, each a whole-table read or one ``GROUP BY`` (the tables are small or
  MEMORY): system_settings, servers, vicidial_campaigns, vicidial_server_trunks (every row, in
  table order), the counted agents (``vicidial_live_agents`` grouped with whether each agent's
  callerid has a ``vicidial_auto_calls`` row, and the first agent's ``last_call_time`` that orders
  the campaigns [822-827]), FILL's agent gate, ``vicidial_auto_calls`` grouped by server,
  campaign, call type, status and callerid family (V, M, Y or other: ``core/lines.py``), and the
  inputs of the inbound and threshold terms: READY agents for the BLENDED override [905-914], the
  in-call tally threshold counts [1036-1085], the drop in-group agents [1093-1134], the inbound
  no-agents no-dial inputs [1297-1362], waiting chats and queued callbacks [1257-1277], fresh
  shared drops [745-756, 1366-1378]. Parts a campaign does not use cost no statement.
* Ages and freshness use the database's own clock (``NOW()``), as AST_VDauto_dial.pl compares
  with the database's timestamps: agents are fresh when ``last_update_time > NOW() - 10 s``, a
  call is within the in-call threshold when ``UNIX_TIMESTAMP(NOW()) - UNIX_TIMESTAMP(last_call_time)
  <= incall_tally_threshold_seconds``, a shared drop is fresh for 5 s. Such a count changes when an
  agent crosses the threshold, so the part (and the snapshot) changes exactly then.
* VICIdial's schema varies by version: the loader asks ``information_schema`` once which optional
  tables and columns exist. A missing one gives the term's schema default and is named in
  ``ClusterSnapshot.missing_inputs`` (the shortage reports it as ``NOT_MODELLED`` where it matters).
* ``SnapshotLoader.load()`` keeps the last rows of every part. When no part changed it returns the
  very same snapshot object, so nothing downstream recomputes (``new is old``); a changed part is
  rebuilt and the unchanged parts' objects are reused. ``read_parts`` / ``snapshot_from_parts``
  split the reads from the pure build (record and replay).
* ``vicidial_campaign_server_stats`` rows (``stored_shortages``, table order, no ``update_time``,
  which the Perl refreshes every loop) are read only when asked (``fillreactor shortage``).
* ``read_stats_demand`` is the Perl FILL's shortage read (spec 2.2.3): rows with
  ``update_time > now - 1200 s`` and ``local_trunk_shortage > 0``, where ``now`` is the caller's
  clock (the Perl computes the limit from the FILL host's clock once per loop); rows come in the
  database's ``campaign_id`` collation order, the order of the Perl's ``GROUP BY``.
* ``lookup_call_origins`` answers "which campaign and server is this call id" for a batch of ids
  in one statement per 500 ids; the newest row of an id wins (the AGI may re-insert a row).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any

from fillreactor.core.cluster import (
    AutoCallCounts,
    CampaignConfig,
    ClusterSnapshot,
    DropGroupAgents,
    InboundNoAgents,
    IncallThreshold,
    ServerConfig,
    ServerTrunk,
    StoredShortage,
    SystemSettings,
    TrunkRestriction,
    tally_agents,
)
from fillreactor.core.origin import CallOrigin
from fillreactor.core.shortage import Demand
from fillreactor.store.database import Database, StoreError, StoreUnavailable

log = logging.getLogger(__name__)

AGENT_FRESH_SECONDS = 10
SHARED_DROP_FRESH_SECONDS = 5
STATS_FRESH_SECONDS = 1200
LOOKUP_BATCH = 500
CONFIG_PARTS = ("system", "servers", "campaigns", "trunks")

OPTIONAL_TABLES = (
    "vicidial_live_inbound_agents",
    "vicidial_live_chats",
    "vicidial_inbound_callback_queue",
    "vicidial_shared_drops",
    "vicidial_settings_containers",
)
# vicidial_campaigns columns: (name, SQL default when the column does not exist)
CAMPAIGN_COLUMNS: tuple[tuple[str, str], ...] = (
    ("campaign_id", "''"),
    ("active", "'Y'"),
    ("dial_method", "'MANUAL'"),
    ("auto_dial_level", "'0'"),
    ("available_only_ratio_tally", "'N'"),
    ("available_only_tally_threshold", "'DISABLED'"),
    ("available_only_tally_threshold_agents", "0"),
    ("dial_level_threshold", "'DISABLED'"),
    ("dial_level_threshold_agents", "0"),
    ("adaptive_dl_diff_target", "0"),
    ("dl_diff_target_method", "'ADAPT_CALC_ONLY'"),
    ("closer_campaigns", "''"),
    ("campaign_allow_inbound", "'N'"),
    ("inbound_queue_no_dial", "'DISABLED'"),
    ("drop_call_seconds", "5"),
    ("drop_action", "'AUDIO'"),
    ("drop_inbound_group", "'---NONE---'"),
    ("incall_tally_threshold_seconds", "0"),
    ("inbound_no_agents_no_dial_container", "'DISABLED'"),
    ("inbound_no_agents_no_dial_threshold", "0"),
    ("shared_dial_rank", "0"),
)
OPTIONAL_CAMPAIGN_COLUMNS = {
    "inbound_no_agents_no_dial_container": "inbound_no_agents_no_dial",
    "inbound_no_agents_no_dial_threshold": "inbound_no_agents_no_dial",
    "shared_dial_rank": "shared_dial_rank",
}

SCHEMA_SQL = (
    "SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE()"
    " AND TABLE_NAME IN ('system_settings', 'vicidial_campaigns', {tables})"
)
SERVERS_SQL = (
    "SELECT server_ip, max_vicidial_trunks, vicidial_balance_active, balance_trunks_offlimits,"
    " vicidial_balance_rank, asterisk_version, routing_prefix FROM servers ORDER BY server_ip"
)
TRUNKS_SQL = "SELECT server_ip, campaign_id, dedicated_trunks, trunk_restriction FROM vicidial_server_trunks"
FRESH = f"last_update_time > NOW() - INTERVAL {AGENT_FRESH_SECONDS} SECOND"
AGENTS_SQL = (
    "SELECT la.server_ip, la.campaign_id, la.dial_campaign_id, la.status,"
    " EXISTS(SELECT 1 FROM vicidial_auto_calls vac WHERE vac.callerid = COALESCE(la.callerid, ''))"
    " AS has_call,"
    " COUNT(*), MIN(UNIX_TIMESTAMP(la.last_call_time)), SUM(la.last_call_time IS NULL)"
    " FROM vicidial_live_agents la"
    " WHERE la.status IN ('READY','QUEUE','INCALL','DONE') AND la.outbound_autodial = 'Y'"
    f" AND la.{FRESH}"
    " GROUP BY la.server_ip, la.campaign_id, la.dial_campaign_id, la.status, has_call"
)
FILL_AGENTS_SQL = (
    "SELECT campaign_id, dial_campaign_id, COUNT(*) FROM vicidial_live_agents"
    " WHERE status NOT IN ('PAUSED') GROUP BY campaign_id, dial_campaign_id"
)
# The callerid family: V/M/Y + 19 digits (core/callid.py), compared case-sensitively.
AUTO_CALLS_SQL = (
    "SELECT server_ip, campaign_id, call_type, status,"
    " CASE WHEN CAST(callerid AS BINARY) REGEXP '^[VMY][0-9]{19}$' THEN LEFT(callerid, 1) ELSE '' END"
    " AS family, COUNT(*) FROM vicidial_auto_calls"
    " GROUP BY server_ip, campaign_id, call_type, status, family"
)
OUTBALANCE_CALLS_SQL = (
    "SELECT campaign_id, server_ip, callerid FROM vicidial_auto_calls WHERE call_type = 'OUTBALANCE'"
)


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _opt_str(value: Any) -> str | None:
    if isinstance(value, bytes | bytearray):  # a binary column, or a union typed as one
        return bytes(value).decode("utf-8", "replace")
    return None if value is None else str(value)


# (part, its statement, a converter per column): a UNION ALL gives every column one type
DYNAMIC_PARTS: tuple[tuple[str, str, tuple[Any, ...]], ...] = (
    ("agents", AGENTS_SQL, (_opt_str,) * 4 + (_opt_int,) * 4),
    ("fill_agents", FILL_AGENTS_SQL, (_opt_str, _opt_str, _opt_int)),
    ("auto_calls", AUTO_CALLS_SQL, (_opt_str,) * 5 + (_opt_int,)),
    ("outbalance_calls", OUTBALANCE_CALLS_SQL, (_opt_str,) * 3),
)
_DYNAMIC_WIDTH = max(len(conv) for _name, _sql, conv in DYNAMIC_PARTS)
DYNAMIC_SQL = " UNION ALL ".join(
    f"SELECT '{name}', t.*{', NULL' * (_DYNAMIC_WIDTH - len(conv))} FROM ({sql}) t"
    for name, sql, conv in DYNAMIC_PARTS
)
# the leader lock's holder, read with them: the leader's own check need not run every lock_check
LOCK_HOLDER_SQL = "SELECT IS_USED_LOCK(%s)"
DYNAMIC_LOCK_SQL = (
    DYNAMIC_SQL + f" UNION ALL SELECT 'lock', IS_USED_LOCK(%s){', NULL' * (_DYNAMIC_WIDTH - 1)}"
)
READY_AGENTS_SQL = (
    "SELECT c.campaign_id, la.server_ip, COUNT(*) FROM vicidial_campaigns c"
    " JOIN vicidial_live_agents la ON (la.campaign_id = c.campaign_id OR la.dial_campaign_id = c.campaign_id)"
    " WHERE la.status = 'READY' AND c.campaign_allow_inbound = 'Y' GROUP BY c.campaign_id, la.server_ip"
)
# The Perl lists every vac callerid ('' for NULL; "''" when there is none) [1040-1052].
_HAS_ROW = (
    "(EXISTS(SELECT 1 FROM vicidial_auto_calls v WHERE COALESCE(v.callerid, '') = la.callerid)"
    " OR (la.callerid = '' AND NOT EXISTS(SELECT 1 FROM vicidial_auto_calls)))"
)
INCALL_THRESHOLD_SQL = (
    "SELECT c.campaign_id,"
    f" COALESCE(SUM(la.callerid IS NOT NULL AND {_HAS_ROW} AND"
    " UNIX_TIMESTAMP(NOW()) - UNIX_TIMESTAMP(la.last_call_time) <= c.incall_tally_threshold_seconds), 0),"
    f" COALESCE(SUM(la.callerid IS NOT NULL AND NOT {_HAS_ROW}), 0)"
    " FROM vicidial_campaigns c"
    " JOIN vicidial_live_agents la ON (la.campaign_id = c.campaign_id OR la.dial_campaign_id = c.campaign_id)"
    f" WHERE c.incall_tally_threshold_seconds > 0 AND la.{FRESH} AND la.status IN ('INCALL','QUEUE')"
    " GROUP BY c.campaign_id"
)
DROP_AGENTS_SQL = (
    "SELECT campaign_id, status, closer_campaigns, COUNT(*) FROM vicidial_live_agents"
    f" WHERE {FRESH} AND status IN ('READY','DONE','CLOSER','INCALL')"
    " GROUP BY campaign_id, status, closer_campaigns"
)
CHATS_SQL = "SELECT group_id, COUNT(*) FROM vicidial_live_chats WHERE status = 'WAITING' GROUP BY group_id"
CALLBACKS_SQL = (
    "SELECT group_id, COUNT(*) FROM vicidial_inbound_callback_queue"
    " WHERE icbq_status IN ('LIVE','SENDING','NEW') GROUP BY group_id"
)
SHARED_DROPS_SQL = (
    "SELECT server_ip, campaign_id, call_type, status, COUNT(*) FROM vicidial_shared_drops"
    f" WHERE drop_time > NOW() - INTERVAL {SHARED_DROP_FRESH_SECONDS} SECOND"
    " GROUP BY server_ip, campaign_id, call_type, status"
)
STORED_SQL = "SELECT campaign_id, server_ip, local_trunk_shortage FROM vicidial_campaign_server_stats"
STATS_SQL = (
    "SELECT campaign_id, server_ip, local_trunk_shortage FROM vicidial_campaign_server_stats"
    " WHERE update_time > %s AND local_trunk_shortage > 0 ORDER BY campaign_id, server_ip"
)

MISSING_TABLE = "table {name} is not in this database"
MISSING_COLUMNS = "vicidial_campaigns has no {columns} (an older VICIdial schema)"


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _float(value: Any, default: float = 0.0) -> float:
    """VICIdial keeps dial levels as VARCHAR; Perl numifies a bad one to 0."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def system_from_row(row: tuple[Any, ...] | None) -> SystemSettings:
    if row is None:
        return SystemSettings()
    return SystemSettings(_int(row[0], 1), _int(row[1], 0), _int(row[2], 10), _int(row[3], 0))


def servers_from_rows(rows: Iterable[tuple[Any, ...]]) -> Mapping[str, ServerConfig]:
    servers: dict[str, ServerConfig] = {}
    for ip, mvt, balance, offlimits, rank, version, prefix in rows:
        servers[ip] = ServerConfig(
            server_ip=ip,
            max_vicidial_trunks=_int(mvt, 23),
            balance_active=balance == "Y",
            balance_trunks_offlimits=_int(offlimits),
            balance_rank=_int(rank),
            asterisk_version=version or "",
            routing_prefix=prefix or "",
        )
    return MappingProxyType(servers)


def campaigns_from_rows(rows: Iterable[tuple[Any, ...]]) -> Mapping[str, CampaignConfig]:
    """Rows of ``CAMPAIGN_COLUMNS`` (older rows of the first 11 columns are accepted too)."""
    campaigns: dict[str, CampaignConfig] = {}
    defaults = CampaignConfig("")
    for row in rows:
        values = dict(zip((name for name, _ in CAMPAIGN_COLUMNS), row, strict=False))
        cid = values["campaign_id"]

        def text(name: str, default: str, values: dict[str, Any] = values) -> str:
            value = values.get(name)
            return default if value is None else str(value)

        campaigns[cid] = CampaignConfig(
            campaign_id=cid,
            active=values.get("active") != "N",
            dial_method=values.get("dial_method") or "MANUAL",
            auto_dial_level=_float(values.get("auto_dial_level")),
            available_only_ratio_tally=values.get("available_only_ratio_tally") == "Y",
            available_only_tally_threshold=values.get("available_only_tally_threshold") or "DISABLED",
            available_only_tally_threshold_agents=_int(values.get("available_only_tally_threshold_agents")),
            dial_level_threshold=values.get("dial_level_threshold") or "DISABLED",
            dial_level_threshold_agents=_int(values.get("dial_level_threshold_agents")),
            adaptive_dl_diff_target=_int(values.get("adaptive_dl_diff_target")),
            dl_diff_target_method=values.get("dl_diff_target_method") or "ADAPT_CALC_ONLY",
            closer_campaigns=text("closer_campaigns", ""),
            campaign_allow_inbound=values.get("campaign_allow_inbound") == "Y",
            inbound_queue_no_dial=text("inbound_queue_no_dial", defaults.inbound_queue_no_dial),
            drop_call_seconds=_int(values.get("drop_call_seconds"), defaults.drop_call_seconds),
            drop_action=text("drop_action", defaults.drop_action),
            drop_inbound_group=text("drop_inbound_group", defaults.drop_inbound_group),
            incall_tally_threshold_seconds=_int(values.get("incall_tally_threshold_seconds")),
            inbound_no_agents_no_dial_container=text(
                "inbound_no_agents_no_dial_container", defaults.inbound_no_agents_no_dial_container
            ),
            inbound_no_agents_no_dial_threshold=_int(values.get("inbound_no_agents_no_dial_threshold")),
            shared_dial_rank=_int(values.get("shared_dial_rank")),
        )
    return MappingProxyType(campaigns)


def trunk_rows_from_rows(rows: Iterable[tuple[Any, ...]]) -> tuple[ServerTrunk, ...]:
    """Every ``vicidial_server_trunks`` row in table order (several rows may share a key)."""
    out = []
    for ip, campaign, dedicated, restriction in rows:
        kind = (
            TrunkRestriction.MAXIMUM_LIMIT
            if restriction == "MAXIMUM_LIMIT"
            else TrunkRestriction.OVERFLOW_ALLOWED
        )
        out.append(ServerTrunk(ip, campaign, _int(dedicated), kind))
    return tuple(out)


def trunks_from_rows(rows: Iterable[tuple[Any, ...]]) -> Mapping[tuple[str, str], ServerTrunk]:
    """The FILL's view: the last row read of each key (its loop keeps the last, FILL 526-536)."""
    return MappingProxyType({(t.campaign_id, t.server_ip): t for t in trunk_rows_from_rows(rows)})


def fill_agents_from_rows(rows: Iterable[tuple[Any, ...]]) -> Mapping[str, int]:
    """FILL's gate: ``(campaign_id=C OR dial_campaign_id=C) AND status NOT IN('PAUSED')`` per C."""
    counts: dict[str, int] = {}
    for campaign, dial_campaign, count in rows:
        for name in {campaign, dial_campaign} - {None, ""}:
            counts[name] = counts.get(name, 0) + int(count)
    return MappingProxyType(dict(sorted(counts.items())))


def clean_container_entry(entry: str) -> str:
    """A settings container's entry as the inbound no-agents check cleans it (AST_VDauto_dial.pl
    1311-1317): lines joined by ``','``, CR, tab, spaces, ``''`` and edge commas removed."""
    text = entry.replace("\n", "','")
    text = re.sub(r"\r|\t| |''|,$|^,", "", text)
    text = text.replace(",,", ",").replace(",''", "")
    return re.sub(r"','$", "", text)


def like_match(pattern: str, value: str | None) -> bool:
    """SQL ``value LIKE pattern`` in a case-insensitive collation (``\\`` escapes)."""
    if value is None:
        return False
    out, i = [], 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if char == "%" else "." if char == "_" else re.escape(char))
        i += 1
    return re.fullmatch("".join(out), value, re.IGNORECASE | re.DOTALL) is not None


def drop_agents_from_rows(
    rows: Iterable[tuple[Any, ...]], campaigns: Mapping[str, CampaignConfig]
) -> Mapping[str, DropGroupAgents]:
    """Per campaign that borrows them, its drop group's agents (AST_VDauto_dial.pl 1093-1131):
    fresh agents of another campaign whose closer_campaigns is ``LIKE "% <group> %"`` (``_``
    escaped), READY/DONE/CLOSER counted ready, INCALL in call."""
    rows = list(rows)
    out: dict[str, DropGroupAgents] = {}
    for cid, config in campaigns.items():
        if not config.drop_group_agents_counted:
            continue
        pattern = "% " + config.drop_inbound_group.replace("_", "\\_") + " %"
        ready = incall = 0
        for agent_campaign, status, closer, count in rows:
            if (agent_campaign or "").upper().rstrip() == cid.upper().rstrip() or not like_match(
                pattern, closer
            ):
                continue
            if re.search("READY|DONE|CLOSER", status or ""):
                ready += int(count)
            elif "INCALL" in (status or ""):
                incall += int(count)
        out[cid] = DropGroupAgents(ready, incall)
    return MappingProxyType(out)


@dataclass(frozen=True)
class _Part:
    rows: tuple[tuple[Any, ...], ...]
    value: Any


@dataclass(frozen=True)
class _Schema:
    tables: frozenset[str]
    campaign_columns: frozenset[str]
    system_columns: frozenset[str]
    missing: Mapping[str, str] = field(default_factory=dict)


Parts = dict[str, tuple[tuple[Any, ...], ...]]


class SnapshotLoader:
    """Reads the snapshot; reuses what did not change since the last load (see the module rules)."""

    def __init__(
        self, database: Database, *, stored_shortages: bool = False, lock_name: str | None = None
    ) -> None:
        self.database = database
        self.stored_shortages = stored_shortages
        self.lock_name = lock_name
        self.lock_holder: int | None = None
        """With ``lock_name``: the connection id holding that lock at the last load (None: free)."""
        self._parts: dict[str, _Part] = {}
        self._union = True  # the dynamic parts in one statement, until the server refuses it
        self._snapshot: ClusterSnapshot | None = None
        self._schema: _Schema | None = None
        self.loads = 0
        self.unchanged_loads = 0
        self.last_parts: Parts = {}

    @property
    def snapshot(self) -> ClusterSnapshot | None:
        """The last snapshot loaded (None before the first load)."""
        return self._snapshot

    async def schema(self) -> _Schema:
        """Which optional tables and columns this database has (asked once)."""
        if self._schema is None:
            tables = ", ".join(f"'{name}'" for name in OPTIONAL_TABLES)  # constants, not input
            rows = await self.database.fetch_all(SCHEMA_SQL.format(tables=tables))
            present = {(str(t), str(c)) for t, c in rows}
            table_names = frozenset(t for t, _ in present)
            campaign_columns = frozenset(c for t, c in present if t == "vicidial_campaigns")
            system_columns = frozenset(c for t, c in present if t == "system_settings")
            missing: dict[str, str] = {}
            for name in OPTIONAL_TABLES:
                if name not in table_names:
                    missing[name] = MISSING_TABLE.format(name=name)
            absent: dict[str, list[str]] = {}
            for column, term in OPTIONAL_CAMPAIGN_COLUMNS.items():
                if column not in campaign_columns:
                    absent.setdefault(term, []).append(column)
            for term, columns in absent.items():
                missing[term] = MISSING_COLUMNS.format(columns=" / ".join(columns))
            self._schema = _Schema(table_names, campaign_columns, system_columns, MappingProxyType(missing))
        return self._schema

    async def read_parts(self, *, config: bool = True) -> Parts:
        """Every part's rows (the I/O half of ``load``); ``config=False`` keeps the last rows of the
        configuration parts (``CONFIG_PARTS``) instead of reading them again."""
        schema = await self.schema()
        db = self.database

        async def rows(sql: str, params: tuple[Any, ...] = ()) -> tuple[tuple[Any, ...], ...]:
            return tuple(await db.fetch_all(sql, params))

        shared = "allow_shared_dial" if "allow_shared_dial" in schema.system_columns else "0"
        kept = self._parts
        if not config and all(name in kept for name in CONFIG_PARTS):
            parts: Parts = {name: kept[name].rows for name in CONFIG_PARTS}
        else:
            parts = {
                "system": await rows(
                    "SELECT outbound_autodial_active, disable_auto_dial, outbound_calls_per_second,"
                    f" {shared} FROM system_settings LIMIT 1"
                ),
                "servers": await rows(SERVERS_SQL),
                "campaigns": await rows(_campaigns_sql(schema)),
                "trunks": await rows(TRUNKS_SQL),
            }
        parts |= await self._read_dynamic()
        campaigns = campaigns_from_rows(parts["campaigns"])
        configs = list(campaigns.values())
        parts["ready_agents"] = (
            _sorted(await rows(READY_AGENTS_SQL)) if any(c.campaign_allow_inbound for c in configs) else ()
        )
        parts["incall_threshold"] = (
            _sorted(await rows(INCALL_THRESHOLD_SQL))
            if any(c.incall_tally_threshold_seconds > 0 for c in configs)
            else ()
        )
        parts["drop_agents"] = (
            _sorted(await rows(DROP_AGENTS_SQL)) if any(c.drop_group_agents_counted for c in configs) else ()
        )
        parts["inbound_no_agents"] = await self._inbound_no_agents(configs, schema)
        inbound = any(c.campaign_allow_inbound for c in configs)
        parts["chats"] = (
            _sorted(await rows(CHATS_SQL)) if inbound and "vicidial_live_chats" in schema.tables else ()
        )
        parts["callbacks"] = (
            _sorted(await rows(CALLBACKS_SQL))
            if inbound and "vicidial_inbound_callback_queue" in schema.tables
            else ()
        )
        system = system_from_row(parts["system"][0] if parts["system"] else None)
        parts["shared_drops"] = (
            _sorted(await rows(SHARED_DROPS_SQL))
            if system.allow_shared_dial > 0 and "vicidial_shared_drops" in schema.tables
            else ()
        )
        parts["stored"] = await rows(STORED_SQL) if self.stored_shortages else ()
        parts["missing"] = tuple(sorted(schema.missing.items()))
        return parts

    async def _inbound_no_agents(
        self, configs: list[CampaignConfig], schema: _Schema
    ) -> tuple[tuple[Any, ...], ...]:
        """``(campaign, entry, users, ready)`` per campaign with the no-agents container set."""
        if "inbound_no_agents_no_dial" in schema.missing:
            return ()
        wanted = [
            c
            for c in configs
            if c.inbound_no_agents_no_dial_container
            and "DISABLED" not in c.inbound_no_agents_no_dial_container
            and c.inbound_no_agents_no_dial_threshold > 0
        ]
        if not wanted or "vicidial_settings_containers" not in schema.tables:
            return ()
        db = self.database
        out = []
        for config in wanted:
            raw = await db.fetch_value(
                "SELECT container_entry FROM vicidial_settings_containers WHERE container_id = %s",
                (config.inbound_no_agents_no_dial_container,),
                default="",
            )
            entry = clean_container_entry(raw or "")
            users = ready = 0
            if len(entry) > 2 and "vicidial_live_inbound_agents" in schema.tables:
                groups = entry.split("','")
                marks = ", ".join(["%s"] * len(groups))
                names = [
                    row[0]
                    for row in await db.fetch_all(
                        f"SELECT DISTINCT user FROM vicidial_live_inbound_agents WHERE group_id IN ({marks})"
                        " AND (daily_limit = '-1' OR daily_limit > calls_today)",
                        groups,
                    )
                ]
                users = len(names)
                if names:
                    marks = ", ".join(["%s"] * len(names))
                    ready = _int(
                        await db.fetch_value(
                            f"SELECT COUNT(*) FROM vicidial_live_agents WHERE user IN ({marks})"
                            " AND status IN ('READY','CLOSER')",
                            names,
                            default=0,
                        )
                    )
            out.append((config.campaign_id, entry, users, ready))
        return tuple(out)

    async def _read_dynamic(self) -> Parts:
        """The parts read every refresh: one UNION ALL statement (one round trip), or one statement
        each where the server refuses the union (tables of mixed collations: "Illegal mix")."""
        converters = {name: conv for name, _sql, conv in DYNAMIC_PARTS}
        found: dict[str, list[tuple[Any, ...]]] = {name: [] for name in converters}
        lock = self.lock_name
        if self._union:
            try:
                if lock is None:
                    union = await self.database.fetch_all(DYNAMIC_SQL)
                else:
                    union = await self.database.fetch_all(DYNAMIC_LOCK_SQL, (lock,))
            except StoreUnavailable:
                raise
            except StoreError as error:
                log.warning("the snapshot's UNION read refused (%s): one statement per part from now", error)
                self._union = False
            else:
                holder = None
                for row in union:
                    if row[0] == "lock":
                        holder = _opt_int(row[1])
                        continue
                    conv = converters[row[0]]
                    found[row[0]].append(tuple(c(v) for c, v in zip(conv, row[1:], strict=False)))
                self.lock_holder = holder
                return {name: _sorted(tuple(rows)) for name, rows in found.items()}
        parts: Parts = {}
        for name, sql, conv in DYNAMIC_PARTS:
            rows = await self.database.fetch_all(sql)
            parts[name] = _sorted(tuple(tuple(c(v) for c, v in zip(conv, row, strict=True)) for row in rows))
        if lock is not None:
            holder_row = await self.database.fetch_one(LOCK_HOLDER_SQL, (lock,))
            self.lock_holder = None if holder_row is None else _opt_int(holder_row[0])
        return parts

    async def load(self, *, config: bool = True) -> ClusterSnapshot:
        fetched = await self.read_parts(config=config)
        self.loads += 1
        self.last_parts = fetched
        changed = [
            name
            for name, rows in fetched.items()
            if name not in self._parts or self._parts[name].rows != rows
        ]
        if not changed and self._snapshot is not None:
            self.unchanged_loads += 1
            return self._snapshot
        campaigns_changed = "campaigns" in changed
        for name in changed:
            if name != "drop_agents":
                self._parts[name] = _Part(fetched[name], _BUILDERS[name](fetched[name]))
        if "drop_agents" in changed or campaigns_changed:
            self._parts["drop_agents"] = _Part(
                fetched["drop_agents"],
                drop_agents_from_rows(fetched["drop_agents"], self._parts["campaigns"].value),
            )
        self._snapshot = _assemble({name: part.value for name, part in self._parts.items()})
        return self._snapshot


def _campaigns_sql(schema: _Schema) -> str:
    columns = [
        name if name in schema.campaign_columns else f"{default} AS {name}"
        for name, default in CAMPAIGN_COLUMNS
    ]
    return f"SELECT {', '.join(columns)} FROM vicidial_campaigns ORDER BY campaign_id"


def _sorted(rows: tuple[tuple[Any, ...], ...]) -> tuple[tuple[Any, ...], ...]:
    return tuple(sorted(rows, key=_sort_key))


def _sort_key(row: tuple[Any, ...]) -> tuple[str, ...]:
    return tuple("" if value is None else str(value) for value in row)


def _agents(rows: tuple[tuple[Any, ...], ...]) -> Any:
    expanded = []
    first: dict[tuple[str, str], tuple[bool, int | None]] = {}  # key -> (any NULL, min epoch)
    for server, campaign, dial_campaign, status, has_call, count, epoch, nulls in rows:
        campaign, dial_campaign = campaign or "", dial_campaign or ""
        expanded.extend([(server, campaign, dial_campaign, status, bool(has_call))] * int(count))
        key = (dial_campaign if dial_campaign and dial_campaign != campaign else campaign, server)
        any_null, low = first.get(key, (False, None))
        if epoch is not None:
            low = int(epoch) if low is None else min(low, int(epoch))
        first[key] = (any_null or _int(nulls) > 0, low)
    tallies, logged_in = tally_agents(expanded)
    # ORDER BY last_call_time puts NULLs first: such a campaign's key has an empty epoch
    epochs = {key: "" if any_null or low is None else str(low) for key, (any_null, low) in first.items()}
    return tallies, logged_in, MappingProxyType(dict(sorted(epochs.items())))


def _auto_calls(rows: tuple[tuple[Any, ...], ...]) -> AutoCallCounts:
    return AutoCallCounts.from_rows(
        (server, campaign or "", call_type or "", status or "", family or "", int(count))
        for server, campaign, call_type, status, family, count in rows
    )


def _shared_drops(rows: tuple[tuple[Any, ...], ...]) -> AutoCallCounts:
    return AutoCallCounts.from_rows(
        (server, campaign or "", call_type or "", status or "", "", int(count))
        for server, campaign, call_type, status, count in rows
    )


def _counts_by_first(rows: tuple[tuple[Any, ...], ...]) -> Mapping[str, int]:
    return MappingProxyType({str(key): _int(count) for key, count in rows})


_BUILDERS = {
    "system": lambda rows: system_from_row(rows[0] if rows else None),
    "servers": servers_from_rows,
    "campaigns": campaigns_from_rows,
    "trunks": trunk_rows_from_rows,
    "agents": _agents,
    "fill_agents": fill_agents_from_rows,
    "auto_calls": _auto_calls,
    "ready_agents": lambda rows: MappingProxyType({(c, s): _int(n) for c, s, n in rows}),
    "incall_threshold": lambda rows: MappingProxyType(
        {c: IncallThreshold(_int(w), _int(d)) for c, w, d in rows}
    ),
    "inbound_no_agents": lambda rows: MappingProxyType(
        {c: InboundNoAgents(entry, _int(users), _int(ready)) for c, entry, users, ready in rows}
    ),
    "chats": _counts_by_first,
    "callbacks": _counts_by_first,
    "shared_drops": _shared_drops,
    "stored": lambda rows: tuple(StoredShortage(c, s, _int(n)) for c, s, n in rows),
    "missing": lambda rows: MappingProxyType(dict(rows)),
    "outbalance_calls": lambda rows: _calls_by_key(rows),
}


def _calls_by_key(rows: tuple[tuple[Any, ...], ...]) -> Mapping[tuple[str, str], frozenset[str]]:
    calls: dict[tuple[str, str], set[str]] = {}
    for campaign, server, callerid in rows:
        if callerid:
            calls.setdefault((campaign or "", server), set()).add(str(callerid))
    return MappingProxyType({key: frozenset(ids) for key, ids in sorted(calls.items())})


def _assemble(values: Mapping[str, Any]) -> ClusterSnapshot:
    agents, logged_in, epochs = values["agents"]
    trunk_rows = values["trunks"]
    return ClusterSnapshot(
        system=values["system"],
        servers=values["servers"],
        campaigns=values["campaigns"],
        trunks=MappingProxyType({(t.campaign_id, t.server_ip): t for t in trunk_rows}),
        agents=agents,
        logged_in_agents=logged_in,
        fill_agents=values["fill_agents"],
        auto_calls=values["auto_calls"],
        trunk_rows=trunk_rows,
        agent_call_epochs=epochs,
        ready_agents=values["ready_agents"],
        incall_threshold=values["incall_threshold"],
        drop_group_agents=values["drop_agents"],
        inbound_no_agents=values["inbound_no_agents"],
        waiting_chats=values["chats"],
        queued_callbacks=values["callbacks"],
        shared_drops=values["shared_drops"],
        stored_shortages=values["stored"],
        missing_inputs=values["missing"],
        outbalance_calls=values["outbalance_calls"],
    )


def snapshot_from_parts(parts: Mapping[str, Iterable[Iterable[Any]]]) -> ClusterSnapshot:
    """The pure half of ``load``: a snapshot from recorded part rows (``SnapshotLoader.last_parts``)."""
    rows = {name: tuple(tuple(row) for row in part) for name, part in parts.items()}
    values = {name: build(rows.get(name, ())) for name, build in _BUILDERS.items()}
    values["drop_agents"] = drop_agents_from_rows(rows.get("drop_agents", ()), values["campaigns"])
    return _assemble(values)


async def load_snapshot(database: Database, *, stored_shortages: bool = False) -> ClusterSnapshot:
    """One snapshot read without a loader's memory (``run --once``, ``shortage``)."""
    return await SnapshotLoader(database, stored_shortages=stored_shortages).load()


async def read_stats_rows(database: Database, now: datetime) -> list[tuple[str, str, int]]:
    """The fresh positive ``vicidial_campaign_server_stats`` rows, ``(campaign, server, shortage)``."""
    limit = (now - timedelta(seconds=STATS_FRESH_SECONDS)).replace(microsecond=0)
    rows = await database.fetch_all(STATS_SQL, (limit,))
    return [(campaign, server, int(shortage)) for campaign, server, shortage in rows]


async def read_stats_demand(database: Database, now: datetime) -> Demand:
    """``--shortage-source stats``: the Perl FILL's demand read (spec 2.2.3, 2.3.5)."""
    return Demand.from_stats(await read_stats_rows(database, now))


async def lookup_call_origins(database: Database, call_ids: Iterable[str]) -> dict[str, CallOrigin | None]:
    """Call id -> its origin (campaign, server placed on, call type), or None when no row exists."""
    wanted = sorted(set(call_ids))
    found: dict[str, CallOrigin | None] = dict.fromkeys(wanted)
    for start in range(0, len(wanted), LOOKUP_BATCH):
        batch = wanted[start : start + LOOKUP_BATCH]
        placeholders = ", ".join(["%s"] * len(batch))
        rows = await database.fetch_all(
            "SELECT callerid, campaign_id, server_ip, call_type FROM vicidial_auto_calls"
            f" WHERE callerid IN ({placeholders}) ORDER BY auto_call_id",
            batch,
        )
        for callerid, campaign, server, call_type in rows:  # ascending id: the newest row wins
            found[callerid] = CallOrigin(campaign or "", server, call_type or "OUT")
    return found
