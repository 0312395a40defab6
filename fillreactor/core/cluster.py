"""The cluster snapshot: every database fact the shortage formula and the planner read, frozen.

Rules this module keeps:

* A snapshot is immutable and self-contained. The I/O shell fills it from a handful of queries
  (``servers``, ``vicidial_server_trunks``, ``vicidial_campaigns``, one ``GROUP BY`` over
  ``vicidial_live_agents``, one over ``vicidial_auto_calls``, ``system_settings``); nothing here runs
  SQL. Live channel counts are a separate value, ``LiveCounts``, captured from the channel model.
* Keys of (campaign, server) pairs are always ``(campaign_id, server_ip)`` tuples (``CampaignServer``),
  the order of ``vicidial_campaign_server_stats``' columns.
* Everything the planner looks up per (campaign, server) is O(1) and precomputed once per
  snapshot: the balance-server order (``vicidial_balance_rank DESC, server_ip`` as strings, spec
  2.4), the sum of dedicated trunks per server (so "other campaigns' dedications" is a
  subtraction), the campaigns with counted agents per server in ``campaign_id`` order, and the
  ``vicidial_auto_calls`` totals.
* Mapping iteration order never leaks into results: every derived order is sorted here.
* SHARED dialing (spec 4.1): an agent whose ``dial_campaign_id`` is set and differs from
  ``campaign_id`` is counted for ``dial_campaign_id``; ``tally_agents`` does that for the shell.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType

CampaignServer = tuple[str, str]
"""``(campaign_id, server_ip)``."""


def _empty() -> Mapping:
    return MappingProxyType({})


class TrunkRestriction(Enum):
    MAXIMUM_LIMIT = "MAXIMUM_LIMIT"
    OVERFLOW_ALLOWED = "OVERFLOW_ALLOWED"


@dataclass(frozen=True, slots=True)
class SystemSettings:
    """``system_settings`` columns that gate FILL (spec 2.2.4)."""

    outbound_autodial_active: int = 1
    disable_auto_dial: int = 0
    outbound_calls_per_second: int = 10

    @property
    def autodial_enabled(self) -> bool:
        return self.outbound_autodial_active >= 1 and self.disable_auto_dial <= 0


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """A ``servers`` row (the columns FILL and AST_VDauto_dial.pl read)."""

    server_ip: str
    max_vicidial_trunks: int = 23
    balance_active: bool = False
    balance_trunks_offlimits: int = 0
    balance_rank: int = 0
    asterisk_version: str = "1.4.21.2"
    routing_prefix: str = "13"


@dataclass(frozen=True, slots=True)
class ServerTrunk:
    """A ``vicidial_server_trunks`` row (one per (campaign, server), enforced by admin.php)."""

    server_ip: str
    campaign_id: str
    dedicated_trunks: int = 0
    restriction: TrunkRestriction = TrunkRestriction.OVERFLOW_ALLOWED


@dataclass(frozen=True, slots=True)
class CampaignConfig:
    """The ``vicidial_campaigns`` columns of the goal formula (spec 4.2, 4.4)."""

    campaign_id: str
    active: bool = True
    dial_method: str = "RATIO"
    auto_dial_level: float = 1.0
    available_only_ratio_tally: bool = False
    available_only_tally_threshold: str = "DISABLED"
    available_only_tally_threshold_agents: int = 0
    dial_level_threshold: str = "DISABLED"
    dial_level_threshold_agents: int = 0
    adaptive_dl_diff_target: int = 0
    dl_diff_target_method: str = "ADAPT_CALC_ONLY"


@dataclass(frozen=True, slots=True)
class AgentTally:
    """Agents of one campaign on one server as AST_VDauto_dial.pl counts them (spec 4.1).

    Only fresh (``last_update_time`` > now - 10 s), ``outbound_autodial='Y'`` agents in
    READY/QUEUE/INCALL/DONE. ``ready`` = READY or DONE ("ACTIVE"); ``incall`` = others with a
    ``vicidial_auto_calls`` row for their callerid; ``dead`` = others without one.
    """

    ready: int = 0
    incall: int = 0
    dead: int = 0

    @property
    def counted(self) -> int:
        return self.ready + self.incall + self.dead


AgentState = str
"""``READY``, ``QUEUE``, ``INCALL`` or ``DONE`` (other statuses are not counted)."""


def tally_agents(
    rows: Iterable[tuple[str, str, str, AgentState, bool]],
) -> tuple[Mapping[CampaignServer, AgentTally], Mapping[str, int]]:
    """Count agent rows ``(server_ip, campaign_id, dial_campaign_id, status, has_call)``.

    Returns the per (campaign, server) tallies (SHARED: counted for ``dial_campaign_id``) and
    the per-server number of counted agents of all campaigns (the Perl ``$user_counter``).
    """
    ready: dict[CampaignServer, int] = defaultdict(int)
    incall: dict[CampaignServer, int] = defaultdict(int)
    dead: dict[CampaignServer, int] = defaultdict(int)
    per_server: dict[str, int] = defaultdict(int)
    for server, campaign, dial_campaign, status, has_call in rows:
        if status not in ("READY", "QUEUE", "INCALL", "DONE"):
            continue
        key = (dial_campaign if dial_campaign and dial_campaign != campaign else campaign, server)
        per_server[server] += 1
        if status in ("READY", "DONE"):
            ready[key] += 1
        elif has_call:
            incall[key] += 1
        else:
            dead[key] += 1
    keys = set(ready) | set(incall) | set(dead)
    tallies = {k: AgentTally(ready.get(k, 0), incall.get(k, 0), dead.get(k, 0)) for k in sorted(keys)}
    return MappingProxyType(tallies), MappingProxyType(dict(per_server))


@dataclass(frozen=True, slots=True)
class AutoCallCounts:
    """``vicidial_auto_calls`` counts, from one ``GROUP BY server_ip, campaign_id, call_type, status``.

    * ``rows_on_server``: all rows on a server, any type and status (the FILL ``temp_avail``).
    * ``outbalance``: OUTBALANCE rows of a campaign on a server, any status (``VAC_BAL_CB``).
    * ``xfer_closer``: XFER/CLOSER rows of a campaign on a server (the available-only goal bonus).
    """

    rows_on_server: Mapping[str, int] = field(default_factory=_empty)
    outbalance: Mapping[CampaignServer, int] = field(default_factory=_empty)
    xfer_closer: Mapping[CampaignServer, int] = field(default_factory=_empty)

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[str, str, str, str, int]]) -> AutoCallCounts:
        """Build from ``(server_ip, campaign_id, call_type, status, count)`` rows."""
        on_server: dict[str, int] = defaultdict(int)
        outbalance: dict[CampaignServer, int] = defaultdict(int)
        xfer_closer: dict[CampaignServer, int] = defaultdict(int)
        for server, campaign, call_type, status, count in rows:
            on_server[server] += count
            if call_type == "OUTBALANCE":
                outbalance[(campaign, server)] += count
            if status in ("XFER", "CLOSER"):
                xfer_closer[(campaign, server)] += count
        return cls(
            MappingProxyType(dict(on_server)),
            MappingProxyType(dict(outbalance)),
            MappingProxyType(dict(xfer_closer)),
        )


@dataclass(frozen=True, slots=True)
class LiveCounts:
    """What the channel model knows, captured for one plan (all counts include reservations).

    * ``usage``: a server's line usage (live dialer calls + reservations), ``model.usage(server)``.
    * ``campaign_usage``: a campaign's dialer calls on a server, ``model.campaign_usage(...)``.
    * ``dialable``: servers whose AMI link is live and resynced, ``model.dialable(server)``.
    * ``own_outbalance``: OUTBALANCE calls fillreactor placed per (campaign, server) that are still
      live or reserved; counted with ``max`` against the ``vicidial_auto_calls`` rows, so a call
      placed after the snapshot was read is not asked for twice.
    """

    usage: Mapping[str, int] = field(default_factory=_empty)
    campaign_usage: Mapping[CampaignServer, int] = field(default_factory=_empty)
    dialable: frozenset[str] = frozenset()
    own_outbalance: Mapping[CampaignServer, int] = field(default_factory=_empty)


@dataclass(frozen=True)
class ClusterSnapshot:
    """Every database input, plus indexes derived once (see the module rules)."""

    system: SystemSettings
    servers: Mapping[str, ServerConfig]
    campaigns: Mapping[str, CampaignConfig]
    trunks: Mapping[CampaignServer, ServerTrunk] = field(default_factory=_empty)
    agents: Mapping[CampaignServer, AgentTally] = field(default_factory=_empty)
    logged_in_agents: Mapping[str, int] = field(default_factory=_empty)
    """Counted agents of all campaigns per server (``$user_counter``; LOGGED-IN_AGENTS)."""
    fill_agents: Mapping[str, int] = field(default_factory=_empty)
    """FILL's agent gate per campaign: ``(campaign_id=C OR dial_campaign_id=C) AND status != PAUSED``."""
    auto_calls: AutoCallCounts = field(default_factory=AutoCallCounts)

    # Derived once per snapshot (O(1) lookups for the planner and the shortage formula).
    balance_order: tuple[ServerConfig, ...] = field(init=False, repr=False, compare=False)
    dedicated_on_server: Mapping[str, int] = field(init=False, repr=False, compare=False)
    campaigns_on_server: Mapping[str, tuple[str, ...]] = field(init=False, repr=False, compare=False)
    servers_of_campaign: Mapping[str, tuple[str, ...]] = field(init=False, repr=False, compare=False)
    outbalance_by_campaign: Mapping[str, Mapping[str, int]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        balance = sorted(
            (s for s in self.servers.values() if s.balance_active),
            key=lambda s: (-s.balance_rank, s.server_ip),
        )
        dedicated: dict[str, int] = defaultdict(int)
        for trunk in self.trunks.values():
            dedicated[trunk.server_ip] += trunk.dedicated_trunks
        on_server: dict[str, list[str]] = defaultdict(list)
        of_campaign: dict[str, list[str]] = defaultdict(list)
        for campaign, server in sorted(self.agents):
            if self.agents[(campaign, server)].counted > 0:
                on_server[server].append(campaign)
                of_campaign[campaign].append(server)
        outbalance: dict[str, dict[str, int]] = defaultdict(dict)
        for (campaign, server), count in sorted(self.auto_calls.outbalance.items()):
            if count:
                outbalance[campaign][server] = count
        setattr_ = object.__setattr__
        setattr_(
            self,
            "outbalance_by_campaign",
            MappingProxyType({k: MappingProxyType(v) for k, v in outbalance.items()}),
        )
        setattr_(self, "balance_order", tuple(balance))
        setattr_(self, "dedicated_on_server", MappingProxyType(dict(dedicated)))
        setattr_(self, "campaigns_on_server", MappingProxyType({k: tuple(v) for k, v in on_server.items()}))
        setattr_(self, "servers_of_campaign", MappingProxyType({k: tuple(v) for k, v in of_campaign.items()}))

    @property
    def balance_server_count(self) -> int:
        """``SELECT count(*) FROM servers WHERE vicidial_balance_active='Y'`` (spec 2.2.2)."""
        return len(self.balance_order)

    def trunk(self, campaign: str, server: str) -> ServerTrunk | None:
        return self.trunks.get((campaign, server))

    def dedicated_other(self, campaign: str, server: str) -> int:
        """Sum of other campaigns' ``dedicated_trunks`` on a server (NULL → 0)."""
        own = self.trunks.get((campaign, server))
        return self.dedicated_on_server.get(server, 0) - (own.dedicated_trunks if own else 0)

    def maximum_limit(self, campaign: str, server: str) -> int | None:
        """The campaign's MAXIMUM_LIMIT dedication on a server, ``None`` when it may overflow."""
        own = self.trunks.get((campaign, server))
        if own is not None and own.restriction is TrunkRestriction.MAXIMUM_LIMIT:
            return own.dedicated_trunks
        return None
