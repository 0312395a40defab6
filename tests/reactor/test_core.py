"""ReactorCore: the reactor's decisions, driven synchronously with hand-made events (no I/O).

Expected numbers are worked by hand from the cluster of ``reactor_helpers.cluster`` and spec 2.4/4.4:
A has 20 trunks and 10 agents of DEMO at level 3 (goal 30); with 20 DEMO calls on A,
make = 30 - 20 = 10, line_goal = 20 + 10 = 30 > 20 -> shortage min(10, 10) = 10 (spec 4.4).
B: available = (30 - 22) - 0 = 8, C: available 30; rank B (2) before C (1): B +8, C +2 (spec 2.4).
"""

from __future__ import annotations

from reactor_helpers import A, B, C, Calls, cluster, fill_server, link_up

from fillreactor.core.cluster import ClusterSnapshot
from fillreactor.core.planner import PlanEntry
from fillreactor.core.triggers import ShortageSource
from fillreactor.reactor.core import LINK_DOWN, ReactorCore


def started(snapshot: ClusterSnapshot | None = None, **options) -> ReactorCore:
    core = ReactorCore(dialing=True, **options)
    for server in (A, B, C):
        link_up(core, server, 0.0)
    core.on_snapshot(snapshot or cluster(), 0.0)
    return core


def short_core(**options) -> tuple[ReactorCore, Calls]:
    core = started(**options)
    calls = Calls(A)
    fill_server(core, calls, 20, "DEMO", 1.0)
    return core, calls


def entries(decision) -> dict[str, int]:
    return {e.server: e.calls for e in decision.dispatch}


def drain(core: ReactorCore, now: float):
    decisions = []
    while (decision := core.next_plan(now)) is not None:
        decisions.append(decision)
    return decisions


def test_nothing_is_planned_before_the_first_snapshot() -> None:
    core = ReactorCore(dialing=True)
    link_up(core, A, 0.0)
    assert core.next_plan(0.0) is None and not core.wants_plan


def test_a_shortage_appearing_on_a_plans_b_then_c_by_rank_and_capacity() -> None:
    core, _ = short_core()
    (decision,) = drain(core, 1.0)
    assert entries(decision) == {B: 8, C: 2}
    assert core.inflight == {("DEMO", B): 8, ("DEMO", C): 2}


def test_calls_handed_to_the_dialer_are_not_planned_twice() -> None:
    core, calls = short_core()
    drain(core, 1.0)
    # more events arrive before any originate went out: the need (10) is covered by the 10 in flight
    # 21 DEMO calls on A: make 9, line_goal 30 > 20, shortage min(10, 9) = 9 < 10 in flight (spec 4.4)
    fill_server(core, calls, 1, "DEMO", 1.1)
    for decision in drain(core, 1.1):
        assert not decision.dispatch


def test_a_sent_call_becomes_a_reservation_in_the_model() -> None:
    core, _ = short_core()
    drain(core, 1.0)
    core.call_sent(B, "V2011000000000000901", "DEMO", 1.2)
    assert core.inflight[("DEMO", B)] == 7
    assert core.model.usage(B) == 1 and core.model.campaign_usage(B, "DEMO") == 1


def test_a_refused_originate_releases_its_line_at_once_and_replans() -> None:
    core, _ = short_core()
    (decision,) = drain(core, 1.0)
    for entry in decision.dispatch:
        for n in range(entry.calls):
            core.call_sent(entry.server, f"V20110000000000{entry.server[-1]}{n:04d}", "DEMO", 1.1)
        core.entry_done(entry, entry.calls, 1.1)
    assert core.model.usage(B) == 8
    core.call_refused(B, "V2011000000000020000", "Asterisk is shutting down", 1.2)
    assert core.model.usage(B) == 7
    # "shutting down" makes B not dialable at once; the released call is re-planned on C
    assert B not in core.dialable_servers()
    (replan,) = drain(core, 1.2)
    assert entries(replan) == {C: 1}


def test_an_entry_short_of_leads_mutes_the_campaign_until_the_retry() -> None:
    core, _ = short_core(hopper_retry=1.0)
    drain(core, 1.0)
    for n in range(3):  # the hopper had 3 leads for the 8 planned on B
        core.call_sent(B, f"V201100000000000{n:04d}", "DEMO", 1.05)
    core.entry_done(PlanEntry("DEMO", B, 8), 3, 1.1, hopper_short=True)
    assert ("DEMO", B) not in core.inflight and core.model.usage(B) == 3
    core.tick(1.5)
    assert core.next_plan(1.5) is None  # muted
    core.tick(2.2)
    (retry,) = drain(core, 2.2)
    assert retry.reasons == {"DEMO": "hopper retry"}


def test_without_dialing_plans_are_made_but_nothing_is_dispatched() -> None:
    core, _ = short_core()
    core.dialing = False
    (decision,) = drain(core, 1.0)
    assert decision.plan.entries and not decision.dispatch and not core.inflight


def test_a_burst_of_events_gives_one_plan() -> None:
    core = started()
    calls = Calls(A)
    fill_server(core, calls, 20, "DEMO", 1.0)
    fill_server(core, calls, 5, "DEMO", 1.0)
    assert len(drain(core, 1.0)) == 1


def test_the_latency_origin_is_the_earliest_trigger() -> None:
    core = started()
    calls = Calls(A)
    fill_server(core, calls, 19, "DEMO", 1.0)  # 19 calls: make 11, shortage min(10, 11) = 10
    drain(core, 1.0)
    fill_server(core, calls, 2, "DEMO", 2.0)  # 21 calls: make 9, shortage min(10, 9) = 9 (spec 4.4)
    (decision,) = drain(core, 2.5)
    assert decision.triggered_at == 2.0 and decision.planned_at == 2.5


def test_timer_trigger_plans_every_interval_and_ignores_events() -> None:
    core, _ = short_core(trigger="timer", timer_interval=2.5)
    assert core.next_plan(1.0) is None  # events mark nothing
    core.tick(1.0)
    (first,) = drain(core, 1.0)
    assert first.reasons == {"DEMO": "timer"}
    core.tick(2.0)
    assert core.next_plan(2.0) is None
    core.tick(3.5)
    assert len(drain(core, 3.5)) == 1


def test_many_campaigns_are_planned_in_slices() -> None:
    names = tuple(f"C{n:03d}" for n in range(30))
    core = started(cluster(agents=1, level=30.0, campaigns=names), max_campaigns_per_slice=8)
    # each campaign: 1 agent at level 30 -> goal 30 > 20 trunks: short (spec 4.4)
    decisions = drain(core, 1.0)
    assert [len(d.campaigns) for d in decisions] == [8, 8, 8, 6]


def test_a_down_agent_server_falls_back_to_its_stats_rows() -> None:
    core, _ = short_core()
    drain(core, 1.0)
    core.on_stats([("DEMO", A, 4)], 1.5)
    core.on_link(A, LINK_DOWN, 2.0)
    assert A not in core.dialable_servers()
    assert dict(core.demand().full_servers("DEMO")) == {A: 4}


def test_stats_source_takes_the_rows_for_every_server() -> None:
    core = started(source=ShortageSource.STATS)
    core.on_stats([("DEMO", A, 6)], 1.0)
    (decision,) = drain(core, 1.0)
    assert entries(decision) == {B: 6}
