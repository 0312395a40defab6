"""The carrier circuit breaker: the result table, one test per transition, and its invariants.

Facts behind the table (spec/AMI.md part A 4, "OriginateResponse outcomes (all observed)"):
answered = Success Reason 4; busy = Failure 5; no answer = Failure 3; congestion = Failure 8;
unknown context = Failure 0. An AMI Hangup of a ringing call gives Failure 0 or 8 (6a.3); a
graceful stop fails every ringing call with Reason 0 about a second before ``Event: Shutdown``
(6a.1); an error reply ``Asterisk is shutting down`` comes from a stopping server (6a.1).
The thresholds are the defaults of issue 13 / the settings table: 5 in a row, ratio 0.8 over 20,
cool-down 30 s doubling up to 600 s.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fillreactor.core.breaker import (
    REQUEST_CAUSES,
    BreakerConfig,
    Breakers,
    Change,
    Outcome,
    State,
    Transition,
    Verdict,
    classify,
)

B = "10.10.10.12"
C = "10.10.10.13"
FAST = BreakerConfig()  # the defaults: 5 in a row, 0.8 over 20, 30 s doubling to 600 s

ANSWERED = Outcome.response(True, 4)
BUSY = Outcome.response(False, 5)
NO_ANSWER = Outcome.response(False, 3)
CONGESTION = Outcome.response(False, 8)
FAILED = Outcome.response(False, 0)


class Driver:
    """Sends numbered calls to one server and feeds their results back (time passed by hand)."""

    def __init__(self, breakers: Breakers, server: str = B) -> None:
        self.breakers = breakers
        self.server = server
        self.count = 0
        self.moves: list[Transition] = []

    def send(self, now: float) -> str:
        self.count += 1
        call_id = f"V{self.server[-2:]}{self.count:017d}"
        self.moves += self.breakers.sent(self.server, call_id, now)
        return call_id

    def call(self, outcome: Outcome, now: float, elapsed: float = 0.1) -> list[Transition]:
        """Send one call and answer it ``elapsed`` later: the moves of both."""
        first = len(self.moves)
        call_id = self.send(now)
        self.answer(call_id, outcome, now + elapsed)
        return self.moves[first:]

    def answer(self, call_id: str, outcome: Outcome, now: float) -> list[Transition]:
        moves = list(self.breakers.result(call_id, outcome, now))
        self.moves += moves
        return moves

    def advance(self, now: float) -> list[Transition]:
        moves = list(self.breakers.advance(now))
        self.moves += moves
        return moves

    def probe(self, outcome: Outcome, now: float) -> list[Transition]:
        """What the reactor does for a half-open server: plan one call, admit it, send it."""
        assert self.server in self.breakers.probe_open()
        assert self.breakers.reserve_probe(self.server, now)
        assert self.breakers.admit(self.server)
        return self.call(outcome, now)


def opened(config: BreakerConfig = FAST, at: float = 0.0) -> Driver:
    driver = Driver(Breakers(config))
    for n in range(config.failures):
        driver.call(CONGESTION, at + n)
    assert driver.breakers.state(B) is State.OPEN
    return driver


# -- the table -----------------------------------------------------------------------------------
TABLE = [
    # outcome, seconds after sending, hang-up asked for, verdict     (source)
    (ANSWERED, 2.0, "", Verdict.WORKS),  # part A 4: answered = Success 4
    (BUSY, 0.5, "", Verdict.WORKS),  # busy = Failure 5: the far end was reached
    (NO_ANSWER, 30.0, "", Verdict.WORKS),  # no answer = Failure 3 after the Timeout
    (CONGESTION, 0.3, "", Verdict.FAILURE),  # congestion = Failure 8
    (FAILED, 0.1, "", Verdict.FAILURE),  # Failure 0
    (CONGESTION, 5.0, "", Verdict.FAILURE),  # at the edge of the 5 s window: still fast
    (CONGESTION, 5.01, "", Verdict.NEUTRAL),  # rang a while: an AMI Hangup gives 8 too (6a.3)
    (FAILED, 12.0, "", Verdict.NEUTRAL),  # likewise Reason 0 (6a.3)
    (CONGESTION, 0.3, "admin", Verdict.NEUTRAL),  # someone hung it up
    (FAILED, 0.3, "admin", Verdict.NEUTRAL),
    (BUSY, 0.3, "admin", Verdict.WORKS),  # a hang-up does not make a busy a failure
    (Outcome.response(False, 1), 0.3, "", Verdict.NEUTRAL),  # Reason 1: hung up (older Asterisk)
    (Outcome.response(False, 2), 0.3, "", Verdict.NEUTRAL),  # a reason not in the table
    (Outcome.error_reply("Originate failed"), 0.01, "", Verdict.FAILURE),
    (Outcome.error_reply("Asterisk is shutting down"), 0.01, "", Verdict.NEUTRAL),  # 6a.1
    (Outcome.not_sent("link not ready"), 0.0, "", Verdict.NEUTRAL),  # nothing reached Asterisk
]


@pytest.mark.parametrize(("outcome", "elapsed", "hangup", "verdict"), TABLE)
def test_what_a_result_says_about_the_carrier(outcome, elapsed, hangup, verdict) -> None:
    assert classify(outcome, elapsed, 5.0, hangup)[0] is verdict


def test_labels_name_the_outcome() -> None:
    assert classify(CONGESTION, 0.2, 5.0) == (Verdict.FAILURE, "congestion")
    assert classify(Outcome.error_reply("Originate failed"), 0.0, 5.0) == (
        Verdict.FAILURE,
        "error reply: Originate failed",
    )
    assert classify(CONGESTION, 7.25, 5.0)[1] == "congestion after 7.2 s: not a carrier rejection"


def test_a_leg_hung_up_with_normal_clearing_exempts_the_failure() -> None:
    # part A 4: a congested call's legs hang up with 34 and 0, never 16; 16 means a Hangup on purpose
    assert 16 in REQUEST_CAUSES and 34 not in REQUEST_CAUSES and 0 not in REQUEST_CAUSES
    driver = Driver(Breakers(FAST))
    for n in range(5):
        call_id = driver.send(float(n))
        driver.breakers.on_hangup(call_id, 34)  # ;2 of a congested call: still a failure
        driver.breakers.on_hangup(call_id, 16 if n == 4 else 0)
        driver.answer(call_id, CONGESTION, n + 0.1)
    assert driver.breakers.state(B) is State.CLOSED
    assert driver.breakers.counters.failures == 4 and driver.breakers.counters.neutral == 1


def test_fillreactors_own_hangup_exempts_the_failure() -> None:
    driver = Driver(Breakers(FAST))
    for n in range(4):
        driver.call(CONGESTION, float(n))
    call_id = driver.send(4.0)
    assert driver.breakers.hangup_requested(call_id)
    driver.answer(call_id, FAILED, 4.1)
    assert driver.breakers.state(B) is State.CLOSED
    assert not driver.breakers.hangup_requested("V0000000000000000000")  # not ours: nothing to mark


# -- closed -> open -------------------------------------------------------------------------------
def test_five_failures_in_a_row_open_it_and_the_transition_names_them() -> None:
    driver = Driver(Breakers(FAST))
    for n in range(4):
        assert driver.call(CONGESTION, float(n)) == []
    (move,) = driver.call(CONGESTION, 4.0)
    assert (move.change, move.before, move.after) == (Change.OPENED, State.CLOSED, State.OPEN)
    assert [r.call_id for r in move.failures] == [f"V12{n:017d}" for n in range(1, 6)]
    assert {r.label for r in move.failures} == {"congestion"}
    assert move.cooldown == 30.0 and move.at == 4.1
    assert move.why == "5 carrier failures in a row"
    assert driver.breakers.blocked() == {B}
    assert not driver.breakers.admit(B)


def test_a_result_that_proves_the_carrier_ends_the_run() -> None:
    driver = Driver(Breakers(FAST))
    at = 0.0
    for outcome in [CONGESTION] * 4 + [BUSY] + [CONGESTION] * 4 + [NO_ANSWER] + [CONGESTION] * 4 + [ANSWERED]:
        driver.call(outcome, at)
        at += 1
    assert driver.moves == [] and driver.breakers.state(B) is State.CLOSED


def test_neutral_results_neither_count_nor_end_the_run() -> None:
    driver = Driver(Breakers(FAST))
    for n, outcome in enumerate([CONGESTION] * 4 + [Outcome.not_sent(), Outcome.response(False, 1)]):
        driver.call(outcome, float(n))
    assert driver.breakers.state(B) is State.CLOSED
    (move,) = driver.call(CONGESTION, 6.0)
    assert move.change is Change.OPENED and len(move.failures) == 5


def test_a_failure_ratio_over_a_full_window_opens_it() -> None:
    # F F F F S repeated: never 5 in a row. By hand: results 1-20 hold 16 failures, but the 20th is
    # a success (no check on a success); the 21st (F) makes the window results 2-21:
    # F F F S | F F F F S | F F F F S | F F F F S | F = 3 + 4 + 4 + 4 + 1 = 16 of 20 = 0.8 -> open.
    driver = Driver(Breakers(FAST))
    pattern = ([CONGESTION] * 4 + [ANSWERED]) * 4 + [CONGESTION]
    moves = [driver.call(outcome, float(n)) for n, outcome in enumerate(pattern)]
    assert all(m == [] for m in moves[:20])
    (move,) = moves[20]
    assert move.change is Change.OPENED
    assert move.why == "16 of the last 20 results were carrier failures (ratio 0.8)"
    assert len(move.failures) == 16 and move.failures[-1].call_id == f"V12{21:017d}"


def test_three_quarters_failing_stays_below_the_ratio() -> None:
    driver = Driver(Breakers(FAST))
    for n, outcome in enumerate(([CONGESTION] * 3 + [ANSWERED]) * 20):  # 75 % < 80 %, 3 in a row < 5
        driver.call(outcome, float(n))
    assert driver.moves == []


# -- open -> half-open -> closed / reopened -------------------------------------------------------
def test_the_cool_down_ends_in_half_open_with_one_probe_slot() -> None:
    driver = opened()  # opened at 4.1, cool-down 30 s
    assert driver.advance(34.0) == [] and driver.breakers.probe_open() == frozenset()
    (move,) = driver.advance(34.1)
    assert (move.change, move.before, move.after) == (Change.HALF_OPEN, State.OPEN, State.HALF_OPEN)
    assert driver.breakers.probe_open() == {B} and driver.breakers.blocked() == frozenset()


def test_exactly_one_probe_goes_while_half_open() -> None:
    driver = opened()
    driver.advance(40.0)
    breakers = driver.breakers
    assert not breakers.admit(B)  # nothing planned yet: nothing goes
    assert breakers.reserve_probe(B, 40.0)
    assert breakers.blocked() == {B} and breakers.probe_open() == frozenset()
    assert not breakers.reserve_probe(B, 40.0)  # a second plan cannot take it
    assert breakers.admit(B) and not breakers.admit(B)
    probe = driver.send(40.0)
    assert driver.moves[-1].change is Change.PROBE and driver.moves[-1].call_id == probe
    assert breakers.view(B, 40.0).probe == probe


def test_the_last_check_before_the_wire_stops_calls_admitted_before_it_opened() -> None:
    breakers = Breakers(FAST)
    driver = Driver(breakers)
    assert breakers.admit(B) and breakers.may_send(B)  # closed: admitted, then it opens
    for n in range(5):
        driver.call(CONGESTION, float(n))
    assert not breakers.may_send(B)  # open: the admitted call is not written
    driver.advance(40.0)
    assert breakers.may_send(B)  # half-open: one may still go (it becomes the probe)
    driver.send(40.0)
    assert not breakers.may_send(B)


def test_an_answered_probe_closes_it_and_the_count_starts_afresh() -> None:
    driver = opened()
    driver.advance(40.0)
    (probe_move, closed) = driver.probe(ANSWERED, 40.0)
    assert probe_move.change is Change.PROBE
    assert (closed.change, closed.before, closed.after) == (Change.CLOSED, State.HALF_OPEN, State.CLOSED)
    assert closed.result is not None and closed.result.label == "answered"
    assert driver.breakers.admit(B) and driver.breakers.blocked() == frozenset()
    for n in range(4):  # a fresh run: 4 failures after closing do not open it
        driver.call(CONGESTION, 50.0 + n)
    assert driver.breakers.state(B) is State.CLOSED
    (move,) = driver.call(CONGESTION, 60.0)
    assert move.change is Change.OPENED and move.cooldown == 30.0  # the cool-down is back to 30 s


def test_a_failed_probe_reopens_it_with_a_doubled_cool_down_capped_at_the_max() -> None:
    driver = opened()  # 30 s
    now = 4.1
    cooldowns = []
    for _ in range(7):
        now += driver.breakers.view(B, now).half_open_in or 0.0
        driver.advance(now)
        moves = driver.probe(CONGESTION, now)
        reopened = moves[-1]
        assert (reopened.change, reopened.after) == (Change.REOPENED, State.OPEN)
        assert [r.label for r in reopened.failures] == ["congestion"]
        cooldowns.append(reopened.cooldown)
        now += 0.1
    assert cooldowns == [60, 120, 240, 480, 600, 600, 600]  # 30 doubled, never above 600


def test_a_probe_that_says_nothing_frees_the_slot() -> None:
    driver = opened()
    driver.advance(40.0)
    moves = driver.probe(Outcome.not_sent("link not ready"), 40.0)
    assert [m.change for m in moves] == [Change.PROBE, Change.PROBE_LOST]
    assert driver.breakers.state(B) is State.HALF_OPEN and driver.breakers.probe_open() == {B}


def test_a_probe_without_a_result_is_given_up_after_the_result_timeout() -> None:
    driver = opened(replace(FAST, result_timeout=150.0))
    driver.advance(40.0)
    breakers = driver.breakers
    breakers.reserve_probe(B, 40.0)
    breakers.admit(B)
    probe = driver.send(40.0)
    assert driver.advance(189.9) == []
    (lost,) = driver.advance(190.0)
    assert lost.change is Change.PROBE_LOST and lost.call_id == probe
    assert breakers.probe_open() == {B} and breakers.outstanding() == 0


def test_a_planned_probe_that_was_not_placed_is_given_back() -> None:
    driver = opened()
    driver.advance(40.0)
    breakers = driver.breakers
    assert breakers.reserve_probe(B, 40.0)
    assert breakers.release_probe(B, 40.5)
    assert breakers.probe_open() == {B} and not breakers.release_probe(B, 40.5)


# -- which calls count ------------------------------------------------------------------------------
def test_results_of_calls_sent_before_it_opened_are_ignored() -> None:
    driver = Driver(Breakers(FAST))
    early = [driver.send(0.0) for _ in range(8)]  # one plan's 8 calls, all out before any result
    for n, call_id in enumerate(early[:5]):
        driver.answer(call_id, CONGESTION, 0.1 + n / 100)
    assert driver.breakers.state(B) is State.OPEN
    driver.answer(early[5], ANSWERED, 1.0)  # late answers of the old period move nothing
    driver.answer(early[6], CONGESTION, 1.0)
    assert driver.breakers.state(B) is State.OPEN and driver.breakers.counters.ignored == 2
    assert [m.change for m in driver.moves] == [Change.OPENED]


def test_a_call_that_slipped_out_while_open_does_not_count_and_is_counted() -> None:
    driver = opened()
    driver.call(ANSWERED, 10.0)
    assert driver.breakers.state(B) is State.OPEN
    assert driver.breakers.counters.sent_while_open == 1 and driver.breakers.counters.ignored == 1


def test_each_server_has_its_own_breaker() -> None:
    breakers = Breakers(FAST)
    on_b, on_c = Driver(breakers, B), Driver(breakers, C)
    for n in range(5):
        on_b.call(CONGESTION, float(n))
        on_c.call(ANSWERED, float(n))
    assert breakers.blocked() == {B} and breakers.state(C) is State.CLOSED


def test_an_unknown_call_id_is_ignored() -> None:
    breakers = Breakers(FAST)
    assert breakers.result("V0000000000000000001", CONGESTION, 1.0) == ()
    assert breakers.counters.results == 0


# -- a server going away: a stopping Asterisk's failures ------------------------------------------
def test_a_graceful_stop_fails_ringing_calls_with_reason_0_and_they_do_not_count() -> None:
    # 6a.1: Failure Reason 0 for every ringing call, then Shutdown about a second later
    driver = Driver(Breakers(BreakerConfig(stop_window=2.0)))
    old_failure = driver.call(CONGESTION, 0.0)  # 10 s before the stop: a real failure, kept
    answered = driver.send(9.0)
    ringing = [driver.send(9.0) for _ in range(3)]
    driver.answer(answered, ANSWERED, 9.5)
    for n, call_id in enumerate(ringing):
        driver.answer(call_id, FAILED, 10.0 + n / 100)
    waiting = driver.send(10.5)
    driver.moves += driver.breakers.server_lost(B, 11.0)
    assert old_failure == [] and driver.moves == []
    counters = driver.breakers.counters
    assert (counters.dropped, counters.forgotten) == (3, 1) and not driver.breakers.tracks(waiting)
    view = driver.breakers.view(B, 11.0)
    assert (view.failures_in_a_row, view.window_failures, view.window_results) == (0, 1, 2)


def test_an_opening_made_by_a_stopping_server_is_taken_back() -> None:
    driver = Driver(Breakers(BreakerConfig(stop_window=2.0)))
    ringing = [driver.send(0.0) for _ in range(6)]
    for n, call_id in enumerate(ringing):
        driver.answer(call_id, FAILED, 1.0 + n / 100)  # the 5th opens it at 1.04
    assert [m.change for m in driver.moves] == [Change.OPENED]
    (back,) = driver.breakers.server_lost(B, 2.0)  # Shutdown 0.96 s after the opening
    assert (back.change, back.before, back.after) == (Change.CLOSED, State.OPEN, State.CLOSED)
    assert driver.breakers.admit(B) and driver.breakers.view(B, 2.0).opened_by == ()


def test_an_opening_older_than_the_stop_window_stays() -> None:
    driver = opened(BreakerConfig(stop_window=2.0))  # opened at 4.1
    assert driver.breakers.server_lost(B, 6.2) == ()
    assert driver.breakers.state(B) is State.OPEN


def test_a_reopening_made_by_a_stopping_server_goes_back_to_half_open() -> None:
    driver = opened()
    driver.advance(40.0)
    driver.probe(FAILED, 40.0)  # reopened at 40.1 for 60 s
    (back,) = driver.breakers.server_lost(B, 41.0)
    assert (back.change, back.after) == (Change.HALF_OPEN, State.HALF_OPEN)
    assert driver.breakers.view(B, 41.0).cooldown == 30.0 and driver.breakers.probe_open() == {B}


def test_a_probe_on_a_server_that_goes_away_is_lost() -> None:
    driver = opened()
    driver.advance(40.0)
    driver.breakers.reserve_probe(B, 40.0)
    driver.breakers.admit(B)
    probe = driver.send(40.0)
    (lost,) = driver.breakers.server_lost(B, 41.0)
    assert lost.change is Change.PROBE_LOST and lost.call_id == probe


# -- configuration -----------------------------------------------------------------------------
def test_reconfiguring_caps_a_running_cool_down() -> None:
    driver = opened(replace(FAST, cooldown=300.0))  # opened at 4.1 for 300 s
    driver.breakers.reconfigure(replace(FAST, cooldown=300.0, max_cooldown=60.0))
    assert driver.breakers.view(B, 4.1).cooldown == 60.0
    (move,) = driver.advance(64.1)
    assert move.change is Change.HALF_OPEN


@pytest.mark.parametrize(
    "bad",
    [
        dict(failures=0), dict(ratio=0.0), dict(ratio=1.5), dict(window=1), dict(cooldown=0.0),
        dict(stop_window=-1.0),
    ],
)
def test_a_bad_configuration_is_refused(bad) -> None:
    with pytest.raises(ValueError):
        BreakerConfig(**bad)


def test_a_cool_down_above_the_cap_is_the_cap() -> None:
    driver = opened(BreakerConfig(cooldown=900.0, max_cooldown=600.0))
    assert driver.moves[-1].cooldown == 600.0


def test_the_view_shows_state_and_what_opened_it() -> None:
    driver = opened()
    view = driver.breakers.view(B, 10.1)
    assert view.state is State.OPEN and view.since == pytest.approx(6.0)
    assert view.half_open_in == pytest.approx(24.0)
    assert len(view.opened_by) == 5 and view.opened_by[0].startswith("V12")
    assert view.as_dict()["state"] == "open" and view.transitions == {"opened": 1}
    assert driver.breakers.view(C, 10.0).state is State.CLOSED


# -- properties ---------------------------------------------------------------------------------------
WORKING = st.sampled_from([ANSWERED, BUSY, NO_ANSWER, Outcome.not_sent(), Outcome.response(False, 1)])
# failures weighted up, so that runs open, probe, close and reopen often enough
ANY = st.sampled_from([ANSWERED, BUSY, NO_ANSWER, CONGESTION, CONGESTION, CONGESTION, CONGESTION, FAILED,
                       Outcome.not_sent(), Outcome.error_reply("Originate failed")])
CONFIGS = st.builds(
    BreakerConfig,
    failures=st.integers(1, 6),
    ratio=st.sampled_from([0.5, 0.8, 1.0]),
    window=st.integers(2, 12),
    cooldown=st.floats(0.5, 50),
    max_cooldown=st.floats(0.5, 200),
    stop_window=st.sampled_from([0.0, 2.0]),
    result_timeout=st.floats(5, 100),
)
# one step: (what, outcome, seconds passing)
ACTIONS = ["call"] * 6 + ["send", "answer", "answer", "probe", "probe", "probe_ring", "release", "lost"]
STEPS = st.lists(
    st.tuples(st.sampled_from(ACTIONS), ANY, st.sampled_from([0.0, 0.1, 0.1, 0.5, 2.0, 10.0, 60.0])),
    min_size=10,
    max_size=100,
)


@settings(max_examples=300, deadline=None)
@given(CONFIGS, st.lists(st.tuples(WORKING, st.floats(0, 60), st.booleans()), max_size=120))
def test_a_server_whose_calls_are_answered_never_opens(config, calls) -> None:
    driver = Driver(Breakers(config))
    now = 0.0
    waiting: list[str] = []
    for outcome, later, overlap in calls:
        if overlap:  # leave it ringing; its result comes after the next one's
            waiting.append(driver.send(now))
        else:
            driver.call(outcome, now, later)
            while waiting:
                driver.answer(waiting.pop(), outcome, now + later)
        now += later
        driver.advance(now)
    driver.moves += driver.breakers.server_lost(B, now)
    driver.advance(now + config.result_timeout)
    assert driver.moves == []
    assert driver.breakers.state(B) is State.CLOSED and driver.breakers.blocked() == frozenset()


FREES_THE_SLOT = (Change.HALF_OPEN, Change.PROBE_LOST, Change.CLOSED, Change.REOPENED)


def run_steps(config: BreakerConfig, steps) -> tuple[Driver, list[int], list[int]]:
    """Drive one server as the reactor does (plan a probe, admit, send) plus stray calls ("send":
    admitted before the breaker moved). Per step: the probes out (PROBE transitions not yet
    resolved) and the calls admitted while half-open since the probe slot last freed."""
    driver = Driver(Breakers(config))
    breakers = driver.breakers
    now = 0.0
    ringing: list[str] = []
    probes_out, admitted_half_open = [], []
    admitted = 0

    def freed_since(mark: int) -> bool:
        return any(m.change in FREES_THE_SLOT for m in driver.moves[mark:])

    for what, outcome, later in steps:
        now += later
        mark = len(driver.moves)
        driver.advance(now)
        if freed_since(mark):
            admitted = 0
        mark = len(driver.moves)
        half_open = breakers.state(B) is State.HALF_OPEN
        if what == "call" and breakers.admit(B):
            admitted += half_open
            driver.call(outcome, now, 0.1)
        elif what == "send":
            ringing.append(driver.send(now))
        elif what == "answer" and ringing:
            driver.answer(ringing.pop(0), outcome, now)
        elif what in ("probe", "probe_ring") and B in breakers.probe_open():
            breakers.reserve_probe(B, now)
            if breakers.admit(B):
                admitted += 1
                if what == "probe":
                    driver.call(outcome, now, 0.1)
                else:  # the probe rings; a later step answers it
                    ringing.append(driver.send(now))
        elif what == "release":
            breakers.release_probe(B, now)
        elif what == "lost":
            driver.moves += breakers.server_lost(B, now)
        admitted_half_open.append(admitted)  # counted before this step's own moves free the slot
        if freed_since(mark):
            admitted = 0
        out = 0
        for move in driver.moves:
            if move.change is Change.PROBE:
                out += 1
            elif move.change in FREES_THE_SLOT:
                out = 0
        probes_out.append(out)
    return driver, probes_out, admitted_half_open


@settings(max_examples=400, deadline=None)
@given(CONFIGS, STEPS)
def test_at_most_one_probe_while_half_open(config, steps) -> None:
    driver, probes_out, admitted = run_steps(config, steps)
    assert all(out <= 1 for out in probes_out)
    assert all(count <= 1 for count in admitted)
    for move in driver.moves:
        if move.change is Change.PROBE:
            assert move.before is State.HALF_OPEN
    # every transition starts where the previous one ended
    for before, after in zip(driver.moves, driver.moves[1:], strict=False):
        assert after.before is before.after


@settings(max_examples=400, deadline=None)
@given(CONFIGS, STEPS)
def test_cool_downs_never_exceed_the_cap(config, steps) -> None:
    driver, _, _ = run_steps(config, steps)
    base = min(config.cooldown, config.max_cooldown)
    for move in driver.moves:
        if move.change in (Change.OPENED, Change.REOPENED):
            assert base <= move.cooldown <= config.max_cooldown
        if move.change is Change.OPENED:
            assert move.cooldown == base
    # the state never says open for longer than the cap
    view = driver.breakers.view(B, 0.0)
    assert view.cooldown <= config.max_cooldown
