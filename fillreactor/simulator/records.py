"""What a simulated server did, kept for tests to check fillreactor against (no behaviour here).

Rules this module keeps:

* Every Originate a server receives (from a session, or from its own dialer via ``place_call``)
  becomes one ``OriginateRecord``, accepted or refused, with the answer it got and its call.
* Records are plain values appended in arrival order; nothing in the simulator reads them back to
  decide anything, so a test may keep or clear them freely.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fillreactor.simulator.calls import SimulatedCall

QUEUED = "queued"  # Async: "Originate successfully queued"
WAITING = "waiting"  # without Async: the reply waits for the outcome
PLACED = "placed"  # the server's own dialer (place_call)


@dataclass
class OriginateRecord:
    """One Originate. ``answer`` is ``queued``/``waiting``/``placed`` or the error Message sent."""

    received_at: float  # simulated epoch seconds
    boot: int  # the server's boot count when it arrived
    session_id: int | None  # None: placed by the server's own dialer
    action_id: str | None
    channel: str
    exten: str
    context: str
    callerid: str
    is_async: bool
    answer: str
    call: SimulatedCall | None = None

    @property
    def accepted(self) -> bool:
        return self.call is not None

    @property
    def reason(self) -> int | None:
        """The call's OriginateResponse Reason (None while undecided or when refused)."""
        return None if self.call is None else self.call.reason
