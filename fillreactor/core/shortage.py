"""Demand: AST_VDauto_dial.pl's goal / existing / make / shortage arithmetic (2.14), and its sources.

Rules this module keeps (spec 4.1-4.4; ``--shortage-source live``):

* Per server S, the campaigns with counted agents on S are processed in ``campaign_id`` order
  (``CAMPAIGN_ORDER``); ``active_line_counter`` starts at the server's live line usage (all dialer
  calls on S, reservations included) and grows by each campaign's positive ``make``. The Perl
  processes campaigns in the order its agent query found them (``ORDER BY last_call_time``); that
  order is not stable, ours is, and only the split of a full server between its campaigns differs.
* ``existing`` is the campaign's live dialer calls on S (the model's ``campaign_usage``): the live
  counterpart of ``exist_OUT``. Inbound calls are not dialer calls, so ``exist_IN``, the BLENDED
  override and the chat/inbound-queue "no dial" overrides are not modelled (``NOT_MODELLED``).
* The goal is ``sprintf("%.0f")`` of a float: round half to even on the binary value (``f"{x:.0f}"``).
* Named deviations from what the Perl writes (``ShortageDeviation``): a negative shortage is stored
  as 0 (the column is UNSIGNED; non-strict MySQL stores 0 too, strict mode errors); the manual /
  adlevel < 1 override to 0 applies on every computation, not only when the value changed.
  ``parity=True`` reproduces the Perl instead, given the previously written shortage.
* ``--shortage-source stats``: ``Demand.from_stats`` takes the fresh positive
  ``vicidial_campaign_server_stats`` rows exactly as the Perl FILL reads them (spec 2.2.3).
* Pure: ``compute_server_shortages`` reads one server's inputs; a trigger recomputes only the
  server whose counts moved and swaps its rows into ``Demand`` with ``Demand.with_server``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from types import MappingProxyType

from fillreactor.core.cluster import (
    AgentTally,
    CampaignConfig,
    CampaignServer,
    ClusterSnapshot,
    LiveCounts,
)

MANUAL_METHODS = frozenset({"MANUAL", "INBOUND_MAN"})


class ShortageDeviation(Enum):
    """Where the live shortage differs from the value ``AST_VDauto_dial.pl`` would write."""

    NEGATIVE_SHORTAGE_CLAMPED = "negative shortage stored as 0 (local_trunk_shortage is UNSIGNED)"
    ZERO_OVERRIDE_ALWAYS = (
        "manual / dial level < 1 forces 0 on every computation (the Perl only when the value changed)"
    )
    CAMPAIGN_ORDER = "campaigns on a server take lines in campaign_id order (Perl: agent query order)"
    NOT_MODELLED = "inbound exist_IN, BLENDED, inbound-queue/chat no-dial and SHARED max-calls caps"


# Threshold name -> which agent count it is compared with ("threshold_agents > count" triggers).
AVAILABLE_ONLY_COUNT = {
    "LOGGED-IN_AGENTS": lambda t, logged_in: logged_in,
    "NON-PAUSED_AGENTS": lambda t, logged_in: t.counted,
    "WAITING_AGENTS": lambda t, logged_in: t.ready,
}
DIAL_LEVEL_COUNT = {
    "LOGGED-IN_AGENTS": lambda t, logged_in: logged_in,
    "NON-PAUSED_AGENTS": lambda t, logged_in: t.ready + t.incall,
    "WAITING_AGENTS": lambda t, logged_in: t.ready,
}


def perl_round(value: float) -> int:
    """Perl ``sprintf("%.0f", value)``: C printf rounding, half to even on the binary value."""
    return int(f"{value:.0f}")


@dataclass(frozen=True, slots=True)
class ShortageResult:
    campaign: str
    server: str
    goal: int
    existing: int
    make: int
    shortage: int
    line_goal: int
    explanation: tuple[str, ...]
    deviations: tuple[ShortageDeviation, ...] = ()


def _threshold_hit(table: Mapping, name: str, agents_needed: int, tally: AgentTally, logged_in: int) -> bool:
    count_of = table.get(name)
    return count_of is not None and agents_needed > count_of(tally, logged_in)


def goal_calls(
    campaign: CampaignConfig, tally: AgentTally, logged_in: int, xfer_closer: int
) -> tuple[int, float, list[str]]:
    """Spec 4.2. Returns (goal, effective dial level, explanation lines)."""
    why: list[str] = []
    adlevel = campaign.auto_dial_level
    active_only = False
    if campaign.available_only_ratio_tally:
        count, active_only = tally.ready, True
        why.append(f"available-only ratio tally: count {count} READY/DONE agents")
    elif _threshold_hit(
        AVAILABLE_ONLY_COUNT,
        campaign.available_only_tally_threshold,
        campaign.available_only_tally_threshold_agents,
        tally,
        logged_in,
    ):
        count, active_only = tally.ready, True
        why.append(
            f"available-only threshold {campaign.available_only_tally_threshold} "
            f"({campaign.available_only_tally_threshold_agents}): count {count} READY/DONE agents"
        )
    else:
        count = max(tally.counted - tally.dead, 0)
        why.append(f"agents {tally.counted} - DEAD {tally.dead} = {count}")
    if _threshold_hit(
        DIAL_LEVEL_COUNT,
        campaign.dial_level_threshold,
        campaign.dial_level_threshold_agents,
        tally,
        logged_in,
    ):
        adlevel = 1.0
        why.append(f"dial level threshold {campaign.dial_level_threshold}: dial level 1")
    diff = 0 if campaign.dl_diff_target_method == "ADAPT_CALC_ONLY" else campaign.adaptive_dl_diff_target
    if diff:
        count = max(0, count + diff)
        why.append(f"diff target {diff:+d}: count {count}")
    goal = adlevel * count
    if active_only and xfer_closer:
        goal += xfer_closer
        why.append(f"available-only: + {xfer_closer} XFER/CLOSER calls")
    if not campaign.active:
        goal = 0
        why.append("campaign inactive: goal 0")
    rounded = perl_round(goal)
    why.append(f"goal = {adlevel:g} x {count}{' + xfer' if active_only and xfer_closer else ''} -> {rounded}")
    return rounded, adlevel, why


def shortage_for_campaign(
    campaign: CampaignConfig,
    tally: AgentTally,
    *,
    server: str,
    max_trunks: int,
    existing: int,
    active_line_counter: int,
    logged_in: int = 0,
    xfer_closer: int = 0,
    maximum_limit: int | None = None,
    dedicated_other: int = 0,
    previous_shortage: int | None = None,
    parity: bool = False,
) -> tuple[ShortageResult, int]:
    """Spec 4.2-4.4 for one (campaign, server). Returns the result and the new line counter."""
    goal, adlevel, why = goal_calls(campaign, tally, logged_in, xfer_closer)
    make = goal - existing
    make_goal = make
    shortage = 0
    line_goal = active_line_counter + make
    why.append(f"existing {existing}, make {make}, lines {active_line_counter} + {make} = {line_goal}")
    if line_goal > max_trunks:
        make = min(make, max_trunks - active_line_counter)
        shortage = min(line_goal - max_trunks, make_goal)
        why.append(
            f"MVT override: {line_goal} > max_vicidial_trunks {max_trunks}: make {make}, shortage {shortage}"
        )
    if maximum_limit is not None:
        if maximum_limit < goal:
            shortage = min(goal - maximum_limit, make_goal)
            make = maximum_limit - existing
            line_goal = maximum_limit
            why.append(
                f"TRUNK LIMIT override: MAXIMUM_LIMIT {maximum_limit} < goal: "
                f"make {make}, shortage {shortage}"
            )
    else:
        allowed = max_trunks - dedicated_other
        if allowed < line_goal:
            shortage = min(line_goal - allowed, make_goal)
            line_goal = allowed
            make = min(make, line_goal - active_line_counter)
            why.append(
                f"OTHER LIMIT override: {dedicated_other} trunks dedicated to other campaigns, "
                f"allowed {allowed}: make {make}, shortage {shortage}"
            )
    if make > 0:
        active_line_counter += make
    deviations: list[ShortageDeviation] = []
    forced_zero = adlevel < 1 or campaign.dial_method in MANUAL_METHODS
    if forced_zero and shortage != 0:
        if parity and previous_shortage is not None and shortage == previous_shortage:
            why.append("manual/level<1 override skipped: value unchanged (Perl quirk, parity)")
        else:
            if previous_shortage is not None and shortage == previous_shortage:
                deviations.append(ShortageDeviation.ZERO_OVERRIDE_ALWAYS)
            shortage = 0
            why.append(f"{campaign.dial_method} / dial level {adlevel:g}: shortage forced to 0")
    if shortage < 0 and not parity:
        deviations.append(ShortageDeviation.NEGATIVE_SHORTAGE_CLAMPED)
        why.append(
            f"shortage {shortage} < 0 stored as 0 ({ShortageDeviation.NEGATIVE_SHORTAGE_CLAMPED.name})"
        )
        shortage = 0
    why.append(f"LOCAL TRUNK SHORTAGE: {shortage}  ({line_goal} - {max_trunks})")
    result = ShortageResult(
        campaign.campaign_id, server, goal, existing, make, shortage, line_goal, tuple(why), tuple(deviations)
    )
    return result, active_line_counter


def compute_server_shortages(
    snapshot: ClusterSnapshot,
    live: LiveCounts,
    server: str,
    *,
    previous: Mapping[CampaignServer, int] | None = None,
    parity: bool = False,
) -> tuple[ShortageResult, ...]:
    """All campaigns with counted agents on one server, in ``campaign_id`` order (spec 4.1)."""
    config = snapshot.servers.get(server)
    if config is None:
        return ()
    line_counter = live.usage.get(server, 0)
    logged_in = snapshot.logged_in_agents.get(server, 0)
    results = []
    for campaign_id in snapshot.campaigns_on_server.get(server, ()):
        campaign = snapshot.campaigns.get(campaign_id)
        if campaign is None:
            continue
        key = (campaign_id, server)
        result, line_counter = shortage_for_campaign(
            campaign,
            snapshot.agents[key],
            server=server,
            max_trunks=config.max_vicidial_trunks,
            existing=live.campaign_usage.get(key, 0),
            active_line_counter=line_counter,
            logged_in=logged_in,
            xfer_closer=snapshot.auto_calls.xfer_closer.get(key, 0),
            maximum_limit=snapshot.maximum_limit(campaign_id, server),
            dedicated_other=snapshot.dedicated_other(campaign_id, server),
            previous_shortage=None if previous is None else previous.get(key, 0),
            parity=parity,
        )
        results.append(result)
    return tuple(results)


@dataclass(frozen=True)
class Demand:
    """Positive shortages per campaign and server: what the planner fills.

    ``by_campaign[C][S] > 0`` means S is short for C ("full" for C in the FILL's words).
    """

    by_campaign: Mapping[str, Mapping[str, int]]

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[CampaignServer, int]]) -> Demand:
        nested: dict[str, dict[str, int]] = {}
        for (campaign, server), shortage in pairs:
            if shortage > 0:
                nested.setdefault(campaign, {})[server] = nested.get(campaign, {}).get(server, 0) + shortage
        return cls(MappingProxyType({c: MappingProxyType(nested[c]) for c in sorted(nested)}))

    @classmethod
    def from_stats(cls, rows: Iterable[tuple[str, str, int]]) -> Demand:
        """``--shortage-source stats``: fresh ``(campaign_id, server_ip, local_trunk_shortage)`` rows.

        The shell selects ``update_time > now - 1200 s AND local_trunk_shortage > 0`` like the Perl;
        duplicate rows (the table has no unique key) are summed, as the Perl's ``sum()`` does.
        """
        return cls.from_pairs(((c, s), n) for c, s, n in rows)

    @classmethod
    def from_results(cls, results: Iterable[ShortageResult]) -> Demand:
        return cls.from_pairs(((r.campaign, r.server), r.shortage) for r in results)

    def total(self, campaign: str) -> int:
        return sum(self.by_campaign.get(campaign, EMPTY_SERVERS).values())

    def full_servers(self, campaign: str) -> Mapping[str, int]:
        return self.by_campaign.get(campaign, EMPTY_SERVERS)

    def campaigns(self) -> tuple[str, ...]:
        return tuple(sorted(self.by_campaign))

    def shortage(self, campaign: str, server: str) -> int:
        return self.by_campaign.get(campaign, EMPTY_SERVERS).get(server, 0)

    def with_server(self, server: str, results: Iterable[ShortageResult]) -> Demand:
        """This demand with one server's rows replaced (campaigns absent from ``results`` → 0)."""
        fresh = {r.campaign: r.shortage for r in results if r.shortage > 0}
        out = dict(self.by_campaign)
        touched = {c for c, on in self.by_campaign.items() if server in on} | set(fresh)
        for campaign in touched:
            servers = dict(self.by_campaign.get(campaign, EMPTY_SERVERS))
            servers.pop(server, None)
            if campaign in fresh:
                servers[server] = fresh[campaign]
            if servers:
                out[campaign] = MappingProxyType(servers)
            else:
                out.pop(campaign, None)
        return Demand(MappingProxyType({c: out[c] for c in sorted(out)}))


EMPTY_SERVERS: Mapping[str, int] = MappingProxyType({})


def compute_shortages(
    snapshot: ClusterSnapshot,
    live: LiveCounts,
    *,
    servers: Iterable[str] | None = None,
    previous: Mapping[CampaignServer, int] | None = None,
    parity: bool = False,
) -> Mapping[CampaignServer, ShortageResult]:
    """Every (campaign, server) shortage of the given servers (default: all), ``--shortage-source live``."""
    out: dict[CampaignServer, ShortageResult] = {}
    for server in sorted(snapshot.servers if servers is None else servers):
        for result in compute_server_shortages(snapshot, live, server, previous=previous, parity=parity):
            out[(result.campaign, result.server)] = result
    return MappingProxyType(out)
