"""FILL planner: spec 2.2-2.6 rules, the 2.4 worked example, and each correction against parity."""

from __future__ import annotations

import pytest

from fillreactor.core.cluster import (
    AutoCallCounts,
    ClusterSnapshot,
    LiveCounts,
    ServerConfig,
    ServerTrunk,
    SystemSettings,
    TrunkRestriction,
)
from fillreactor.core.planner import CampaignOutcome, Correction, Mode, PlanStatus, plan
from fillreactor.core.shortage import Demand

MAX = TrunkRestriction.MAXIMUM_LIMIT
OVER = TrunkRestriction.OVERFLOW_ALLOWED


def cluster(
    servers: list[ServerConfig],
    trunks: list[ServerTrunk] = (),
    *,
    rows: dict[str, int] | None = None,
    outbalance: dict[tuple[str, str], int] | None = None,
    agents: dict[str, int] | None = None,
    system: SystemSettings | None = None,
) -> ClusterSnapshot:
    return ClusterSnapshot(
        system=system or SystemSettings(),
        servers={s.server_ip: s for s in servers},
        campaigns={},
        trunks={(t.campaign_id, t.server_ip): t for t in trunks},
        fill_agents=agents if agents is not None else {"C": 5, "C2": 5, "D": 5},
        auto_calls=AutoCallCounts(rows or {}, outbalance or {}, {}),
    )


def live_all(snapshot: ClusterSnapshot, usage: dict[str, int] | None = None) -> LiveCounts:
    return LiveCounts(usage=usage or {}, dialable=frozenset(snapshot.servers))


A = ServerConfig("10.0.0.1", 20)
B = ServerConfig("10.0.0.2", 50, True, 10, 5)
B2 = ServerConfig("10.0.0.3", 50, True, 0, 5)


def worked_example(restriction: TrunkRestriction = OVER, dedicated: int = 5) -> ClusterSnapshot:
    return cluster(
        [A, B, B2],
        [ServerTrunk(B.server_ip, "C", dedicated, restriction), ServerTrunk(B.server_ip, "C2", 15, MAX)],
        rows={B.server_ip: 23},  # 3 OUTBALANCE of C + 20 calls of other campaigns
        outbalance={("C", B.server_ip): 3},
    )


DEMAND_C12 = Demand.from_pairs([(("C", A.server_ip), 12)])


@pytest.mark.parametrize("mode", list(Mode), ids=lambda m: m.value)
def test_worked_example_spec_2_4(mode: Mode) -> None:
    snapshot = worked_example()
    result = plan(snapshot, DEMAND_C12, live_all(snapshot), mode=mode)
    [campaign] = result.campaigns
    assert (campaign.needed, campaign.tally, campaign.balance_trunk_fill) == (9, 9, 12)
    assert [(e.server, e.calls) for e in result.entries] == [(B.server_ip, 9)]
    step = campaign.steps[0]
    assert (step.available, step.temp_avail, step.dial) == (22, 27, 9)
    assert "  Server 10.0.0.2  AVAIL 22  DIAL 9  tally 9/9" in result.explain()


@pytest.mark.parametrize("mode", list(Mode), ids=lambda m: m.value)
def test_worked_example_maximum_limit(mode: Mode) -> None:
    snapshot = worked_example(MAX, 5)
    result = plan(snapshot, DEMAND_C12, live_all(snapshot), mode=mode)
    assert [(e.server, e.calls) for e in result.entries] == [(B.server_ip, 2), (B2.server_ip, 7)]
    assert result.campaigns[0].steps[1].wanted == 7


def rule_case(**kw):
    return kw


RULES = {
    "kill-switch-autodial-inactive": (
        rule_case(system=SystemSettings(outbound_autodial_active=0)),
        PlanStatus.DIALING_DISABLED,
        False,
    ),
    "kill-switch-disable-auto-dial": (
        rule_case(system=SystemSettings(disable_auto_dial=1)),
        PlanStatus.DIALING_DISABLED,
        False,
    ),
    "no-balance-servers-resets-fill": (rule_case(servers=[A]), PlanStatus.RESET, True),
    "no-shortage-resets-fill": (rule_case(demand=Demand.from_pairs([])), PlanStatus.RESET, True),
}


@pytest.mark.parametrize("case", RULES, ids=list(RULES))
def test_global_gates(case: str) -> None:
    kw, status, reset = RULES[case]
    snapshot = cluster(kw.get("servers", [A, B]), system=kw.get("system"))
    result = plan(snapshot, kw.get("demand", DEMAND_C12), live_all(snapshot))
    assert (result.status, result.reset_balance_fill, result.entries) == (status, reset, ())
    assert result.explain() == (status.value,)


def test_rank_desc_then_ip_string_order() -> None:
    servers = [
        ServerConfig("10.0.0.9", 3, True, 0, 1),
        ServerConfig("10.0.0.10", 3, True, 0, 1),
        ServerConfig("10.0.0.5", 3, True, 0, 0),
        ServerConfig("10.0.0.7", 3, True, 0, 9),
    ]
    snapshot = cluster([A, *servers])
    result = plan(snapshot, DEMAND_C12, live_all(snapshot))
    assert [e.server for e in result.entries] == ["10.0.0.7", "10.0.0.10", "10.0.0.9", "10.0.0.5"]


def test_full_server_excluded_even_if_balance() -> None:
    snapshot = cluster([A, B, B2])
    demand = Demand.from_pairs([(("C", A.server_ip), 4), (("C", B.server_ip), 1)])
    result = plan(snapshot, demand, live_all(snapshot))
    assert [(e.server, e.calls) for e in result.entries] == [(B2.server_ip, 5)]
    assert result.campaigns[0].full_servers == (A.server_ip, B.server_ip)


def test_overflow_subtracts_offlimits_and_other_dedications() -> None:
    snapshot = cluster([A, B], [ServerTrunk(B.server_ip, "C2", 15, MAX)])
    demand = Demand.from_pairs([(("C", A.server_ip), 100)])
    [step] = plan(snapshot, demand, live_all(snapshot)).campaigns[0].steps
    assert step.available == 50 - 10 - 15


def test_maximum_limit_ignores_offlimits_and_other_dedications() -> None:
    snapshot = cluster(
        [A, B], [ServerTrunk(B.server_ip, "C", 30, MAX), ServerTrunk(B.server_ip, "C2", 15, MAX)]
    )
    demand = Demand.from_pairs([(("C", A.server_ip), 100)])
    [step] = plan(snapshot, demand, live_all(snapshot)).campaigns[0].steps
    assert step.available == 30


def test_needed_not_positive_gate() -> None:
    snapshot = cluster([A, B], outbalance={("C", B.server_ip): 12}, rows={B.server_ip: 12})
    [campaign] = plan(snapshot, DEMAND_C12, live_all(snapshot)).campaigns
    assert (campaign.outcome, campaign.needed, campaign.balance_trunk_fill) == (
        CampaignOutcome.NO_SERVERS_OR_NEED,
        0,
        None,
    )


def test_capacity_consumed_by_earlier_campaign() -> None:
    small = ServerConfig("10.0.0.2", 10, True)
    snapshot = cluster([A, small])
    demand = Demand.from_pairs([(("C", A.server_ip), 8), (("D", A.server_ip), 8)])
    result = plan(snapshot, demand, live_all(snapshot))
    assert [(e.campaign, e.calls) for e in result.entries] == [("C", 8), ("D", 2)]
    # Planning D alone sees the whole server (C's calls are not placed yet).
    assert plan(snapshot, demand, live_all(snapshot), campaigns=["D"]).total("D") == 8


def test_agent_gate_parity_tallies_corrected_does_not() -> None:
    snapshot = cluster([A, B], agents={"C": 0})
    parity = plan(snapshot, DEMAND_C12, live_all(snapshot), mode=Mode.PARITY)
    corrected = plan(snapshot, DEMAND_C12, live_all(snapshot))
    assert parity.entries == corrected.entries == ()
    assert parity.balance_trunk_fill["C"] == 12  # planned, never placed
    assert corrected.balance_trunk_fill["C"] == 0
    assert corrected.campaigns[0].corrections == (Correction.NO_AGENTS_NOT_TALLIED,)


def test_temp_avail_clamped_vs_perl_overdial() -> None:
    # B is over-full (60 rows on 50 trunks): the Perl's DIAL there is -10, which lowers the
    # tally, so B2 is asked for 19 and the VALIDATE cap (needed 9) lets it place 9 + ... more.
    over = ServerConfig("10.0.0.2", 50, True, 0, 5)
    snapshot = cluster([A, over, B2], rows={over.server_ip: 60})
    demand = Demand.from_pairs([(("C", A.server_ip), 9)])
    parity = plan(snapshot, demand, live_all(snapshot), mode=Mode.PARITY)
    corrected = plan(snapshot, demand, live_all(snapshot))
    assert [s.dial for s in parity.campaigns[0].steps] == [-10, 9]
    assert parity.campaigns[0].tally == -1 and parity.balance_trunk_fill["C"] == -1
    assert [(e.server, e.calls) for e in corrected.entries] == [(B2.server_ip, 9)]
    assert corrected.campaigns[0].steps[0].corrections == (Correction.TEMP_AVAIL_CLAMPED,)


def test_total_capped_at_need_vs_perl_per_server_cap() -> None:
    # Two over-full servers first: the Perl tally goes to -20, then two servers each get the
    # per-server cap needed=9: 18 calls for a need of 9.
    s1 = ServerConfig("10.0.0.2", 10, True, 0, 9)
    s2 = ServerConfig("10.0.0.3", 10, True, 0, 9)
    s3 = ServerConfig("10.0.0.4", 50, True, 0, 1)
    s4 = ServerConfig("10.0.0.5", 50, True, 0, 1)
    snapshot = cluster([A, s1, s2, s3, s4], rows={s1.server_ip: 20, s2.server_ip: 20})
    demand = Demand.from_pairs([(("C", A.server_ip), 9)])
    parity = plan(snapshot, demand, live_all(snapshot), mode=Mode.PARITY)
    corrected = plan(snapshot, demand, live_all(snapshot))
    assert parity.total("C") == 18 > 9
    assert corrected.total("C") == 9


def test_reservations_counted() -> None:
    snapshot = cluster([A, B])  # no vicidial_auto_calls rows yet on B
    live = live_all(snapshot, usage={B.server_ip: 45})  # 45 live calls + reservations
    parity = plan(snapshot, DEMAND_C12, live, mode=Mode.PARITY)
    corrected = plan(snapshot, DEMAND_C12, live)
    assert parity.total("C") == 12
    assert corrected.total("C") == 5
    assert Correction.RESERVATIONS_COUNTED in corrected.campaigns[0].steps[0].corrections


def test_own_outbalance_counted_in_need() -> None:
    snapshot = cluster([A, B])
    live = LiveCounts(dialable=frozenset({B.server_ip}), own_outbalance={("C", B.server_ip): 4})
    result = plan(snapshot, DEMAND_C12, live)
    assert result.campaigns[0].needed == 8
    assert Correction.RESERVATIONS_COUNTED in result.campaigns[0].corrections


def test_not_dialable_server_gets_nothing() -> None:
    snapshot = cluster([A, B, B2])
    live = LiveCounts(dialable=frozenset({B2.server_ip}))
    result = plan(snapshot, DEMAND_C12, live)
    assert [(e.server, e.calls) for e in result.entries] == [(B2.server_ip, 12)]
    assert result.campaigns[0].steps[0].corrections == (Correction.NOT_DIALABLE,)
    assert any("NOT_DIALABLE" in line for line in result.explain())


def test_subset_planning_only_named_campaigns() -> None:
    snapshot = cluster([A, B])
    demand = Demand.from_pairs([(("C", A.server_ip), 3), (("D", A.server_ip), 3)])
    result = plan(snapshot, demand, live_all(snapshot), campaigns=["D"])
    assert {e.campaign for e in result.entries} == {"D"}
    assert dict(result.balance_trunk_fill) == {"D": 3}


def test_need_met_stops_asking() -> None:
    snapshot = cluster([A, B, B2])
    result = plan(snapshot, Demand.from_pairs([(("C", A.server_ip), 1)]), live_all(snapshot))
    assert result.campaigns[0].not_asked == 1
    assert any("not asked" in line for line in result.explain())
