"""Triggers: one table row per firing rule, and the cases that must stay silent."""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType

from fillreactor.core.cluster import (
    AgentTally,
    AutoCallCounts,
    CampaignConfig,
    ClusterSnapshot,
    LiveCounts,
    ServerConfig,
    SystemSettings,
)
from fillreactor.core.planner import plan
from fillreactor.core.shortage import Demand
from fillreactor.core.triggers import ShortageSource, TriggerState, Why
from fillreactor.core.usage import UsageChange

AGENT = ServerConfig("10.0.0.1", 20)
BAL = ServerConfig("10.0.0.2", 10, True)
QUIET = ServerConfig("10.0.0.3", 100)


def snapshot(**kw) -> ClusterSnapshot:
    base = dict(
        system=SystemSettings(),
        servers={s.server_ip: s for s in (AGENT, BAL, QUIET)},
        campaigns={"C": CampaignConfig("C", auto_dial_level=3.0), "Q": CampaignConfig("Q")},
        agents={("C", AGENT.server_ip): AgentTally(ready=10), ("Q", QUIET.server_ip): AgentTally(ready=2)},
        fill_agents={"C": 10, "Q": 2},
    )
    base.update(kw)
    return ClusterSnapshot(**base)


def state_with(usage_agent: int = 20, usage_bal: int = 0) -> TriggerState:
    live = LiveCounts(
        usage={AGENT.server_ip: usage_agent, BAL.server_ip: usage_bal, QUIET.server_ip: 2},
        campaign_usage={("C", AGENT.server_ip): usage_agent, ("Q", QUIET.server_ip): 2},
        dialable=frozenset({BAL.server_ip}),
    )
    state = TriggerState(snapshot(), live)
    state.record_plan(plan(state.snapshot, state.demand, state.live()))
    return state


def change(server: str, before: int, after: int, campaign: str | None = None) -> UsageChange:
    return UsageChange(server, before, after, campaign, before if campaign else 0, after if campaign else 0)


def test_initial_shortage_and_unmet_need() -> None:
    # Spec 4.4 worked example: 10 READY at level 3 -> goal 30, 20 calls on 20 trunks -> shortage
    # min(30 - 20, 10) = 10. BAL has 10 trunks and no call: the plan gives it 10, need met, so
    # nothing is unmet (a met need is not kept as 0).
    state = state_with()
    assert dict(state.demand.full_servers("C")) == {AGENT.server_ip: 10}
    assert state.unmet == {}


def test_shortage_changes_fires() -> None:
    state = state_with()
    # One call fewer does not change the shortage (make grows, line goal stays 30 > 20): silent.
    assert state.on_usage([change(AGENT.server_ip, 20, 19, "C")]) == frozenset()
    # Five more calls of C: make 5, shortage min(10, 5) = 5.
    assert state.on_usage([change(AGENT.server_ip, 19, 25, "C")]) == {"C"}
    assert state.last_reasons == {"C": Why.SHORTAGE}
    assert state.demand.total("C") == 5


def test_usage_far_below_threshold_is_silent() -> None:
    state = state_with()
    assert state.on_usage([change(QUIET.server_ip, 2, 3, "Q")]) == frozenset()
    assert state.on_usage([change(QUIET.server_ip, 3, 2, "Q")]) == frozenset()


def test_no_delta_is_silent() -> None:
    state = state_with()
    assert state.on_usage([change(AGENT.server_ip, 20, 20, "C")]) == frozenset()


def test_freed_capacity_fires_only_with_unmet_need() -> None:
    state = state_with(usage_bal=10)  # balance server full: C's need is unmet
    assert state.unmet == {"C": 10}
    assert state.on_usage([change(BAL.server_ip, 10, 9)]) == {"C"}
    assert state.last_reasons == {"C": Why.FREED_CAPACITY}
    state.unmet.clear()
    assert state.on_usage([change(BAL.server_ip, 9, 8)]) == frozenset()


def test_record_placed_counts_the_calls_really_placed() -> None:
    # The plan gave BAL 10 calls of C, the dialer placed 6 (the hopper had 6 leads): 4 unmet,
    # and a line freeing on BAL fires C again.
    state = state_with()
    result = plan(state.snapshot, state.demand, state.live())
    assert [(e.server, e.calls) for e in result.entries] == [(BAL.server_ip, 10)]
    state.record_placed(result, {("C", BAL.server_ip): 6})
    assert state.unmet == {"C": 4}
    assert state.on_usage([change(BAL.server_ip, 6, 5)]) == {"C"}
    assert state.last_reasons == {"C": Why.FREED_CAPACITY}
    state.record_placed(result, {("C", BAL.server_ip): 10, ("Q", QUIET.server_ip): 3})
    assert state.unmet == {}


def test_freed_capacity_counts_rows_of_other_families() -> None:
    # BAL's 10 trunks hold 9 inbound (Y) rows: a V call ending there leaves 9 + 0 = 9 used, one
    # line free, so C (need unmet) fires; with 10 Y rows BAL stays full and nothing fires.
    for inbound, fires in ((9, {"C"}), (10, set())):
        calls = AutoCallCounts.from_rows([(BAL.server_ip, "G", "IN", "LIVE", "Y", inbound)])
        live = LiveCounts(
            usage={AGENT.server_ip: 20, BAL.server_ip: 1, QUIET.server_ip: 2},
            campaign_usage={("C", AGENT.server_ip): 20, ("Q", QUIET.server_ip): 2},
            dialable=frozenset({BAL.server_ip}),
        )
        state = TriggerState(snapshot(auto_calls=calls), live)
        state.unmet["C"] = 5
        assert state.on_usage([change(BAL.server_ip, 1, 0)]) == fires


def test_usage_increase_on_balance_server_is_silent() -> None:
    state = state_with(usage_bal=10)
    assert state.on_usage([change(BAL.server_ip, 10, 11)]) == frozenset()


def test_fill_call_ended_fires_its_campaign() -> None:
    state = state_with()
    state.on_usage([change(BAL.server_ip, 0, 1, "C")])
    assert state.on_usage([change(BAL.server_ip, 1, 0, "C")]) == {"C"}


def test_link_became_dialable_with_unmet_need() -> None:
    state = state_with(usage_bal=0)
    state.set_dialable(BAL.server_ip, False)
    state.record_plan(plan(state.snapshot, state.demand, state.live()))
    assert state.unmet == {"C": 10}
    assert state.set_dialable(BAL.server_ip, True) == {"C"}
    assert state.set_dialable(BAL.server_ip, True) == frozenset()


def test_snapshot_unchanged_is_silent() -> None:
    state = state_with()
    assert state.on_snapshot(snapshot()) == frozenset()


def test_snapshot_agents_changed_recomputes_server() -> None:
    state = state_with()
    agents = {("C", AGENT.server_ip): AgentTally(ready=12), ("Q", QUIET.server_ip): AgentTally(ready=2)}
    assert state.on_snapshot(snapshot(agents=agents)) == {"C"}
    assert state.demand.total("C") == 16


def test_snapshot_agents_of_campaign_without_demand_is_silent() -> None:
    state = state_with()
    agents = {("C", AGENT.server_ip): AgentTally(ready=10), ("Q", QUIET.server_ip): AgentTally(ready=3)}
    assert state.on_snapshot(snapshot(agents=agents)) == frozenset()


def test_snapshot_system_or_balance_server_change_fires_short_campaigns() -> None:
    state = state_with()
    assert state.on_snapshot(snapshot(system=SystemSettings(disable_auto_dial=1))) == {"C"}
    servers = {s.server_ip: s for s in (AGENT, replace(BAL, balance_rank=5), QUIET)}
    assert state.on_snapshot(snapshot(system=SystemSettings(disable_auto_dial=1), servers=servers)) == {"C"}
    assert state.last_reasons == {"C": Why.PLAN_INPUTS}


def test_snapshot_fill_agents_and_outbalance_rows() -> None:
    state = state_with()
    assert state.on_snapshot(snapshot(fill_agents={"C": 0, "Q": 2})) == {"C"}
    calls = AutoCallCounts(MappingProxyType({BAL.server_ip: 1}), {("C", BAL.server_ip): 1}, {})
    assert state.on_snapshot(snapshot(fill_agents={"C": 0, "Q": 2}, auto_calls=calls)) == {"C"}
    assert state.last_reasons == {"C": Why.CAMPAIGN_INPUTS}


def test_stats_source() -> None:
    state = TriggerState(snapshot(), LiveCounts(), source=ShortageSource.STATS)
    first = Demand.from_stats([("C", AGENT.server_ip, 5)])
    assert state.on_stats(first) == {"C"}
    assert state.on_stats(Demand.from_stats([("C", AGENT.server_ip, 5)])) == frozenset()
    assert state.on_stats(Demand.from_stats([])) == {"C"}
    # Usage moves never recompute stats shortages.
    assert state.on_usage([change(AGENT.server_ip, 20, 30, "C")]) == frozenset()


def test_snapshot_inbound_rows_of_another_server_recompute_blended_campaigns() -> None:
    # B (inbound allowed, closer group G, ALL_SERVERS: existing counts G's IN calls of every
    # server, AST_VDauto_dial.pl 1398) has INCALL agents at level 2 on AGENT (20 trunks) and 15
    # calls there (each worked below).
    blended = CampaignConfig(
        "B", auto_dial_level=2.0, campaign_allow_inbound=True, closer_campaigns=" G -",
        inbound_queue_no_dial="ALL_SERVERS",
    )
    base = dict(
        campaigns={"B": blended},
        agents={("B", AGENT.server_ip): AgentTally(incall=10)},
        fill_agents={"B": 10},
    )
    live = LiveCounts(
        usage={AGENT.server_ip: 15, BAL.server_ip: 0, QUIET.server_ip: 0},
        campaign_usage={("B", AGENT.server_ip): 15},
        dialable=frozenset({BAL.server_ip}),
    )
    # goal 20, existing 15, make 5, line 20 <= 20: no shortage
    state = TriggerState(snapshot(**base), live)
    assert state.demand.total("B") == 0
    # 4 IN calls of G (XFER, so the queue no-dial override stays off) on QUIET: existing 15 + 4,
    # make 1, line 16 <= 20 -> still 0: silent
    calls = AutoCallCounts.from_rows([(QUIET.server_ip, "G", "IN", "XFER", "Y", 4)])
    assert state.on_snapshot(snapshot(**base, auto_calls=calls)) == frozenset()
    # the IN calls go away and B gets 30 agents' worth (level 2 x 15 = 30): make 15, line 30 > 20
    # -> min(10, 15) = 10: the change to B's agents recomputes AGENT and fires
    more = {**base, "agents": {("B", AGENT.server_ip): AgentTally(incall=15)}}
    assert state.on_snapshot(snapshot(**more)) == {"B"}
    assert state.demand.total("B") == 10
    # now 6 IN calls of G on QUIET only (a cluster-wide count): existing 15 + 6 = 21, make 9,
    # line 24 > 20 -> min(4, 9) = 4: AGENT is recomputed although none of its own rows moved
    calls = AutoCallCounts.from_rows([(QUIET.server_ip, "G", "IN", "XFER", "Y", 6)])
    assert state.on_snapshot(snapshot(**more, auto_calls=calls)) == {"B"}
    assert (state.last_reasons, state.demand.total("B")) == ({"B": Why.SHORTAGE}, 4)
