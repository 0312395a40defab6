"""The carrier circuit breaker in the reactor (issue 13): driven by hand, then end to end.

Expected numbers by hand, from the clusters of ``reactor_helpers`` / ``e2e_helpers`` (spec 4.4 and
2.4): A has 20 trunks and 10 READY agents at level 3 with 20 calls of the campaign: shortage
min(30 - 20, 10) = 10. B (rank 2): available (30 - 22) - 0 = 8; C (rank 1): available 30. So the
first plan is B +8, C +2. While B's breaker is open, B is not dialable for FILL and the planner
gives C what B would have had. Half-open, B gets one line: the probe. The facts of what Asterisk
sends (Failure Reason 8 congestion, Success 4, Reason 0 before a Shutdown) are spec/AMI.md part A
4 and 6a.1; the thresholds are the settings' defaults (5 in a row, cool-down 30 s, doubling).

The reactor side needs the integration in /work/scratch/patches/breaker.diff; until it is applied
this module is skipped (``ReactorCore`` has no ``breakers``).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Any

import pytest
from reactor_helpers import A, B, C, Calls, cluster, fill_server, link_up

from fillreactor.core.breaker import BreakerConfig, Breakers, State
from fillreactor.core.events import OriginateResult, Shutdown
from fillreactor.core.planner import PlanEntry
from fillreactor.reactor.core import PlanDecision, ReactorCore
from fillreactor.reactor.trace import TraceCollector, TraceRecord

pytestmark = [
    pytest.mark.skipif(
        "breakers" not in {f.name for f in dataclasses.fields(ReactorCore)},
        reason="the reactor integration (/work/scratch/patches/breaker.diff) is not applied",
    ),
    pytest.mark.timeout(90),
]

CONGESTED = 8
ANSWERED = 4


# == the reactor core, driven by hand ================================================================
def core_with_breakers(**config: Any) -> tuple[ReactorCore, TraceCollector]:
    trace = TraceCollector()
    core = ReactorCore(dialing=True, breakers=Breakers(BreakerConfig(**config)), trace=trace)
    for server in (A, B, C):
        link_up(core, server, 0.0)
    core.on_snapshot(cluster(), 0.0)
    fill_server(core, Calls(A), 20, "DEMO", 1.0)  # A short by 10
    return core, trace


_ids = iter(range(1, 10**6))


def send(core: ReactorCore, entry: PlanEntry, now: float, count: int | None = None) -> list[str]:
    """What the dialer does with an entry: ask ``fill_admits`` per call, send, report the entry done."""
    sent = []
    for _ in range(entry.calls if count is None else count):
        if core.fill_admits(entry.server):
            call_id = f"V2011000000{next(_ids):09d}"
            core.call_sent(entry.server, call_id, entry.campaign, now)
            sent.append(call_id)
    core.entry_done(entry, len(sent), now)
    return sent


def plans(core: ReactorCore, now: float) -> list[PlanDecision]:
    decisions = []
    while (decision := core.next_plan(now)) is not None:
        decisions.append(decision)
    return decisions


def entries(decisions: list[PlanDecision]) -> dict[str, int]:
    total: dict[str, int] = {}
    for decision in decisions:
        for entry in decision.dispatch:
            total[entry.server] = total.get(entry.server, 0) + entry.calls
    return total


def fail(core: ReactorCore, server: str, call_id: str, now: float, reason: int = CONGESTED) -> None:
    # part A 4: a failed OriginateResponse has the bare dial string and no Uniqueid
    event = OriginateResult(call_id, False, reason, "Local/93125550002@default", "", call_id)
    core.on_event(server, event, now)


def answer(core: ReactorCore, server: str, call_id: str, now: float) -> None:
    event = OriginateResult(call_id, True, ANSWERED, "Local/93125550002@default-00000001;1", "1.0", call_id)
    core.on_event(server, event, now)


def open_on_b(core: ReactorCore) -> tuple[list[str], list[str]]:
    (first,) = plans(core, 1.0)
    assert entries([first]) == {B: 8, C: 2}
    on_b = send(core, first.dispatch[0], 1.0)
    on_c = send(core, first.dispatch[1], 1.0)
    for n, call_id in enumerate(on_b):  # every call on B fails at once with congestion
        fail(core, B, call_id, 1.2 + n / 1000)
    return on_b, on_c


def test_five_congested_calls_open_bs_breaker_and_its_share_moves_to_c() -> None:
    core, trace = core_with_breakers()
    demand_before = dict(core.demand().full_servers("DEMO"))
    on_b, _ = open_on_b(core)
    assert core.breakers is not None and core.breakers.state(B) is State.OPEN
    (opened,) = [r for r in trace.records if r.kind == "breaker"]
    assert opened.server == B and opened.detail.startswith("opened: 5 carrier failures in a row")
    assert all(call_id in opened.detail for call_id in on_b[:5]) and on_b[5] not in opened.detail
    # 8 released on B, 2 in flight on C: needed 10 - 2 = 8, B is out, C (available 28) takes 8
    assert entries(plans(core, 1.3)) == {C: 8}
    # only FILL stops: B keeps its link, its live demand (no stats fallback) and stays "dialable"
    assert B in core.dialable_servers() and core.breaker_blocked() == {B}
    assert dict(core.demand().full_servers("DEMO")) == demand_before == {A: 10}
    assert core.counters.fallbacks == 0 and core.counters.breaker_opened == 1


def test_half_open_b_gets_one_probe_and_the_rest_goes_on_by_rank() -> None:
    core, trace = core_with_breakers()
    open_on_b(core)  # opened at 1.204 (the 5th failure), cool-down 30 s
    (c_entry,) = [e for d in plans(core, 1.3) for e in d.dispatch]
    send(core, c_entry, 1.3, count=5)  # C took 5 of its 8: 2 + 5 = 7 in flight, need 3 unmet
    core.tick(31.0)
    assert core.breakers is not None and core.breakers.state(B) is State.OPEN
    core.tick(31.25)
    assert core.breakers.state(B) is State.HALF_OPEN
    # needed 10 - 7 = 3: B (rank 2) may take one line, C (rank 1) the other 2
    decisions = plans(core, 31.25)
    assert entries(decisions) == {B: 1, C: 2}
    assert core.breaker_blocked() == {B}  # the probe slot is taken by that plan
    probe_entry = next(e for d in decisions for e in d.dispatch if e.server == B)
    (probe,) = send(core, probe_entry, 31.3)
    assert not core.fill_admits(B)  # nothing else goes while the probe is out
    kinds = [r.detail.split(":")[0] for r in trace.records if r.kind == "breaker"]
    assert kinds == ["opened", "half-open", "probe planned", "probe"]
    assert core.counters.breaker_probes == 1
    answer(core, B, probe, 31.5)
    assert core.breakers.state(B) is State.CLOSED and core.counters.breaker_closed == 1


def test_a_failed_probe_reopens_b_for_twice_the_cool_down() -> None:
    core, trace = core_with_breakers()
    open_on_b(core)
    (c_entry,) = [e for d in plans(core, 1.3) for e in d.dispatch]
    send(core, c_entry, 1.3, count=5)
    core.tick(31.25)
    probe_entry = next(e for d in plans(core, 31.25) for e in d.dispatch if e.server == B)
    (probe,) = send(core, probe_entry, 31.3)
    fail(core, B, probe, 31.4)
    assert core.breakers is not None and core.breakers.state(B) is State.OPEN
    reopened = [r for r in trace.records if r.kind == "breaker"][-1]
    assert reopened.detail.startswith(f"reopened: probe {probe} congestion") and "for 60 s" in reopened.detail
    core.tick(91.3)
    assert core.breakers.state(B) is State.OPEN
    core.tick(91.4)
    assert core.breakers.state(B) is State.HALF_OPEN


def test_a_probe_that_was_not_placed_gives_the_slot_back() -> None:
    core, _ = core_with_breakers()
    open_on_b(core)
    (c_entry,) = [e for d in plans(core, 1.3) for e in d.dispatch]
    send(core, c_entry, 1.3, count=5)
    core.tick(31.25)
    probe_entry = next(e for d in plans(core, 31.25) for e in d.dispatch if e.server == B)
    core.entry_done(probe_entry, 0, 31.3)  # the hopper had no lead for it
    assert core.breakers is not None and core.breakers.probe_open() == {B}
    assert entries(plans(core, 31.3)) .get(B) == 1  # replanned: the slot is B's again


def test_a_stopping_server_does_not_open_its_breaker() -> None:
    # 6a.1: a graceful stop fails every ringing call with Reason 0, then sends Shutdown
    core, trace = core_with_breakers()
    (first,) = plans(core, 1.0)
    on_b = send(core, first.dispatch[0], 1.0)
    for n, call_id in enumerate(on_b):
        fail(core, B, call_id, 2.0 + n / 100, reason=0)
    assert core.breakers is not None and core.breakers.state(B) is State.OPEN
    core.on_event(B, Shutdown(restart=True), 2.5)
    assert core.breakers.state(B) is State.CLOSED
    assert [r.detail.split(":")[0] for r in trace.records if r.kind == "breaker"] == ["opened", "closed"]


def test_error_replies_count_and_unsent_calls_do_not() -> None:
    core, _ = core_with_breakers()
    (first,) = plans(core, 1.0)
    on_b = send(core, first.dispatch[0], 1.0)
    for call_id in on_b[:4]:
        core.call_refused(B, call_id, "link not ready", 1.1)  # nothing reached Asterisk
    for call_id in on_b[4:]:
        core.call_refused(B, call_id, "Originate failed", 1.1, error_reply=True)
    assert core.breakers is not None and core.breakers.state(B) is State.CLOSED  # 4 errors < 5
    assert core.breakers.counters.failures == 4 and core.breakers.counters.neutral == 4


def test_without_breakers_nothing_changes() -> None:
    core = ReactorCore(dialing=True)
    for server in (A, B, C):
        link_up(core, server, 0.0)
    core.on_snapshot(cluster(), 0.0)
    fill_server(core, Calls(A), 20, "DEMO", 1.0)
    (first,) = plans(core, 1.0)
    for call_id in send(core, first.dispatch[0], 1.0):
        fail(core, B, call_id, 1.2)
    assert core.fill_admits(B) and core.breaker_blocked() == frozenset()
    assert entries(plans(core, 1.3)) == {B: 8}  # as the Perl FILL: B gets them again


async def test_no_circuit_breaker_on_the_command_line_turns_it_off(database_dsn) -> None:
    from e2e_helpers import conf_for

    from fillreactor.reactor.service import ReactorService
    from fillreactor.service import run
    from fillreactor.service.settings import command_line_values, load_settings, parse_command_line

    parser = argparse.ArgumentParser()
    run.add_arguments(parser)
    for argv, on in ((["--no-circuit-breaker"], False), ([], True), (["--circuit-breaker"], True)):
        given = command_line_values(parser.parse_args(argv))
        settings = load_settings(None, command_line=given) if given else load_settings(None)
        assert parse_command_line(given).get("circuit_breaker", True) is on
        service = ReactorService(conf_for(database_dsn), settings)
        assert (service.core.breakers is not None) is on
        if on:
            assert service.core.breakers is not None
            assert service.core.breakers.config == BreakerConfig(5, 0.8, 20, 30.0, 600.0)


def breaker_metrics_applied() -> bool:
    try:
        from fillreactor.service.metrics import METRICS
    except ImportError:
        return False
    return "fillreactor_server_breaker_state" in METRICS


@pytest.mark.skipif(
    not breaker_metrics_applied(),
    reason="the metrics and status lines (/work/scratch/patches/breaker-ops.diff) are not applied",
)
async def test_status_metrics_and_the_status_text_show_an_open_breaker(database_dsn) -> None:
    from e2e_helpers import conf_for

    from fillreactor.reactor.service import ReactorService
    from fillreactor.service.metrics import ServiceCollector
    from fillreactor.service.settings import Settings
    from fillreactor.service.status import CampaignNeeds, render, status_payload

    service = ReactorService(conf_for(database_dsn), Settings())
    core = service.core
    core.dialing = True  # as the leader would
    for server in (A, B, C):
        link_up(core, server, 0.0)
    core.on_snapshot(cluster(), 0.0)
    fill_server(core, Calls(A), 20, "DEMO", 1.0)
    open_on_b(core)
    status = service.status()
    by_ip = {s["server_ip"]: s for s in status["servers"]}
    assert by_ip[B]["breaker"]["state"] == "open" and by_ip[C]["breaker"]["state"] == "closed"
    assert by_ip[B]["breaker"]["transitions"] == {"opened": 1}
    assert status["counters"]["breaker_opened"] == 1
    found = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in ServiceCollector(service, CampaignNeeds()).collect()
        for sample in family.samples
    }
    state = "fillreactor_server_breaker_state"
    assert found[(state, (("server", B), ("state", "open")))] == 1
    assert found[(state, (("server", B), ("state", "closed")))] == 0
    assert found[(state, (("server", C), ("state", "closed")))] == 1
    changes = "fillreactor_server_breaker_transitions_total"
    assert found[(changes, (("change", "opened"), ("server", B)))] == 1
    assert found[(changes, (("change", "closed"), ("server", B)))] == 0
    text = render(status_payload(service))
    (b_line,) = [line for line in text.splitlines() if line.startswith(B)]
    assert "breaker open, probe in " in b_line


# == end to end: simulated servers, the real database, the real service ============================
@dataclass
class Recorder:
    """Breaker trace records and dispatched plans in the order they happened, each with the FILL
    calls sent to B and C by then (counted in ``call_sent``, right before the Originate bytes are
    written; the sinks run synchronously, so the counts are exact)."""

    cluster: Any
    log: list[tuple[str, Any, dict[str, int]]] = field(default_factory=list)
    sent: dict[str, list[str]] = field(default_factory=lambda: {B: [], C: []})
    status_when_opened: dict[str, Any] | None = None
    status_line_when_opened: str = ""

    def install(self) -> None:
        service = self.cluster.service
        core = service.core
        call_sent = core.call_sent

        def counting(server: str, call_id: str, campaign: str, now: float, reply_within: float = 0.0) -> None:
            self.sent.setdefault(server, []).append(call_id)
            call_sent(server, call_id, campaign, now, reply_within)

        core.call_sent = counting  # the originator looks it up on the instance
        service.trace_sinks.append(self.trace)
        service.decision_observers.append(self.decision)

    def counts(self) -> dict[str, int]:
        return {ip: len(self.sent[ip]) for ip in (B, C)}

    def trace(self, record: TraceRecord) -> None:
        if record.kind == "breaker" and record.server == B and ":" in record.detail:
            self.log.append(("breaker", record, self.counts()))
            if record.detail.startswith("opened") and self.status_when_opened is None:
                self.status_when_opened = self.cluster.service.status()
                self.status_line_when_opened = self.cluster.service.status_line()

    def decision(self, decision: PlanDecision) -> None:
        if decision.dispatch:
            self.log.append(("plan", decision, self.counts()))

    def breaker(self, change: str) -> list[tuple[int, TraceRecord, dict[str, int]]]:
        return [
            (n, item, counts)
            for n, (kind, item, counts) in enumerate(self.log)
            if kind == "breaker" and item.detail.startswith(change + ":")
        ]

    def seen(self, change: str, times: int = 1) -> bool:
        return len(self.breaker(change)) >= times


def e2e_settings(database: str, **values: Any) -> Any:
    from e2e_helpers import fast_settings

    # a lock of its own: GET_LOCK names are server-wide, other test runs may share the MariaDB
    return fast_settings(
        lock_name=f"fr-breaker-{database}", breaker_cooldown=0.5, breaker_max_cooldown=1.0, **values
    )


async def test_a_congested_server_is_cut_off_probed_and_taken_back(database_dsn, seed, caplog) -> None:
    from e2e_helpers import live_cluster

    from fillreactor.simulator import CallTiming, Outcome
    from fillreactor.simulator.outcomes import SUFFIX_RULES

    caplog.set_level(logging.INFO, logger="fillreactor.reactor.service")
    settings = e2e_settings(database_dsn.database)
    async with live_cluster(database_dsn, seed, settings=settings, start_service=False) as cluster:
        # every number ends with "": all of B's calls fail with congestion
        cluster.sim(B).rules.suffix_rules = {"": Outcome.CONGESTION}
        # C's calls end ~2.1 s after they start (1 + 20 simulated s at 0.1): long after the first
        # half-open (0.5 s after the opening), soon enough that the probes find need
        cluster.sim(C).rules.timing = CallTiming(ring=1.0, talk=20.0, vdad_wait=20.0)
        recorder = Recorder(cluster)
        recorder.install()
        service = cluster.service
        await asyncio.wait_for(service.started.wait(), 10)

        await cluster.eventually(lambda: recorder.seen("reopened"), timeout=30)
        cluster.sim(B).rules.suffix_rules = dict(SUFFIX_RULES)  # the carrier is back
        await cluster.eventually(lambda: recorder.seen("closed"), timeout=30)
        at_close = recorder.breaker("closed")[0][2][B]
        await cluster.eventually(  # filling resumes: a FILL call after the close, answered
            lambda: any(r.reason == ANSWERED for r in cluster.fill_originates(B)[at_close:]), timeout=30
        )
        await cluster.eventually(lambda: len(cluster.fill_originates(B)) == len(recorder.sent[B]))
        b_calls = cluster.fill_originates(B)
        breakers = service.core.breakers
        assert breakers is not None

    log = recorder.log
    ids = [r.action_id for r in b_calls]
    assert ids == recorder.sent[B][: len(ids)]  # B received exactly what was counted, in order
    first_plan = next(item for kind, item, _ in log if kind == "plan")
    assert entries([first_plan]) == {B: 8, C: 2}  # the hand calculation above
    ((opened_at, opened, at_open),) = recorder.breaker("opened")
    half_opens = recorder.breaker("half-open")
    probes = recorder.breaker("probe")
    ((reopened_at, reopened, at_reopen),) = recorder.breaker("reopened")
    ((closed_at, closed, _),) = recorder.breaker("closed")

    # B's calls until the opening (the first plan's 8, and any line a failure freed before the 5th
    # failure came, re-planned there while it was still closed) all failed with congestion
    before = at_open[B]
    assert before >= 8 and all(r.reason == CONGESTED for r in b_calls[:before])
    assert opened.detail.startswith("opened: 5 carrier failures in a row; no FILL call for 0.5 s")
    named = [call_id for call_id in ids[:before] if call_id in opened.detail]
    assert len(named) == 5 and opened.detail.count(" congestion after ") == 5
    # while open, no FILL call went to B: its count at the half-open is its count at the opening
    assert half_opens[0][2][B] == before
    # ... and C (rank 1) took B's share: the plans in between gave C 8 (10 less its first 2), B none
    between = [item for kind, item, _ in log[opened_at : half_opens[0][0]] if kind == "plan"]
    assert entries(between) == {C: 8} and half_opens[0][2][C] == 10
    # one probe per half-open, the only call B received in that state
    assert [item.detail for _, item, _ in probes] == [
        f"probe: {call_id} is the one call while half-open" for call_id in ids[before : before + 2]
    ]
    assert b_calls[before].reason == CONGESTED and b_calls[before + 1].reason == ANSWERED
    assert reopened.detail.startswith(f"reopened: probe {ids[before]} congestion")
    assert "no FILL call for 1 s" in reopened.detail  # 0.5 doubled, capped at 1.0
    assert at_reopen[B] == before + 1 and half_opens[1][2][B] == before + 1  # nothing while open
    assert closed.detail.startswith(f"closed: probe {ids[before + 1]} answered")
    assert at_close == before + 2
    assert half_opens[0][0] < probes[0][0] < reopened_at < half_opens[1][0] < probes[1][0] < closed_at
    # filling resumes on B after the close, by rank (B first)
    after = [item for kind, item, _ in log[closed_at:] if kind == "plan"]
    assert any(e.server == B for d in after for e in d.dispatch)
    # C's calls are answered: its breaker never moved; nothing slipped out to B while open
    assert breakers.state(C) is State.CLOSED and breakers.counters.sent_while_open == 0
    # status and counters show it; one log line per transition
    status = recorder.status_when_opened
    assert status is not None and status["circuit_breaker"] is True
    by_ip = {s["server_ip"]: s for s in status["servers"]}
    assert by_ip[B]["breaker"]["state"] == "open" and by_ip[B]["dialable"] is True
    assert len(by_ip[B]["breaker"]["opened_by"]) == 5 and by_ip[C]["breaker"]["state"] == "closed"
    assert status["counters"]["breaker_opened"] == 1
    assert "FILL paused on 1 by the circuit breaker" in recorder.status_line_when_opened
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith(f"circuit breaker {B}:")]
    changes = [line.split(": ", 1)[1].split(":")[0] for line in lines]
    assert changes == ["opened", "half-open", "probe", "reopened", "half-open", "probe", "closed"]
    assert next(r.levelname for r in caplog.records if "circuit breaker" in r.getMessage()) == "WARNING"


async def test_with_the_breaker_off_b_keeps_getting_calls_as_with_the_perl_fill(database_dsn, seed) -> None:
    from e2e_helpers import live_cluster

    from fillreactor.simulator import Outcome

    settings = e2e_settings(database_dsn.database, circuit_breaker=False)
    async with live_cluster(database_dsn, seed, settings=settings, start_service=False) as cluster:
        cluster.sim(B).rules.suffix_rules = {"": Outcome.CONGESTION}  # every number
        await asyncio.wait_for(cluster.service.started.wait(), 10)
        # each failure frees B's line and B (rank 2) is asked first again: well past 8 calls
        await cluster.eventually(lambda: len(cluster.fill_originates(B)) >= 24, timeout=30)
        assert cluster.service.core.breakers is None
        assert cluster.service.status()["circuit_breaker"] is False
        assert all(r.reason in (CONGESTED, None) for r in cluster.fill_originates(B))
