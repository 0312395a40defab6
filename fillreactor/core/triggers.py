"""Triggers: which campaigns need a plan now, from usage changes and snapshot changes.

Rules this module keeps:

* ``TriggerState`` holds the last-known inputs (snapshot, live counts), the last shortages and
  each campaign's unmet need (``needed - planned`` of the last recorded plan). Its methods take
  inputs and return a ``frozenset`` of campaign ids; nothing else is returned, nothing is awaited.
* A campaign fires when one of these holds (the table ``WHY`` names each reason):

  ================  ==========================================================================
  SHORTAGE          live source: a (campaign, server) shortage appeared, changed or went away
                    after the server's counts moved (only that server is recomputed);
                    stats source: the fresh ``vicidial_campaign_server_stats`` rows changed
  FREED_CAPACITY    a balance server that is not short for the campaign, is dialable and is
                    below ``max_vicidial_trunks`` lost a call (or became dialable), and the
                    campaign has unmet need
  FILL_ENDED        a call of a short campaign ended on a balance server: its in-flight
                    OUTBALANCE count (and so its need) may have dropped
  PLAN_INPUTS       a snapshot change the planner reads for every campaign (system settings,
                    a balance server's row, a trunk row on a balance server): every short
                    campaign fires
  CAMPAIGN_INPUTS   the campaign's FILL agent count or its OUTBALANCE rows changed
  ================  ==========================================================================

* Nothing fires when nothing relevant changed: a usage change with no delta, an identical
  snapshot, usage moving on a server with no unchanged-shortage campaign and no unmet need.
* Usage increases never fire by themselves: less capacity can only mean fewer calls, and the
  shortages they change are caught by SHORTAGE.
* A balance server's free lines are THE used-lines figure of ``core/lines.py`` (the model's V
  calls and reservations plus the snapshot's other rows), the figure the planner uses.
* Unmet need is what the last plan did not cover: ``record_plan`` takes the planned calls as
  placed; ``record_placed(plan, placed)`` takes the calls the dialer really placed per
  (campaign, server) (fewer when the hopper ran dry or an originate could not be sent), so a
  campaign whose calls were not all placed fires again when a line frees.
* A snapshot change recomputes the servers whose shortage inputs changed: per-server inputs
  (servers, trunks, agents, order keys, READY counts, the server's ``vicidial_auto_calls`` and
  shared-drop rows), the servers of a campaign whose per-campaign inputs changed (settings,
  threshold and drop-group agent counts, inbound no-agents inputs), and the servers of every
  inbound-allowed campaign when a cluster-wide inbound count changed (IN rows of any server,
  waiting chats, queued callbacks).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import Enum

from fillreactor.core.cluster import CampaignServer, ClusterSnapshot, LiveCounts
from fillreactor.core.lines import used_lines
from fillreactor.core.planner import CampaignOutcome, Plan, PlanStatus
from fillreactor.core.shortage import Demand, ShortageResult, compute_server_shortages
from fillreactor.core.usage import UsageChange

NOTHING: frozenset[str] = frozenset()


class ShortageSource(Enum):
    LIVE = "live"
    STATS = "stats"


class Why(Enum):
    SHORTAGE = "shortage appeared, changed or went away"
    FREED_CAPACITY = "a usable balance server freed a line while the campaign has unmet need"
    FILL_ENDED = "a call of a short campaign ended on a balance server"
    PLAN_INPUTS = "system, balance server or trunk settings changed"
    CAMPAIGN_INPUTS = "the campaign's agents or OUTBALANCE rows changed"


class TriggerState:
    """Last-known inputs and results; each method returns the campaigns to plan now."""

    def __init__(
        self,
        snapshot: ClusterSnapshot,
        live: LiveCounts,
        *,
        source: ShortageSource = ShortageSource.LIVE,
        demand: Demand | None = None,
    ) -> None:
        self.snapshot = snapshot
        self.source = source
        self.usage: dict[str, int] = dict(live.usage)
        self.campaign_usage: dict[CampaignServer, int] = dict(live.campaign_usage)
        self.dialable: set[str] = set(live.dialable)
        self.unmet: dict[str, int] = {}
        self.last_reasons: dict[str, Why] = {}
        self.results: dict[str, tuple[ShortageResult, ...]] = {}
        if source is ShortageSource.LIVE:
            current = self.live()
            for server in sorted(snapshot.servers):
                self.results[server] = compute_server_shortages(snapshot, current, server)
            self.demand = Demand.from_results(r for rs in self.results.values() for r in rs)
        else:
            self.demand = demand if demand is not None else Demand.from_pairs(())

    # -- views -------------------------------------------------------------------------------

    def live(self) -> LiveCounts:
        """The live counts as last reported (add ``own_outbalance`` with ``dataclasses.replace``)."""
        return LiveCounts(dict(self.usage), dict(self.campaign_usage), frozenset(self.dialable))

    # -- inputs ------------------------------------------------------------------------------

    def on_usage(self, changes: Iterable[UsageChange]) -> frozenset[str]:
        fired: dict[str, Why] = {}
        moved_servers: set[str] = set()
        for change in changes:
            if change.usage_before == change.usage_after and change.campaign_before == change.campaign_after:
                continue
            self.usage[change.server] = change.usage_after
            if change.campaign is not None:
                self.campaign_usage[(change.campaign, change.server)] = change.campaign_after
            moved_servers.add(change.server)
            self._on_balance_change(change, fired)
        for server in sorted(moved_servers):
            self._recompute(server, fired)
        return self._done(fired)

    def set_dialable(self, server: str, dialable: bool) -> frozenset[str]:
        """The AMI link of ``server`` became live and resynced (True) or was lost (False)."""
        if dialable == (server in self.dialable):
            return NOTHING
        fired: dict[str, Why] = {}
        if dialable:
            self.dialable.add(server)
            self._freed(server, fired)
        else:
            self.dialable.discard(server)
        return self._done(fired)

    def on_stats(self, demand: Demand) -> frozenset[str]:
        """``--shortage-source stats``: the fresh shortage rows were read again."""
        old, self.demand = self.demand, demand
        fired = {
            c: Why.SHORTAGE
            for c in set(old.by_campaign) | set(demand.by_campaign)
            if dict(old.full_servers(c)) != dict(demand.full_servers(c))
        }
        return self._done(fired)

    def on_snapshot(self, new: ClusterSnapshot) -> frozenset[str]:
        old, self.snapshot = self.snapshot, new
        if new == old:
            return NOTHING
        fired: dict[str, Why] = {}
        dirty: set[str] = set()  # servers whose shortage inputs changed
        plan_inputs = old.system != new.system

        def balance(ip: str) -> bool:
            before, after = old.servers.get(ip), new.servers.get(ip)
            return bool((before and before.balance_active) or (after and after.balance_active))

        for ip in _changed_keys(old.servers, new.servers):
            dirty.add(ip)
            plan_inputs = plan_inputs or balance(ip)
        for _campaign, ip in _changed_keys(old.trunks, new.trunks):
            dirty.add(ip)
            plan_inputs = plan_inputs or balance(ip)
        for campaign in _changed_keys(old.campaigns, new.campaigns):
            dirty.update(old.servers_of_campaign.get(campaign, ()))
            dirty.update(new.servers_of_campaign.get(campaign, ()))
        dirty.update(ip for _, ip in _changed_keys(old.agents, new.agents))
        dirty.update(_changed_keys(old.logged_in_agents, new.logged_in_agents))
        dirty.update(ip for _, ip in _changed_keys(old.auto_calls.xfer_closer, new.auto_calls.xfer_closer))
        dirty.update(_shortage_inputs_changed(old, new))
        if old.system != new.system:
            dirty.update(new.servers)
        for campaign in _changed_keys(old.fill_agents, new.fill_agents):
            fired.setdefault(campaign, Why.CAMPAIGN_INPUTS)
        for campaign, _ in _changed_keys(old.auto_calls.outbalance, new.auto_calls.outbalance):
            fired.setdefault(campaign, Why.CAMPAIGN_INPUTS)
        for ip in _changed_keys(old.auto_calls.rows_on_server, new.auto_calls.rows_on_server):
            if new.auto_calls.rows_on_server.get(ip, 0) < old.auto_calls.rows_on_server.get(ip, 0):
                self._freed(ip, fired)
        for ip in sorted(dirty):
            self._recompute(ip, fired)
        if plan_inputs:
            for campaign in self.demand.by_campaign:
                fired.setdefault(campaign, Why.PLAN_INPUTS)
        # Campaign inputs matter only to campaigns with demand (or whose demand just went away).
        fired = {
            c: why
            for c, why in fired.items()
            if why is Why.SHORTAGE or self.demand.total(c) > 0 or c in self.unmet
        }
        return self._done(fired)

    def record_plan(self, plan: Plan) -> None:
        """Remember each planned campaign's unmet need (needed minus the calls it was given)."""
        self._record(plan, {c.campaign: plan.total(c.campaign) for c in plan.campaigns})

    def record_placed(self, plan: Plan, placed: Mapping[tuple[str, str], int]) -> None:
        """Like ``record_plan``, with the calls the dialer actually placed per (campaign, server).

        ``placed`` may hold fewer calls than the plan's entries (no lead in the hopper, an
        originate that could not be sent); the unmet need is then larger and the campaign fires
        again on freed capacity. Keys of campaigns not in the plan are ignored.
        """
        totals: dict[str, int] = {}
        for (campaign, _server), calls in placed.items():
            totals[campaign] = totals.get(campaign, 0) + calls
        self._record(plan, {c.campaign: totals.get(c.campaign, 0) for c in plan.campaigns})

    def _record(self, plan: Plan, given: Mapping[str, int]) -> None:
        if plan.status is not PlanStatus.PLANNED:
            self.unmet.clear()
            return
        for campaign in plan.campaigns:
            gap = 0
            if campaign.outcome in (CampaignOutcome.PLANNED, CampaignOutcome.NO_AGENTS):
                gap = campaign.needed - given.get(campaign.campaign, 0)
            elif campaign.outcome is CampaignOutcome.NO_SERVERS_OR_NEED:
                gap = max(0, campaign.needed)
            if gap > 0:
                self.unmet[campaign.campaign] = gap
            else:
                self.unmet.pop(campaign.campaign, None)

    # -- internals ---------------------------------------------------------------------------

    def _recompute(self, server: str, fired: dict[str, Why]) -> None:
        if self.source is not ShortageSource.LIVE:
            return
        before = {r.campaign: r.shortage for r in self.results.get(server, ())}
        results = compute_server_shortages(self.snapshot, self.live(), server)
        after = {r.campaign: r.shortage for r in results}
        self.results[server] = results
        changed = [c for c in set(before) | set(after) if before.get(c, 0) != after.get(c, 0)]
        if changed:
            self.demand = self.demand.with_server(server, results)
            for campaign in changed:
                fired[campaign] = Why.SHORTAGE

    def _on_balance_change(self, change: UsageChange, fired: dict[str, Why]) -> None:
        config = self.snapshot.servers.get(change.server)
        if config is None or not config.balance_active:
            return
        if change.usage_after < change.usage_before:
            self._freed(change.server, fired)
        campaign = change.campaign
        if (
            campaign is not None
            and change.campaign_after < change.campaign_before
            and self.demand.total(campaign) > 0
        ):
            fired.setdefault(campaign, Why.FILL_ENDED)

    def _freed(self, server: str, fired: dict[str, Why]) -> None:
        config = self.snapshot.servers.get(server)
        if config is None or not config.balance_active or server not in self.dialable:
            return
        used = used_lines(self.snapshot, LiveCounts(self.usage), server)
        if used >= config.max_vicidial_trunks:
            return
        for campaign in self.unmet:
            if self.demand.shortage(campaign, server) == 0:
                fired.setdefault(campaign, Why.FREED_CAPACITY)

    def _done(self, fired: dict[str, Why]) -> frozenset[str]:
        self.last_reasons = fired
        return frozenset(fired)


def _changed_keys(old, new) -> list:
    """Keys whose value differs between two mappings (missing counts as different)."""
    missing = object()
    return [k for k in {*old, *new} if old.get(k, missing) != new.get(k, missing)]


def _shortage_inputs_changed(old: ClusterSnapshot, new: ClusterSnapshot) -> set[str]:
    """Servers whose shortage inputs changed beyond servers/trunks/campaigns/agents (see the rules)."""
    dirty: set[str] = set()
    dirty.update(ip for _, ip in _changed_keys(old.agent_call_epochs, new.agent_call_epochs))
    dirty.update(ip for _, ip in _changed_keys(old.ready_agents, new.ready_agents))
    if old.trunk_rows != new.trunk_rows:
        dirty.update(t.server_ip for t in {*old.trunk_rows, *new.trunk_rows})
    if old.auto_calls.groups != new.auto_calls.groups:
        dirty.update(key[0] for key in _changed_keys(old.auto_calls.groups, new.auto_calls.groups))
    if old.shared_drops != new.shared_drops:
        dirty.update(key[0] for key in _changed_keys(old.shared_drops.groups, new.shared_drops.groups))
    campaigns: set[str] = set()
    for mapping in ("incall_threshold", "drop_group_agents", "inbound_no_agents"):
        campaigns.update(_changed_keys(getattr(old, mapping), getattr(new, mapping)))
    inbound_moved = (
        old.row_lines.inbound_all != new.row_lines.inbound_all
        or old.row_lines.inbound_live != new.row_lines.inbound_live
        or old.waiting_chats != new.waiting_chats
        or old.queued_callbacks != new.queued_callbacks
    )
    if inbound_moved:
        campaigns.update(c for c, config in new.campaigns.items() if config.campaign_allow_inbound)
    if old.missing_inputs != new.missing_inputs:
        campaigns.update(new.campaigns)
    for campaign in campaigns:
        dirty.update(old.servers_of_campaign.get(campaign, ()))
        dirty.update(new.servers_of_campaign.get(campaign, ()))
    return dirty
