"""The shortage formula of AST_VDauto_dial.pl (build 240917), term by term, worked by hand.

Every expected value is worked from the Perl's code (``vdad 1431`` = line 1431 of
bin/AST_VDauto_dial.pl) or from spec 4.4a's measurements, never read off the implementation.
The skeleton of every case (vdad 1419-1467)::

    make = goal - existing;  line_goal = lines + make
    line_goal > MVT:  make = min(make, MVT - lines);  shortage = min(line_goal - MVT, goal - existing)
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from fillreactor.core.cluster import (
    AgentTally,
    AutoCallCounts,
    CampaignConfig,
    ClusterSnapshot,
    DropGroupAgents,
    InboundNoAgents,
    IncallThreshold,
    LiveCounts,
    ServerConfig,
    ServerTrunk,
    StoredShortage,
    SystemSettings,
    TrunkRestriction,
    tally_agents,
)
from fillreactor.core.shortage import (
    Demand,
    ShortageDeviation,
    ZeroReason,
    compute_server_shortages,
    compute_shortages,
    fill_campaign_order,
    perl_round,
    shortage_for_campaign,
)
from fillreactor.core.shortage_table import shortage_table

S, T = "10.0.0.1", "10.0.0.9"


def rows(*groups: tuple) -> list[tuple]:
    """(campaign, call_type, status, family, count) on S, or with a server first."""
    return [g if len(g) == 6 else (S, *g) for g in groups]


def v_out(campaign: str, count: int, status: str = "LIVE") -> tuple:
    return (campaign, "OUT", status, "V", count)


def compute(
    campaign: CampaignConfig,
    tally: AgentTally,
    calls: list[tuple] = (),
    *,
    mvt: int = 20,
    previous: int | None = None,
    parity: bool = False,
    **snapshot_fields,
):
    """One campaign C on server S, the model holding exactly the given rows' V calls."""
    auto_calls = AutoCallCounts.from_rows(calls)
    snapshot = ClusterSnapshot(
        snapshot_fields.pop("system", SystemSettings()),
        {S: ServerConfig(S, mvt), T: ServerConfig(T, 99)},
        {campaign.campaign_id: campaign},
        agents={(campaign.campaign_id, S): tally},
        logged_in_agents={S: snapshot_fields.pop("logged_in", tally.counted)},
        auto_calls=auto_calls,
        **snapshot_fields,
    )
    live = LiveCounts.from_rows(auto_calls)
    prior = None if previous is None else {(campaign.campaign_id, S): previous}
    [result] = compute_server_shortages(snapshot, live, S, previous=prior, parity=parity)
    return result


C = CampaignConfig("C", auto_dial_level=3.0)
TEN = AgentTally(ready=10)

# name: (campaign, tally, rows, extra inputs, expected (goal, existing, shortage))
CASES = {
    # spec 4.4: goal 3 x 10 = 30, 20 calls on 20 trunks: make 10, line 30 > 20 -> min(10, 10)
    "worked-example-4.4": (C, TEN, [v_out("C", 20)], {}, (30, 20, 10)),
    # issue 6, AST_VDauto_dial.pl measured 6: lines count the 6 IN rows (vdad 763): 10 + 6 = 16;
    # goal 2 x 10 = 20, existing 10, make 10, line 26 > 20 -> min(6, 10) = 6
    "issue-inbound-rows-are-lines": (
        replace(C, auto_dial_level=2.0),
        TEN,
        [v_out("C", 10), ("G", "IN", "LIVE", "Y", 6)],
        {},
        (20, 10, 6),
    ),
    # issue 6, measured 4: the 4 INCALL agents' manual calls are C's OUT/XFER rows (M ids) and
    # count as existing (vdad 1379-1392) and lines: goal 2 x 10 = 20, existing 12 + 4 = 16, make 4,
    # lines 16, line 20 > 14 -> min(6, 4) = 4
    "issue-manual-calls-are-existing": (
        replace(C, auto_dial_level=2.0),
        AgentTally(ready=6, incall=4),
        [v_out("C", 12), ("C", "OUT", "XFER", "M", 4)],
        {"mvt": 14},
        (20, 16, 4),
    ),
    # issue 6, measured 0: threshold 60 s, no INCALL agent within it (vdad 1052-1083): agents
    # 4 + 0 = 4, goal 12; INCALL diff 6 - 0 = 6 taken off existing 16 -> 10 (vdad 1416);
    # make 2, line 18 <= 20 -> 0
    "issue-incall-tally-threshold": (
        replace(C, incall_tally_threshold_seconds=60),
        AgentTally(ready=4, incall=6),
        [v_out("C", 16)],
        {"incall_threshold": {"C": IncallThreshold(within=0, dead=0)}},
        (12, 10, 0),
    ),
    # threshold, 2 INCALL within, 1 agent without a call on any server: agents 4 + 2 = 6, diff
    # 6 - 2 = 4, agents 6 - DEAD 0 + 1 = 7 (vdad 1163), goal 2 x 7 = 14; existing 10 - 4 = 6;
    # make 8, line 18 > 12 -> min(6, 8) = 6
    "incall-threshold-within-and-dead": (
        replace(C, auto_dial_level=2.0, incall_tally_threshold_seconds=60),
        AgentTally(ready=4, incall=6),
        [v_out("C", 10)],
        {"mvt": 12, "incall_threshold": {"C": IncallThreshold(within=2, dead=1)}},
        (14, 6, 6),
    ),
    # 2 DEAD agents not counted (vdad 1163): 3 x 8 = 24, make 4, line 24 > 20 -> 4
    "dead-agents-subtracted": (C, AgentTally(ready=6, incall=2, dead=2), [v_out("C", 20)], {}, (24, 20, 4)),
    # drop in-group (vdad 1093-1131): agents 5 - 1 + 3 + 2 = 9, goal 2 x 9 = 18; the group's 2
    # calls on S count as existing and lines: make 16, line 2 + 16 = 18 > 10 -> min(8, 16) = 8
    "drop-in-group-agents-borrowed": (
        replace(
            C, auto_dial_level=2.0, drop_call_seconds=-1, drop_action="IN_GROUP", drop_inbound_group="DROPG"
        ),
        AgentTally(ready=5),
        [("DROPG", "IN", "LIVE", "Y", 2)],
        {"mvt": 10, "drop_group_agents": {"C": DropGroupAgents(ready=3, incall=2)}},
        (18, 2, 8),
    ),
    # drop_action IN_GROUP with drop_call_seconds >= 0: agents not borrowed, but the group's 3
    # calls count with C's 4 (vdad 1197-1199, 1388): goal 10, existing 7, make 3, line 10 > 8 -> 2
    "drop-group-calls-counted": (
        replace(C, auto_dial_level=1.0, drop_action="IN_GROUP", drop_inbound_group="DROPG"),
        TEN,
        [v_out("C", 4), ("DROPG", "IN", "LIVE", "Y", 3)],
        {"mvt": 8, "drop_group_agents": {"C": DropGroupAgents(ready=9)}},
        (10, 7, 2),
    ),
    # available-only: agents = READY 4, goal 3 x 4 + 3 XFER/CLOSER calls = 15 (vdad 1145, 1200-1213)
    "available-only-ratio-tally": (
        replace(C, available_only_ratio_tally=True),
        AgentTally(ready=4, incall=6),
        [v_out("C", 17), v_out("C", 3, "XFER")],
        {},
        (15, 20, 0),
    ),
    # NON-PAUSED threshold compares with the count that still includes DEAD (spec 4.4a,
    # vdad 1158): 11 > 12 is false, so agents = 12 - 2 = 10, goal 30, make 30, line 30 > 20 -> 10
    "threshold-non-paused-counts-dead": (
        replace(
            C, available_only_tally_threshold="NON-PAUSED_AGENTS", available_only_tally_threshold_agents=11
        ),
        AgentTally(ready=8, incall=2, dead=2),
        [],
        {},
        (30, 0, 10),
    ),
    # LOGGED-IN threshold against every agent of S (vdad 1153): 20 > 15 -> agents = READY 8
    "threshold-logged-in": (
        replace(
            C, available_only_tally_threshold="LOGGED-IN_AGENTS", available_only_tally_threshold_agents=20
        ),
        AgentTally(ready=8, incall=2),
        [],
        {"logged_in": 15},
        (24, 0, 4),
    ),
    "threshold-waiting-not-hit": (
        replace(C, available_only_tally_threshold="WAITING_AGENTS", available_only_tally_threshold_agents=8),
        AgentTally(ready=8, incall=2),
        [],
        {},
        (30, 0, 10),
    ),
    # dial level threshold WAITING 11 > READY 10 -> level 1 (vdad 1180): goal 10, line 10 > 5 -> 5
    "dial-level-threshold-sets-level-1": (
        replace(C, dial_level_threshold="WAITING_AGENTS", dial_level_threshold_agents=11),
        TEN,
        [],
        {"mvt": 5},
        (10, 0, 5),
    ),
    # diff target -2 unless ADAPT_CALC_ONLY (vdad 1136-1144, 1189): 3 x 8 = 24, line 24 > 20 -> 4
    "diff-target-calls-placed": (
        replace(C, adaptive_dl_diff_target=-2, dl_diff_target_method="CALLS_PLACED"),
        TEN,
        [],
        {},
        (24, 0, 4),
    ),
    "diff-target-adapt-calc-only-ignored": (replace(C, adaptive_dl_diff_target=-2), TEN, [], {}, (30, 0, 10)),
    # sprintf("%.0f", 2.5) = 2 (round half to even, measured, spec 4.4a)
    "goal-round-half-even-down": (
        replace(C, auto_dial_level=2.5),
        AgentTally(ready=1),
        [],
        {"mvt": 1},
        (2, 0, 1),
    ),
    "goal-round-half-even-up": (
        replace(C, auto_dial_level=1.5),
        AgentTally(ready=1),
        [],
        {"mvt": 1},
        (2, 0, 1),
    ),
    "inactive-campaign-goal-0": (replace(C, active=False), TEN, [], {}, (0, 0, 0)),
    # other campaigns' 10 calls are lines (vdad 763): lines 15, make 25, line 40 > 20 -> min(20, 25)
    "other-campaign-lines": (C, TEN, [v_out("C", 5), v_out("X", 10)], {}, (30, 5, 20)),
    # MAXIMUM_LIMIT 12 < goal 30 (vdad 1441-1451): shortage min(30 - 12, 30) = 18
    "trunk-limit-override": (
        C,
        TEN,
        [],
        {"mvt": 99, "trunks": {("C", S): ServerTrunk(S, "C", 12, TrunkRestriction.MAXIMUM_LIMIT)}},
        (30, 0, 18),
    ),
    # the TRUNK LIMIT shortage replaces the MVT one (measured, spec 4.4a): MVT 5, limit 6, goal 8:
    # MVT gives min(8 - 5, 8) = 3, then limit 6 < 8 gives min(8 - 6, 8) = 2
    "trunk-limit-replaces-mvt": (
        replace(C, auto_dial_level=1.0),
        AgentTally(ready=8),
        [],
        {"mvt": 5, "trunks": {("C", S): ServerTrunk(S, "C", 6, TrunkRestriction.MAXIMUM_LIMIT)}},
        (8, 0, 2),
    ),
    # other campaigns' 15 dedicated trunks (vdad 1453-1466): allowed 25 < 30 -> min(5, 30) = 5
    "other-limit-override": (
        C,
        TEN,
        [],
        {"mvt": 40, "trunks": {("D", S): ServerTrunk(S, "D", 15)}},
        (30, 0, 5),
    ),
    # IVR rows are lines (vdad 763), not existing calls (vdad 1388): existing 5, lines 7,
    # make 5, line 12 > 8 -> min(4, 5) = 4
    "ivr-rows-are-lines-only": (
        replace(C, auto_dial_level=1.0),
        TEN,
        [v_out("C", 5), v_out("C", 2, "IVR")],
        {"mvt": 8},
        (10, 5, 4),
    ),
    # BUSY/DISCONNECT rows are neither: existing 5, lines 5, make 5, line 10 > 8 -> 2
    "hung-up-rows-not-counted": (
        replace(C, auto_dial_level=1.0),
        TEN,
        [v_out("C", 5), v_out("C", 2, "BUSY"), v_out("C", 1, "DISCONNECT")],
        {"mvt": 8},
        (10, 5, 2),
    ),
    # shared drops (allow_shared_dial > 0, vdad 745-756, 1366-1378): 2 fresh drops of C on S are
    # lines and existing calls: existing 3 + 2 = 5, lines 5, make 5, line 10 > 8 -> 2
    "shared-drops": (
        replace(C, auto_dial_level=1.0),
        TEN,
        [v_out("C", 3)],
        {
            "mvt": 8,
            "system": SystemSettings(allow_shared_dial=1),
            "shared_drops": AutoCallCounts.from_rows([(S, "C", "OUT", "LIVE", 2)]),
        },
        (10, 5, 2),
    ),
}
INBOUND = replace(C, auto_dial_level=2.0, campaign_allow_inbound=True, closer_campaigns=" G -")
INBOUND_CASES = {
    # BLENDED (vdad 1408-1414): READY agents and 3 IN calls of G on S -> existing = exist_OUT 6;
    # lines 6 + 3 = 9, goal 10, make 4, line 13 > 10 -> min(3, 4) = 3
    "blended-override": (
        INBOUND,
        AgentTally(ready=5),
        [v_out("C", 6), ("G", "IN", "LIVE", "Y", 3)],
        {"mvt": 10, "ready_agents": {("C", S): 5}},
        (10, 6, 3),
    ),
    # no READY agent: existing = exist_IN 3 + exist_OUT 5 = 8 (vdad 1219-1225, 1397); 10 INCALL,
    # goal 20, make 12, lines 8, line 20 > 9 -> min(11, 12) = 11
    "exist-in-counted": (
        replace(INBOUND, inbound_queue_no_dial="DISABLED"),
        AgentTally(incall=10),
        [v_out("C", 5), ("G", "IN", "XFER", "Y", 3)],
        {"mvt": 9},
        (20, 8, 11),
    ),
    # ALL_SERVERS (vdad 1398-1399): exist_IN of every server 3 + 4 = 7 plus exist_OUT 5 = 12;
    # make 8, lines on S 5 + 3 = 8, line 16 > 12 -> min(4, 8) = 4
    "all-servers-exist-in": (
        replace(INBOUND, inbound_queue_no_dial="ALL_SERVERS"),
        AgentTally(incall=10),
        [v_out("C", 5), ("G", "IN", "XFER", "Y", 3), (T, "G", "IN", "CLOSER", "Y", 4)],
        {"mvt": 12},
        (20, 12, 4),
    ),
    # *_WITH_CHAT adds waiting chats to existing (vdad 1400-1401): 5 + 2 = 7; make 13, line 18 > 10
    # -> min(8, 13) = 8, then the chat no-dial override forces 0 (vdad 1653)
    "waiting-chats-existing-and-no-dial": (
        replace(INBOUND, inbound_queue_no_dial="ENABLED_WITH_CHAT"),
        AgentTally(incall=10),
        [v_out("C", 5)],
        {"mvt": 10, "waiting_chats": {"G": 2}},
        (20, 7, 0),
    ),
}
CASES.update(INBOUND_CASES)


@pytest.mark.parametrize("name", CASES, ids=list(CASES))
def test_term(name: str) -> None:
    campaign, tally, calls, kw, (goal, existing, shortage) = CASES[name]
    result = compute(campaign, tally, rows(*calls), **kw)
    assert (result.goal, result.existing, result.shortage) == (goal, existing, shortage), result.explanation


# name: (campaign changes, inputs, expected zero reason) - each forces a computed shortage to 0
# (vdad 1640-1674); the default state is the 4.4 worked example (computed 10)
ZEROS = {
    "manual": ({"dial_method": "MANUAL"}, {}, ZeroReason.MANUAL_DIAL),
    "inbound-man": ({"dial_method": "INBOUND_MAN"}, {}, ZeroReason.MANUAL_DIAL),
    # level 0.5: goal 5, no call, 2 trunks -> min(3, 5) = 3
    "level-below-1": ({"auto_dial_level": 0.5}, {"calls": [], "mvt": 2}, ZeroReason.MANUAL_DIAL),
    "inbound-queue-live-call": (
        {"campaign_allow_inbound": True, "closer_campaigns": " G -", "inbound_queue_no_dial": "ENABLED"},
        {"calls": [v_out("C", 20), (T, "G", "IN", "LIVE", "Y", 1)]},
        ZeroReason.INBOUND_QUEUE_NO_DIAL,
    ),
    "inbound-queue-callback": (
        {"campaign_allow_inbound": True, "closer_campaigns": " G -", "inbound_queue_no_dial": "ALL_SERVERS"},
        {"queued_callbacks": {"G": 1}},
        ZeroReason.INBOUND_QUEUE_NO_DIAL,
    ),
    "inbound-no-agents-too-few-ready": (
        {"inbound_no_agents_no_dial_container": "INAND", "inbound_no_agents_no_dial_threshold": 2},
        {"inbound_no_agents": {"C": InboundNoAgents("G1','G2", users=3, ready=1)}},
        ZeroReason.INBOUND_NO_AGENTS_NO_DIAL,
    ),
    "inbound-no-agents-no-user": (
        {"inbound_no_agents_no_dial_container": "INAND", "inbound_no_agents_no_dial_threshold": 1},
        {"inbound_no_agents": {"C": InboundNoAgents("INB1", users=0, ready=0)}},
        ZeroReason.INBOUND_NO_AGENTS_NO_DIAL,
    ),
}


@pytest.mark.parametrize("name", ZEROS, ids=list(ZEROS))
def test_forced_zero(name: str) -> None:
    changes, kw, reason = ZEROS[name]
    kw = dict(kw)
    calls = rows(*kw.pop("calls", [v_out("C", 20)]))
    mvt = kw.pop("mvt", 20)
    campaign = replace(C, **changes)
    result = compute(campaign, TEN, calls, mvt=mvt, **kw)
    assert result.terms.computed > 0 and result.shortage == 0
    assert result.terms.zero_reasons == (reason.name,)
    assert result.zero_reason == reason.value
    # parity with a stored value equal to the computed one: the Perl writes nothing (vdad 1640),
    # so the forced zero never applies: the stored value stays (spec 4.4a)
    kept = compute(campaign, TEN, calls, mvt=mvt, previous=result.terms.computed, parity=True, **kw)
    assert kept.shortage == result.terms.computed and not kept.terms.written


@pytest.mark.parametrize(
    "entry, users, ready, threshold, fires",
    [
        ("G1", 2, 2, 2, False),  # enough READY/CLOSER inbound agents (vdad 1340-1344)
        ("G", 2, 0, 2, False),  # entry of 2 characters or fewer: never triggers (vdad 1320)
        ("G1','G2", 0, 0, 1, True),  # no eligible user at all (vdad 1357-1358)
    ],
)
def test_inbound_no_agents_rule(entry: str, users: int, ready: int, threshold: int, fires: bool) -> None:
    campaign = replace(
        C, inbound_no_agents_no_dial_container="INAND", inbound_no_agents_no_dial_threshold=threshold
    )
    result = compute(
        campaign, TEN, rows(v_out("C", 20)), inbound_no_agents={"C": InboundNoAgents(entry, users, ready)}
    )
    assert (result.shortage == 0) is fires


def test_perl_round_is_half_even() -> None:
    assert [perl_round(x) for x in (0.5, 1.5, 2.5, 3.5, 2.675 * 10)] == [0, 2, 2, 4, 27]


def test_negative_shortage_parity_and_corrected_store_0() -> None:
    # 35 calls of C and 5 of others on 20 trunks, goal 30: make -5, line 35 > 20 -> shortage
    # min(15, -5) = -5; the OTHER LIMIT check (allowed 20 < 35) gives the same (vdad 1453-1460).
    # The Perl writes '-5' and non-strict MySQL stores 0 (spec 4.4a).
    calls = rows(v_out("C", 35), v_out("X", 5))
    parity = compute(C, TEN, calls, parity=True, previous=0)
    corrected = compute(C, TEN, calls)
    assert (parity.terms.computed, parity.shortage, parity.terms.written) == (-5, 0, True)
    assert parity.deviations == ()
    assert corrected.shortage == 0
    assert corrected.deviations == (ShortageDeviation.NEGATIVE_SHORTAGE_CLAMPED,)
    assert "goal 30 < existing 35" in corrected.zero_reason


def test_manual_campaign_keeps_an_equal_stored_value() -> None:
    # Spec 4.4a, measured: a MANUAL campaign with a stored 6 that computes 6 keeps 6 (parity);
    # corrected it is 0, and the deviation is named.
    manual = replace(C, dial_method="MANUAL", auto_dial_level=1.0)
    calls = rows(v_out("C", 4))
    kw = dict(mvt=8, previous=6)
    parity = compute(manual, TEN, calls, parity=True, **kw)  # goal 10, make 6, line 10 > 8 -> min(2, 6)=2
    assert (parity.terms.computed, parity.shortage) == (2, 0)  # 2 != 6: written, forced to 0
    manual = replace(manual, auto_dial_level=2.0)  # goal 20, make 16, line 20 > 8 -> min(12, 16) = 12
    parity = compute(manual, TEN, rows(v_out("C", 4)), mvt=14, previous=6, parity=True)
    assert (parity.terms.computed, parity.shortage) == (6, 6)
    corrected = compute(manual, TEN, rows(v_out("C", 4)), mvt=14, previous=6)
    assert corrected.shortage == 0
    assert corrected.deviations == (ShortageDeviation.ZERO_OVERRIDE_ALWAYS,)
    assert any("ZERO_OVERRIDE_ALWAYS" in line for line in corrected.explanation)


def test_campaigns_take_lines_in_the_perl_order() -> None:
    # vdad 822-827, 846: sort by "<rank>---<first agent's last_call_time epoch>---<campaign>".
    # B's first agent called at epoch 100, A's at 200: B goes first and takes 10 of the 15 lines,
    # A then makes line 20 > 15 -> shortage 5. (campaign_id order would short B instead.)
    campaigns = {c: CampaignConfig(c, auto_dial_level=1.0) for c in ("A", "B")}
    snapshot = ClusterSnapshot(
        SystemSettings(),
        {S: ServerConfig(S, 15)},
        campaigns,
        agents={("B", S): AgentTally(ready=10), ("A", S): AgentTally(ready=10)},
        agent_call_epochs={("A", S): "1700000200", ("B", S): "1700000100"},
    )
    results = compute_server_shortages(snapshot, LiveCounts(), S)
    assert [(r.campaign, r.make, r.shortage) for r in results] == [("B", 10, 0), ("A", 5, 5)]
    assert all(ShortageDeviation.CAMPAIGN_ORDER not in r.deviations for r in results)
    # a NULL last_call_time sorts first (ORDER BY last_call_time puts NULL first: epoch '')
    nulls = replace(snapshot, agent_call_epochs={("A", S): "", ("B", S): "1700000100"})
    assert [r.campaign for r in compute_server_shortages(nulls, LiveCounts(), S)] == ["A", "B"]
    # without the order key: campaign_id order, and the deviation is named on every result
    unknown = replace(snapshot, agent_call_epochs={})
    results = compute_server_shortages(unknown, LiveCounts(), S)
    assert [(r.campaign, r.shortage) for r in results] == [("A", 0), ("B", 5)]
    assert all(ShortageDeviation.CAMPAIGN_ORDER in r.deviations for r in results)
    assert any("[CAMPAIGN_ORDER]" in line for line in results[0].explanation)


def test_not_modelled_is_named_on_the_result() -> None:
    campaign = replace(INBOUND, inbound_queue_no_dial="ENABLED_WITH_CHAT")
    result = compute(
        campaign,
        TEN,
        rows(v_out("C", 20)),
        missing_inputs={"vicidial_live_chats": "table vicidial_live_chats is not in this database"},
    )
    assert [(n.term, n.reason) for n in result.not_modelled] == [
        ("waiting chats", "table vicidial_live_chats is not in this database")
    ]
    assert ShortageDeviation.NOT_MODELLED in result.deviations
    assert (
        "NOT_MODELLED waiting chats: table vicidial_live_chats is not in this database" in result.explanation
    )
    # the same input missing does not matter to a campaign that does not use it
    assert (
        compute(C, TEN, rows(v_out("C", 20)), missing_inputs={"vicidial_live_chats": "x"}).not_modelled == ()
    )


def test_shared_max_calls_named_when_it_would_apply() -> None:
    shared = replace(C, dial_method="SHARED_RATIO")
    result = compute(shared, TEN, rows(v_out("C", 5)), mvt=40, system=SystemSettings(allow_shared_dial=1))
    assert [n.term for n in result.not_modelled] == ["shared max calls"]
    assert compute(shared, TEN, rows(v_out("C", 5)), mvt=40).not_modelled == ()


def test_legacy_entry_point_is_the_same_formula() -> None:
    result, counter = shortage_for_campaign(
        C, TEN, server=S, max_trunks=20, existing=20, active_line_counter=20
    )
    assert (result.goal, result.make, result.shortage, counter) == (30, 0, 10, 20)


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
        {"C": C},
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


def test_fill_campaign_order_is_case_insensitive() -> None:
    assert fill_campaign_order(["b", "C", "A", "a_1", "A2"]) == ("A", "A2", "a_1", "b", "C")


def test_table_rows_after_one_loop() -> None:
    # Two stored rows for (C, S), 7 then 3; C computes 10 (goal 30, existing 20, lines 30 on 30
    # trunks: line 40 > 30 -> min(10, 10)); E (level 0) computes 0. The Perl
    # compares with the first row (spec 4.4a): 10 != 7, so its UPDATE (no LIMIT) writes 10 to
    # both rows. D has a row on S but no agents there: cleared to 0 (vdad 775). E has agents and
    # no row: the Perl inserts it (vdad 917-928).
    campaigns = {"C": C, "E": replace(C, campaign_id="E", auto_dial_level=0.0)}
    snapshot = ClusterSnapshot(
        SystemSettings(),
        {S: ServerConfig(S, 30)},
        campaigns,
        agents={("C", S): TEN, ("E", S): TEN},
        auto_calls=AutoCallCounts.from_rows(rows(v_out("C", 20), v_out("X", 10))),
        stored_shortages=(StoredShortage("C", S, 7), StoredShortage("D", S, 4), StoredShortage("C", S, 3)),
    )
    table = shortage_table(snapshot, LiveCounts(), parity=True)
    assert [(r.campaign_id, r.row, r.stored, r.local_trunk_shortage) for r in table] == [
        ("C", 0, 7, 10),
        ("C", 2, 3, 10),
        ("E", None, None, 0),
        ("D", 1, 4, 0),
    ]
    # the first row equal to the computed value: nothing written, every row keeps its own value
    same = replace(snapshot, stored_shortages=(StoredShortage("C", S, 10), StoredShortage("C", S, 3)))
    assert [r.local_trunk_shortage for r in shortage_table(same, LiveCounts(), parity=True)][:2] == [10, 3]
    # corrected: every row of the key shows the computed value
    assert [r.local_trunk_shortage for r in shortage_table(same, LiveCounts())][:2] == [10, 10]
