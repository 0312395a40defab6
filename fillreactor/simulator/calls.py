"""One originated call: from the Originate to the last Hangup, as the event sequence Asterisk 22 sends.

Rules this module keeps (every sequence copied from fixtures/asterisk22/asterisk22-sample.txt):

* A call is two Local pairs: ``Local/<n>@<ctx>-<seq>;1/;2`` (the originated pair, Uniqueids X.k and
  X.k+1) and, when the dialplan dials, ``Local/<n without 9>@trunk-<seq+1>;1/;2``. All four carry the
  Linkedid of the first ``;1``. Channel sequence numbers are 8 hex digits from the server's counter.
* The call-class events follow the captured order per outcome: answered (dialer1 .0 when extension
  8365 hangs up first, dialer1 .8 when the trunk does), busy (dialer1 .4), congestion (dialer2 .4),
  no answer (dialer3 .4), bad target (dialer3 .8). Dialplan-class events (Newexten, VarSet) are a
  reduced but present subset; DeviceStateChange marks INUSE/NOT_INUSE.
* Hangup causes: answered 16/16; busy ;2 17, ;1 0; congestion ;2 34, ;1 0; no answer 19/19; bad
  target 0/0. OriginateResponse (only for an Async AMI originate, or a dialer-placed call) has the
  ``;1`` name and its Uniqueid on success, the bare dial string and ``<unknown>`` on failure.
* A Hangup action on a ringing call ends it like a no-answer with the requested cause (Reason 1); on
  an answered call, in the 8365-first order with the requested cause.
* Asterisk's threads interleave some events differently from call to call; the simulator plays one
  captured interleaving per outcome (``Interleaving``), so each sequence equals a real one.
* Events of one step are emitted synchronously (no await between them), so their order is exact.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from dataclasses import dataclass, field
from typing import Protocol

from fillreactor.simulator.channels import (
    UNKNOWN,
    Channel,
    Pairs,
    bridge_event,
    channel_event,
    device_state_event,
    dial_event,
    hangup_event,
    hangup_request_event,
    local_bridge_event,
    newexten_event,
    varset_event,
)
from fillreactor.simulator.outcomes import (
    DEFAULT_ORIGINATE_TIMEOUT,
    REASON,
    REASON_HUNG_UP_WHILE_RINGING,
    TRUNK_CONTEXT,
    CallTiming,
    Outcome,
    trunk_number,
)
from fillreactor.simulator.timebase import TimeBase

CALLING_PRES = ("CID-CallingPres", "0 (Presentation Allowed, Not Screened)")
_QUOTED_CALLERID = re.compile(r'^\s*"?([^"<]*?)"?\s*<([^>]*)>\s*$')


def parse_callerid(raw: str) -> tuple[str, str]:
    """(CallerIDName, CallerIDNum) as Asterisk parses an Originate ``Callerid``.

    ``"V…" <8005551234>`` gives both; a bare value that is not a number is a name (the number stays
    ``<unknown>``); a bare number is a number.
    """
    raw = raw.strip()
    if not raw:
        return UNKNOWN, UNKNOWN
    match = _QUOTED_CALLERID.match(raw)
    if match:
        name, number = match.group(1).strip(), match.group(2).strip()
        return name or UNKNOWN, number or UNKNOWN
    if re.fullmatch(r"[0-9+*#]+", raw):
        return UNKNOWN, raw
    return raw, UNKNOWN


@dataclass
class OriginateRequest:
    """The parts of an Originate the simulator acts on (unknown headers are ignored)."""

    channel: str  # "Local/918005551212@default"
    exten: str = ""
    context: str = ""
    priority: str = "1"
    callerid: str = ""
    timeout: float = DEFAULT_ORIGINATE_TIMEOUT  # seconds
    action_id: str | None = None
    is_async: bool = False
    variables: list[str] = field(default_factory=list)

    @property
    def number(self) -> str:
        return self.channel.partition("/")[2].partition("@")[0]

    @property
    def dial_context(self) -> str:
        return self.channel.partition("@")[2] or "default"


@dataclass(frozen=True)
class Interleaving:
    """Where the racing events fall, per the captured call of that outcome."""

    ringing_before_dial_begin: bool = False  # busy (dialer1 .4)
    originated_dial_state_first: bool = False  # no answer (dialer3 .4)
    originate_response_before_dial_end: bool = False  # answered, trunk hangs up first (dialer1 .8)


def interleaving_for(outcome: Outcome, trunk_hangs_up_first: bool) -> Interleaving:
    return Interleaving(
        ringing_before_dial_begin=outcome is Outcome.BUSY,
        originated_dial_state_first=outcome is Outcome.NO_ANSWER,
        originate_response_before_dial_end=outcome is Outcome.ANSWER and trunk_hangs_up_first,
    )


class CallHost(Protocol):
    """What a call needs from its server."""

    name: str
    time: TimeBase

    def emit(self, pairs: Pairs) -> None: ...

    def new_uniqueid(self) -> str: ...

    def new_local_sequence(self) -> int: ...

    def add_channel(self, channel: Channel) -> None: ...

    def remove_channel(self, channel: Channel) -> None: ...


class SimulatedCall:
    """A call in flight. ``finished`` is set after its last event; ``result`` resolves to the Reason."""

    def __init__(
        self,
        host: CallHost,
        request: OriginateRequest,
        outcome: Outcome,
        timing: CallTiming,
        *,
        send_originate_response: bool,
        placed_by_dialer: bool = False,
    ) -> None:
        self.host = host
        self.request = request
        self.outcome = outcome
        self.timing = timing
        self.send_originate_response = send_originate_response
        self.placed_by_dialer = placed_by_dialer
        self.caller_name, self.caller_num = parse_callerid(request.callerid)
        self.channels: list[Channel] = []
        self.linkedid: str | None = None
        self.reason: int | None = None
        self.answered = False
        self.result: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.finished = asyncio.Event()
        self._hangup_requested = asyncio.Event()
        self._hangup_cause = 16
        self._bridge_id = ""
        talk, vdad_wait = timing.talk, timing.vdad_wait
        self.trunk_hangs_up_first = talk is not None and (vdad_wait is None or talk < vdad_wait)
        self.interleaving = interleaving_for(outcome, self.trunk_hangs_up_first)
        self.task: asyncio.Task[None] | None = None

    # -- control ----------------------------------------------------------------------------------
    def start(self) -> asyncio.Task[None]:
        self.task = asyncio.get_running_loop().create_task(self._run(), name=f"call {self.request.channel}")
        return self.task

    def request_hangup(self, cause: int = 16) -> None:
        self._hangup_cause = cause
        self._hangup_requested.set()

    def owns(self, channel_name: str) -> bool:
        return any(channel.name == channel_name for channel in self.channels)

    async def _pause(self, seconds: float | None) -> bool:
        """Wait ``seconds`` of simulated time; True if a Hangup action came first."""
        if seconds is None:
            await self._hangup_requested.wait()
            return True
        try:
            await asyncio.wait_for(self._hangup_requested.wait(), self.host.time.real_seconds(seconds))
        except TimeoutError:
            return False
        return True

    # -- the script -------------------------------------------------------------------------------
    async def _run(self) -> None:
        try:
            await self._script()
        finally:
            for channel in list(self.channels):  # cancelled (server restart): vanish without events
                self.host.remove_channel(channel)
            self.channels.clear()
            if not self.result.done():
                self.result.cancel()
            self.finished.set()

    async def _script(self) -> None:
        d1, d2 = self._create_originated_pair()
        if self.outcome is Outcome.BAD_TARGET:
            self._finish_failure(Outcome.BAD_TARGET)
            self._hang_up(d2, 0)
            self._hang_up(d1, 0)
            return
        t1, t2 = self._dial_trunk(d1, d2)
        timeout = self.request.timeout
        if self.outcome is Outcome.CONGESTION and self.timing.ring < timeout:
            if await self._pause(self.timing.ring):
                self._cancel(d1, d2, t1, t2, self._hangup_cause, REASON_HUNG_UP_WHILE_RINGING)
            else:
                self._congestion(d1, d2, t1, t2)
            return
        self._ringing(d1, d2, t1, t2)
        rings_out = self.outcome is Outcome.NO_ANSWER or self.timing.ring >= timeout
        if await self._pause(timeout if rings_out else self.timing.ring):
            self._cancel(d1, d2, t1, t2, self._hangup_cause, REASON_HUNG_UP_WHILE_RINGING)
        elif rings_out:
            self._cancel(d1, d2, t1, t2, 19, REASON[Outcome.NO_ANSWER])
        elif self.outcome is Outcome.BUSY:
            self._busy(d1, d2, t1, t2)
        else:
            await self._answered_call(d1, d2, t1, t2)

    async def _answered_call(self, d1: Channel, d2: Channel, t1: Channel, t2: Channel) -> None:
        self._answer(d1, d2, t1, t2)
        trunk_first = self.trunk_hangs_up_first
        interrupted = await self._pause(self.timing.talk if trunk_first else self.timing.vdad_wait)
        if trunk_first and not interrupted:
            self._hangup_trunk_first(d1, d2, t1, t2)
        else:
            self._hangup_local_first(d1, d2, t1, t2, self._hangup_cause if interrupted else 16)

    # -- steps ------------------------------------------------------------------------------------
    def _new_channel(self, name: str, context: str, exten: str, state: int) -> Channel:
        uniqueid = self.host.new_uniqueid()
        if self.linkedid is None:
            self.linkedid = uniqueid
        channel = Channel(
            name=name,
            uniqueid=uniqueid,
            linkedid=self.linkedid,
            context=context,
            exten=exten,
            state=state,
            created_at=self.host.time.now(),
        )
        self.channels.append(channel)
        self.host.add_channel(channel)
        return channel

    def _emit(self, pairs: Pairs) -> None:
        self.host.emit(pairs)

    def _set_callerid(self, channel: Channel, *, connected: bool) -> None:
        channel.caller_num, channel.caller_name = self.caller_num, self.caller_name
        if connected:
            channel.connected_num, channel.connected_name = self.caller_num, self.caller_name

    def _new_local_pair(self, number: str, context: str, application: str) -> tuple[Channel, Channel]:
        """A Local pair as Asterisk creates it: ``;1`` Down in ``application``, ``;2`` Ring, announced."""
        base = f"Local/{number}@{context}-{self.host.new_local_sequence():08x}"
        one = self._new_channel(base + ";1", context, number, 0)
        one.application, one.application_data = application, "(Outgoing Line)"
        two = self._new_channel(base + ";2", context, number, 4)
        self._emit(channel_event("Newchannel", one))
        self._emit(channel_event("Newchannel", two))
        return one, two

    def _create_originated_pair(self) -> tuple[Channel, Channel]:
        number, context = self.request.number, self.request.dial_context
        d1, d2 = self._new_local_pair(number, context, "AppDial2")
        self._emit(newexten_event(d1, "AppDial2", "(Outgoing Line)"))
        self._set_callerid(d1, connected=False)
        self._emit(channel_event("NewCallerid", d1, CALLING_PRES))
        d1.connected_num, d1.connected_name = self.caller_num, self.caller_name
        self._emit(channel_event("NewConnectedLine", d1))
        self._set_callerid(d2, connected=True)
        self._emit(channel_event("NewCallerid", d2, CALLING_PRES))
        self._emit(channel_event("NewConnectedLine", d2))
        return d1, d2

    def _dial_trunk(self, d1: Channel, d2: Channel) -> tuple[Channel, Channel]:
        number, context = self.request.number, self.request.dial_context
        trunk = trunk_number(number)
        self._emit(local_bridge_event(d1, d2, context, number))
        self._emit(dial_event("DialBegin", None, d1, ("DialString", f"{number}@{context}")))
        self._emit(
            newexten_event(d2, "NoOp", f"{self.host.name} outbound to {trunk} CID={self.request.callerid}")
        )
        d2.priority, d2.application, d2.application_data = 2, "Dial", f"Local/{trunk}@{TRUNK_CONTEXT},90"
        self._emit(newexten_event(d2, "Dial", d2.application_data))
        self._emit(varset_event(d2, "DIALSTATUS", ""))
        t1, t2 = self._new_local_pair(trunk, TRUNK_CONTEXT, "AppDial")
        # the Dial leg shows the caller's exten as its number and as its Exten
        t1.caller_num, t1.caller_name, t1.exten = number, self.caller_name, number
        t1.connected_num, t1.connected_name = self.caller_num, self.caller_name
        self._emit(newexten_event(t1, "AppDial", "(Outgoing Line)"))
        self._emit(channel_event("NewCallerid", t1, CALLING_PRES))
        self._emit(channel_event("NewConnectedLine", t1))
        t2.caller_num, t2.caller_name = self.caller_num, self.caller_name
        t2.connected_num, t2.connected_name = number, self.caller_name
        self._emit(channel_event("NewCallerid", t2, CALLING_PRES))
        self._emit(channel_event("NewConnectedLine", t2))
        self._emit(local_bridge_event(t1, t2, TRUNK_CONTEXT, trunk))
        if not self.interleaving.ringing_before_dial_begin:
            self._dial_begin(d2, t1)
        self._emit(
            newexten_event(t2, "NoOp", f"{self.host.name} TRUNK call to {trunk} from {self.caller_num}")
        )
        return t1, t2

    def _dial_begin(self, d2: Channel, t1: Channel) -> None:
        trunk = trunk_number(self.request.number)
        self._emit(dial_event("DialBegin", d2, t1, ("DialString", f"{trunk}@{TRUNK_CONTEXT}")))

    def _devices(self) -> tuple[str, str]:
        number, context = self.request.number, self.request.dial_context
        return f"Local/{number}@{context}", f"Local/{trunk_number(number)}@{TRUNK_CONTEXT}"

    def _ringing(self, d1: Channel, d2: Channel, t1: Channel, t2: Channel) -> None:
        default_device, trunk_device = self._devices()
        t2.priority = 2
        self._emit(newexten_event(t2, "Ringing", ""))
        t1.state = 5
        self._emit(channel_event("Newstate", t1))
        if self.interleaving.ringing_before_dial_begin:
            self._dial_begin(d2, t1)
        t2.priority, t2.application = 3, "Wait"
        t2.application_data = str(int(self.timing.ring if self.outcome is Outcome.ANSWER else 300))
        self._emit(newexten_event(t2, "Wait", t2.application_data))
        self._emit(device_state_event(trunk_device, "INUSE"))
        d1.state = 5
        self._emit(channel_event("Newstate", d1))
        self._emit(device_state_event(default_device, "INUSE"))
        dial_states = [
            dial_event("DialState", d2, t1, ("DialStatus", "RINGING")),
            dial_event("DialState", None, d1, ("DialStatus", "RINGING")),
        ]
        if self.interleaving.originated_dial_state_first:
            dial_states.reverse()
        for pairs in dial_states:
            self._emit(pairs)

    def _answer(self, d1: Channel, d2: Channel, t1: Channel, t2: Channel) -> None:
        default_device, _ = self._devices()
        self.answered = True
        t2.priority = 4
        self._emit(newexten_event(t2, "Answer", ""))
        t2.state = 6
        self._emit(channel_event("Newstate", t2))
        t1.state = 6
        self._emit(channel_event("Newstate", t1))
        self._emit(varset_event(d2, "DIALSTATUS", "ANSWER"))
        if self.interleaving.originate_response_before_dial_end:
            self._finish_success(d1)
        t1.exten = ""  # from here on the Dial leg shows an empty Exten, as captured
        self._emit(dial_event("DialEnd", d2, t1, ("DialStatus", "ANSWER")))
        d1.state = 6
        self._emit(channel_event("Newstate", d1))
        self._emit(dial_event("DialEnd", None, d1, ("DialStatus", "ANSWER")))
        # the ;1 leg now runs the Originate's Exten/Context (VICIdial's 8365)
        d1.context = self.request.context or d1.context
        d1.exten = self.request.exten or d1.exten
        d1.priority = 1
        self._emit(newexten_event(d1, "NoOp", f"{self.host.name} VDAD transfer CID={self.request.callerid}"))
        d1.priority = 2
        self._emit(newexten_event(d1, "Answer", ""))
        d1.priority = 3
        self._emit(newexten_event(d1, "UserEvent", f"VDADTransfer,Server: {self.host.name}"))
        self._emit(
            channel_event(
                "UserEvent",
                d1,
                ("UserEvent", "VDADTransfer"),
                ("Server", self.host.name),
                ("CallerIDName", self.caller_name),
                klass="user",
            )
        )
        d1.priority, d1.application = 4, "Wait"
        d1.application_data = "" if self.timing.vdad_wait is None else str(int(self.timing.vdad_wait))
        self._emit(newexten_event(d1, "Wait", d1.application_data))
        if not self.interleaving.originate_response_before_dial_end:
            self._finish_success(d1)
        d2.state = 6
        self._emit(channel_event("Newstate", d2))
        self._bridge_id = str(uuid.uuid4())
        self._emit(bridge_event("BridgeCreate", self._bridge_id, 0))
        t1.bridge_id = d2.bridge_id = self._bridge_id
        self._emit(bridge_event("BridgeEnter", self._bridge_id, 1, t1))
        self._emit(bridge_event("BridgeEnter", self._bridge_id, 2, d2))
        self._emit(device_state_event(default_device, "INUSE"))
        t2.priority, t2.application_data = 5, "" if self.timing.talk is None else str(int(self.timing.talk))
        self._emit(newexten_event(t2, "Wait", t2.application_data))

    def _leave_bridge(self, channel: Channel, remaining: int) -> None:
        self._emit(bridge_event("BridgeLeave", self._bridge_id, remaining, channel))
        channel.bridge_id = ""

    def _hang_up(self, channel: Channel, cause: int) -> None:
        self._emit(hangup_event(channel, cause))
        self.channels.remove(channel)
        self.host.remove_channel(channel)

    def _hangup_local_first(self, d1: Channel, d2: Channel, t1: Channel, t2: Channel, cause: int) -> None:
        default_device, trunk_device = self._devices()
        d1.priority = 5
        self._emit(newexten_event(d1, "Hangup", ""))
        self._emit(hangup_request_event("SoftHangupRequest", d1, cause))
        self._emit(hangup_request_event("HangupRequest", d2, cause))
        self._hang_up(d1, cause)
        self._leave_bridge(d2, 1)
        self._emit(varset_event(d2, "DIALSTATUS", "ANSWER"))
        self._emit(hangup_request_event("SoftHangupRequest", d2, cause))
        self._hang_up(d2, cause)
        self._emit(device_state_event(default_device, "NOT_INUSE"))
        self._leave_bridge(t1, 0)
        self._emit(bridge_event("BridgeDestroy", self._bridge_id, 0))
        self._emit(hangup_request_event("HangupRequest", t2, cause))
        self._hang_up(t1, cause)
        self._emit(device_state_event(trunk_device, "NOT_INUSE"))
        self._emit(hangup_request_event("SoftHangupRequest", t2, cause))
        self._hang_up(t2, cause)

    def _hangup_trunk_first(self, d1: Channel, d2: Channel, t1: Channel, t2: Channel) -> None:
        default_device, trunk_device = self._devices()
        t2.priority = 6
        self._emit(newexten_event(t2, "Hangup", "16"))
        self._emit(hangup_request_event("SoftHangupRequest", t2, 16))
        self._emit(hangup_request_event("HangupRequest", t1, 16))
        self._hang_up(t2, 16)
        self._emit(device_state_event(trunk_device, "NOT_INUSE"))
        self._leave_bridge(t1, 1)
        self._hang_up(t1, 16)
        self._leave_bridge(d2, 0)
        self._emit(varset_event(d2, "DIALSTATUS", "ANSWER"))
        self._emit(hangup_request_event("SoftHangupRequest", d2, 16))
        self._emit(hangup_request_event("HangupRequest", d1, 16))
        self._hang_up(d2, 16)
        self._emit(bridge_event("BridgeDestroy", self._bridge_id, 0))
        self._emit(hangup_request_event("SoftHangupRequest", d1, 16))
        self._hang_up(d1, 16)
        self._emit(device_state_event(default_device, "NOT_INUSE"))

    def _busy(self, d1: Channel, d2: Channel, t1: Channel, t2: Channel) -> None:
        default_device, trunk_device = self._devices()
        t2.state = 7
        self._emit(channel_event("Newstate", t2))
        self._emit(dial_event("DialEnd", d2, t1, ("DialStatus", "BUSY")))
        self._emit(hangup_request_event("HangupRequest", t2, 0))
        self._emit(hangup_request_event("SoftHangupRequest", t2, 16))
        self._hang_up(t2, 17)
        self._hang_up(t1, 0)
        self._emit(device_state_event(trunk_device, "NOT_INUSE"))
        d2.state, d2.priority = 7, 7
        self._emit(channel_event("Newstate", d2))
        self._emit(varset_event(d2, "DIALSTATUS", "BUSY"))
        self._emit(dial_event("DialEnd", None, d1, ("DialStatus", "BUSY")))
        self._emit(hangup_request_event("HangupRequest", d2, 0))
        self._emit(hangup_request_event("SoftHangupRequest", d2, 16))
        self._finish_failure(Outcome.BUSY)
        self._hang_up(d2, 17)
        self._hang_up(d1, 0)
        self._emit(device_state_event(default_device, "NOT_INUSE"))

    def _congestion(self, d1: Channel, d2: Channel, t1: Channel, t2: Channel) -> None:
        self._emit(newexten_event(t2, "Congestion", ""))
        self._emit(dial_event("DialEnd", d2, t1, ("DialStatus", "CONGESTION")))
        self._emit(hangup_request_event("HangupRequest", t2, 0))
        d2.state, d2.priority = 7, 8
        self._emit(channel_event("Newstate", d2))
        self._hang_up(t1, 0)
        t2.state = 7
        self._emit(channel_event("Newstate", t2))
        self._emit(hangup_request_event("SoftHangupRequest", t2, 16))
        self._hang_up(t2, 34)
        self._finish_failure(Outcome.CONGESTION)
        self._emit(dial_event("DialEnd", None, d1, ("DialStatus", "CONGESTION")))
        self._emit(varset_event(d2, "DIALSTATUS", "CONGESTION"))
        self._emit(hangup_request_event("HangupRequest", d2, 0))
        self._emit(hangup_request_event("SoftHangupRequest", d2, 16))
        self._hang_up(d2, 34)
        self._hang_up(d1, 0)

    def _cancel(self, d1: Channel, d2: Channel, t1: Channel, t2: Channel, cause: int, reason: int) -> None:
        """The Originate timed out (no answer) or was hung up while ringing (dialer3 .4)."""
        default_device, trunk_device = self._devices()
        self._emit(hangup_request_event("HangupRequest", d2, cause))
        self._emit(dial_event("DialEnd", d2, t1, ("DialStatus", "CANCEL")))
        self._emit(hangup_request_event("HangupRequest", t2, cause))
        self._hang_up(t1, cause)
        self._finish_failure(Outcome.NO_ANSWER, reason=reason)
        self._hang_up(d1, cause)
        self._emit(hangup_request_event("SoftHangupRequest", t2, 16))
        self._hang_up(t2, cause)
        self._emit(device_state_event(trunk_device, "NOT_INUSE"))
        self._emit(hangup_request_event("SoftHangupRequest", d2, 16))
        self._hang_up(d2, cause)
        self._emit(device_state_event(default_device, "NOT_INUSE"))

    # -- OriginateResponse ------------------------------------------------------------------------
    def _originate_response(self, response: str, channel: str, reason: int, uniqueid: str) -> Pairs:
        pairs: Pairs = [("Event", "OriginateResponse"), ("Privilege", "call,all")]
        if self.request.action_id is not None:
            pairs.append(("ActionID", self.request.action_id))
        return [
            *pairs,
            ("Response", response),
            ("Channel", channel),
            ("Context", self.request.context),
            ("Exten", self.request.exten),
            ("Reason", str(reason)),
            ("Uniqueid", uniqueid),
            ("CallerIDNum", self.caller_num),
            ("CallerIDName", self.caller_name),
        ]

    def _finish_success(self, d1: Channel) -> None:
        self.reason = REASON[Outcome.ANSWER]
        if self.send_originate_response:
            self._emit(self._originate_response("Success", d1.name, self.reason, d1.uniqueid))
        if not self.result.done():
            self.result.set_result(self.reason)

    def _finish_failure(self, outcome: Outcome, *, reason: int | None = None) -> None:
        self.reason = REASON[outcome] if reason is None else reason
        if self.send_originate_response:
            self._emit(self._originate_response("Failure", self.request.channel, self.reason, UNKNOWN))
        if not self.result.done():
            self.result.set_result(self.reason)
