"""What happens to a dialled number: the outcome and its timing.

Rules this module keeps (the dialplan of the capture lab, spec/AMI.md part A):

* Default outcome by the number's last four digits: ``0000`` busy, ``1111`` congestion, ``9999`` no
  answer (rings until the Originate ``Timeout``), anything else answered. A per-number override wins.
* Only the context ``default`` has the ``_9X.`` extension that dials ``Local/<number without the 9>
  @trunk``; any other context, or a ``default`` number not starting with 9, is a bad target
  (Reason 0: the Local pair is created and hung up with cause 0).
* Times are simulated seconds: ``ring`` until answer/busy/congestion, ``talk`` until the trunk hangs
  up, ``vdad_wait`` until the answered ``;1`` leg (extension 8365) hangs up; whichever of ``talk``
  and ``vdad_wait`` is shorter ends the call and decides the hangup order. ``None`` = never.
* An answered call whose ring time reaches the Originate ``Timeout`` is a no-answer.
* OriginateResponse Reason codes: 4 answered, 5 busy, 8 congestion, 3 no answer, 0 bad target;
  an AMI Hangup while ringing gives 0 or 8 (``calls``), never 1 (spec/AMI.md 6a.3).
* ``orders`` (``OrderRules``) says how the events of a call are ordered: as captured, or in a
  seeded realistic variation (the default).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from fillreactor.simulator.orders import OrderRules


class Outcome(enum.Enum):
    ANSWER = "answer"
    BUSY = "busy"
    CONGESTION = "congestion"
    NO_ANSWER = "no_answer"
    BAD_TARGET = "bad_target"


REASON = {
    Outcome.ANSWER: 4,
    Outcome.BUSY: 5,
    Outcome.CONGESTION: 8,
    Outcome.NO_ANSWER: 3,
    Outcome.BAD_TARGET: 0,
}
REASON_HUNG_UP_WHILE_RINGING = 1  # Asterisk 22 never sends it (6a.3); kept for existing imports

DIALPLAN_CONTEXT = "default"
TRUNK_CONTEXT = "trunk"
DEFAULT_ORIGINATE_TIMEOUT = 30.0  # seconds, Asterisk's default when Timeout is absent

SUFFIX_RULES: dict[str, Outcome] = {
    "0000": Outcome.BUSY,
    "1111": Outcome.CONGESTION,
    "9999": Outcome.NO_ANSWER,
}


@dataclass(frozen=True)
class CallTiming:
    ring: float = 2.0
    talk: float | None = 6.0
    vdad_wait: float | None = 5.0


@dataclass
class OutcomeRules:
    """Outcome and timing per dialled number; mutable so tests can change it on a running server."""

    timing: CallTiming = field(default_factory=CallTiming)
    overrides: dict[str, Outcome] = field(default_factory=dict)
    timing_overrides: dict[str, CallTiming] = field(default_factory=dict)
    suffix_rules: dict[str, Outcome] = field(default_factory=lambda: dict(SUFFIX_RULES))
    orders: OrderRules = field(default_factory=OrderRules)

    def outcome_for(self, number: str, context: str) -> Outcome:
        if context != DIALPLAN_CONTEXT or not number.startswith("9") or len(number) < 2:
            return Outcome.BAD_TARGET
        if number in self.overrides:
            return self.overrides[number]
        for suffix, outcome in self.suffix_rules.items():
            if number.endswith(suffix):
                return outcome
        return Outcome.ANSWER

    def timing_for(self, number: str) -> CallTiming:
        return self.timing_overrides.get(number, self.timing)


def trunk_number(number: str) -> str:
    """``_9X.`` dials ``${EXTEN:1}``: the number without its leading 9."""
    return number[1:]
