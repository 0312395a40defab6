"""Hypothesis properties of the planner and the triggers on random small clusters."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from fillreactor.core.cluster import (
    AgentTally,
    AutoCallCounts,
    CampaignConfig,
    ClusterSnapshot,
    LiveCounts,
    ServerConfig,
    ServerTrunk,
    SystemSettings,
    TrunkRestriction,
)
from fillreactor.core.lines import used_lines
from fillreactor.core.planner import Mode, plan
from fillreactor.core.shortage import Demand, compute_shortages
from fillreactor.core.triggers import TriggerState
from fillreactor.core.usage import UsageChange

IPS = [f"10.0.0.{n}" for n in (1, 2, 3, 10, 11, 20)]
CAMPAIGNS = ["A1", "B2", "C3", "D4"]


@st.composite
def clusters(draw):
    servers = {}
    for ip in draw(st.lists(st.sampled_from(IPS), min_size=1, max_size=6, unique=True)):
        servers[ip] = ServerConfig(
            ip,
            draw(st.integers(0, 30)),
            draw(st.booleans()),
            draw(st.integers(0, 5)),
            draw(st.integers(0, 3)),
        )
    campaigns = {
        c: CampaignConfig(c, auto_dial_level=draw(st.sampled_from([0.5, 1.0, 2.0, 2.5]))) for c in CAMPAIGNS
    }
    trunks, agents, usage, campaign_usage = {}, {}, {}, {}
    rows: list[tuple[str, str, str, str, str, int]] = []  # vicidial_auto_calls groups
    for ip in servers:
        for c in CAMPAIGNS:
            if draw(st.integers(0, 4)) == 0:
                restriction = draw(st.sampled_from(list(TrunkRestriction)))
                trunks[(c, ip)] = ServerTrunk(ip, c, draw(st.integers(0, 10)), restriction)
            if draw(st.integers(0, 2)) == 0:
                agents[(c, ip)] = AgentTally(
                    draw(st.integers(0, 8)), draw(st.integers(0, 3)), draw(st.integers(0, 2))
                )
            if draw(st.integers(0, 3)) == 0:
                rows.append((ip, c, "OUTBALANCE", "LIVE", "V", draw(st.integers(0, 4))))
            campaign_usage[(c, ip)] = draw(st.integers(0, 6))
        usage[ip] = sum(campaign_usage[(c, ip)] for c in CAMPAIGNS) + draw(st.integers(0, 5))
        rows.append(
            (ip, "X", "OUT", draw(st.sampled_from(["LIVE", "XFER", "BUSY"])), "V", draw(st.integers(0, 20)))
        )
        rows.append((ip, "G", "IN", "LIVE", "Y", draw(st.integers(0, 3))))
    snapshot = ClusterSnapshot(
        SystemSettings(),
        servers,
        campaigns,
        trunks=trunks,
        agents=agents,
        fill_agents={c: draw(st.integers(0, 2)) for c in CAMPAIGNS},
        auto_calls=AutoCallCounts.from_rows(rows),
    )
    dialable = frozenset(ip for ip in servers if draw(st.integers(0, 4)) > 0)
    live = LiveCounts(usage, campaign_usage, dialable)
    demand = Demand.from_pairs(
        ((c, ip), draw(st.integers(0, 15))) for c in CAMPAIGNS for ip in servers if draw(st.booleans())
    )
    return snapshot, live, demand


def reordered(snapshot: ClusterSnapshot, seed: int) -> ClusterSnapshot:
    rng = random.Random(seed)

    def shuffle(mapping):
        items = list(mapping.items())
        rng.shuffle(items)
        return dict(items)

    calls = snapshot.auto_calls
    return ClusterSnapshot(
        snapshot.system,
        shuffle(snapshot.servers),
        shuffle(snapshot.campaigns),
        shuffle(snapshot.trunks),
        shuffle(snapshot.agents),
        fill_agents=shuffle(snapshot.fill_agents),
        auto_calls=AutoCallCounts(
            shuffle(calls.rows_on_server),
            shuffle(calls.outbalance),
            shuffle(calls.xfer_closer),
            shuffle(calls.groups),
        ),
    )


@settings(max_examples=300, deadline=None)
@given(clusters(), st.integers(0, 1000))
def test_plan_is_deterministic_and_order_independent(case, seed) -> None:
    snapshot, live, demand = case
    first = plan(snapshot, demand, live)
    assert first == plan(snapshot, demand, live)
    again = plan(reordered(snapshot, seed), Demand.from_pairs(reversed(list(_pairs(demand)))), live)
    assert again.entries == first.entries and dict(again.balance_trunk_fill) == dict(first.balance_trunk_fill)
    assert again.explain() == first.explain()


def _pairs(demand: Demand):
    for c, servers in demand.by_campaign.items():
        for s, n in servers.items():
            yield (c, s), n


@settings(max_examples=300, deadline=None)
@given(clusters())
def test_invariants_of_corrected_plan(case) -> None:
    snapshot, live, demand = case
    result = plan(snapshot, demand, live)
    for ip, server in snapshot.servers.items():
        used = used_lines(snapshot, live, ip)
        planned = result.calls_on(ip)
        # Never above max_vicidial_trunks counting THE used lines (live V calls, reservations, rows).
        assert planned == 0 or used + planned <= server.max_vicidial_trunks
        assert planned == 0 or (server.balance_active and ip in live.dialable)
    for campaign in result.campaigns:
        # Every short campaign gets a balance_trunk_fill to store, never negative (FILL 1512-1515).
        if campaign.shortage > 0:
            assert result.balance_trunk_fill[campaign.campaign] >= 0
        # A campaign's planned total never exceeds its need; no entry on a server short for it.
        assert result.total(campaign.campaign) <= max(0, campaign.needed)
        assert all(
            e.server not in campaign.full_servers for e in result.entries if e.campaign == campaign.campaign
        )
        # Rank order: a later server gets calls only if every earlier one was exhausted by its limits.
        for i, step in enumerate(campaign.steps):
            if step.dial > 0:
                for earlier in campaign.steps[:i]:
                    assert earlier.dial == min(earlier.available, earlier.wanted, earlier.temp_avail) or (
                        earlier.dial == 0 and earlier.server not in live.dialable
                    )
                    assert earlier.dial < earlier.wanted
        order = [s.server_ip for s in snapshot.balance_order]
        assert [s.server for s in campaign.steps] == [
            ip for ip in order if ip in [s.server for s in campaign.steps]
        ]


@settings(max_examples=200, deadline=None)
@given(clusters())
def test_corrected_equals_parity_when_no_defect_applies(case) -> None:
    snapshot, live, demand = case
    parity = plan(snapshot, demand, live, mode=Mode.PARITY)
    # the model holds exactly the rows in live statuses, and no row is in another status
    clean = LiveCounts.from_rows(snapshot.auto_calls, dialable=snapshot.servers)
    dead_rows = any(status == "BUSY" and n for (_, _, _, status, _), n in snapshot.auto_calls.groups.items())
    over_full = any(
        snapshot.auto_calls.rows_on_server.get(ip, 0) > s.max_vicidial_trunks
        for ip, s in snapshot.servers.items()
    )
    no_agents = any(snapshot.fill_agents.get(c, 0) == 0 for c in demand.by_campaign)
    if not over_full and not no_agents and not dead_rows:
        corrected = plan(snapshot, demand, clean)
        assert corrected.entries == parity.entries
        assert dict(corrected.balance_trunk_fill) == dict(parity.balance_trunk_fill)
        assert all(not c.corrections for c in corrected.campaigns)


@settings(max_examples=150, deadline=None)
@given(
    clusters(),
    st.lists(st.tuples(st.integers(0, 5), st.integers(0, 3), st.sampled_from([-1, 1])), max_size=12),
)
def test_triggers_never_miss_a_shortage_change_or_new_capacity(case, moves) -> None:
    snapshot, live, _ = case
    state = TriggerState(snapshot, live)
    ips = sorted(snapshot.servers)
    full_plan = plan(snapshot, state.demand, state.live())
    state.record_plan(full_plan)
    for server_n, campaign_n, delta in moves:
        ip, campaign = ips[server_n % len(ips)], CAMPAIGNS[campaign_n]
        before_live = state.live()
        before_shortages = {k: r.shortage for k, r in compute_shortages(snapshot, before_live).items()}
        before_plan = {
            c: plan(snapshot, state.demand, before_live, campaigns=[c]).total(c) for c in CAMPAIGNS
        }
        c_before = before_live.campaign_usage.get((campaign, ip), 0)
        if c_before + delta < 0:
            continue
        u_before = before_live.usage.get(ip, 0)
        fired = state.on_usage(
            [UsageChange(ip, u_before, u_before + delta, campaign, c_before, c_before + delta)]
        )
        after_live = state.live()
        after_shortages = {k: r.shortage for k, r in compute_shortages(snapshot, after_live).items()}
        for key in set(before_shortages) | set(after_shortages):
            if before_shortages.get(key, 0) != after_shortages.get(key, 0):
                assert key[0] in fired
        assert state.demand == Demand.from_pairs(after_shortages.items())
        for c in CAMPAIGNS:
            if c not in fired:
                assert plan(snapshot, state.demand, after_live, campaigns=[c]).total(c) <= before_plan[c]
        state.record_plan(plan(snapshot, state.demand, after_live))


@settings(max_examples=100, deadline=None)
@given(clusters())
def test_triggers_silent_when_nothing_changed(case) -> None:
    snapshot, live, _ = case
    state = TriggerState(snapshot, live)
    state.record_plan(plan(snapshot, state.demand, state.live()))
    assert state.on_snapshot(snapshot) == frozenset()
    assert state.on_snapshot(reordered(snapshot, 1)) == frozenset()
    for ip in snapshot.servers:
        u = live.usage.get(ip, 0)
        assert state.on_usage([UsageChange(ip, u, u)]) == frozenset()
