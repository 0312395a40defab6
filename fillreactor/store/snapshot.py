"""Snapshot reads: the database facts the shortage formula and the planner read, as one ``ClusterSnapshot``.

Rules this module keeps (spec/VICIDIAL_FILL.md 2.2-2.5, 4.1-4.4; core/cluster.py says what each
field means):

* One statement per part, each a whole-table read or one ``GROUP BY`` (the tables are small or
  MEMORY): system_settings, servers, vicidial_campaigns, vicidial_server_trunks, the counted agents
  (``vicidial_live_agents`` grouped with whether each agent's callerid has a
  ``vicidial_auto_calls`` row), FILL's agent gate, and ``vicidial_auto_calls`` grouped by server,
  campaign, call type and status.
* Agent freshness is the database's own clock (``last_update_time > NOW() - INTERVAL 10 SECOND``),
  as AST_VDauto_dial.pl compares with the database's timestamps.
* ``SnapshotLoader.load()`` keeps the last rows of every part. When no part changed it returns the
  very same snapshot object, so nothing downstream recomputes (``new is old``); a changed part is
  rebuilt and the unchanged parts' objects are reused.
* ``read_stats_demand`` is the Perl FILL's shortage read (spec 2.2.3): rows with
  ``update_time > now - 1200 s`` and ``local_trunk_shortage > 0``, where ``now`` is the caller's
  clock (the Perl computes the limit from the FILL host's clock once per loop); rows come in the
  database's ``campaign_id`` collation order, the order of the Perl's ``GROUP BY``.
* ``lookup_call_origins`` answers "which campaign and server is this call id" for a batch of ids
  in one statement per 500 ids; the newest row of an id wins (the AGI may re-insert a row).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any

from fillreactor.core.cluster import (
    AutoCallCounts,
    CampaignConfig,
    ClusterSnapshot,
    ServerConfig,
    ServerTrunk,
    SystemSettings,
    TrunkRestriction,
    tally_agents,
)
from fillreactor.core.origin import CallOrigin
from fillreactor.core.shortage import Demand
from fillreactor.store.database import Database

AGENT_FRESH_SECONDS = 10
STATS_FRESH_SECONDS = 1200
LOOKUP_BATCH = 500

SYSTEM_SQL = (
    "SELECT outbound_autodial_active, disable_auto_dial, outbound_calls_per_second"
    " FROM system_settings LIMIT 1"
)
SERVERS_SQL = (
    "SELECT server_ip, max_vicidial_trunks, vicidial_balance_active, balance_trunks_offlimits,"
    " vicidial_balance_rank, asterisk_version, routing_prefix FROM servers ORDER BY server_ip"
)
CAMPAIGNS_SQL = (
    "SELECT campaign_id, active, dial_method, auto_dial_level, available_only_ratio_tally,"
    " available_only_tally_threshold, available_only_tally_threshold_agents, dial_level_threshold,"
    " dial_level_threshold_agents, adaptive_dl_diff_target, dl_diff_target_method"
    " FROM vicidial_campaigns ORDER BY campaign_id"
)
TRUNKS_SQL = "SELECT server_ip, campaign_id, dedicated_trunks, trunk_restriction FROM vicidial_server_trunks"
AGENTS_SQL = (
    "SELECT la.server_ip, la.campaign_id, la.dial_campaign_id, la.status,"
    " EXISTS(SELECT 1 FROM vicidial_auto_calls vac WHERE vac.callerid = la.callerid) AS has_call,"
    " COUNT(*) FROM vicidial_live_agents la"
    " WHERE la.status IN ('READY','QUEUE','INCALL','DONE') AND la.outbound_autodial = 'Y'"
    f" AND la.last_update_time > NOW() - INTERVAL {AGENT_FRESH_SECONDS} SECOND"
    " GROUP BY la.server_ip, la.campaign_id, la.dial_campaign_id, la.status, has_call"
)
FILL_AGENTS_SQL = (
    "SELECT campaign_id, dial_campaign_id, COUNT(*) FROM vicidial_live_agents"
    " WHERE status NOT IN ('PAUSED') GROUP BY campaign_id, dial_campaign_id"
)
AUTO_CALLS_SQL = (
    "SELECT server_ip, campaign_id, call_type, status, COUNT(*) FROM vicidial_auto_calls"
    " GROUP BY server_ip, campaign_id, call_type, status"
)
STATS_SQL = (
    "SELECT campaign_id, server_ip, local_trunk_shortage FROM vicidial_campaign_server_stats"
    " WHERE update_time > %s AND local_trunk_shortage > 0 ORDER BY campaign_id, server_ip"
)


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
    return SystemSettings(_int(row[0], 1), _int(row[1], 0), _int(row[2], 10))


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
    campaigns: dict[str, CampaignConfig] = {}
    for row in rows:
        (
            cid,
            active,
            method,
            level,
            ratio_tally,
            ao_threshold,
            ao_agents,
            dl_threshold,
            dl_agents,
            diff,
            diff_method,
        ) = row
        campaigns[cid] = CampaignConfig(
            campaign_id=cid,
            active=active != "N",
            dial_method=method or "MANUAL",
            auto_dial_level=_float(level),
            available_only_ratio_tally=ratio_tally == "Y",
            available_only_tally_threshold=ao_threshold or "DISABLED",
            available_only_tally_threshold_agents=_int(ao_agents),
            dial_level_threshold=dl_threshold or "DISABLED",
            dial_level_threshold_agents=_int(dl_agents),
            adaptive_dl_diff_target=_int(diff),
            dl_diff_target_method=diff_method or "ADAPT_CALC_ONLY",
        )
    return MappingProxyType(campaigns)


def trunks_from_rows(rows: Iterable[tuple[Any, ...]]) -> Mapping[tuple[str, str], ServerTrunk]:
    trunks: dict[tuple[str, str], ServerTrunk] = {}
    for ip, campaign, dedicated, restriction in rows:
        kind = (
            TrunkRestriction.MAXIMUM_LIMIT
            if restriction == "MAXIMUM_LIMIT"
            else TrunkRestriction.OVERFLOW_ALLOWED
        )
        # several rows for one key: the last one read wins, as in the Perl's loop over its rows
        trunks[(campaign, ip)] = ServerTrunk(ip, campaign, _int(dedicated), kind)
    return MappingProxyType(trunks)


def fill_agents_from_rows(rows: Iterable[tuple[Any, ...]]) -> Mapping[str, int]:
    """FILL's gate: ``(campaign_id=C OR dial_campaign_id=C) AND status NOT IN('PAUSED')`` per C."""
    counts: dict[str, int] = {}
    for campaign, dial_campaign, count in rows:
        for name in {campaign, dial_campaign} - {None, ""}:
            counts[name] = counts.get(name, 0) + int(count)
    return MappingProxyType(dict(sorted(counts.items())))


@dataclass(frozen=True)
class _Part:
    rows: tuple[tuple[Any, ...], ...]
    value: Any


class SnapshotLoader:
    """Reads the snapshot; reuses what did not change since the last load (see the module rules)."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self._parts: dict[str, _Part] = {}
        self._snapshot: ClusterSnapshot | None = None
        self.loads = 0
        self.unchanged_loads = 0

    @property
    def snapshot(self) -> ClusterSnapshot | None:
        """The last snapshot loaded (None before the first load)."""
        return self._snapshot

    async def load(self) -> ClusterSnapshot:
        db = self.database
        fetched = {
            "system": tuple(await db.fetch_all(SYSTEM_SQL)),
            "servers": tuple(await db.fetch_all(SERVERS_SQL)),
            "campaigns": tuple(await db.fetch_all(CAMPAIGNS_SQL)),
            "trunks": tuple(await db.fetch_all(TRUNKS_SQL)),
            "agents": tuple(sorted(await db.fetch_all(AGENTS_SQL), key=_sort_key)),
            "fill_agents": tuple(sorted(await db.fetch_all(FILL_AGENTS_SQL), key=_sort_key)),
            "auto_calls": tuple(sorted(await db.fetch_all(AUTO_CALLS_SQL), key=_sort_key)),
        }
        self.loads += 1
        changed = [
            name
            for name, rows in fetched.items()
            if name not in self._parts or self._parts[name].rows != rows
        ]
        if not changed and self._snapshot is not None:
            self.unchanged_loads += 1
            return self._snapshot
        for name in changed:
            self._parts[name] = _Part(fetched[name], _BUILDERS[name](fetched[name]))
        agents, logged_in = self._parts["agents"].value
        self._snapshot = ClusterSnapshot(
            system=self._parts["system"].value,
            servers=self._parts["servers"].value,
            campaigns=self._parts["campaigns"].value,
            trunks=self._parts["trunks"].value,
            agents=agents,
            logged_in_agents=logged_in,
            fill_agents=self._parts["fill_agents"].value,
            auto_calls=self._parts["auto_calls"].value,
        )
        return self._snapshot


def _sort_key(row: tuple[Any, ...]) -> tuple[str, ...]:
    return tuple("" if value is None else str(value) for value in row)


def _agents(rows: tuple[tuple[Any, ...], ...]) -> Any:
    expanded = [
        (server, campaign or "", dial_campaign or "", status, bool(has_call))
        for server, campaign, dial_campaign, status, has_call, count in rows
        for _ in range(int(count))
    ]
    return tally_agents(expanded)


def _auto_calls(rows: tuple[tuple[Any, ...], ...]) -> AutoCallCounts:
    return AutoCallCounts.from_rows(
        (server, campaign or "", call_type or "", status or "", int(count))
        for server, campaign, call_type, status, count in rows
    )


_BUILDERS = {
    "system": lambda rows: system_from_row(rows[0] if rows else None),
    "servers": servers_from_rows,
    "campaigns": campaigns_from_rows,
    "trunks": trunks_from_rows,
    "agents": _agents,
    "fill_agents": fill_agents_from_rows,
    "auto_calls": _auto_calls,
}


async def load_snapshot(database: Database) -> ClusterSnapshot:
    """One snapshot read without a loader's memory (``run --once``, ``shortage``)."""
    return await SnapshotLoader(database).load()


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
