"""Shadow mode end to end: simulated Asterisk servers, the real MariaDB, a shadow ReactorService and
the Perl FILL double writing its rows on its 2.5 s timer, all on one stepped clock.

Every expected figure is worked by hand below from spec 2.4 (the FILL arithmetic), spec 4.4 (the
shortage of AST_VDauto_dial.pl, as tests/reactor/test_service_e2e.py works it) and the double's
schedule; none is read back from what fillreactor printed. Each test seeds its demand (agents, the
stats row) only once the links are resynced (``ready``), so its first plan is made on a settled
cluster at t = 0.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from shadow_helpers import (
    CAMPAIGN,
    A,
    B,
    C,
    D,
    parse_tables,
    place_orphans,
    seed_campaign,
    seed_servers,
    shadow_cluster,
)

from fillreactor.shadow import report_cli
from fillreactor.shadow.metrics import SHADOW_METRICS, ShadowCollector

pytestmark = pytest.mark.timeout(60)
COLUMNS = [
    "Perl placed",
    "fillreactor asked",
    "matched",
    "lead p50",
    "lead p99",
    "fillreactor only",
    "Perl only",
]


def lines_of(report) -> list[dict]:
    return [json.loads(text) for text in report.read_text().splitlines()]


async def test_agreement_and_lead_times_follow_the_perl_schedule(
    database_dsn, seed, tmp_path, capsys
) -> None:
    """A: 20 trunks, 20 calls of its own dialer, 10 READY agents at level 3: goal 30, make 30 - 20 = 10,
    line goal 30 > 20, shortage min(30 - 20, 10) = 10 (spec 4.4). B (rank 2): AVAIL (30 - 22) = 8;
    C (rank 1): AVAIL 30. fillreactor (t = 0) and the Perl agree: 8 on B, 2 on C.

    Schedule (stepped clock, seconds): fillreactor plans at 0; the double loops at 1.0, 3.5, 6.0 ...
    * loop 1 (1.0): stats shortage 10, no OUTBALANCE rows: needed 10, B 8, C 2 -> 10 matches, lead 1.0.
    * at 2.0: 2 more agents (12 x 3 = 36: make 16, line goal 36, shortage min(16, 16) = 16) and the
      stats row says 16 (AST_VDauto_dial.pl's next write). fillreactor: needed 16 - 10 = 6; B: AVAIL
      8 - 8 = 0; C: AVAIL 30 - 2 = 28, lines free 30 - 2 = 28: 6 on C at 2.0.
    * loop 2 (3.5): needed 16 - 10 = 6; B: AVAIL 8 - 8 = 0 -> 0; C: AVAIL 28, temp_avail 30 - 2 = 28
      -> 6. 6 matches on C, lead 3.5 - 2.0 = 1.5.
    Leads: B 8 x 1.0; C 2 x 1.0 + 6 x 1.5. Nearest-rank percentiles: B p50 = p99 = 1.0; C (8 values)
    p50 = 4th = 1.5, p99 = 8th = 1.5; the campaign (16 values: ten 1.0, six 1.5) p50 = 8th = 1.0,
    p99 = 16th = 1.5. balance_trunk_fill: the Perl stores 0 + 10 = 10, then 10 + 6 = 16.
    """

    async def setup(seed, sims) -> None:
        await seed_servers(seed, sims, ((30, 22, 2), (30, 0, 1)))
        await seed.campaign(CAMPAIGN, auto_dial_level="3", dial_timeout=30)

    report = tmp_path / "shadow.jsonl"
    later = seed.now() + timedelta(hours=1)
    async with shadow_cluster(database_dsn, seed, report, setup) as h:
        await h.ready({A, B, C})
        agents = [await seed.live_agent(A, CAMPAIGN, last_update_time=later) for _ in range(10)]
        await seed.campaign_server_stats(CAMPAIGN, A, 10)
        await h.settle(lambda: h.open_wants() == {(CAMPAIGN, B): 8, (CAMPAIGN, C): 2})
        h.double.start(first_in=1.0)

        h.advance_to(1.0)
        await h.double.wait_loops(1)
        assert [(c.server, c.campaign) for c in h.double.loops[0].calls] == [(B, CAMPAIGN)] * 8 + [
            (C, CAMPAIGN)
        ] * 2
        await h.settle(lambda: h.runner.comparison.totals.overall.matched == 10 and not h.open_wants())

        h.advance_to(2.0)
        agents += [await seed.live_agent(A, CAMPAIGN, last_update_time=later) for _ in range(2)]
        await seed.execute("UPDATE vicidial_campaign_server_stats SET local_trunk_shortage = 16")
        await h.settle(lambda: h.open_wants() == {(CAMPAIGN, C): 6})

        h.advance_to(3.5)
        await h.double.wait_loops(2)
        assert [(c.server, c.campaign) for c in h.double.loops[1].calls] == [(C, CAMPAIGN)] * 6
        await h.settle(lambda: h.runner.comparison.totals.overall.matched == 16 and not h.open_wants())

        totals = h.runner.comparison.totals
        b, c = totals.pairs[(CAMPAIGN, B)], totals.pairs[(CAMPAIGN, C)]
        assert (b.perl_placed, b.fill_asked, b.matched, sorted(b.leads)) == (8, 8, 8, [1.0] * 8)
        assert (c.perl_placed, c.fill_asked, c.matched, sorted(c.leads)) == (8, 8, 8, [1.0] * 2 + [1.5] * 6)
        assert (b.lead(0.5), b.lead(0.99), c.lead(0.5), c.lead(0.99)) == (1.0, 1.0, 1.5, 1.5)
        campaign = totals.campaigns[CAMPAIGN]
        assert (campaign.lead(0.5), campaign.lead(0.99)) == (1.0, 1.5)
        assert not campaign.fill_only and not campaign.perl_only
        await h.settle(lambda: h.runner.comparison.perl_fill.get(CAMPAIGN) == 16)
        assert h.double.fills == {CAMPAIGN: 16}
        assert h.runner.comparison.fill_fill[CAMPAIGN] == 16

        status = h.runner.status()
        assert (status["perl_placed"], status["fill_asked"], status["matched"]) == (16, 16, 16)
        assert status["lead_ms"] == {"p50": 1000.0, "p99": 1500.0}
        assert any(r.kind == "shadow" and r.detail.startswith("match 8") for r in h.trace.records)
        for name, labels, _value in h.runner.metric_samples():
            assert tuple(labels) == SHADOW_METRICS[name][1]
        registry = CollectorRegistry()
        registry.register(ShadowCollector(h.runner))
        exposition = generate_latest(registry).decode()
        assert f'fillreactor_shadow_matched_total{{campaign="{CAMPAIGN}",server="{C}"}} 8.0' in exposition
        lead = f'fillreactor_shadow_lead_seconds{{campaign="{CAMPAIGN}",quantile="0.5",server="{C}"}} 1.5'
        assert lead in exposition

        # nothing was written by shadow mode: every table the stand-ins do not write is unchanged
        # (but for the test's own agents and stats row), the rows of those they write are theirs
        await h.stop_service()
        changed = await h.changed_tables(
            {
                "vicidial_live_agents": lambda row: row["live_agent_id"] in agents,
                "vicidial_campaign_server_stats": lambda row: True,
            }
        )
        assert changed == []
        stats = await h.rows(
            "SELECT campaign_id, server_ip, local_trunk_shortage FROM vicidial_campaign_server_stats"
        )
        assert stats == [{"campaign_id": CAMPAIGN, "server_ip": A, "local_trunk_shortage": 16}]
        manager = await h.rows("SELECT callerid, status FROM vicidial_manager ORDER BY man_id")
        assert [m["callerid"] for m in manager] == [c.call_id for loop in h.double.loops for c in loop.calls]
        assert {m["status"] for m in manager} == {"SENT"}
        balance = await h.rows("SELECT callerid FROM vicidial_auto_calls WHERE call_type = 'OUTBALANCE'")
        assert {r["callerid"] for r in balance} <= h.double.call_ids
        others = await h.rows(
            "SELECT call_type, lead_id FROM vicidial_auto_calls WHERE call_type != 'OUTBALANCE'"
        )
        assert {r["call_type"] for r in others} <= {"OUT"} and all(r["lead_id"] >= 500_000 for r in others)
        fills = await h.rows("SELECT campaign_id, balance_trunk_fill FROM vicidial_campaign_stats")
        assert fills == [{"campaign_id": CAMPAIGN, "balance_trunk_fill": 16}]

    lines = lines_of(report)
    assert lines[0]["kind"] == "start" and lines[-1]["kind"] == "end"
    matches = [line for line in lines if line["kind"] == "match"]
    assert sorted((m["server"], m["calls"], m["lead_s"][0]) for m in matches) == [
        (B, 8, 1.0),
        (C, 2, 1.0),
        (C, 6, 1.5),
    ]
    assert {line["kind"] for line in lines} <= {"start", "match", "balance_trunk_fill", "end"}

    parser = report_cli.build_parser()
    assert report_cli.run(parser.parse_args([str(report)])) == 0
    tables = parse_tables(capsys.readouterr().out)
    assert [tables["Per campaign"][CAMPAIGN][k] for k in COLUMNS] == [
        "16",
        "16",
        "16",
        "1.000 s",
        "1.500 s",
        "0",
        "0",
    ]
    assert [tables["Per server"][B][k] for k in COLUMNS] == ["8", "8", "8", "1.000 s", "1.000 s", "0", "0"]
    assert [tables["Per server"][C][k] for k in COLUMNS] == ["8", "8", "8", "1.500 s", "1.500 s", "0", "0"]
    (hour,) = tables["Per hour"].values()
    assert [hour[k] for k in COLUMNS] == ["16", "16", "16", "1.000 s", "1.500 s", "0", "0"]


async def test_an_overdial_by_the_perl_is_reported_with_its_corrections(database_dsn, seed, tmp_path) -> None:
    """Spec 9.3.1, the Perl's overdial, and a server pushed over its limit by it.

    A: 20 trunks, 20 own calls, 25 READY agents at level 1: goal 25, make 5, line goal 25 > 20,
    shortage min(25 - 20, 5) = 5. Balance servers by rank: B (rank 3, 10 trunks) carries 12 calls of
    its own dialer (campaign OTHER, with rows); C (rank 2, 30 trunks, 27 off limits): AVAIL 3;
    D (rank 1, 30 trunks) carries 27 live calls whose rows are gone (the Perl does not see them).

    The Perl (loop at 1.0): needed 5. B: AVAIL 10, temp_avail 10 - 12 = -2 -> DIAL -2, tally -2, none
    placed. C: wanted 5 + 2 = 7, AVAIL 3 -> 3. D: wanted 7 - 3 = 4, temp_avail 30 - 0 rows = 30 -> 4
    (VALIDATE cap 5). 7 calls for a need of 5; balance_trunk_fill 0 + (-2 + 3 + 4) = 5.
    fillreactor (t = 0): B 0 (lines free clamped at 0: TEMP_AVAIL_CLAMPED), C 3, D: wanted 2, lines
    free 30 - 27 = 3 -> 2 (the Perl's 4: TOTAL_CAPPED_AT_NEED, RESERVATIONS_COUNTED).
    So: C 3 matches, D 2 matches (lead 1.0) and 2 Perl-only calls, an overdial naming both
    corrections. D then uses 27 + 4 = 31 lines of 30: over its limit by 1 from 1.0 until one of the
    27 calls hangs up at 3.0: 2.0 s. B is over its limit all along, but with no Perl FILL call on it.
    After the loop fillreactor's plan would store 7 (the 7 calls in flight, needed -2), the Perl 5.
    """
    orphans: list = []

    async def setup(seed, sims) -> None:
        await seed_servers(seed, sims, ((10, 0, 3), (30, 27, 2), (30, 0, 1)))
        await seed.campaign(CAMPAIGN, auto_dial_level="1", dial_timeout=30)
        await seed.campaign("OTHER", auto_dial_level="1")
        orphans.extend(place_orphans(sims[3], 27))

    report = tmp_path / "shadow.jsonl"
    later = seed.now() + timedelta(hours=1)
    agent_calls = ((A, CAMPAIGN, 20), (B, "OTHER", 12))
    async with shadow_cluster(database_dsn, seed, report, setup, servers=4, agent_calls=agent_calls) as h:
        await h.ready({A, B, C, D})
        for _ in range(25):
            await seed.live_agent(A, CAMPAIGN, last_update_time=later)
        await seed.campaign_server_stats(CAMPAIGN, A, 5)
        await h.settle(lambda: h.open_wants() == {(CAMPAIGN, C): 3, (CAMPAIGN, D): 2})
        h.double.start(first_in=1.0)

        h.advance_to(1.0)
        await h.double.wait_loops(1)
        assert (
            sorted((c.server, c.campaign) for c in h.double.loops[0].calls)
            == [(C, CAMPAIGN)] * 3 + [(D, CAMPAIGN)] * 4
        )
        comparison = h.runner.comparison
        await h.settle(
            lambda: comparison.totals.overall.perl_placed == 7 and comparison.over_limit_now() == {D: 1}
        )
        d = comparison.totals.pairs[(CAMPAIGN, D)]
        assert (d.perl_placed, d.fill_asked, d.matched, list(d.leads), dict(d.perl_only)) == (
            4, 2, 2, [1.0, 1.0], {"overdial": 2}
        )  # fmt: skip
        assert dict(comparison.totals.overall.corrections) == {
            "TOTAL_CAPPED_AT_NEED": 2,
            "RESERVATIONS_COUNTED": 2,
        }
        c = comparison.totals.pairs[(CAMPAIGN, C)]
        assert (c.perl_placed, c.fill_asked, c.matched, list(c.leads)) == (3, 3, 3, [1.0] * 3)
        await h.settle(
            lambda: comparison.perl_fill.get(CAMPAIGN) == 5 and comparison.fill_fill.get(CAMPAIGN) == 7
        )

        h.advance_to(3.0)
        orphans[0].request_hangup()
        await h.settle(lambda: comparison.over_limit_now() == {})
        assert comparison.totals.servers[D].over_limit_s == 2.0
        assert B not in comparison.totals.servers or comparison.totals.servers[B].over_limit_s == 0.0
        await h.stop_service()
        assert (
            await h.changed_tables(
                {"vicidial_live_agents": lambda row: True, "vicidial_campaign_server_stats": lambda row: True}
            )
            == []
        )

    lines = lines_of(report)
    (extra,) = [line for line in lines if line["kind"] == "perl_only"]
    assert (extra["server"], extra["calls"], extra["reason"]) == (D, 2, "overdial")
    assert extra["corrections"] == ["TOTAL_CAPPED_AT_NEED", "RESERVATIONS_COUNTED"]
    assert (
        extra["detail"] == f"the Perl's DIAL on {D} is 4 on this state, fillreactor's 2; {D} had 3 lines free"
    )
    (over,) = [line for line in lines if line["kind"] == "over_limit"]
    assert (over["server"], over["seconds"], over["peak_over"], over["limit"]) == (D, 2.0, 1, 30)
    assert not [line for line in lines if line["kind"] == "fill_only"]


async def test_a_server_whose_link_is_down_and_a_stale_shortage_are_named(
    database_dsn, seed, tmp_path
) -> None:
    """C's Asterisk is down (no AMI link); agent server 10.10.10.99 crashed 5 minutes ago, leaving its
    stats row (campaign STALE short 3, updated 300 s ago) and its 3 READY agents' rows behind.

    A's campaign: shortage 10 (as in the first test). fillreactor: B 8, C nothing (NOT_DIALABLE);
    STALE: no demand (10.10.10.99 is no server of the cluster, its agents are not fresh).
    The Perl (loop at 1.0), campaigns in GROUP BY order FILLSHD, STALE: FILLSHD needed 10, B 8, C 2
    (it counts C's rows, none); STALE: the row is within its 1200 s, its gate counts the 3 agents
    (no freshness filter, spec 2.5): needed 3, B: AVAIL 8, temp_avail 30 - 0 - 8 planned = 22 -> 3.
    So: B 8 matches (lead 1.0); C 2 Perl only, "link down"; B 3 Perl only for STALE, "stale shortage".
    C's manager rows stay NEW (its sender cannot send); B's are SENT.
    """
    dead = "10.10.10.99"

    async def setup(seed, sims) -> None:
        await seed_servers(seed, sims, ((30, 22, 2), (30, 0, 1)))
        await seed.campaign(CAMPAIGN, auto_dial_level="3", dial_timeout=30)
        await seed_campaign(seed, "STALE", agents=3, level="1", server=dead, fresh=False)
        await seed.campaign_server_stats("STALE", dead, 3, update_time=seed.now() - timedelta(seconds=300))
        await sims[2].stop()

    report = tmp_path / "shadow.jsonl"
    later = seed.now() + timedelta(hours=1)
    async with shadow_cluster(database_dsn, seed, report, setup) as h:
        await h.ready({A, B})
        for _ in range(10):
            await seed.live_agent(A, CAMPAIGN, last_update_time=later)
        await seed.campaign_server_stats(CAMPAIGN, A, 10)
        await h.settle(lambda: h.open_wants() == {(CAMPAIGN, B): 8})
        h.double.start(first_in=1.0)
        h.advance_to(1.0)
        await h.double.wait_loops(1)
        comparison = h.runner.comparison
        await h.settle(lambda: comparison.totals.overall.perl_placed == 13)
        pairs = comparison.totals.pairs
        assert (pairs[(CAMPAIGN, B)].matched, list(pairs[(CAMPAIGN, B)].leads)) == (8, [1.0] * 8)
        assert dict(pairs[(CAMPAIGN, C)].perl_only) == {"link down": 2}
        assert dict(pairs[("STALE", B)].perl_only) == {"stale shortage": 3}
        manager = await h.rows(
            "SELECT server_ip, status, COUNT(*) AS n FROM vicidial_manager GROUP BY server_ip, status"
        )
        assert sorted((m["server_ip"], m["status"], m["n"]) for m in manager) == [
            (B, "SENT", 11),
            (C, "NEW", 2),
        ]

    lines = [line for line in lines_of(report) if line["kind"] == "perl_only"]
    by_reason = {line["reason"]: line for line in lines}
    assert by_reason["link down"]["corrections"] == ["NOT_DIALABLE"]
    assert by_reason["stale shortage"]["detail"].startswith(
        f"vicidial_campaign_server_stats says STALE is short 3 (stale rows: {dead} 3 ("
    )
