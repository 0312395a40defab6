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
    state = state_with()
    assert dict(state.demand.full_servers("C")) == {AGENT.server_ip: 10}
    assert state.unmet == {"C": 0} or state.unmet == {}  # BAL has 10 free lines: need met


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
