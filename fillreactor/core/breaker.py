"""The carrier circuit breaker: stop filling into a balance server whose calls keep failing.

The Perl FILL sends a balance server calls on every loop whatever became of the last ones; when the
server's carrier is dead each call fails at once, burns a lead attempt and fills nothing.
fillreactor sees the OriginateResponse of every call it places, so per balance server it keeps a
breaker fed by the results of its own originates. Pure: no I/O, no clock (``now`` is passed in,
monotonic seconds); every move is returned as a ``Transition`` value.

Rules this module keeps:

* **What a result says about the carrier** is a table the code reads (``classify``; facts from
  spec/AMI.md part A 4 and 6a):

  ===========================================  =======================================================
  result of one of fillreactor's own calls     verdict
  ===========================================  =======================================================
  OriginateResponse Success (Reason 4)         carrier works: answered
  Failure Reason 5 busy, 3 no answer           carrier works: the far end was reached
  Failure Reason 8 congestion, 0 failed        carrier failure, if it came within ``failure_window``
                                               seconds of sending and nobody asked for a hang-up of
                                               the call; else neutral (an AMI Hangup of a ringing
                                               call gives Reason 0 or 8 too, 6a.3)
  Failure Reason 1, any other reason           neutral (Asterisk 22 never sends 1; older versions
                                               send it for a hung-up call)
  an error reply to the Originate              carrier failure (same two conditions), except
                                               "shutting down" (the link state handles that): neutral
  not sent (nothing reached Asterisk)          neutral
  ===========================================  =======================================================

  A hang-up was asked for when fillreactor (or the shell on an admin's behalf) says so
  (``hangup_requested``), or when a leg of the call hung up with a cause of ``REQUEST_CAUSES``
  before its failure arrived (16 Normal Clearing: a congested or failed originate's legs hang up
  with 34 or 0, never 16, table of part A 4).
* **A server going away withdraws its last failures** (``server_lost``: Shutdown, link lost): a
  stopping Asterisk fails every ringing call with Reason 0 about a second before its Shutdown
  event (6a.1), so failures that arrived less than ``stop_window`` seconds before are taken out
  of the counts, and a breaker that those failures opened (or re-opened) goes back to where it
  was (CLOSED, or HALF_OPEN with its old cool-down). Results count the moment they arrive, so a
  dead carrier stops the filling at once. Calls still waiting for a result on a lost server are
  forgotten; so is a call with no result after ``result_timeout`` seconds.
* **Closed -> open**: ``failures`` carrier failures in a row, or a full window of the last ``window``
  verdicts (neutral results are not in it) whose failures are at least ``ratio`` of it. A result
  that says the carrier works ends the run (the window keeps it). An open breaker makes the
  planner treat the server as not dialable for FILL; nothing else changes (its own dialer, its
  demand, its link).
* **Open -> half-open** once the cool-down is over (``advance``): then exactly one probe call may go:
  the planner may give the server one call (``probe_open``), ``reserve_probe`` takes the slot when
  a plan gives it that call, ``admit`` lets one such call through (asked before its rows are
  written), ``may_send`` is asked again right before its Originate is written (a call admitted
  while closed is stopped there if the breaker opened meanwhile), ``sent`` names it the probe. A
  reserved probe that was not placed is given back (``release_probe``); a probe whose result is
  neutral, or that never gets one, frees the slot (PROBE_LOST) and the server stays half-open.
* **The probe's result** closes the breaker (carrier works: the run and the window start afresh, the
  cool-down back to ``cooldown``) or opens it again with the cool-down doubled, never above
  ``max_cooldown`` (REOPENED).
* **Only calls of the current period count**: results of calls sent before the breaker last opened
  or closed (late answers to calls sent before it opened, calls that slipped out while open) are
  ignored; while half-open only the probe's result counts.
* Memory is bounded: outstanding calls expire, the run never exceeds ``failures``, the window is a
  ring of ``window`` entries.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from fillreactor.core.events import (
    REASON_ANSWERED,
    REASON_BUSY,
    REASON_CONGESTION,
    REASON_FAILED,
    REASON_HANGUP,
    REASON_RING_TIMEOUT,
)


class State(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


STATE_NUMBER: Mapping[State, int] = MappingProxyType({State.CLOSED: 0, State.HALF_OPEN: 1, State.OPEN: 2})
"""The metrics gauge's value per state."""


class Verdict(enum.Enum):
    FAILURE = "carrier failure"
    WORKS = "carrier works"
    NEUTRAL = "says nothing about the carrier"


class Source(enum.Enum):
    RESPONSE = "OriginateResponse"
    ERROR_REPLY = "error reply"
    NOT_SENT = "not sent"


class Change(enum.Enum):
    OPENED = "opened"
    HALF_OPEN = "half-open"
    PROBE = "probe"
    PROBE_LOST = "probe lost"
    CLOSED = "closed"
    REOPENED = "reopened"


# -- the result table ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Rule:
    verdict: Verdict
    label: str
    fast_only: bool = False
    """A failure only when it came within ``failure_window`` seconds of sending."""
    hangup_exempt: bool = False
    """Not a failure when a hang-up of the call was asked for."""


SUCCESS_RULE = Rule(Verdict.WORKS, "answered")
FAILURE_RULES: Mapping[int, Rule] = MappingProxyType(
    {
        REASON_BUSY: Rule(Verdict.WORKS, "busy"),
        REASON_RING_TIMEOUT: Rule(Verdict.WORKS, "no answer"),
        REASON_ANSWERED: Rule(Verdict.WORKS, "answered"),  # never a Failure; kept for a complete table
        REASON_CONGESTION: Rule(Verdict.FAILURE, "congestion", fast_only=True, hangup_exempt=True),
        REASON_FAILED: Rule(Verdict.FAILURE, "failed (reason 0)", fast_only=True, hangup_exempt=True),
        REASON_HANGUP: Rule(Verdict.NEUTRAL, "hung up (reason 1)"),
    }
)
"""OriginateResponse Failure by Reason; a reason not here is neutral (``UNKNOWN_REASON``)."""
UNKNOWN_REASON = Rule(Verdict.NEUTRAL, "reason {reason} unknown")
ERROR_REPLY_RULE = Rule(Verdict.FAILURE, "error reply", fast_only=True, hangup_exempt=True)
ERROR_REPLY_NEUTRAL: Mapping[str, str] = MappingProxyType(
    {"shutting down": "the server is shutting down (its link state stops the dialing)"}
)
"""Error messages (lower-case substrings) that say nothing about the carrier."""
NOT_SENT_RULE = Rule(Verdict.NEUTRAL, "not sent")
REQUEST_CAUSES: Mapping[int, str] = MappingProxyType({16: "Normal Clearing"})
"""Hangup causes on a leg of a failing call that mean someone hung it up on purpose."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What Asterisk said about one originate (before it is judged)."""

    source: Source
    success: bool = False
    reason: int = -1
    message: str = ""

    @classmethod
    def response(cls, success: bool, reason: int) -> Outcome:
        return cls(Source.RESPONSE, success, reason)

    @classmethod
    def error_reply(cls, message: str) -> Outcome:
        return cls(Source.ERROR_REPLY, message=message)

    @classmethod
    def not_sent(cls, message: str = "") -> Outcome:
        return cls(Source.NOT_SENT, message=message)


def rule_for(outcome: Outcome) -> Rule:
    """The table row of an outcome (before the time and hang-up conditions)."""
    if outcome.source is Source.NOT_SENT:
        return NOT_SENT_RULE
    if outcome.source is Source.ERROR_REPLY:
        text = outcome.message.lower()
        for needle, why in ERROR_REPLY_NEUTRAL.items():
            if needle in text:
                return Rule(Verdict.NEUTRAL, f"error reply: {why}")
        return ERROR_REPLY_RULE
    if outcome.success:
        return SUCCESS_RULE
    rule = FAILURE_RULES.get(outcome.reason)
    if rule is None:
        return Rule(Verdict.NEUTRAL, UNKNOWN_REASON.label.format(reason=outcome.reason))
    return rule


def classify(
    outcome: Outcome, elapsed: float, failure_window: float, hangup: str = ""
) -> tuple[Verdict, str]:
    """The verdict on one result and its label. ``hangup``: why a hang-up was asked for ('' = none)."""
    rule = rule_for(outcome)
    label = rule.label
    if outcome.source is Source.ERROR_REPLY and outcome.message and rule.verdict is Verdict.FAILURE:
        label = f"error reply: {outcome.message}"
    if rule.verdict is not Verdict.FAILURE:
        return rule.verdict, label
    if rule.hangup_exempt and hangup:
        return Verdict.NEUTRAL, f"{label} after a hang-up was asked for ({hangup})"
    if rule.fast_only and elapsed > failure_window:
        return Verdict.NEUTRAL, f"{label} after {elapsed:.1f} s: not a carrier rejection"
    return Verdict.FAILURE, label


# -- values ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BreakerConfig:
    failures: int = 5
    ratio: float = 0.8
    window: int = 20
    cooldown: float = 30.0
    max_cooldown: float = 600.0
    failure_window: float = 5.0
    """A failure that comes later than this after sending is not a carrier rejection."""
    stop_window: float = 2.0
    """Failures this long before their server went away are withdrawn (a stopping Asterisk's)."""
    result_timeout: float = 150.0
    """A call with no result after this long is forgotten (a probe: the slot is free again)."""

    def __post_init__(self) -> None:
        if self.failures < 1:
            raise ValueError("breaker failures must be at least 1")
        if not 0 < self.ratio <= 1:
            raise ValueError("breaker ratio must be in (0, 1]")
        if self.window < 2:
            raise ValueError("breaker window must be at least 2")
        if self.cooldown <= 0 or self.max_cooldown <= 0:
            raise ValueError("breaker cool-downs must be positive")
        if self.failure_window < 0 or self.stop_window < 0 or self.result_timeout <= 0:
            raise ValueError("breaker failure_window and stop_window must be >= 0, result_timeout > 0")

    @property
    def base_cooldown(self) -> float:
        return min(self.cooldown, self.max_cooldown)


@dataclass(frozen=True, slots=True)
class Result:
    """One judged result of an own originate."""

    server: str
    call_id: str
    sent_at: float
    at: float
    verdict: Verdict
    label: str

    def text(self) -> str:
        return f"{self.call_id} {self.label} after {self.at - self.sent_at:.2f} s"


@dataclass(frozen=True, slots=True)
class Transition:
    """One move of one server's breaker."""

    server: str
    at: float
    change: Change
    before: State
    after: State
    why: str
    failures: tuple[Result, ...] = ()
    """OPENED: the failures that opened it; REOPENED: the probe's failure."""
    result: Result | None = None
    """The result that made the move (the probe's, or the last failure), if one did."""
    cooldown: float = 0.0
    """OPENED / REOPENED: the cool-down now running."""
    call_id: str = ""
    """PROBE / PROBE_LOST: the probe call."""

    def describe(self) -> str:
        """The one-line text of the trace and the log (stable: no wall time, no ids of objects)."""
        text = f"{self.change.value}: {self.why}"
        if self.change in (Change.OPENED, Change.REOPENED):
            text += f"; no FILL call for {self.cooldown:g} s"
            if self.failures:
                text += " (" + ", ".join(r.text() for r in self.failures) + ")"
        return text


@dataclass
class BreakerCounters:
    results: int = 0
    failures: int = 0
    works: int = 0
    neutral: int = 0
    ignored: int = 0
    dropped: int = 0
    """Failures dropped because their server went away before they counted."""
    forgotten: int = 0
    """Calls that never got a result (timed out, or their server went away)."""
    sent_while_open: int = 0
    opened: int = 0
    reopened: int = 0
    half_open: int = 0
    probes: int = 0
    probes_lost: int = 0
    closed: int = 0


_CHANGE_COUNTER = {
    Change.OPENED: "opened",
    Change.REOPENED: "reopened",
    Change.HALF_OPEN: "half_open",
    Change.PROBE: "probes",
    Change.PROBE_LOST: "probes_lost",
    Change.CLOSED: "closed",
}


@dataclass(frozen=True)
class BreakerView:
    """One server's breaker, for ``status`` and metrics."""

    server: str
    state: State
    since: float
    """Seconds the breaker has been in this state."""
    cooldown: float
    half_open_in: float | None
    """Open: seconds until one probe may go."""
    failures_in_a_row: int
    window_failures: int
    window_results: int
    probe: str
    """Half-open: the probe call ('' = none out; 'planned' = reserved by a plan, not sent yet)."""
    opened_by: tuple[str, ...]
    last: str
    transitions: Mapping[str, int]

    def as_dict(self) -> dict[str, object]:
        return {
            "state": self.state.value,
            "since_s": round(self.since, 3),
            "cooldown_s": self.cooldown,
            "half_open_in_s": None if self.half_open_in is None else round(self.half_open_in, 3),
            "failures_in_a_row": self.failures_in_a_row,
            "window": f"{self.window_failures}/{self.window_results}",
            "probe": self.probe,
            "opened_by": list(self.opened_by),
            "last": self.last,
            "transitions": dict(self.transitions),
        }


# -- the state machine -----------------------------------------------------------------------------
@dataclass(slots=True)
class _Sent:
    server: str
    sent_at: float
    epoch: int
    probe: bool
    hangup: str = ""


@dataclass(frozen=True, slots=True)
class _Undo:
    """How to take back the last opening: the state and cool-down before it, and when it was."""

    state: State
    cooldown: float
    at: float
    failures: tuple[Result, ...]


@dataclass
class _Breaker:
    server: str
    window_size: int
    state: State = State.CLOSED
    since: float = 0.0
    epoch: int = 0
    cooldown: float = 0.0
    half_open_at: float = 0.0
    run: list[Result] = field(default_factory=list)
    window: deque[Result] = field(default_factory=deque)
    probe_reserved_at: float | None = None
    probe_admitted: bool = False
    probe_call: str = ""
    opened_by: tuple[Result, ...] = ()
    undo: _Undo | None = None
    last: str = ""
    transitions: dict[str, int] = field(default_factory=dict)
    window_fails: int = 0
    """Carrier failures in ``window``, kept as it changes (no rescans per result)."""

    def window_failures(self) -> int:
        return self.window_fails

    def set_window(self, results: list[Result]) -> None:
        self.window = deque(results)
        self.window_fails = sum(1 for r in results if r.verdict is Verdict.FAILURE)

    def free_probe(self) -> None:
        self.probe_reserved_at = None
        self.probe_admitted = False
        self.probe_call = ""


class Breakers:
    """Every balance server's breaker, and the own calls still waiting for a result."""

    def __init__(self, config: BreakerConfig | None = None) -> None:
        self.config = config or BreakerConfig()
        self.counters = BreakerCounters()
        self._breakers: dict[str, _Breaker] = {}
        self._calls: dict[str, _Sent] = {}

    # -- configuration ---------------------------------------------------------------------------
    def reconfigure(self, config: BreakerConfig) -> None:
        """New thresholds for what comes next; states are kept, a running cool-down is capped."""
        self.config = config
        for breaker in self._breakers.values():
            if breaker.window_size != config.window:
                breaker.set_window(list(breaker.window)[-config.window :])
                breaker.window_size = config.window
            if len(breaker.run) > config.failures:
                breaker.run = breaker.run[-config.failures :]
            if breaker.cooldown > config.max_cooldown:
                breaker.cooldown = config.max_cooldown
                if breaker.state is State.OPEN:
                    breaker.half_open_at = min(breaker.half_open_at, breaker.since + config.max_cooldown)

    # -- views -----------------------------------------------------------------------------------
    def state(self, server: str) -> State:
        breaker = self._breakers.get(server)
        return State.CLOSED if breaker is None else breaker.state

    def blocked(self) -> frozenset[str]:
        """Servers FILL gives no call now: open, or half-open with the probe taken."""
        return frozenset(
            s
            for s, b in self._breakers.items()
            if b.state is State.OPEN
            or (b.state is State.HALF_OPEN and (b.probe_reserved_at is not None or b.probe_call))
        )

    def probe_open(self) -> frozenset[str]:
        """Half-open servers whose one probe call may be planned now."""
        return frozenset(
            s
            for s, b in self._breakers.items()
            if b.state is State.HALF_OPEN and b.probe_reserved_at is None and not b.probe_call
        )

    def outstanding(self) -> int:
        return len(self._calls)

    def view(self, server: str, now: float) -> BreakerView:
        breaker = self._breakers.get(server)
        if breaker is None:
            return BreakerView(server, State.CLOSED, 0.0, 0.0, None, 0, 0, 0, "", (), "", {})
        probe = breaker.probe_call or ("planned" if breaker.probe_reserved_at is not None else "")
        return BreakerView(
            server,
            breaker.state,
            max(0.0, now - breaker.since),
            breaker.cooldown,
            max(0.0, breaker.half_open_at - now) if breaker.state is State.OPEN else None,
            len(breaker.run),
            breaker.window_failures(),
            len(breaker.window),
            probe,
            tuple(r.text() for r in breaker.opened_by),
            breaker.last,
            MappingProxyType(dict(breaker.transitions)),
        )

    def servers(self) -> tuple[str, ...]:
        return tuple(sorted(self._breakers))

    # -- the probe slot --------------------------------------------------------------------------
    def reserve_probe(self, server: str, now: float) -> bool:
        """A plan gave the half-open ``server`` its one call: the slot is taken (False: no slot)."""
        breaker = self._breakers.get(server)
        if breaker is None or breaker.state is not State.HALF_OPEN:
            return False
        if breaker.probe_reserved_at is not None or breaker.probe_call:
            return False
        breaker.probe_reserved_at = now
        return True

    def release_probe(self, server: str, now: float) -> bool:
        """The reserved probe was not placed: the slot is free again (False: nothing to release)."""
        breaker = self._breakers.get(server)
        if breaker is None or breaker.state is not State.HALF_OPEN or breaker.probe_call:
            return False
        if breaker.probe_reserved_at is None:
            return False
        breaker.free_probe()
        return True

    def admit(self, server: str) -> bool:
        """May a FILL call be written to ``server`` now? Half-open: the reserved probe, once."""
        breaker = self._breakers.get(server)
        if breaker is None or breaker.state is State.CLOSED:
            return True
        if breaker.state is State.OPEN:
            return False
        if breaker.probe_call or breaker.probe_admitted or breaker.probe_reserved_at is None:
            return False
        breaker.probe_admitted = True
        return True

    def may_send(self, server: str) -> bool:
        """The last check right before an admitted call's Originate is written: False when the
        breaker opened since (or the probe already went); asks nothing of the slot."""
        breaker = self._breakers.get(server)
        if breaker is None or breaker.state is State.CLOSED:
            return True
        return breaker.state is State.HALF_OPEN and not breaker.probe_call

    # -- inputs ----------------------------------------------------------------------------------
    def sent(self, server: str, call_id: str, now: float) -> tuple[Transition, ...]:
        """An own Originate for ``call_id`` is about to be written to ``server``."""
        breaker = self._breaker(server, now)
        probe = False
        moves: tuple[Transition, ...] = ()
        if breaker.state is State.OPEN:
            self.counters.sent_while_open += 1
        elif breaker.state is State.HALF_OPEN and not breaker.probe_call:
            probe = True
            breaker.probe_call = call_id
            why = f"{call_id} is the one call while half-open"
            moves = (self._move(breaker, now, Change.PROBE, State.HALF_OPEN, why, call_id=call_id),)
        self._calls.pop(call_id, None)  # keep the dict in sending order (expiry walks it from the front)
        self._calls[call_id] = _Sent(server, now, breaker.epoch, probe)
        return moves

    def hangup_requested(self, call_id: str, why: str = "fillreactor's own Hangup") -> bool:
        """A hang-up of ``call_id`` was asked for: its failure will not count (False: not tracked)."""
        sent = self._calls.get(call_id)
        if sent is None:
            return False
        sent.hangup = sent.hangup or why
        return True

    def on_hangup(self, call_id: str, cause: int) -> None:
        """A leg of a call hung up: a cause of ``REQUEST_CAUSES`` means someone hung it up."""
        name = REQUEST_CAUSES.get(cause)
        if name is not None and call_id in self._calls:
            self.hangup_requested(call_id, f"a leg hung up with cause {cause} {name}")

    def tracks(self, call_id: str) -> bool:
        return call_id in self._calls

    def result(self, call_id: str, outcome: Outcome, now: float) -> tuple[Transition, ...]:
        """Asterisk's word on ``call_id`` (an unknown id is ignored), judged and counted at once."""
        sent = self._calls.pop(call_id, None)
        if sent is None:
            return ()
        verdict, label = classify(outcome, now - sent.sent_at, self.config.failure_window, sent.hangup)
        result = Result(sent.server, call_id, sent.sent_at, now, verdict, label)
        self.counters.results += 1
        return tuple(self._count(result, sent, now))

    def server_lost(self, server: str, now: float) -> tuple[Transition, ...]:
        """``server`` went away (Shutdown, link lost): its last failures are withdrawn, an opening they
        made is taken back, and its calls waiting for a result are forgotten."""
        lost_probe = ""
        for call_id in [c for c, s in self._calls.items() if s.server == server]:
            sent = self._calls.pop(call_id)
            self.counters.forgotten += 1
            if sent.probe:
                lost_probe = call_id
        breaker = self._breakers.get(server)
        if breaker is None:
            return ()
        cutoff = now - self.config.stop_window
        counted = (*breaker.run, *breaker.window)
        recent = {r.call_id for r in counted if r.at >= cutoff and r.verdict is Verdict.FAILURE}
        breaker.run = [r for r in breaker.run if r.call_id not in recent]
        breaker.set_window([r for r in breaker.window if r.call_id not in recent])
        self.counters.dropped += len(recent)
        moves: list[Transition] = []
        undo = breaker.undo
        if breaker.state is State.OPEN and undo is not None and undo.at >= cutoff:
            self.counters.dropped += len(undo.failures)
            why = "the failures that opened it came just before the server went away (a stopping Asterisk)"
            breaker.undo = None
            breaker.epoch += 1
            breaker.cooldown = undo.cooldown
            breaker.free_probe()
            if undo.state is State.CLOSED:
                breaker.opened_by = ()
                moves.append(self._move(breaker, now, Change.CLOSED, State.CLOSED, why))
            else:
                moves.append(self._move(breaker, now, Change.HALF_OPEN, State.HALF_OPEN, why))
        if lost_probe and breaker.probe_call == lost_probe:
            moves.append(self._probe_lost(breaker, now, f"probe {lost_probe}: the server went away"))
        return tuple(moves)

    def advance(self, now: float) -> tuple[Transition, ...]:
        """Time passed: cool-downs end, calls and probe slots with no news for too long are given up."""
        moves: list[Transition] = []
        timeout = self.config.result_timeout
        stale = []
        for call_id, sent in self._calls.items():  # in sending order: the oldest first
            if now - sent.sent_at < timeout:
                break
            stale.append(call_id)
        for call_id in stale:
            sent = self._calls.pop(call_id)
            self.counters.forgotten += 1
            breaker = self._breakers.get(sent.server)
            if sent.probe and breaker is not None and breaker.probe_call == call_id:
                moves.append(self._probe_lost(breaker, now, f"probe {call_id}: no result in {timeout:g} s"))
        for breaker in self._breakers.values():
            if breaker.state is State.OPEN and now >= breaker.half_open_at:
                breaker.free_probe()
                moves.append(
                    self._move(
                        breaker, now, Change.HALF_OPEN, State.HALF_OPEN,
                        f"cool-down {breaker.cooldown:g} s over; one probe call may go",
                    )
                )
            elif (
                breaker.state is State.HALF_OPEN
                and breaker.probe_reserved_at is not None
                and not breaker.probe_call
                and now - breaker.probe_reserved_at >= timeout
            ):
                breaker.free_probe()  # a plan took the slot and never reported back
        return tuple(moves)

    # -- internals -------------------------------------------------------------------------------
    def _breaker(self, server: str, now: float) -> _Breaker:
        breaker = self._breakers.get(server)
        if breaker is None:
            breaker = self._breakers[server] = _Breaker(server, self.config.window, since=now)
        return breaker

    def _count(self, result: Result, sent: _Sent, now: float) -> list[Transition]:
        counters = self.counters
        breaker = self._breaker(result.server, now)
        if sent.epoch != breaker.epoch:  # sent before the breaker last opened or closed
            counters.ignored += 1
            return []
        if breaker.state is State.HALF_OPEN and sent.probe and breaker.probe_call == result.call_id:
            return [self._probe_result(breaker, result, now)]
        if breaker.state is not State.CLOSED:  # slipped out while open, or not the probe
            counters.ignored += 1
            return []
        if result.verdict is Verdict.NEUTRAL:
            counters.neutral += 1
            return []
        if result.verdict is Verdict.WORKS:
            counters.works += 1
            breaker.run.clear()
            self._into_window(breaker, result)
            return []
        counters.failures += 1
        breaker.run.append(result)
        self._into_window(breaker, result)
        config = self.config
        if len(breaker.run) >= config.failures:
            failures = tuple(breaker.run)
            why = f"{len(failures)} carrier failures in a row"
        else:
            count = breaker.window_failures()
            size = len(breaker.window)
            if size < config.window or count / size < config.ratio:
                return []
            failures = tuple(r for r in breaker.window if r.verdict is Verdict.FAILURE)
            why = f"{count} of the last {size} results were carrier failures (ratio {config.ratio:g})"
        return [self._open(breaker, now, Change.OPENED, why, failures, result, config.base_cooldown)]

    def _into_window(self, breaker: _Breaker, result: Result) -> None:
        breaker.window.append(result)
        breaker.window_fails += result.verdict is Verdict.FAILURE
        while len(breaker.window) > breaker.window_size:
            breaker.window_fails -= breaker.window.popleft().verdict is Verdict.FAILURE

    def _probe_result(self, breaker: _Breaker, result: Result, now: float) -> Transition:
        counters = self.counters
        if result.verdict is Verdict.NEUTRAL:
            counters.neutral += 1
            return self._probe_lost(breaker, now, f"probe {result.text()}: says nothing about the carrier")
        if result.verdict is Verdict.WORKS:
            counters.works += 1
            breaker.run.clear()
            breaker.set_window([])
            breaker.cooldown = 0.0
            breaker.opened_by = ()
            breaker.undo = None
            breaker.free_probe()
            breaker.epoch += 1
            return self._move(
                breaker, now, Change.CLOSED, State.CLOSED, f"probe {result.text()}; FILL may use it again",
                result=result,
            )
        counters.failures += 1
        cooldown = min(breaker.cooldown * 2, self.config.max_cooldown)
        return self._open(
            breaker, now, Change.REOPENED, f"probe {result.text()}", (result,), result, cooldown
        )

    def _open(
        self,
        breaker: _Breaker,
        now: float,
        change: Change,
        why: str,
        failures: tuple[Result, ...],
        result: Result,
        cooldown: float,
    ) -> Transition:
        breaker.undo = _Undo(breaker.state, breaker.cooldown, now, failures)
        breaker.cooldown = min(max(cooldown, self.config.base_cooldown), self.config.max_cooldown)
        breaker.half_open_at = now + breaker.cooldown
        breaker.run.clear()
        breaker.set_window([])
        breaker.free_probe()
        breaker.epoch += 1
        if change is Change.OPENED:
            breaker.opened_by = failures
        return self._move(
            breaker, now, change, State.OPEN, why, failures=failures, result=result, cooldown=breaker.cooldown
        )

    def _probe_lost(self, breaker: _Breaker, now: float, why: str) -> Transition:
        call_id = breaker.probe_call
        breaker.free_probe()
        return self._move(breaker, now, Change.PROBE_LOST, State.HALF_OPEN, f"{why}; another may go",
                          call_id=call_id)

    def _move(
        self,
        breaker: _Breaker,
        now: float,
        change: Change,
        after: State,
        why: str,
        *,
        failures: tuple[Result, ...] = (),
        result: Result | None = None,
        cooldown: float = 0.0,
        call_id: str = "",
    ) -> Transition:
        before = breaker.state
        if after is not before:
            breaker.since = now
        breaker.state = after
        name = _CHANGE_COUNTER[change]
        setattr(self.counters, name, getattr(self.counters, name) + 1)
        breaker.transitions[change.value] = breaker.transitions.get(change.value, 0) + 1
        transition = Transition(
            breaker.server, now, change, before, after, why, failures, result, cooldown, call_id
        )
        breaker.last = transition.describe()
        return transition
