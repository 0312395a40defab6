"""The live shortage formula (spec 4.1-4.4): a table test per rule, the 4.4 worked example."""

from __future__ import annotations

from dataclasses import replace

import pytest

from fillreactor.core.cluster import (
    AgentTally,
    CampaignConfig,
    ClusterSnapshot,
    LiveCounts,
    ServerConfig,
    ServerTrunk,
    SystemSettings,
    TrunkRestriction,
    tally_agents,
)
from fillreactor.core.shortage import (
    Demand,
    ShortageDeviation,
    compute_server_shortages,
    compute_shortages,
    perl_round,
    shortage_for_campaign,
)

BASE = CampaignConfig("C", auto_dial_level=3.0)
TEN = AgentTally(ready=10)


def run(campaign=BASE, tally=TEN, **kw):
    args = dict(server="A", max_trunks=20, existing=20, active_line_counter=20)
    args.update(kw)
    result, _counter = shortage_for_campaign(campaign, tally, **args)
    return result


# name: (campaign changes, tally, keyword inputs, expected (goal, make, shortage))
CASES = {
    "worked-example-4.4": ({}, TEN, {}, (30, 0, 10)),
    "below-mvt-no-shortage": ({}, TEN, {"max_trunks": 40}, (30, 10, 0)),
    "dead-agents-subtracted": ({}, AgentTally(ready=6, incall=2, dead=2), {}, (24, 0, 4)),
    "available-only-ratio-tally": (
        {"available_only_ratio_tally": True},
        AgentTally(ready=4, incall=6),
        {"xfer_closer": 3},
        (15, -5, 0),  # 3*4 + 3 XFER/CLOSER = 15 < 20 existing
    ),
    "threshold-logged-in": (
        {"available_only_tally_threshold": "LOGGED-IN_AGENTS", "available_only_tally_threshold_agents": 20},
        AgentTally(ready=8, incall=2),
        {"logged_in": 15, "existing": 0, "active_line_counter": 0},
        (24, 20, 4),
    ),
    "threshold-non-paused": (
        {"available_only_tally_threshold": "NON-PAUSED_AGENTS", "available_only_tally_threshold_agents": 11},
        AgentTally(ready=8, incall=2),
        {"existing": 0, "active_line_counter": 0},
        (24, 20, 4),
    ),
    "threshold-waiting-not-hit": (
        {"available_only_tally_threshold": "WAITING_AGENTS", "available_only_tally_threshold_agents": 8},
        AgentTally(ready=8, incall=2),
        {"existing": 0, "active_line_counter": 0},
        (30, 20, 10),
    ),
    "dial-level-threshold-sets-level-1": (
        {"dial_level_threshold": "WAITING_AGENTS", "dial_level_threshold_agents": 11},
        TEN,
        {"existing": 0, "active_line_counter": 0},
        (10, 10, 0),
    ),
    "diff-target-calls-placed": (
        {"adaptive_dl_diff_target": -2, "dl_diff_target_method": "CALLS_PLACED"},
        TEN,
        {"existing": 0, "active_line_counter": 0},
        (24, 20, 4),
    ),
    "diff-target-adapt-calc-only-ignored": (
        {"adaptive_dl_diff_target": -2},
        TEN,
        {"existing": 0, "active_line_counter": 0},
        (30, 20, 10),
    ),
    "goal-round-half-even-down": (
        {"auto_dial_level": 2.5},
        AgentTally(ready=1),
        {"max_trunks": 99},
        (2, -18, 0),
    ),
    "goal-round-half-even-up": (
        {"auto_dial_level": 1.5},
        AgentTally(ready=1),
        {"max_trunks": 99},
        (2, -18, 0),
    ),
    "inactive-campaign-goal-0": (
        {"active": False},
        TEN,
        {"existing": 0, "active_line_counter": 0},
        (0, 0, 0),
    ),
    "other-campaign-lines": ({}, TEN, {"existing": 5, "active_line_counter": 15}, (30, 5, 20)),
    "trunk-limit-override": (
        {},
        TEN,
        {"maximum_limit": 12, "existing": 0, "active_line_counter": 0, "max_trunks": 99},
        (30, 12, 18),
    ),
    "other-limit-override": (
        {},
        TEN,
        {"dedicated_other": 15, "existing": 0, "active_line_counter": 0, "max_trunks": 40},
        (30, 25, 5),
    ),
    "manual-forced-0": ({"dial_method": "MANUAL"}, TEN, {}, (30, 0, 0)),
    "inbound-man-forced-0": ({"dial_method": "INBOUND_MAN"}, TEN, {}, (30, 0, 0)),
    "level-below-1-forced-0": (
        {"auto_dial_level": 0.5},
        TEN,
        {"max_trunks": 2, "existing": 0, "active_line_counter": 0},
        (5, 2, 0),
    ),
}


@pytest.mark.parametrize("name", CASES, ids=list(CASES))
def test_rule(name: str) -> None:
    changes, tally, kw, (goal, make, shortage) = CASES[name]
    result = run(replace(BASE, **changes), tally, **kw)
    assert (result.goal, result.make, result.shortage) == (goal, make, max(shortage, 0)), result.explanation


def test_perl_round_is_half_even() -> None:
    assert [perl_round(x) for x in (0.5, 1.5, 2.5, 3.5, 2.675 * 10)] == [0, 2, 2, 4, 27]


def test_negative_shortage_clamped_vs_parity() -> None:
    # More rows on S than MVT while goal < existing: makeGOAL negative, line_goal > MVT.
    kw = dict(existing=35, active_line_counter=40, max_trunks=20)
    corrected = run(**kw)
    parity, _ = shortage_for_campaign(BASE, TEN, server="A", parity=True, **kw)
    assert parity.shortage == -5
    assert corrected.shortage == 0
    assert corrected.deviations == (ShortageDeviation.NEGATIVE_SHORTAGE_CLAMPED,)


def test_zero_override_always_vs_parity_quirk() -> None:
    manual = replace(BASE, dial_method="MANUAL")
    corrected = run(manual, previous_shortage=10)
    parity, _ = shortage_for_campaign(
        manual,
        TEN,
        server="A",
        max_trunks=20,
        existing=20,
        active_line_counter=20,
        previous_shortage=10,
        parity=True,
    )
    assert parity.shortage == 10  # unchanged value: the Perl skips the override
    assert corrected.shortage == 0
    assert corrected.deviations == (ShortageDeviation.ZERO_OVERRIDE_ALWAYS,)


def test_active_line_counter_accumulates_in_campaign_id_order() -> None:
    campaigns = {c: CampaignConfig(c, auto_dial_level=1.0) for c in ("B", "A")}
    snapshot = ClusterSnapshot(
        SystemSettings(),
        {"S": ServerConfig("S", 15)},
        campaigns,
        agents={("B", "S"): AgentTally(ready=10), ("A", "S"): AgentTally(ready=10)},
    )
    results = compute_server_shortages(snapshot, LiveCounts(), "S")
    assert [(r.campaign, r.make, r.shortage) for r in results] == [("A", 10, 0), ("B", 5, 5)]


def test_shared_agents_counted_for_dial_campaign() -> None:
    tallies, per_server = tally_agents(
        [
            ("S", "C", "", "READY", False),
            ("S", "C", "SH", "INCALL", True),
            ("S", "C", "C", "QUEUE", False),
            ("S", "C", "", "PAUSED", False),
        ]
    )
    assert tallies[("C", "S")] == AgentTally(ready=1, dead=1)
    assert tallies[("SH", "S")] == AgentTally(incall=1)
    assert per_server["S"] == 3


def test_compute_shortages_and_demand_from_live() -> None:
    snapshot = ClusterSnapshot(
        SystemSettings(),
        {"A": ServerConfig("A", 20), "B": ServerConfig("B", 30, True)},
        {"C": BASE},
        trunks={("C", "B"): ServerTrunk("B", "C", 0, TrunkRestriction.OVERFLOW_ALLOWED)},
        agents={("C", "A"): TEN},
    )
    live = LiveCounts(usage={"A": 20}, campaign_usage={("C", "A"): 20})
    table = compute_shortages(snapshot, live)
    assert table[("C", "A")].shortage == 10
    demand = Demand.from_results(table.values())
    assert (demand.total("C"), dict(demand.full_servers("C"))) == (10, {"A": 10})
    gone = demand.with_server("A", [])
    assert gone.by_campaign == {}


def test_stats_source_sums_duplicate_rows() -> None:
    demand = Demand.from_stats([("C", "A", 4), ("C", "A", 2), ("C", "B", 0), ("D", "A", 1)])
    assert demand.total("C") == 6 and dict(demand.full_servers("C")) == {"A": 6}
    assert demand.campaigns() == ("C", "D")
