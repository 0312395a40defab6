"""The cluster snapshot: every database fact the shortage formula and the planner read, frozen.

Rules this module keeps:

* A snapshot is immutable and self-contained. The I/O shell fills it from a handful of queries
  (``servers``, ``vicidial_server_trunks``, ``vicidial_campaigns``, ``GROUP BY`` reads of
  ``vicidial_live_agents`` and ``vicidial_auto_calls``, ``system_settings``, and the inputs of the
  inbound and threshold terms: store/snapshot.py); nothing here runs SQL. Live channel counts are
  a separate value, ``LiveCounts``, captured from the channel model.
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
* ``vicidial_server_trunks`` may hold several rows for one key (admin.php allows one, nothing
  enforces it). ``trunk_rows`` keeps them all in table order: sums of dedicated trunks add every
  row (the Perl's ``sum()``), the FILL's per-key read keeps the last row (FILL 526-536), the
  shortage's MAXIMUM_LIMIT read keeps the last MAXIMUM_LIMIT row (AST_VDauto_dial.pl 931-944).
* Every field added since the first milestone has a default, so a snapshot built with the old
  arguments means what it meant: no inbound, no thresholds, no shared drops, one trunk row per key.
* ``missing_inputs`` names the database inputs that could not be read (a table or column this
  database lacks): the shortage reports each one that matters as ``NOT_MODELLED`` with the reason.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from functools import cached_property
from types import MappingProxyType

from fillreactor.core.lines import OTHER_FAMILY, AutoCallKey, RowLines

_IN_GROUP = re.compile("IN_GROUP", re.I)  # AST_VDauto_dial.pl 1093, 1197: /IN_GROUP/i
_SHARED = re.compile("SHARED_", re.I)

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
    allow_shared_dial: int = 0
    """``> 0``: shared drops count as lines and existing calls (AST_VDauto_dial.pl 745, 1366)."""

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
    closer_campaigns: str = ""
    campaign_allow_inbound: bool = False
    inbound_queue_no_dial: str = "DISABLED"
    drop_call_seconds: int = 5
    drop_action: str = "AUDIO"
    drop_inbound_group: str = "---NONE---"
    incall_tally_threshold_seconds: int = 0
    inbound_no_agents_no_dial_container: str = "DISABLED"
    inbound_no_agents_no_dial_threshold: int = 0
    shared_dial_rank: int = 0

    @property
    def closer_groups(self) -> tuple[str, ...]:
        """The in-groups of ``closer_campaigns`` as the Perl's ``IN(...)`` list holds them
        (AST_VDauto_dial.pl 1212-1218): one leading space and a trailing `` -`` cut, split on
        spaces (``' A  B -'`` gives ``A``, ``''``, ``B``); 2 characters or fewer give ``('',)``."""
        if len(self.closer_campaigns) <= 2:
            return ("",)
        return tuple(re.sub(r"^ | -$", "", self.closer_campaigns).split(" "))

    @property
    def drop_group_calls(self) -> str | None:
        """The drop in-group whose calls count with the campaign's (``drop_action`` IN_GROUP,
        AST_VDauto_dial.pl 1197-1199: any ``drop_call_seconds``)."""
        return self.drop_inbound_group if _IN_GROUP.search(self.drop_action) else None

    @property
    def drop_group_agents_counted(self) -> bool:
        """The drop in-group's agents are borrowed (AST_VDauto_dial.pl 1093)."""
        return (
            self.drop_call_seconds < 0
            and _IN_GROUP.search(self.drop_action) is not None
            and self.drop_inbound_group != "---NONE---"
            and len(self.drop_inbound_group) > 0
            and _SHARED.search(self.dial_method) is None
        )


@dataclass(frozen=True, slots=True)
class IncallThreshold:
    """``incall_tally_threshold_seconds`` counts of one campaign (AST_VDauto_dial.pl 1052-1071).

    Both count fresh INCALL/QUEUE agents with ``campaign_id`` or ``dial_campaign_id`` = C on
    **every** server (the Perl's queries have no ``server_ip``): ``within`` those whose callerid has
    a ``vicidial_auto_calls`` row and whose call is no older than the threshold, ``dead`` those
    whose callerid has no row.
    """

    within: int = 0
    dead: int = 0


@dataclass(frozen=True, slots=True)
class DropGroupAgents:
    """Fresh agents of other campaigns, any server, with the drop in-group in their
    ``closer_campaigns`` (AST_VDauto_dial.pl 1097-1131): READY/DONE/CLOSER and INCALL ones."""

    ready: int = 0
    incall: int = 0


@dataclass(frozen=True, slots=True)
class InboundNoAgents:
    """The inbound no-agents no-dial inputs of one campaign (AST_VDauto_dial.pl 1297-1362).

    ``entry``: the container's entry cleaned as the Perl cleans it (groups joined by ``','``);
    ``users``: distinct ``vicidial_live_inbound_agents`` users of those groups under their daily
    limit; ``ready``: those users' READY/CLOSER ``vicidial_live_agents`` rows.
    """

    entry: str = ""
    users: int = 0
    ready: int = 0


@dataclass(frozen=True, slots=True)
class StoredShortage:
    """One ``vicidial_campaign_server_stats`` row, in table order (the table has no key)."""

    campaign_id: str
    server_ip: str
    local_trunk_shortage: int


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
    """``vicidial_auto_calls`` counts, from one ``GROUP BY server_ip, campaign_id, call_type, status``
    (and the callerid's family).

    * ``rows_on_server``: all rows on a server, any type and status (the FILL ``temp_avail``).
    * ``outbalance``: OUTBALANCE rows of a campaign on a server, any status (``VAC_BAL_CB``).
    * ``xfer_closer``: XFER/CLOSER rows of a campaign on a server (the available-only goal bonus).
    * ``groups``: every group, keyed ``(server, campaign, call_type, status, family)``, family
      ``'V'`` for a V callerid (counted from the model in live mode), else ``'M'``, ``'Y'`` or
      ``''``. Empty when built from the three totals alone (then no row is counted off the model).
    """

    rows_on_server: Mapping[str, int] = field(default_factory=_empty)
    outbalance: Mapping[CampaignServer, int] = field(default_factory=_empty)
    xfer_closer: Mapping[CampaignServer, int] = field(default_factory=_empty)
    groups: Mapping[AutoCallKey, int] = field(default_factory=_empty)

    @classmethod
    def from_rows(cls, rows: Iterable[tuple]) -> AutoCallCounts:
        """Build from ``(server_ip, campaign_id, call_type, status[, family], count)`` rows.

        A row without a family is an other-family row (``''``): counted from the rows.
        """
        on_server: dict[str, int] = defaultdict(int)
        outbalance: dict[CampaignServer, int] = defaultdict(int)
        xfer_closer: dict[CampaignServer, int] = defaultdict(int)
        groups: dict[AutoCallKey, int] = defaultdict(int)
        for row in rows:
            if len(row) == 6:
                server, campaign, call_type, status, family, count = row
            else:
                server, campaign, call_type, status, count = row
                family = OTHER_FAMILY
            on_server[server] += count
            groups[(server, campaign, call_type, status, family or OTHER_FAMILY)] += count
            if call_type == "OUTBALANCE":
                outbalance[(campaign, server)] += count
            if status in ("XFER", "CLOSER"):
                xfer_closer[(campaign, server)] += count
        return cls(
            MappingProxyType(dict(on_server)),
            MappingProxyType(dict(outbalance)),
            MappingProxyType(dict(xfer_closer)),
            MappingProxyType(dict(sorted(groups.items()))),
        )


@dataclass(frozen=True, slots=True)
class LiveCounts:
    """What the channel model knows, captured for one plan (all counts include reservations).

    * ``usage``: the model's part of a server's line usage, ``model.usage(server)``: its live V
      calls placed on that server plus reservations. ``lines.used_lines`` adds every other row
      (M, Y, ...) from the snapshot: that sum is THE used-lines figure planner and shortage share.
      A server without a ``usage`` key has no AMI view: its V calls are counted from its rows.
    * ``campaign_usage``: a campaign's V calls on a server (placed there), ``model.campaign_usage``.
    * ``dialable``: servers whose AMI link is live and resynced, ``model.dialable(server)``.
    * ``own_outbalance``: OUTBALANCE calls fillreactor placed per (campaign, server) that are still
      live or reserved; counted with ``max`` against the ``vicidial_auto_calls`` rows, so a call
      placed after the snapshot was read is not asked for twice.
    """

    usage: Mapping[str, int] = field(default_factory=_empty)
    campaign_usage: Mapping[CampaignServer, int] = field(default_factory=_empty)
    dialable: frozenset[str] = frozenset()
    own_outbalance: Mapping[CampaignServer, int] = field(default_factory=_empty)
    outbalance_in_flight: Mapping[CampaignServer, int] | None = None
    """When the caller knows the OUTBALANCE calls one by one (the reactor: the rows' call ids
    without those it saw end, plus its own live calls without a row yet), their exact count per
    (campaign, server); it replaces ``max(rows, own_outbalance)``."""

    @classmethod
    def from_rows(
        cls,
        auto_calls: AutoCallCounts,
        *,
        dialable: Iterable[str] = (),
        own_outbalance: Mapping[CampaignServer, int] | None = None,
    ) -> LiveCounts:
        """The counts a model holding exactly the snapshot's V rows in LINE_STATUSES would give.

        With it every line figure is the Perl's row count (``fillreactor shortage``, parity).
        """
        rows = RowLines.of(auto_calls.groups)
        return cls(
            rows.v_lines,
            rows.v_campaign,
            frozenset(dialable),
            MappingProxyType(dict(own_outbalance or {})),
        )


@dataclass(frozen=True)
class ClusterSnapshot:
    """Every database input, plus indexes derived once (see the module rules)."""

    system: SystemSettings
    servers: Mapping[str, ServerConfig]
    campaigns: Mapping[str, CampaignConfig]
    trunks: Mapping[CampaignServer, ServerTrunk] = field(default_factory=_empty)
    """The FILL's view: the last ``vicidial_server_trunks`` row of each key."""
    agents: Mapping[CampaignServer, AgentTally] = field(default_factory=_empty)
    logged_in_agents: Mapping[str, int] = field(default_factory=_empty)
    """Counted agents of all campaigns per server (``$user_counter``; LOGGED-IN_AGENTS)."""
    fill_agents: Mapping[str, int] = field(default_factory=_empty)
    """FILL's agent gate per campaign: ``(campaign_id=C OR dial_campaign_id=C) AND status != PAUSED``."""
    auto_calls: AutoCallCounts = field(default_factory=AutoCallCounts)
    trunk_rows: tuple[ServerTrunk, ...] = ()
    """Every ``vicidial_server_trunks`` row in table order; ``()`` means one row per key (``trunks``)."""
    agent_call_epochs: Mapping[CampaignServer, str] = field(default_factory=_empty)
    """``UNIX_TIMESTAMP(last_call_time)`` of each (campaign, server)'s first agent in the Perl's
    ``ORDER BY last_call_time`` (``''`` for NULL): the key the Perl sorts campaigns by (822-827)."""
    ready_agents: Mapping[CampaignServer, int] = field(default_factory=_empty)
    """READY agents of C (or dialing for C) on S, no freshness filter: the BLENDED override (905-914)."""
    incall_threshold: Mapping[str, IncallThreshold] = field(default_factory=_empty)
    drop_group_agents: Mapping[str, DropGroupAgents] = field(default_factory=_empty)
    inbound_no_agents: Mapping[str, InboundNoAgents] = field(default_factory=_empty)
    waiting_chats: Mapping[str, int] = field(default_factory=_empty)
    """``vicidial_live_chats`` WAITING per group (1257-1266)."""
    queued_callbacks: Mapping[str, int] = field(default_factory=_empty)
    """``vicidial_inbound_callback_queue`` LIVE/SENDING/NEW per group (1268-1277)."""
    shared_drops: AutoCallCounts = field(default_factory=AutoCallCounts)
    """Fresh ``vicidial_shared_drops`` (drop_time within 5 s), grouped like ``auto_calls``."""
    stored_shortages: tuple[StoredShortage, ...] = ()
    """``vicidial_campaign_server_stats`` rows in table order (read for ``fillreactor shortage``)."""
    missing_inputs: Mapping[str, str] = field(default_factory=_empty)
    """Input name -> why it could not be read (a table or column this database lacks)."""
    outbalance_calls: Mapping[CampaignServer, frozenset[str]] = field(default_factory=_empty)
    """The call ids of the OUTBALANCE rows per (campaign, server): lets the reactor drop the rows
    of calls it saw end before VICIdial's cleanup deleted them (``LiveCounts.outbalance_in_flight``)."""

    # Derived once per snapshot (O(1) lookups for the planner and the shortage formula).
    balance_order: tuple[ServerConfig, ...] = field(init=False, repr=False, compare=False)
    dedicated_on_server: Mapping[str, int] = field(init=False, repr=False, compare=False)
    dedicated_of_key: Mapping[CampaignServer, int] = field(init=False, repr=False, compare=False)
    shortage_limits: Mapping[CampaignServer, int] = field(init=False, repr=False, compare=False)
    campaigns_on_server: Mapping[str, tuple[str, ...]] = field(init=False, repr=False, compare=False)
    servers_of_campaign: Mapping[str, tuple[str, ...]] = field(init=False, repr=False, compare=False)
    outbalance_by_campaign: Mapping[str, Mapping[str, int]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        balance = sorted(
            (s for s in self.servers.values() if s.balance_active),
            key=lambda s: (-s.balance_rank, s.server_ip),
        )
        rows = self.trunk_rows or tuple(self.trunks.values())
        dedicated: dict[str, int] = defaultdict(int)
        of_key: dict[CampaignServer, int] = defaultdict(int)
        limits: dict[CampaignServer, int] = {}
        last: dict[CampaignServer, ServerTrunk] = {}
        for trunk in rows:
            key = (trunk.campaign_id, trunk.server_ip)
            dedicated[trunk.server_ip] += trunk.dedicated_trunks
            of_key[key] += trunk.dedicated_trunks
            last[key] = trunk
            if trunk.restriction is TrunkRestriction.MAXIMUM_LIMIT:
                limits[key] = trunk.dedicated_trunks  # the last MAXIMUM_LIMIT row of the key
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
        if self.trunk_rows and not self.trunks:
            setattr_(self, "trunks", MappingProxyType(last))
        setattr_(
            self,
            "outbalance_by_campaign",
            MappingProxyType({k: MappingProxyType(v) for k, v in outbalance.items()}),
        )
        setattr_(self, "balance_order", tuple(balance))
        setattr_(self, "dedicated_on_server", MappingProxyType(dict(dedicated)))
        setattr_(self, "dedicated_of_key", MappingProxyType(dict(of_key)))
        setattr_(self, "shortage_limits", MappingProxyType(limits))
        setattr_(self, "campaigns_on_server", MappingProxyType({k: tuple(v) for k, v in on_server.items()}))
        setattr_(self, "servers_of_campaign", MappingProxyType({k: tuple(v) for k, v in of_campaign.items()}))

    @cached_property
    def row_lines(self) -> RowLines:
        """The ``vicidial_auto_calls`` counts the line figures read (``fillreactor.core.lines``)."""
        return RowLines.of(self.auto_calls.groups, self.shared_drops.groups)

    @property
    def balance_server_count(self) -> int:
        """``SELECT count(*) FROM servers WHERE vicidial_balance_active='Y'`` (spec 2.2.2)."""
        return len(self.balance_order)

    def trunk(self, campaign: str, server: str) -> ServerTrunk | None:
        return self.trunks.get((campaign, server))

    def dedicated_other(self, campaign: str, server: str) -> int:
        """Sum of other campaigns' ``dedicated_trunks`` on a server, every row (NULL → 0)."""
        return self.dedicated_on_server.get(server, 0) - self.dedicated_of_key.get((campaign, server), 0)

    def maximum_limit(self, campaign: str, server: str) -> int | None:
        """The campaign's MAXIMUM_LIMIT on a server as AST_VDauto_dial.pl reads it (its last
        MAXIMUM_LIMIT row, 931-944), ``None`` when it has none."""
        return self.shortage_limits.get((campaign, server))
