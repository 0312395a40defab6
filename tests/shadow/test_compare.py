"""The shadow comparison, pure: wants paired with the Perl's calls, the reasons, the invariants.

Plans come from the real planner (``planner.plan``) on small snapshots worked by hand (spec 2.4);
the Perl's calls are made up with V call ids whose CIDdate is their loop (spec 5.3). Times are
plain numbers on a made-up monotonic clock.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from fillreactor.core.cluster import AutoCallCounts, ClusterSnapshot, LiveCounts, ServerConfig, SystemSettings
from fillreactor.core.planner import (
    CampaignOutcome,
    CampaignPlan,
    Mode,
    Plan,
    PlanEntry,
    PlanStatus,
    plan,
)
from fillreactor.core.shortage import Demand
from fillreactor.shadow.compare import (
    PERL_ONLY_RULES,
    FillOnly,
    Moment,
    PerlCall,
    PerlOnly,
    ShadowComparison,
    StatsRow,
    World,
)

START = datetime(2026, 11, 26, 10, 0, 0)
A, B, C, D = "10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"
CAMP = "CAMP"


def at(t: float) -> Moment:
    return Moment(t, START + timedelta(seconds=t))


def call_id(loop: int, lead: int) -> str:
    """A V id: CIDdate 'Mddhhmmss' of loop ``loop`` (9 digits), lead padded to 10 (spec 5.3)."""
    return f"V{126100000 + loop:09d}{lead:010d}"


def perl(auto_call_id: int, server: str, loop: int, campaign: str = CAMP) -> PerlCall:
    return PerlCall(auto_call_id, campaign, server, call_id(loop, auto_call_id), START, man_id=auto_call_id)


def servers(*configs: ServerConfig) -> dict[str, ServerConfig]:
    return {s.server_ip: s for s in configs}


def snapshot(
    configs: dict[str, ServerConfig], rows: dict[str, list[tuple[str, str, int]]] | None = None
) -> ClusterSnapshot:
    """vicidial_auto_calls rows per server: (campaign, call_type, count), V ids, LIVE."""
    counts = AutoCallCounts.from_rows(
        (server, campaign, call_type, "LIVE", "V", n)
        for server, items in (rows or {}).items()
        for campaign, call_type, n in items
    )
    return ClusterSnapshot(
        system=SystemSettings(),
        servers=configs,
        campaigns={},
        fill_agents={CAMP: 5, "OTHER": 5},
        auto_calls=counts,
    )


def live(
    snap: ClusterSnapshot, counted: dict[tuple[str, str], frozenset[str]], down: frozenset[str] = frozenset()
):
    """A model holding exactly the rows (every server dialable but ``down``), in flight = ``counted``."""
    rows = LiveCounts.from_rows(snap.auto_calls, dialable=set(snap.servers) - down)
    return LiveCounts(
        {s: rows.usage.get(s, 0) for s in snap.servers},
        rows.campaign_usage,
        rows.dialable,
        outbalance_in_flight={k: len(v) for k, v in counted.items()},
    )


TWO = servers(ServerConfig(A, 20), ServerConfig(B, 30, True, 22, 2), ServerConfig(C, 30, True, 0, 1))


def decide(
    comparison: ShadowComparison,
    number: int,
    t: float,
    shortage: int,
    counted: dict[tuple[str, str], frozenset[str]] | None = None,
    *,
    configs: dict[str, ServerConfig] = TWO,
    rows: dict[str, list[tuple[str, str, int]]] | None = None,
    down: frozenset[str] = frozenset(),
) -> Plan:
    counted = counted or {}
    snap = snapshot(configs, rows)
    result = plan(
        snap, Demand.from_pairs([((CAMP, A), shortage)]), live(snap, counted, down), campaigns=[CAMP]
    )
    comparison.on_decision(number, at(t), result, (CAMP,), counted)
    return result


WORLD = World(dialable=frozenset({A, B, C, D}), used={B: 0, C: 0, D: 0}, limits={B: 30, C: 30, D: 30})


def lines_of(comparison: ShadowComparison, kind: str) -> list[dict]:
    return [line for line in comparison.drain() if line["kind"] == kind]


def test_a_want_met_by_the_perl_is_a_match_with_its_lead() -> None:
    # shortage 10: B AVAIL 30 - 22 = 8, C 30: fillreactor wants 8 on B, 2 on C at t = 0
    comparison = ShadowComparison()
    result = decide(comparison, 1, 0.0, 10)
    assert [(e.server, e.calls) for e in result.entries] == [(B, 8), (C, 2)]
    assert comparison.outstanding() == {(CAMP, B): 8, (CAMP, C): 2}
    calls = [perl(i, B, 1) for i in range(1, 9)] + [perl(i, C, 1) for i in (9, 10)]
    comparison.on_perl_calls(calls, at(2.5), WORLD)
    matches = lines_of(comparison, "match")
    assert [(m["server"], m["calls"], m["lead_s"]) for m in matches] == [(B, 8, [2.5] * 8), (C, 2, [2.5] * 2)]
    assert matches[0]["manager_rows"] == 8 and matches[0]["decision"] == 1
    assert comparison.outstanding() == {}
    # the next plan counts the Perl's rows: needed 10 - 10 = 0, nothing more wanted or withdrawn
    counted = {
        (CAMP, B): frozenset(c.callerid for c in calls[:8]),
        (CAMP, C): frozenset(c.callerid for c in calls[8:]),
    }
    decide(comparison, 2, 2.6, 10, counted)
    assert comparison.drain() == [] and comparison.outstanding() == {}
    overall = comparison.totals.overall
    assert (overall.perl_placed, overall.fill_asked, overall.matched) == (10, 10, 10)


def test_snapshot_before_the_poller_gives_the_same_pairs() -> None:
    comparison = ShadowComparison()
    decide(comparison, 1, 0.0, 10)
    calls = [perl(i, B, 1) for i in range(1, 9)] + [perl(i, C, 1) for i in (9, 10)]
    counted = {
        (CAMP, B): frozenset(c.callerid for c in calls[:8]),
        (CAMP, C): frozenset(c.callerid for c in calls[8:]),
    }
    # the plan counted the rows before the poller saw them: its level is 0, the wants wait for them
    decide(comparison, 2, 2.6, 10, counted)
    assert comparison.drain() == []
    assert comparison.outstanding() == {(CAMP, B): 8, (CAMP, C): 2}
    comparison.on_perl_calls(calls, at(2.7), WORLD)
    assert [(m["server"], m["calls"], m["lead_s"][0]) for m in lines_of(comparison, "match")] == [
        (B, 8, 2.7),
        (C, 2, 2.7),
    ]
    assert comparison.outstanding() == {}


def test_a_stale_snapshot_after_the_poller_asks_for_nothing_again() -> None:
    comparison = ShadowComparison()
    decide(comparison, 1, 0.0, 10)
    calls = [perl(i, B, 1) for i in range(1, 9)] + [perl(i, C, 1) for i in (9, 10)]
    comparison.on_perl_calls(calls, at(2.5), WORLD)
    comparison.drain()
    # a plan on a snapshot read before the Perl's rows: it wants 8 + 2 again, all of them the Perl's
    decide(comparison, 2, 2.6, 10, {})
    assert comparison.outstanding() == {} and comparison.drain() == []


def test_withdrawn_wants_are_fillreactor_only_with_the_reason() -> None:
    comparison = ShadowComparison()
    decide(comparison, 1, 0.0, 10)
    decide(comparison, 2, 1.0, 4)  # shortage 10 -> 4: B keeps 4, C is not asked, B gives up 4
    fill_only = lines_of(comparison, "fill_only")
    assert [(x["server"], x["calls"], x["reason"]) for x in fill_only] == [
        (B, 4, FillOnly.DEMAND_GONE.value),
        (C, 2, FillOnly.DEMAND_GONE.value),
    ]
    assert fill_only[0]["wanted_s"] == [1.0] * 4 and fill_only[0]["detail"].startswith("shortage 10 -> 4")
    assert comparison.outstanding() == {(CAMP, B): 4}
    comparison.finish(at(5.0))
    (still,) = lines_of(comparison, "fill_only")
    assert (still["calls"], still["reason"], still["wanted_s"]) == (4, FillOnly.STILL_WANTED.value, [5.0] * 4)
    overall = comparison.totals.overall
    assert (overall.fill_asked, overall.matched, sum(overall.fill_only.values())) == (10, 0, 10)


def test_the_perl_on_another_server_is_perl_only_there_and_filled_elsewhere_here() -> None:
    comparison = ShadowComparison()
    decide(comparison, 1, 0.0, 10)  # 8 on B, 2 on C
    calls = [perl(i, C, 1) for i in range(1, 11)]  # the Perl put all 10 on C
    comparison.on_perl_calls(calls, at(2.5), WORLD)
    lines = comparison.drain()
    assert [(x["kind"], x["calls"]) for x in lines] == [("match", 2), ("perl_only", 8)]
    assert lines[1]["reason"] == PerlOnly.OTHER_SERVER.value and f"8 on {B}" in lines[1]["detail"]
    decide(
        comparison,
        2,
        2.6,
        10,
        {(CAMP, C): frozenset(c.callerid for c in calls)},
        rows={C: [(CAMP, "OUTBALANCE", 10)]},
    )
    (withdrawn,) = lines_of(comparison, "fill_only")
    assert (withdrawn["server"], withdrawn["calls"], withdrawn["reason"]) == (
        B,
        8,
        FillOnly.FILLED_ELSEWHERE.value,
    )


def test_an_overdial_names_the_planner_corrections() -> None:
    # spec 9.3.1: B (rank 3) MVT 10 carries 12 calls of another campaign: the Perl's temp_avail is
    # 10 - 12 = -2, DIAL -2 lowers its tally; C (offlimits 27): AVAIL 3, wanted 7 -> 3; D: wanted
    # 5 - (-2 + 3) = 4 -> 4 (VALIDATE cap 5). fillreactor: B 0 (clamped), C 3, D 5 - 3 = 2.
    configs = servers(
        ServerConfig(A, 20),
        ServerConfig(B, 10, True, 0, 3),
        ServerConfig(C, 30, True, 27, 2),
        ServerConfig(D, 30, True, 0, 1),
    )
    comparison = ShadowComparison()
    result = decide(comparison, 1, 0.0, 5, configs=configs, rows={B: [("OTHER", "OUT", 12)]})
    assert [(e.server, e.calls) for e in result.entries] == [(C, 3), (D, 2)]
    calls = [perl(i, C, 1) for i in (1, 2, 3)] + [perl(i, D, 1) for i in (4, 5, 6, 7)]
    comparison.on_perl_calls(calls, at(1.0), WORLD)
    lines = comparison.drain()
    assert [(x["kind"], x["server"], x["calls"]) for x in lines] == [
        ("match", C, 3), ("match", D, 2), ("perl_only", D, 2)
    ]  # fmt: skip
    extra = lines[2]
    assert extra["reason"] == PerlOnly.OVERDIAL.value
    assert extra["corrections"] == ["TOTAL_CAPPED_AT_NEED"]
    assert extra["detail"].startswith(f"the Perl's DIAL on {D} is 4 on this state, fillreactor's 2")
    assert comparison.totals.overall.corrections == {"TOTAL_CAPPED_AT_NEED": 2}


def test_the_reference_plan_is_the_last_one_before_the_perl_loop() -> None:
    # a plan read in the middle of the Perl's loop (it counted 3 of its 7 rows) is not the reference
    configs = servers(
        ServerConfig(A, 20),
        ServerConfig(B, 10, True, 0, 3),
        ServerConfig(C, 30, True, 27, 2),
        ServerConfig(D, 30, True, 0, 1),
    )
    comparison = ShadowComparison()
    decide(comparison, 1, 0.0, 5, configs=configs, rows={B: [("OTHER", "OUT", 12)]})
    calls = [perl(i, C, 1) for i in (1, 2, 3)] + [perl(i, D, 1) for i in (4, 5, 6, 7)]
    counted = {(CAMP, C): frozenset(c.callerid for c in calls[:3])}
    decide(
        comparison,
        2,
        0.5,
        5,
        counted,
        configs=configs,
        rows={B: [("OTHER", "OUT", 12)], C: [(CAMP, "OUTBALANCE", 3)]},
    )
    comparison.on_perl_calls(calls, at(1.0), WORLD)
    extra = [x for x in comparison.drain() if x["kind"] == "perl_only"]
    assert [(x["reason"], x["calls"], x["decision"]) for x in extra] == [(PerlOnly.OVERDIAL.value, 2, 1)]


def test_perl_only_rules_in_order() -> None:
    assert [reason for reason, _rule in PERL_ONLY_RULES] == list(PerlOnly)
    comparison = ShadowComparison()
    decide(comparison, 1, 0.0, 10, down=frozenset({C}))  # C's link is down: all on B (8), C none
    assert comparison.outstanding() == {(CAMP, B): 8}
    down_world = World(dialable=frozenset({A, B}), used={B: 0, C: 0}, limits={B: 30, C: 30})
    comparison.on_perl_calls([perl(1, C, 1)], at(1.0), down_world)
    (line,) = lines_of(comparison, "perl_only")
    assert (line["reason"], line["corrections"]) == (PerlOnly.LINK_DOWN.value, ["NOT_DIALABLE"])

    # the same Perl call once the link is back and C has room: fillreactor wanted it on B
    comparison = ShadowComparison()
    decide(
        comparison,
        1,
        0.0,
        10,
        configs=servers(
            ServerConfig(A, 20), ServerConfig(B, 30, True, 0, 2), ServerConfig(C, 30, True, 0, 1)
        ),
    )
    assert comparison.outstanding() == {(CAMP, B): 10}
    comparison.on_perl_calls([perl(2, C, 2)], at(1.1), WORLD)
    (line,) = lines_of(comparison, "perl_only")
    assert (line["reason"], line["detail"]) == (
        PerlOnly.OTHER_SERVER.value,
        f"fillreactor wanted CAMP's calls elsewhere: 10 on {B}",
    )

    full_world = World(dialable=frozenset({A, B, C}), used={B: 30}, limits={B: 30})
    comparison.on_perl_calls([perl(3, B, 3, "OTHER"), perl(4, B, 3, "OTHER")], at(1.2), full_world)
    (line,) = lines_of(comparison, "perl_only")
    assert (line["reason"], line["calls"]) == (PerlOnly.FULL_SERVER.value, 2)

    stats = (StatsRow("STALE", A, 3, 300.0),)
    stale_world = World(dialable=frozenset({A, B, C}), used={B: 0}, limits={B: 30}, stats=stats)
    comparison.on_perl_calls([perl(5, B, 4, "STALE")], at(1.3), stale_world)
    (line,) = lines_of(comparison, "perl_only")
    assert line["reason"] == PerlOnly.STALE_SHORTAGE.value and "300 s old" in line["detail"]
    fresh_world = World(
        dialable=frozenset({A, B, C}), used={B: 0}, limits={B: 30}, stats=(StatsRow("NEW", A, 3, 1.0),)
    )
    comparison.on_perl_calls([perl(6, B, 5, "NEW")], at(1.4), fresh_world)
    assert lines_of(comparison, "perl_only")[0]["reason"] == PerlOnly.SHORTAGE_DIFFERS.value
    first_world = World(dialable=frozenset({A, B, C}), used={B: 0}, limits={B: 30}, demand={"RISEN": 4})
    comparison.on_perl_calls([perl(7, B, 6, "RISEN")], at(1.5), first_world)
    assert lines_of(comparison, "perl_only")[0]["reason"] == PerlOnly.PERL_FIRST.value
    comparison.on_perl_calls([perl(8, B, 7, "NOBODY")], at(1.6), WORLD)
    (line,) = lines_of(comparison, "perl_only")
    assert (line["reason"], line["detail"]) == (
        PerlOnly.NOT_WANTED.value,
        "fillreactor had made no plan for NOBODY",
    )


def test_over_the_limit_because_of_perl_calls() -> None:
    comparison = ShadowComparison()
    comparison.on_usage(D, 31, 30, at(0.5))  # over, but no Perl FILL call there: not counted
    comparison.on_perl_calls(
        [perl(i, D, 1) for i in (1, 2, 3, 4)], at(1.0), World(used={D: 31}, limits={D: 30})
    )
    assert comparison.over_limit_now() == {D: 1}
    comparison.on_usage(D, 32, 30, at(1.5))
    comparison.on_usage(D, 30, 30, at(3.0))
    (over,) = lines_of(comparison, "over_limit")
    assert (over["server"], over["seconds"], over["peak_over"], over["limit"]) == (D, 2.0, 2, 30)
    assert comparison.totals.servers[D].over_limit_s == 2.0


def test_calls_seen_gone_are_not_in_flight_any_more() -> None:
    comparison = ShadowComparison()
    decide(comparison, 1, 0.0, 10)
    calls = [perl(i, B, 1) for i in range(1, 9)] + [perl(i, C, 1) for i in (9, 10)]
    comparison.on_perl_calls(calls, at(1.0), WORLD)
    counted = {
        (CAMP, B): frozenset(c.callerid for c in calls[:8]),
        (CAMP, C): frozenset(c.callerid for c in calls[8:]),
    }
    decide(comparison, 2, 1.1, 10, counted)
    comparison.drain()
    # two calls on B end: the next plan (rows gone) wants 2 again on B, the poller has not seen it yet
    left = {**counted, (CAMP, B): frozenset(c.callerid for c in calls[2:8])}
    decide(comparison, 3, 5.0, 10, left, rows={B: [(CAMP, "OUTBALANCE", 6)], C: [(CAMP, "OUTBALANCE", 2)]})
    assert comparison.outstanding() == {}  # the poller still counts them alive
    comparison.on_perl_gone([calls[0].callerid, calls[1].callerid], at(5.2), WORLD)
    assert comparison.outstanding() == {(CAMP, B): 2}
    comparison.on_perl_calls([perl(11, B, 2), perl(12, B, 2)], at(7.5), WORLD)
    assert [(m["calls"], m["lead_s"]) for m in lines_of(comparison, "match")] == [(2, [2.5, 2.5])]


# -- invariants ----------------------------------------------------------------------------------
SERVERS = (B, C)


def synthetic_plan(levels: dict[str, int]) -> Plan:
    entries = tuple(PlanEntry(CAMP, s, n) for s, n in sorted(levels.items()) if n > 0)
    total = sum(levels.values())
    campaign = CampaignPlan(
        CAMP, CampaignOutcome.PLANNED, total, 0, total, (A,), 5, (), total, balance_trunk_fill=total
    )
    return Plan(Mode.CORRECTED, PlanStatus.PLANNED, entries, (campaign,))


step = st.one_of(
    st.tuples(
        st.just("decide"), st.dictionaries(st.sampled_from(SERVERS), st.integers(0, 4)), st.integers(0, 8)
    ),
    st.tuples(st.just("perl"), st.sampled_from(SERVERS), st.integers(1, 3)),
    st.tuples(st.just("gone"), st.integers(0, 6)),
)


@settings(max_examples=150)
@given(st.lists(step, max_size=30))
def test_every_call_is_counted_once(steps) -> None:
    """Whatever the order: asked = matched + fillreactor only + open; placed = matched + Perl only;
    leads and wanted times are never negative; after ``finish`` nothing is open."""
    comparison = ShadowComparison()
    alive: list[PerlCall] = []
    next_id, t, loop, placed = 1, 0.0, 0, 0
    for op in steps:
        t += 0.5
        if op[0] == "decide":
            counted: dict[tuple[str, str], frozenset[str]] = {}
            for call in alive[: op[2]]:  # a snapshot that read some of the live Perl calls
                counted[(CAMP, call.server)] = counted.get((CAMP, call.server), frozenset()) | {call.callerid}
            comparison.on_decision(int(t * 2), at(t), synthetic_plan(op[1]), (CAMP,), counted)
            if op[2] >= len(alive):  # the plan counted every live Perl call, all seen: wants = levels
                assert comparison.outstanding() == {(CAMP, s): n for s, n in sorted(op[1].items()) if n}
        elif op[0] == "perl":
            loop += 1
            batch = [perl(next_id + i, op[1], loop) for i in range(op[2])]
            next_id += op[2]
            placed += op[2]
            alive += batch
            comparison.on_perl_calls(batch, at(t), WORLD)
        elif alive:
            gone = alive.pop(op[1] % len(alive))
            comparison.on_perl_gone([gone.callerid], at(t), WORLD)
        overall = comparison.totals.overall
        open_wants = sum(comparison.outstanding().values())
        assert comparison.asked == overall.matched + sum(overall.fill_only.values()) + open_wants
        assert overall.perl_placed == placed == overall.matched + sum(overall.perl_only.values())
        assert all(lead >= 0 for lead in overall.leads)
    comparison.finish(at(t + 1))
    overall = comparison.totals.overall
    assert comparison.outstanding() == {}
    assert comparison.asked == overall.fill_asked == overall.matched + sum(overall.fill_only.values())
    assert all(w >= 0 for line in comparison.drain() if line["kind"] == "fill_only" for w in line["wanted_s"])
