"""FILL planner: spec 2.2-2.6 rules, worked by hand from AST_VDauto_dial_FILL.pl (build 231129).

Every expected number below is worked from the Perl's code, its lines cited (``FILL 613`` = line
613 of bin/AST_VDauto_dial_FILL.pl), never read off the planner's output. The per-server
arithmetic is FILL 591-613::

    AVAIL = MAXIMUM_LIMIT ? dedicated : MVT - offlimits - dedicated_other;  AVAIL -= OUTBALANCE rows
    DIAL  = min(AVAIL, needed - tally);  DIAL = min(DIAL, MVT - vac rows on B);  tally += DIAL

the agent gate (FILL 618-630) and the VALIDATE cap ``needed - 0`` (FILL 641-648) apply only when
placing, and ``balance_trunk_fill = OUTBALANCE rows + tally`` is written after the gate (FILL 1512-1515).
"""

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


def calls(per_server: dict[str, list[tuple[str, str, int]]]) -> AutoCallCounts:
    """vicidial_auto_calls rows: server -> [(campaign, call_type, count)], V ids, status LIVE."""
    return AutoCallCounts.from_rows(
        (server, campaign, call_type, "LIVE", "V", count)
        for server, rows in per_server.items()
        for campaign, call_type, count in rows
    )


def cluster(
    servers: list[ServerConfig],
    trunks: list[ServerTrunk] = (),
    *,
    auto_calls: AutoCallCounts | None = None,
    agents: dict[str, int] | None = None,
    system: SystemSettings | None = None,
) -> ClusterSnapshot:
    return ClusterSnapshot(
        system=system or SystemSettings(),
        servers={s.server_ip: s for s in servers},
        campaigns={},
        trunks={(t.campaign_id, t.server_ip): t for t in trunks},
        fill_agents=agents if agents is not None else {"A": 5, "b": 5, "C": 5, "C2": 5, "D": 5},
        auto_calls=auto_calls or AutoCallCounts(),
    )


def same_calls(snapshot: ClusterSnapshot, usage: dict[str, int] | None = None) -> LiveCounts:
    """The live counts of a model holding exactly the snapshot's calls, every server dialable
    (``usage`` overrides the model's V calls + reservations of some servers)."""
    live = LiveCounts.from_rows(snapshot.auto_calls, dialable=snapshot.servers)
    if usage:
        live = LiveCounts({**live.usage, **usage}, live.campaign_usage, live.dialable)
    return live


A = ServerConfig("10.0.0.1", 20)
B = ServerConfig("10.0.0.2", 50, True, 10, 5)
B2 = ServerConfig("10.0.0.3", 50, True, 0, 5)


def worked_example(restriction: TrunkRestriction = OVER, dedicated: int = 5) -> ClusterSnapshot:
    # spec 2.4: 3 OUTBALANCE rows of C on B, 20 calls of other campaigns on B
    return cluster(
        [A, B, B2],
        [ServerTrunk(B.server_ip, "C", dedicated, restriction), ServerTrunk(B.server_ip, "C2", 15, MAX)],
        auto_calls=calls({"10.0.0.2": [("C", "OUTBALANCE", 3), ("X", "OUT", 20)]}),
    )


DEMAND_C12 = Demand.from_pairs([(("C", A.server_ip), 12)])


@pytest.mark.parametrize("mode", list(Mode), ids=lambda m: m.value)
def test_worked_example_spec_2_4(mode: Mode) -> None:
    # needed = 12 - 3 = 9 (FILL 440); AVAIL = (50-10) - 15 = 25, - 3 = 22 (FILL 591-607);
    # temp_avail = 50 - 3 - 20 = 27 (FILL 603); DIAL = min(22, 9) = 9, <= 27; fill = 3 + 9 = 12.
    snapshot = worked_example()
    result = plan(snapshot, DEMAND_C12, same_calls(snapshot), mode=mode)
    [campaign] = result.campaigns
    assert (campaign.needed, campaign.tally, campaign.balance_trunk_fill) == (9, 9, 12)
    assert [(e.server, e.calls) for e in result.entries] == [(B.server_ip, 9)]
    step = campaign.steps[0]
    assert (step.available, step.temp_avail, step.dial) == (22, 27, 9)
    assert "  Server 10.0.0.2  AVAIL 22  DIAL 9  tally 9/9" in result.explain()
    assert dict(result.balance_trunk_fill) == {"C": 12}


@pytest.mark.parametrize("mode", list(Mode), ids=lambda m: m.value)
def test_worked_example_maximum_limit(mode: Mode) -> None:
    # C's row on B is MAXIMUM_LIMIT 5: AVAIL = 5 - 3 = 2 (FILL 593-595, 606) -> DIAL 2; the next
    # server is asked for 9 - 2 = 7 (FILL 602) and has 50 free lines -> 7.
    snapshot = worked_example(MAX, 5)
    result = plan(snapshot, DEMAND_C12, same_calls(snapshot), mode=mode)
    assert [(e.server, e.calls) for e in result.entries] == [(B.server_ip, 2), (B2.server_ip, 7)]
    assert result.campaigns[0].steps[1].wanted == 7


B1 = ServerConfig("10.0.1.1", 10, True, 0, 3)
B2_30 = ServerConfig("10.0.1.2", 30, True, 0, 2)
B3_30 = ServerConfig("10.0.1.3", 30, True, 0, 1)


def issue_point_4() -> ClusterSnapshot:
    return cluster([A, B1, B2_30, B3_30], auto_calls=calls({"10.0.1.1": [("X", "OUT", 13)]}))


NEED_5 = Demand.from_pairs([(("C", A.server_ip), 5)])


def test_parity_adds_the_uncapped_dial_to_the_tally() -> None:
    # Issue 6 point 4. B1: DIAL = min(10, 5) = 5, temp_avail = 10 - 13 = -3 < 5 -> DIAL -3,
    # tally -3 (FILL 608-613; nothing placed: DIAL < 1). B2: wanted 5 - (-3) = 8, DIAL 8, tally 5;
    # placing, VALIDATE = 5 - 0 = 5 < 8 -> 5 calls (FILL 641-648). B3: wanted 5 - 5 = 0 -> DIAL 0.
    # The Perl places 5 on B2 and 0 on B3 (the old parity mode capped before tallying: 5 and 3).
    result = plan(issue_point_4(), NEED_5, mode=Mode.PARITY)
    assert [(e.server, e.calls) for e in result.entries] == [(B2_30.server_ip, 5)]
    [campaign] = result.campaigns
    assert [(s.dial, s.tally, s.calls) for s in campaign.steps] == [(-3, -3, 0), (8, 5, 5), (0, 5, 0)]
    assert campaign.balance_trunk_fill == 5  # 0 OUTBALANCE rows + tally 5 (FILL 1512)
    lines = result.explain()
    assert "  Server 10.0.1.1  AVAIL 10  DIAL -3  tally -3/5  (lines free -3)" in lines
    assert "  Server 10.0.1.2  AVAIL 30  DIAL 8  tally 5/5  VALIDATE OVERRIDE: |8|5|  calls 5" in lines
    assert "  Server 10.0.1.3  AVAIL 30  DIAL 0  tally 5/5" in lines


def test_corrected_names_each_difference_from_the_perl() -> None:
    # Same state. Corrected: B1's temp_avail clamped at 0 -> DIAL 0 (Perl -3); B2 asked for the
    # remaining 5 (the Perl asked for 8): 5 calls, need met, B3 not asked.
    result = plan(issue_point_4(), NEED_5, LiveCounts(dialable=frozenset({B1.server_ip, B2_30.server_ip})))
    assert [(e.server, e.calls) for e in result.entries] == [(B2_30.server_ip, 5)]
    [campaign] = result.campaigns
    assert [(s.server, s.dial, s.perl_dial, s.corrections) for s in campaign.steps] == [
        (B1.server_ip, 0, -3, (Correction.TEMP_AVAIL_CLAMPED,)),
        (B2_30.server_ip, 5, 8, (Correction.TOTAL_CAPPED_AT_NEED,)),
    ]
    assert campaign.not_asked == 1 and campaign.perl_calls == 5
    lines = result.explain()
    assert any("[TEMP_AVAIL_CLAMPED: Perl DIAL -3]" in line for line in lines)
    assert any("[TOTAL_CAPPED_AT_NEED: Perl DIAL 8]" in line for line in lines)


def test_perl_overdial_after_an_over_full_server_is_named() -> None:
    # s1 (rank 9): DIAL min(50, 9) = 9, tally 9, 9 placed. s2 (rank 5, 20 calls on 10 trunks):
    # wanted 0, DIAL min(10, 0) = 0, temp_avail 10 - 20 = -10 -> DIAL -10, tally -1. s3 (rank 1):
    # wanted 9 - (-1) = 10, DIAL 10, tally 9, VALIDATE 9 -> 9 placed. The Perl places 18 for a need
    # of 9; the corrected plan places 9 and names TOTAL_CAPPED_AT_NEED.
    s1 = ServerConfig("10.0.2.1", 50, True, 0, 9)
    s2 = ServerConfig("10.0.2.2", 10, True, 0, 5)
    s3 = ServerConfig("10.0.2.3", 50, True, 0, 1)
    snapshot = cluster([A, s1, s2, s3], auto_calls=calls({"10.0.2.2": [("X", "OUT", 20)]}))
    demand = Demand.from_pairs([(("C", A.server_ip), 9)])
    parity = plan(snapshot, demand, mode=Mode.PARITY)
    assert [(s.dial, s.tally, s.calls) for s in parity.campaigns[0].steps] == [
        (9, 9, 9),
        (-10, -1, 0),
        (10, 9, 9),
    ]
    assert parity.total("C") == 18
    corrected = plan(snapshot, demand, same_calls(snapshot))
    assert corrected.total("C") == 9
    campaign = corrected.campaigns[0]
    assert (campaign.perl_calls, campaign.corrections) == (18, (Correction.TOTAL_CAPPED_AT_NEED,))
    assert f"  [TOTAL_CAPPED_AT_NEED] {Correction.TOTAL_CAPPED_AT_NEED.value}" in corrected.explain()


def test_temp_avail_clamped_vs_perl() -> None:
    # over (rank 5, first by IP): temp_avail 50 - 60 = -10 -> DIAL -10, tally -10 (FILL 608-613).
    # B2: wanted 9 + 10 = 19, DIAL 19, tally 9; VALIDATE 9 -> 9 placed; fill 0 + 9 = 9.
    over = ServerConfig("10.0.0.2", 50, True, 0, 5)
    snapshot = cluster([A, over, B2], auto_calls=calls({"10.0.0.2": [("X", "OUT", 60)]}))
    demand = Demand.from_pairs([(("C", A.server_ip), 9)])
    parity = plan(snapshot, demand, mode=Mode.PARITY)
    assert [(s.dial, s.calls) for s in parity.campaigns[0].steps] == [(-10, 0), (19, 9)]
    assert (parity.campaigns[0].tally, parity.balance_trunk_fill["C"]) == (9, 9)
    corrected = plan(snapshot, demand, same_calls(snapshot))
    assert [(e.server, e.calls) for e in corrected.entries] == [(B2.server_ip, 9)]
    assert corrected.campaigns[0].steps[0].corrections == (Correction.TEMP_AVAIL_CLAMPED,)


def test_negative_balance_trunk_fill_is_stored_as_0() -> None:
    # Only B1 (13 calls on 10 trunks): DIAL -3, tally -3, fill 0 + -3 = -3: the column is
    # SMALLINT UNSIGNED, non-strict MySQL stores 0.
    snapshot = cluster([A, B1], auto_calls=calls({"10.0.1.1": [("X", "OUT", 13)]}))
    result = plan(snapshot, NEED_5, mode=Mode.PARITY)
    assert result.campaigns[0].tally == -3
    assert dict(result.balance_trunk_fill) == {"C": 0}
    assert "  balance_trunk_fill = 0 + -3 = -3 (stored 0)" in result.explain()


@pytest.mark.parametrize("mode", list(Mode), ids=lambda m: m.value)
def test_gate_failing_campaign_still_writes_balance_trunk_fill(mode: Mode) -> None:
    # shortage 12, 12 OUTBALANCE rows: needed 0 fails the gate (FILL 481), but the UPDATE after the
    # gate (FILL 1512-1515) writes 12 + 0 = 12.
    snapshot = cluster([A, B], auto_calls=calls({"10.0.0.2": [("C", "OUTBALANCE", 12)]}))
    [campaign] = plan(snapshot, DEMAND_C12, same_calls(snapshot), mode=mode).campaigns
    assert (campaign.outcome, campaign.needed, campaign.balance_trunk_fill) == (
        CampaignOutcome.NO_SERVERS_OR_NEED,
        0,
        12,
    )


@pytest.mark.parametrize("mode", list(Mode), ids=lambda m: m.value)
def test_no_candidate_server_still_writes_balance_trunk_fill(mode: Mode) -> None:
    # The only balance server is short for C itself: AVAIL_balance_servers 0 fails the gate (FILL
    # 467-481); the write after it stores 2 OUTBALANCE rows + 0.
    snapshot = cluster([A, B], auto_calls=calls({"10.0.0.3": [("C", "OUTBALANCE", 2)]}))
    demand = Demand.from_pairs([(("C", A.server_ip), 3), (("C", B.server_ip), 1)])
    result = plan(snapshot, demand, same_calls(snapshot), mode=mode)
    assert (result.entries, dict(result.balance_trunk_fill)) == ((), {"C": 2})


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
    # FILL 357-361 (disabled: balance_trunk_fill untouched) and 1530-1538 (reset all to 0)
    kw, status, reset = RULES[case]
    snapshot = cluster(kw.get("servers", [A, B]), system=kw.get("system"))
    result = plan(snapshot, kw.get("demand", DEMAND_C12), same_calls(snapshot))
    assert (result.status, result.reset_balance_fill, result.entries) == (status, reset, ())
    assert result.explain() == (status.value,)


def test_rank_desc_then_ip_string_order() -> None:
    # ORDER BY vicidial_balance_rank desc, server_ip (FILL 497): IPs compare as strings
    servers = [
        ServerConfig("10.0.0.9", 3, True, 0, 1),
        ServerConfig("10.0.0.10", 3, True, 0, 1),
        ServerConfig("10.0.0.5", 3, True, 0, 0),
        ServerConfig("10.0.0.7", 3, True, 0, 9),
    ]
    snapshot = cluster([A, *servers])
    result = plan(snapshot, DEMAND_C12, same_calls(snapshot))
    assert [e.server for e in result.entries] == ["10.0.0.7", "10.0.0.10", "10.0.0.9", "10.0.0.5"]


@pytest.mark.parametrize("mode", list(Mode), ids=lambda m: m.value)
def test_campaigns_in_case_insensitive_group_by_order(mode: Mode) -> None:
    # GROUP BY campaign_id (FILL 315) sorts in MariaDB's case-insensitive collation: A, b, C (code
    # points would give A, C, b). One 10-line balance server, 8 needed each: A 8, b 2, C 0.
    small = ServerConfig("10.0.0.2", 10, True)
    snapshot = cluster([A, small])
    demand = Demand.from_pairs([((c, A.server_ip), 8) for c in ("C", "b", "A")])
    result = plan(snapshot, demand, same_calls(snapshot), mode=mode)
    assert [(e.campaign, e.calls) for e in result.entries] == [("A", 8), ("b", 2)]
    assert [c.campaign for c in result.campaigns] == ["A", "b", "C"]


def test_full_server_excluded_even_if_balance() -> None:
    snapshot = cluster([A, B, B2])
    demand = Demand.from_pairs([(("C", A.server_ip), 4), (("C", B.server_ip), 1)])
    result = plan(snapshot, demand, same_calls(snapshot))
    assert [(e.server, e.calls) for e in result.entries] == [(B2.server_ip, 5)]
    assert result.campaigns[0].full_servers == (A.server_ip, B.server_ip)


def test_overflow_subtracts_offlimits_and_other_dedications() -> None:
    snapshot = cluster([A, B], [ServerTrunk(B.server_ip, "C2", 15, MAX)])
    demand = Demand.from_pairs([(("C", A.server_ip), 100)])
    [step] = plan(snapshot, demand, same_calls(snapshot)).campaigns[0].steps
    assert step.available == 50 - 10 - 15


def test_duplicate_trunk_rows_sum_and_the_last_one_is_read() -> None:
    # Two rows for (C2, B) and two for (C, B). C's own key: the last row read, MAXIMUM_LIMIT 7
    # (FILL 526-536, 591-595). sum(dedicated_trunks) of the other campaigns adds every row (FILL
    # 540-549): for C2, 3 + 7 = 10 -> 50 - 10 - 10 = 30; for D, 10 + 5 + 3 + 7 = 25 -> 15.
    rows = (
        ServerTrunk(B.server_ip, "C2", 10, OVER),
        ServerTrunk(B.server_ip, "C2", 5, OVER),
        ServerTrunk(B.server_ip, "C", 3, OVER),
        ServerTrunk(B.server_ip, "C", 7, MAX),
    )
    snapshot = ClusterSnapshot(
        SystemSettings(),
        {s.server_ip: s for s in (A, B)},
        {},
        trunk_rows=rows,
        fill_agents={"C": 1, "C2": 1, "D": 1},
    )
    demand = Demand.from_pairs([((c, A.server_ip), 100) for c in ("C", "C2", "D")])
    result = plan(snapshot, demand, same_calls(snapshot))
    assert [c.steps[0].available for c in result.campaigns] == [7, 30, 15]


def test_maximum_limit_ignores_offlimits_and_other_dedications() -> None:
    snapshot = cluster(
        [A, B], [ServerTrunk(B.server_ip, "C", 30, MAX), ServerTrunk(B.server_ip, "C2", 15, MAX)]
    )
    demand = Demand.from_pairs([(("C", A.server_ip), 100)])
    [step] = plan(snapshot, demand, same_calls(snapshot)).campaigns[0].steps
    assert step.available == 30


def test_capacity_consumed_by_earlier_campaign() -> None:
    small = ServerConfig("10.0.0.2", 10, True)
    snapshot = cluster([A, small])
    demand = Demand.from_pairs([(("C", A.server_ip), 8), (("D", A.server_ip), 8)])
    result = plan(snapshot, demand, same_calls(snapshot))
    assert [(e.campaign, e.calls) for e in result.entries] == [("C", 8), ("D", 2)]
    # Planning D alone sees the whole server (C's calls are not placed yet).
    assert plan(snapshot, demand, same_calls(snapshot), campaigns=["D"]).total("D") == 8


def test_agent_gate_parity_tallies_corrected_does_not() -> None:
    # No non-PAUSED agent: the Perl still tallies DIAL 12 on B (FILL 613 before the gate at 630)
    # and writes 0 + 12 = 12; nothing is placed.
    snapshot = cluster([A, B], agents={"C": 0})
    parity = plan(snapshot, DEMAND_C12, mode=Mode.PARITY)
    corrected = plan(snapshot, DEMAND_C12, same_calls(snapshot))
    assert parity.entries == corrected.entries == ()
    assert parity.balance_trunk_fill["C"] == 12
    assert (
        "  Server 10.0.0.2  AVAIL 40  DIAL 12  tally 12/12  (not placed: No Agents logged in, not dialing)"
        in (parity.explain())
    )
    assert corrected.balance_trunk_fill["C"] == 0
    assert corrected.campaigns[0].corrections == (Correction.NO_AGENTS_NOT_TALLIED,)


def test_reservations_counted() -> None:
    snapshot = cluster([A, B])  # no vicidial_auto_calls rows yet on B
    live = same_calls(snapshot, {"10.0.0.2": 45})  # 45 live calls + reservations on B
    parity = plan(snapshot, DEMAND_C12, live, mode=Mode.PARITY)
    corrected = plan(snapshot, DEMAND_C12, live)
    assert parity.total("C") == 12  # AVAIL 40, temp_avail 50 - 0 rows
    assert corrected.total("C") == 5  # 50 - 45 used lines
    assert Correction.RESERVATIONS_COUNTED in corrected.campaigns[0].steps[0].corrections


def test_other_families_count_as_used_lines() -> None:
    # 30 M (manual) and 15 Y (inbound) rows on B in live statuses, no V call: the one used-lines
    # figure is 45 (AST_VDauto_dial.pl 763 counts every row), so B has 5 free lines.
    auto_calls = AutoCallCounts.from_rows(
        [("10.0.0.2", "X", "OUT", "XFER", "M", 30), ("10.0.0.2", "G", "IN", "LIVE", "Y", 15)]
    )
    snapshot = cluster([A, B], auto_calls=auto_calls)
    result = plan(snapshot, DEMAND_C12, same_calls(snapshot, {"10.0.0.2": 0}))
    assert (result.total("C"), result.campaigns[0].steps[0].temp_avail) == (5, 5)


def test_own_outbalance_counted_in_need() -> None:
    snapshot = cluster([A, B])
    live = LiveCounts(dialable=frozenset({B.server_ip}), own_outbalance={("C", B.server_ip): 4})
    result = plan(snapshot, DEMAND_C12, live)
    assert result.campaigns[0].needed == 8
    assert Correction.RESERVATIONS_COUNTED in result.campaigns[0].corrections
    assert f"  [RESERVATIONS_COUNTED] {Correction.RESERVATIONS_COUNTED.value}" in result.explain()


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
    result = plan(snapshot, demand, same_calls(snapshot), campaigns=["D"])
    assert {e.campaign for e in result.entries} == {"D"}
    assert dict(result.balance_trunk_fill) == {"D": 3}


def test_need_met_stops_asking() -> None:
    snapshot = cluster([A, B, B2])
    result = plan(snapshot, Demand.from_pairs([(("C", A.server_ip), 1)]), same_calls(snapshot))
    assert result.campaigns[0].not_asked == 1
    assert any("not asked" in line for line in result.explain())
