"""One originated call: from the Originate to the last Hangup, as the event sequence Asterisk 22 sends.

Rules this module keeps (the tables below are the captures in fixtures/asterisk22, event by event):

* A call is two Local pairs: ``Local/<n>@<ctx>-<seq>;1/;2`` (the originated pair) and, when the
  dialplan dials, ``Local/<n without 9>@trunk-<seq+1>;1/;2``. All four carry the Linkedid of the
  first ``;1``. Uniqueids and 8-hex-digit sequence numbers come from the server's counters, a pair
  at a time; in ``OrderRules.uniqueid_gap`` of the calls another pair is allocated in between, so the
  call's Uniqueids are not consecutive and the trunk sequence is not the first + 1 (AMI.md 6a.9).
* Every class of event is sent, as captured: call class, dialplan (Newexten, about 27 VarSet per
  answered call), user (UserEvent from 8365), and about 10 DeviceStateChange per answered call, so
  the volumes match the recordings (AMI.md 6a.5): per call 52/95 events answered (52/96 when the
  trunk hangs up first), 41/67 busy, 35/59 congestion, 36/58 no answer, 11/12 bad target
  (``Events: call,system`` / ``Events: on``); a 70/10/10/10 mix gives the measured 47.5 and 85.
* A call runs in phases separated by simulated time (setup, ringing, the answer, the end). A phase
  is a table of ``Step`` values in a captured order; ``orders.arrange`` plays it as captured or in
  a seeded variation (``OrderRules``). Steps are emitted one at a time with ``host.pace()`` between
  them, so other calls' events interleave as on a real server.
* Per outcome (captured calls): answered (dialer1 .0 when the VDAD extension hangs up first,
  dialer1 .8 when the trunk does), busy (dialer1 .4), congestion (dialer2 .4), no answer (dialer3 .4),
  bad target (dialer3 .8). Hangup causes: answered 16/16; busy ;2 17, ;1 0; congestion ;2 34, ;1 0;
  no answer 19/19; bad target 0/0. The VDAD and trunk programs are ``fillreactor.simulator.dialplan``.
* OriginateResponse (only for an Async AMI originate, or a dialer-placed call) has the ``;1`` name
  and its Uniqueid on success, the bare dial string and ``<unknown>`` on failure. Its Reason:
  4 answered, 5 busy, 8 congestion, 3 no answer, 0 bad target.
* An AMI Hangup while the call rings (AMI.md 6a.3): the targeted leg hangs up first (in
  ``OrderRules.target_first`` of the calls; else after the next leg). Targeting the originated pair
  ends the Dial with CANCEL, ``;1`` gets a DialEnd NOANSWER and the Reason is 0; targeting a trunk leg
  makes the Dial return CHANUNAVAIL, ``;2`` plays Congestion (cause 34) and the Reason is 8. Without a
  ``Cause`` the legs hang up with cause 0 (and 34 for that ``;2``); with one, the legs carry it.
  Reason 1 is never sent. On an answered call the targeted side hangs up first (the VDAD-first
  order for the originated pair, the trunk-first order for the trunk pair) with the given cause, 16
  without one.
* A graceful shutdown (``request_shutdown``) hangs up every live leg at the call's next pause:
  cause 16 when Up, else 0, and a Failure OriginateResponse with Reason 0 for a call not answered.
  A cancelled task (crash, instant restart) makes the channels vanish without any event.
* Records for tests: ``ended_by`` (``dialplan``, ``timeout``, ``hangup_action``, ``shutdown``,
  ``crash``, ``restart``, ``stopped``), ``reason``, ``response`` (the OriginateResponse sent, or
  None), ``hangups_before_response``, ``channel_names``, ``uniqueids``, ``started_at``/``ended_at``.
"""

from __future__ import annotations

import asyncio
import enum
import random
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from fillreactor.core.message import AmiMessage
from fillreactor.simulator import dialplan
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
from fillreactor.simulator.orders import (
    BRIDGE_LANE,
    DEVICE_LANE,
    RESPONSE_LANE,
    OrderRules,
    Step,
    arrange,
)
from fillreactor.simulator.outcomes import (
    DEFAULT_ORIGINATE_TIMEOUT,
    REASON,
    TRUNK_CONTEXT,
    CallTiming,
    Outcome,
    trunk_number,
)
from fillreactor.simulator.timebase import TimeBase

CALLING_PRES = ("CID-CallingPres", "0 (Presentation Allowed, Not Screened)")
_QUOTED_CALLERID = re.compile(r'^\s*"?([^"<]*?)"?\s*<([^>]*)>\s*$')

REASON_HANGUP_ORIGINATED = 0  # AMI Hangup of the originated pair while ringing (6a.3)
REASON_HANGUP_TRUNK = 8  # AMI Hangup of a trunk leg while ringing: the Dial ends in congestion
REASON_SHUTDOWN = 0  # graceful shutdown of a ringing call (6a.1)
CAUSE_TIMEOUT = 19
CAUSE_CONGESTION = 34

ORIGINATED = ("d1", "d2")
TRUNK = ("t1", "t2")
ROLES = ORIGINATED + TRUNK


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


class CallHost(Protocol):
    """What a call needs from its server."""

    name: str
    time: TimeBase

    def emit(self, pairs: Pairs) -> None: ...

    def new_uniqueid(self) -> str: ...

    def new_local_sequence(self) -> int: ...

    def add_channel(self, channel: Channel) -> None: ...

    def remove_channel(self, channel: Channel) -> None: ...


class _Wake(enum.Enum):
    TIMEOUT = "timeout"
    HANGUP = "hangup"
    SHUTDOWN = "shutdown"


@dataclass(frozen=True)
class HangupRequest:
    """An AMI Hangup on one of the call's channels (``cause`` None: the action had no Cause)."""

    target: str  # the role: d1 d2 t1 t2
    cause: int | None


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
        orders: OrderRules | None = None,
        rng: random.Random | None = None,
        index: int = 0,
    ) -> None:
        self.host = host
        self.request = request
        self.outcome = outcome
        self.timing = timing
        self.send_originate_response = send_originate_response
        self.placed_by_dialer = placed_by_dialer
        self.orders = orders if orders is not None else OrderRules(mode="captured")
        self.rng = rng if rng is not None else random.Random(index)
        self.index = index
        self.caller_name, self.caller_num = parse_callerid(request.callerid)
        self.channels: list[Channel] = []  # live channels, in creation order
        self.legs: dict[str, Channel] = {}  # role -> channel (also after its Hangup)
        self.linkedid: str | None = None
        self.reason: int | None = None
        self.answered = False
        self.result: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.finished = asyncio.Event()
        self.program = dialplan.vdad_program(request.exten)
        vdad_wait = self.program.fixed_wait if self.program.fixed_wait is not None else timing.vdad_wait
        if not self.program.steps or self.program.hangup_priority == 1:
            vdad_wait = 0.0  # 8367: hangs up at once
        self.vdad_wait = vdad_wait
        talk = timing.talk
        self.trunk_hangs_up_first = talk is not None and (vdad_wait is None or talk < vdad_wait)
        self.task: asyncio.Task[None] | None = None
        # records for tests
        self.call_id = self.caller_name if self.caller_name != UNKNOWN else None
        self.started_at = host.time.now()
        self.ended_at: float | None = None
        self.ended_by: str | None = None
        self.response: AmiMessage | None = None
        self.hangups_before_response: int | None = None
        self.hangup_request: HangupRequest | None = None
        self.hangups = 0
        self._wake = asyncio.Event()
        self._shutdown = False
        self._bridge_id = ""
        self._bridge: list[str] = []
        self._dial_started = 0.0
        self._answered_at = 0.0
        self._trunk_exten = ""
        self._trunk_priority = 0
        self._gap = not self.orders.captured and self.rng.random() < self.orders.uniqueid_gap

    # -- records ----------------------------------------------------------------------------------
    @property
    def channel_names(self) -> list[str]:
        return [channel.name for channel in self.legs.values()]

    @property
    def uniqueids(self) -> list[str]:
        return [channel.uniqueid for channel in self.legs.values()]

    @property
    def live(self) -> bool:
        return bool(self.channels)

    def __repr__(self) -> str:
        return f"SimulatedCall({self.request.channel} {self.outcome.value} {self.call_id or ''})"

    # -- control ----------------------------------------------------------------------------------
    def start(self) -> asyncio.Task[None]:
        self.task = asyncio.get_running_loop().create_task(self._run(), name=f"call {self.request.channel}")
        # a task cancelled before its first step never runs _run's finally: close the records here too
        self.task.add_done_callback(lambda _task: self._close())
        return self.task

    def request_hangup(self, cause: int | None = 16, target: str | None = None) -> None:
        """An AMI Hangup of ``target`` (a channel name of this call; None = the originated ``;1``)."""
        if self.hangup_request is not None:
            return
        role = next((r for r, ch in self.legs.items() if ch.name == target), "d1") if target else "d1"
        self.hangup_request = HangupRequest(role, cause)
        self._wake.set()

    def request_shutdown(self) -> None:
        """Graceful shutdown: hang up every live leg at the next pause."""
        self._shutdown = True
        self._wake.set()

    def owns(self, channel_name: str) -> bool:
        return any(channel.name == channel_name for channel in self.channels)

    async def _pause(self, seconds: float | None) -> _Wake:
        """Wait ``seconds`` of simulated time, or until a Hangup action or a shutdown."""
        if not self._wake.is_set():
            if seconds is None:
                await self._wake.wait()
            else:
                try:
                    await asyncio.wait_for(self._wake.wait(), self.host.time.real_seconds(seconds))
                except TimeoutError:
                    return _Wake.TIMEOUT
        if self._shutdown:
            return _Wake.SHUTDOWN
        return _Wake.HANGUP

    # -- running ----------------------------------------------------------------------------------
    async def _run(self) -> None:
        try:
            await self._script()
            if self.ended_by is None:
                self.ended_by = "dialplan"
        finally:
            self._close()

    def _close(self) -> None:
        """The call is over (its script ended, or its task was cancelled): idempotent."""
        if self.finished.is_set():
            return
        for channel in list(self.channels):  # cancelled (crash, restart): vanish without events
            self.host.remove_channel(channel)
        self.channels.clear()
        if self.ended_by is None:
            self.ended_by = getattr(self.host, "cancel_reason", "stopped")
        self.ended_at = self.host.time.now()
        if not self.result.done():
            self.result.cancel()
        self.finished.set()

    async def _play(
        self,
        steps: Sequence[Step],
        *,
        failure: str | None = None,
        window: tuple[str, str] | None = None,
        earliest: int = 1,
    ) -> None:
        """Emit one phase, in its captured order or a seeded variation of it."""
        weights = self.orders.failure_response_weights.get(failure) if failure else None
        if failure and weights is None:
            weights = (1.0,)
        order = arrange(
            steps, self.orders, self.rng, failure_weights=weights, window=window, earliest=earliest
        )
        pace = getattr(self.host, "pace", None)
        for step in order:
            step.run()
            if pace is not None:
                await pace()

    async def _script(self) -> None:
        self._dial_started = self.host.time.now()
        if self.outcome is Outcome.BAD_TARGET:
            await self._play(self._originated_pair_steps(bad_target=True))
            await self._play(self._bad_target_steps(), failure="bad_target", earliest=0)
            return
        await self._play(self._setup_steps())
        timeout = self.request.timeout
        congestion = self.outcome is Outcome.CONGESTION and self.timing.ring < timeout
        rings_out = self.outcome is Outcome.NO_ANSWER or self.timing.ring >= timeout
        if congestion:
            await self._play(self._early_steps(Outcome.CONGESTION))
            wake = await self._pause(self.timing.ring)
        else:
            program = Outcome.NO_ANSWER if rings_out else self.outcome
            await self._play(self._early_steps(program))
            wake = await self._pause(timeout if rings_out else self.timing.ring)
        if wake is _Wake.SHUTDOWN:
            await self._shutdown_teardown()
        elif wake is _Wake.HANGUP:
            await self._ringing_hangup()
        elif congestion:
            await self._play(self._congestion_steps(), failure="congestion")
        elif rings_out:
            self.ended_by = "timeout"
            steps = self._cancel_steps(CAUSE_TIMEOUT, REASON[Outcome.NO_ANSWER])
            await self._play(steps, failure="no_answer", earliest=0)
        elif self.outcome is Outcome.BUSY:
            await self._play(self._busy_steps(), failure="busy")
        else:
            await self._answered_call()

    async def _answered_call(self) -> None:
        self.answered = True
        self._answered_at = self.host.time.now()
        await self._play(self._answer_steps(), window=("answer", "bridge"))
        trunk_first = self.trunk_hangs_up_first
        wake = await self._pause(self.timing.talk if trunk_first else self.vdad_wait)
        if wake is _Wake.SHUTDOWN:
            await self._shutdown_teardown()
        elif wake is _Wake.HANGUP:
            request = self.hangup_request
            assert request is not None
            self.ended_by = "hangup_action"
            cause = 16 if request.cause is None else request.cause
            if request.target in TRUNK:
                await self._play(self._trunk_first_steps(cause, ami=True))
            else:
                await self._play(self._local_first_steps(cause, ami=True))
        elif trunk_first:
            await self._play(self._trunk_first_steps(16, ami=False))
        else:
            await self._play(self._local_first_steps(16, ami=False))

    async def _ringing_hangup(self) -> None:
        request = self.hangup_request
        assert request is not None
        self.ended_by = "hangup_action"
        if request.target in TRUNK:
            steps = self._trunk_hangup_steps(request.target, request.cause)
        else:
            steps = self._originated_hangup_steps(request.target, request.cause)
        if self.rng.random() >= self.orders.target_first and not self.orders.captured:
            steps = _target_not_first(steps, request.target)
        await self._play(steps, failure="hangup_action", earliest=0)

    async def _shutdown_teardown(self) -> None:
        self.ended_by = "shutdown"
        await self._play(self._shutdown_steps(), failure="shutdown", earliest=0)

    # -- step builders ----------------------------------------------------------------------------
    def _step(
        self,
        lane: str,
        build: Callable[[], Pairs | None],
        *,
        names: tuple[str, ...] = (),
        creates: str | None = None,
        ends: str | None = None,
        response: bool = False,
        label: str = "",
        after: str = "",
        event: str = "",
    ) -> Step:
        def run() -> None:
            pairs = build()
            if pairs is not None:
                self.host.emit(pairs)

        return Step(
            lane,
            run,
            names=names,
            creates=creates,
            ends=ends,
            response=response,
            label=label,
            event=event,
            after=after,
        )

    def _leg(self, role: str) -> Channel:
        return self.legs[role]

    def _text(self) -> dict[str, str]:
        name = "" if self.caller_name == UNKNOWN else self.caller_name
        num = "" if self.caller_num == UNKNOWN else self.caller_num
        return {
            "server": self.host.name,
            "name": name,
            "num": num,
            "number": self.request.number,
            "trunk": trunk_number(self.request.number),
        }

    def _allocate_pair(self, first: str) -> None:
        """Both Channel objects of a Local pair (``d1``/``d2`` or ``t1``/``t2``), allocated together."""
        number, context = self.request.number, self.request.dial_context
        if first == "t1":
            number, context = trunk_number(number), TRUNK_CONTEXT
            if self._gap:  # another call's pair was allocated in between (6a.9)
                self.host.new_local_sequence()
                self.host.new_uniqueid()
                self.host.new_uniqueid()
        base = f"Local/{number}@{context}-{self.host.new_local_sequence():08x}"
        now = self.host.time.now()
        one, two = first, "d2" if first == "d1" else "t2"
        for role, state in ((one, 0), (two, 4)):
            uniqueid = self.host.new_uniqueid()
            if self.linkedid is None:
                self.linkedid = uniqueid
            self.legs[role] = Channel(
                name=f"{base};{role[1]}",
                uniqueid=uniqueid,
                linkedid=self.linkedid,
                context=context,
                exten=number,
                state=state,
                created_at=now,
            )
        first_leg = self.legs[one]
        first_leg.application = "AppDial2" if one == "d1" else "AppDial"
        first_leg.application_data = "(Outgoing Line)"

    def _new(self, role: str) -> Step:
        def build() -> Pairs:
            if role not in self.legs:
                self._allocate_pair("d1" if role in ORIGINATED else "t1")
            channel = self.legs[role]
            self.channels.append(channel)
            self.host.add_channel(channel)
            return channel_event("Newchannel", channel)

        after = {"d2": "new:d1", "t2": "new:t1", "t1": "dial"}.get(role, "")
        return self._step(
            role, build, names=(role,), creates=role, label=f"new:{role}", after=after, event="Newchannel"
        )

    def _event(self, name: str, role: str, *extra: tuple[str, str], klass: str = "call") -> Step:
        return self._step(
            role, lambda: channel_event(name, self._leg(role), *extra, klass=klass), names=(role,), event=name
        )

    def _callerid(self, role: str) -> Step:
        def build() -> Pairs:
            channel = self._leg(role)
            if role == "d1":
                channel.caller_num, channel.caller_name = self.caller_num, self.caller_name
            elif role == "d2":
                channel.caller_num, channel.caller_name = self.caller_num, self.caller_name
                channel.connected_num, channel.connected_name = self.caller_num, self.caller_name
            elif role == "t1":
                self._dial_leg_ids()
            else:
                channel.caller_num, channel.caller_name = self.caller_num, self.caller_name
                channel.connected_num, channel.connected_name = self.request.number, self.caller_name
            return channel_event("NewCallerid", channel, CALLING_PRES)

        return self._step(role, build, names=(role,), event="NewCallerid")

    def _dial_leg_ids(self) -> None:
        """The Dial leg shows the caller's exten as its number and as its Exten (from its Newexten on)."""
        channel = self._leg("t1")
        channel.caller_num, channel.caller_name = self.request.number, self.caller_name
        channel.exten = self.request.number
        channel.connected_num, channel.connected_name = self.caller_num, self.caller_name

    def _connected(self, role: str) -> Step:
        def build() -> Pairs:
            channel = self._leg(role)
            if role == "d1":
                channel.connected_num, channel.connected_name = self.caller_num, self.caller_name
            return channel_event("NewConnectedLine", channel)

        return self._step(role, build, names=(role,), event="NewConnectedLine")

    def _exten(
        self,
        role: str,
        priority: int,
        app: str,
        data: str = "",
        *,
        exten: str | None = None,
        before: Callable[[], None] | None = None,
        label: str = "",
    ) -> Step:
        def build() -> Pairs:
            if before is not None:
                before()
            channel = self._leg(role)
            if exten is not None:
                channel.exten = exten
            channel.priority = priority
            if app not in ("AppDial", "AppDial2"):
                channel.application, channel.application_data = app, data
            return newexten_event(channel, app, data)

        return self._step(role, build, names=(role,), event="Newexten", label=label)

    def _var(self, role: str, variable: str, value: str | Callable[[], str] = "") -> Step:
        def build() -> Pairs:
            return varset_event(self._leg(role), variable, value() if callable(value) else value)

        return self._step(role, build, names=(role,), event="VarSet")

    def _state(self, role: str, state: int, *, label: str = "", after: str = "") -> Step:
        def build() -> Pairs:
            channel = self._leg(role)
            channel.state = state
            return channel_event("Newstate", channel)

        return self._step(role, build, names=(role,), event="Newstate", label=label, after=after)

    def _local_bridge(self, one: str, two: str) -> Step:
        def build() -> Pairs:
            if one == "d1":
                context, exten = self.request.dial_context, self.request.number
            else:
                context, exten = TRUNK_CONTEXT, trunk_number(self.request.number)
            return local_bridge_event(self._leg(one), self._leg(two), context, exten)

        return self._step(one, build, names=(one, two), event="LocalBridge")

    def _dial(
        self,
        name: str,
        caller: str | None,
        dest: str,
        *extra: tuple[str, str],
        before: Callable[[], None] | None = None,
        after: str = "",
    ) -> Step:
        def build() -> Pairs:
            if before is not None:
                before()
            return dial_event(name, self._leg(caller) if caller else None, self._leg(dest), *extra)

        names = (caller, dest) if caller else (dest,)
        return self._step(caller or dest, build, names=names, event=name, after=after)

    def _dsc(self, device: str, state: str) -> Step:
        def build() -> Pairs:
            number, context = self.request.number, self.request.dial_context
            name = f"Local/{number}@{context}" if device == "D" else f"Local/{trunk_number(number)}@trunk"
            return device_state_event(name, state)

        return self._step(DEVICE_LANE, build, event="DeviceStateChange")

    def _request(self, event: str, role: str, cause: int) -> Step:
        return self._step(
            role,
            lambda: hangup_request_event(event, self._leg(role), cause),
            names=(role,),
            event=event,
        )

    def _hangup(self, role: str, cause: int) -> Step:
        def build() -> Pairs:
            channel = self._leg(role)
            pairs = hangup_event(channel, cause)
            if channel in self.channels:
                self.channels.remove(channel)
            self.host.remove_channel(channel)
            self.hangups += 1
            return pairs

        return self._step(role, build, names=(role,), ends=role, event="Hangup")

    def _bridge_create(self) -> Step:
        def build() -> Pairs:
            self._bridge_id = str(uuid.uuid4())
            self._bridge = []
            return bridge_event("BridgeCreate", self._bridge_id, 0)

        return self._step(BRIDGE_LANE, build, label="bridge", event="BridgeCreate")

    def _bridge_enter(self, role: str) -> Step:
        def build() -> Pairs:
            channel = self._leg(role)
            self._bridge.append(role)
            channel.bridge_id = self._bridge_id
            return bridge_event("BridgeEnter", self._bridge_id, len(self._bridge), channel)

        return self._step(BRIDGE_LANE, build, names=(role,), event="BridgeEnter")

    def _bridge_leave(self, role: str) -> Step:
        def build() -> Pairs:
            channel = self._leg(role)
            if role in self._bridge:
                self._bridge.remove(role)
            channel.bridge_id = ""
            return bridge_event("BridgeLeave", self._bridge_id, len(self._bridge), channel)

        return self._step(BRIDGE_LANE, build, names=(role,), event="BridgeLeave")

    def _bridge_destroy(self) -> Step:
        return self._step(
            BRIDGE_LANE,
            lambda: bridge_event("BridgeDestroy", self._bridge_id, len(self._bridge)),
            event="BridgeDestroy",
        )

    def _response(self, success: bool, reason: int) -> Step:
        def build() -> Pairs | None:
            self.reason = reason
            self.hangups_before_response = self.hangups
            pairs = None
            if self.send_originate_response:
                if success:
                    d1 = self._leg("d1")
                    pairs = self._originate_response("Success", d1.name, reason, d1.uniqueid)
                else:
                    pairs = self._originate_response("Failure", self.request.channel, reason, UNKNOWN)
                self.response = AmiMessage.from_pairs(pairs)
            if not self.result.done():
                self.result.set_result(reason)
            return pairs

        return self._step(RESPONSE_LANE, build, response=True, event="OriginateResponse")

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

    # -- the phases (captured tables) ------------------------------------------------------------
    def _originated_pair_steps(self, *, bad_target: bool = False) -> list[Step]:
        steps = [
            self._new("d1"),
            self._new("d2"),
            self._exten("d1", 1, "AppDial2", "(Outgoing Line)"),
            self._callerid("d1"),
            self._connected("d1"),
            self._callerid("d2"),
            self._connected("d2"),
        ]
        if bad_target:
            return steps
        number, context = self.request.number, self.request.dial_context
        return [
            *steps,
            self._local_bridge("d1", "d2"),
            self._dial("DialBegin", None, "d1", ("DialString", f"{number}@{context}")),
        ]

    def _setup_steps(self) -> list[Step]:
        """The originated pair, its dialplan up to the Dial, and the trunk pair (captured 0-31)."""
        text = self._text()
        trunk = text["trunk"]
        d2_vars = (
            "DIALSTATUS",
            "DIALEDPEERNUMBER",
            "DIALEDPEERNAME",
            "ANSWEREDTIME",
            "ANSWEREDTIME_MS",
            "DIALEDTIME",
            "DIALEDTIME_MS",
            "RINGTIME",
            "RINGTIME_MS",
            "PROGRESSTIME",
            "PROGRESSTIME_MS",
        )
        noop = '{server} outbound to {trunk} CID="{name}" <{num}>'.format(**text)
        return [
            *self._originated_pair_steps(),
            self._exten("d2", 1, "NoOp", noop),
            self._exten("d2", 2, "Dial", f"Local/{trunk}@{TRUNK_CONTEXT},90", label="dial"),
            *(self._var("d2", variable) for variable in d2_vars),
            self._new("t1"),
            self._new("t2"),
            self._var("t1", "DIALEDPEERNUMBER", f"{trunk}@{TRUNK_CONTEXT}"),
            self._exten("t1", 1, "AppDial", "(Outgoing Line)", before=self._dial_leg_ids),
            self._callerid("t1"),
            self._connected("t1"),
            self._var("t2", "DIALEDPEERNUMBER", f"{trunk}@{TRUNK_CONTEXT}"),
            self._callerid("t2"),
            self._connected("t2"),
            self._local_bridge("t1", "t2"),
        ]

    def _trunk_app(self, index: int, program: Outcome, label: str = "") -> Step:
        """Priority ``index + 1`` of the trunk ``;2``'s program (after a Goto for 10-digit numbers)."""
        app = dialplan.TRUNK_PROGRAMS[program][index]
        text = self._text()
        wait_ring = str(int(self.timing.ring))
        talk = "" if self.timing.talk is None else str(int(self.timing.talk))
        data = app.data.format(ring=wait_ring, talk=talk, **text)
        self._trunk_priority = index + 1
        return self._exten("t2", index + 1, app.name, data, exten=self._trunk_exten or None, label=label)

    def _early_steps(self, program: Outcome) -> list[Step]:
        """From the DialBegin of the trunk leg to ringing (or, for congestion, its Wait(1))."""
        trunk = trunk_number(self.request.number)
        dial_begin = self._dial("DialBegin", "d2", "t1", ("DialString", f"{trunk}@{TRUNK_CONTEXT}"))
        steps: list[Step] = []
        goto = dialplan.trunk_goto(trunk, program)
        if goto is not None:
            steps.append(self._exten("t2", 1, "Goto", f"{goto},1"))
            self._trunk_exten = goto
        if program is Outcome.CONGESTION:
            return [dial_begin, *steps, self._trunk_app(0, program)]
        ringing_ms = lambda: str(int((self.host.time.now() - self._dial_started) * 1000))  # noqa: E731
        rings = [
            self._state("d1", 5, after="ringing:t1"),
            self._var("d2", "RINGTIME", "0"),
            self._var("d2", "RINGTIME_MS", ringing_ms),
        ]
        dial_state_d2 = self._dial("DialState", "d2", "t1", ("DialStatus", "RINGING"), after="ringing:t1")
        dial_state_d1 = self._dial("DialState", None, "d1", ("DialStatus", "RINGING"))
        if program is Outcome.ANSWER:
            noop, ring, wait = (self._trunk_app(i, program) for i in range(3))
            device_d = [self._dsc("D", "INUSE")]
            tail = [dial_state_d2, dial_state_d1]
            if self.trunk_hangs_up_first:  # dialer1 .8
                return [
                    dial_begin, *steps, noop, ring, self._state("t1", 5, label="ringing:t1"), wait,
                    self._dsc("T", "INUSE"), *rings, *tail, *device_d,
                ]  # fmt: skip
            return [
                dial_begin, *steps, noop, ring, self._state("t1", 5, label="ringing:t1"), wait,
                self._dsc("T", "INUSE"), rings[0], *device_d, *rings[1:], *tail,
            ]  # fmt: skip
        ring, wait = self._trunk_app(0, program), self._trunk_app(1, program)
        if program is Outcome.BUSY:  # dialer1 .4
            return [
                *steps, ring, self._state("t1", 5, label="ringing:t1"), wait, dial_begin,
                self._dsc("T", "NOT_INUSE"), *rings, dial_state_d2, self._dsc("D", "INUSE"), dial_state_d1,
            ]  # fmt: skip
        # no answer (dialer3 .4)
        return [
            dial_begin, *steps, ring, self._state("t1", 5, label="ringing:t1"), wait,
            self._dsc("T", "INUSE"), rings[0], rings[1], dial_state_d1, rings[2], dial_state_d2,
            self._dsc("D", "INUSE"),
        ]  # fmt: skip

    def _answer_steps(self) -> list[Step]:
        """The trunk answers; the ``;1`` runs its VDAD extension; the bridge (captured 52-78)."""
        trunk = trunk_number(self.request.number)
        answer = self._trunk_app(3, Outcome.ANSWER)
        talk_wait = self._trunk_app(4, Outcome.ANSWER)
        trunk_first = self.trunk_hangs_up_first
        response = self._response(True, REASON[Outcome.ANSWER])

        def leave_exten() -> None:
            self._leg("t1").exten = ""  # from here on the Dial leg shows an empty Exten, as captured

        head = [answer, self._state("t2", 6)]
        if trunk_first:  # dialer1 .8
            head += [self._dsc("T", "INUSE"), self._state("t1", 6, label="answer"), self._dsc("T", "INUSE")]
            head.append(response)
        else:
            head.append(self._state("t1", 6, label="answer"))
        t1_name = lambda: self._leg("t1").name  # noqa: E731
        head += [
            self._var("d2", "DIALSTATUS", "ANSWER"),
            self._var("d2", "DIALEDPEERNAME", t1_name),
            self._var("d2", "DIALEDPEERNUMBER", f"{trunk}@{TRUNK_CONTEXT}"),
            self._dial("DialEnd", "d2", "t1", ("DialStatus", "ANSWER"), before=leave_exten),
        ]
        if not trunk_first:  # dialer1 .0
            head += [self._dsc("T", "INUSE"), self._dsc("T", "INUSE")]
        head += [self._state("d1", 6), self._dial("DialEnd", None, "d1", ("DialStatus", "ANSWER"))]
        program = self._vdad_steps()
        if not trunk_first:  # the response falls before the Wait (after the UserEvent for 8365)
            waits = [i for i, step in enumerate(program) if step.label == "vdad-wait"]
            program.insert(waits[0] if waits else len(program), response)
        d2_name = lambda: self._leg("d2").name  # noqa: E731
        tail = [
            self._state("d2", 6),
            self._bridge_create(),
            self._exten("t1", 1, "AppDial", "(Outgoing Line)"),
            self._bridge_enter("t1"),
            self._dsc("D", "INUSE"),
            self._dsc("D", "INUSE"),
            self._bridge_enter("d2"),
            self._var("t1", "BRIDGEPEER", d2_name),
            self._var("d2", "BRIDGEPEER", t1_name),
            talk_wait,
        ]
        return head + program + tail

    def _vdad_steps(self) -> list[Step]:
        """The answered ``;1`` in the Originate's Exten/Context (VICIdial's 8365/8368/...), before Hangup."""
        d1_context = self.request.context or self.request.dial_context
        text = self._text()
        wait = "" if self.vdad_wait is None else str(int(self.vdad_wait))
        steps: list[Step] = []
        for priority, app, exten in self.program.steps:
            data = app.data.format(wait=wait, **text)
            label = "vdad-wait" if app.name == "Wait" else ""

            def build(
                priority: int = priority, app: dialplan.App = app, exten: str = exten, data: str = data
            ) -> Pairs:
                channel = self._leg("d1")
                channel.context, channel.exten, channel.priority = d1_context, exten, priority
                channel.application, channel.application_data = app.name, data
                return newexten_event(channel, app.name, data)

            steps.append(self._step("d1", build, names=("d1",), label=label, event="Newexten"))
            if app.name == "UserEvent":
                steps.append(
                    self._event(
                        "UserEvent",
                        "d1",
                        ("UserEvent", "VDADTransfer"),
                        ("Server", self.host.name),
                        ("CallerIDName", self.caller_name),
                        klass="user",
                    )
                )
        if not self.program.steps:  # 8367 at once: the ;1 still moves to the extension
            d1 = self._leg("d1")
            d1.context, d1.exten = d1_context, self.program.exten
        return steps

    def _elapsed(self, since: Callable[[], float], *, ms: bool) -> Callable[[], str]:
        def value() -> str:
            seconds = self.host.time.now() - since()
            return str(int(seconds * 1000)) if ms else str(int(seconds))

        return value

    def _answered_times(self) -> list[Step]:
        answered, dialed = (lambda: self._answered_at), (lambda: self._dial_started)
        return [
            self._var("d2", "ANSWEREDTIME", self._elapsed(answered, ms=False)),
            self._var("d2", "ANSWEREDTIME_MS", self._elapsed(answered, ms=True)),
            self._var("d2", "DIALEDTIME", self._elapsed(dialed, ms=False)),
            self._var("d2", "DIALEDTIME_MS", self._elapsed(dialed, ms=True)),
            self._var("d2", "DIALSTATUS", "ANSWER"),
        ]

    def _local_first_steps(self, cause: int, *, ami: bool) -> list[Step]:
        """The VDAD extension hangs up first (dialer1 .0, captured 79-102)."""
        steps = [] if ami else [self._exten("d1", self.program.hangup_priority, "Hangup", "")]
        return [
            *steps,
            self._request("SoftHangupRequest", "d1", cause),
            self._request("HangupRequest", "d2", cause),
            self._hangup("d1", cause),
            self._var("d2", "BRIDGEPEER", ""),
            self._var("t1", "BRIDGEPEER", ""),
            self._bridge_leave("d2"),
            *self._answered_times(),
            self._request("SoftHangupRequest", "d2", cause),
            self._hangup("d2", cause),
            self._dsc("D", "NOT_INUSE"),
            self._bridge_leave("t1"),
            self._bridge_destroy(),
            self._request("HangupRequest", "t2", cause),
            self._hangup("t1", cause),
            self._dsc("D", "NOT_INUSE"),
            self._dsc("T", "NOT_INUSE"),
            self._request("SoftHangupRequest", "t2", cause),
            self._hangup("t2", cause),
            self._dsc("T", "NOT_INUSE"),
        ]

    def _trunk_first_steps(self, cause: int, *, ami: bool) -> list[Step]:
        """The trunk hangs up first (dialer1 .8, captured 79-103)."""
        steps = [] if ami else [self._trunk_app(5, Outcome.ANSWER)]
        return [
            *steps,
            self._request("SoftHangupRequest", "t2", cause),
            self._request("HangupRequest", "t1", cause),
            self._hangup("t2", cause),
            self._dsc("T", "NOT_INUSE"),
            self._var("t1", "BRIDGEPEER", ""),
            self._var("d2", "BRIDGEPEER", ""),
            self._bridge_leave("t1"),
            self._hangup("t1", cause),
            self._bridge_leave("d2"),
            *self._answered_times(),
            self._request("SoftHangupRequest", "d2", cause),
            self._dsc("T", "NOT_INUSE"),
            self._var("d1", "CHANLOCALSTATUS", "ANSWER"),
            self._request("HangupRequest", "d1", cause),
            self._hangup("d2", cause),
            self._bridge_destroy(),
            self._request("SoftHangupRequest", "d1", cause),
            self._hangup("d1", cause),
            self._dsc("D", "NOT_INUSE"),
            self._dsc("D", "NOT_INUSE"),
        ]

    def _after_dial(self, status: str, cause: int) -> list[Step]:
        """The ``;2`` back in ``_9X.`` after its Dial: NoOp, the GotoIfs, Busy(5) or Congestion(5)."""
        busy = status == "BUSY"
        steps = [
            self._var("d2", "DIALSTATUS", status),
            self._exten("d2", dialplan.AFTER_DIAL_NOOP, "NoOp", f"DIALSTATUS={status} HANGUPCAUSE={cause}"),
            self._exten("d2", dialplan.GOTO_BUSY, "GotoIf", f"{int(busy)}?busy"),
        ]
        if busy:
            return [*steps, self._exten("d2", dialplan.BUSY_PRIORITY, "Busy", "5")]
        return [
            *steps,
            self._exten("d2", dialplan.GOTO_CONGESTION, "GotoIf", "1?cong"),
            self._exten("d2", dialplan.CONGESTION_PRIORITY, "Congestion", "5"),
        ]

    def _busy_steps(self) -> list[Step]:
        """Busy (dialer1 .4, captured 43-66)."""
        noop, gotoif, busy = self._after_dial("BUSY", 0)[1:]
        return [
            self._trunk_app(2, Outcome.BUSY),
            self._state("t2", 7),
            self._dial("DialEnd", "d2", "t1", ("DialStatus", "BUSY")),
            self._request("HangupRequest", "t2", 0),
            self._request("SoftHangupRequest", "t2", 16),
            self._hangup("t2", 17),
            self._hangup("t1", 0),
            self._dsc("T", "NOT_INUSE"),
            self._var("d2", "DIALSTATUS", "BUSY"),
            noop,
            self._dsc("T", "NOT_INUSE"),
            self._dsc("T", "NOT_INUSE"),
            gotoif,
            busy,
            self._state("d2", 7),
            self._dsc("D", "INUSE"),
            self._dial("DialEnd", None, "d1", ("DialStatus", "BUSY")),
            self._request("HangupRequest", "d2", 0),
            self._request("SoftHangupRequest", "d2", 16),
            self._response(False, REASON[Outcome.BUSY]),
            self._hangup("d2", 17),
            self._hangup("d1", 0),
            self._dsc("D", "NOT_INUSE"),
            self._dsc("D", "NOT_INUSE"),
        ]

    def _congestion_steps(self) -> list[Step]:
        """Congestion (dialer2 .4, captured 34-58)."""
        return [
            self._trunk_app(1, Outcome.CONGESTION),
            self._dial("DialEnd", "d2", "t1", ("DialStatus", "CONGESTION")),
            self._request("HangupRequest", "t2", 0),
            *self._after_dial("CONGESTION", 0),
            self._state("d2", 7),
            self._hangup("t1", 0),
            self._state("t2", 7),
            self._request("SoftHangupRequest", "t2", 16),
            self._hangup("t2", CAUSE_CONGESTION),
            self._response(False, REASON[Outcome.CONGESTION]),
            self._dial("DialEnd", None, "d1", ("DialStatus", "CONGESTION")),
            self._request("HangupRequest", "d2", 0),
            self._dsc("D", "INUSE"),
            self._dsc("T", "NOT_INUSE"),
            self._dsc("T", "NOT_INUSE"),
            self._dsc("T", "NOT_INUSE"),
            self._request("SoftHangupRequest", "d2", 16),
            self._hangup("d2", CAUSE_CONGESTION),
            self._hangup("d1", 0),
            self._dsc("D", "NOT_INUSE"),
            self._dsc("D", "NOT_INUSE"),
        ]

    def _cancel_steps(self, cause: int, reason: int) -> list[Step]:
        """The Originate timed out (dialer3 .4, captured 47-61)."""
        return [
            self._request("HangupRequest", "d2", cause),
            self._dial("DialEnd", "d2", "t1", ("DialStatus", "CANCEL")),
            self._request("HangupRequest", "t2", cause),
            self._hangup("t1", cause),
            self._response(False, reason),
            self._hangup("d1", cause),
            self._request("SoftHangupRequest", "t2", 16),
            self._hangup("t2", cause),
            self._var("d2", "DIALSTATUS", "CANCEL"),
            self._request("SoftHangupRequest", "d2", 16),
            self._hangup("d2", cause),
            self._dsc("T", "NOT_INUSE"),
            self._dsc("D", "NOT_INUSE"),
            self._dsc("D", "NOT_INUSE"),
            self._dsc("T", "NOT_INUSE"),
        ]

    def _bad_target_steps(self) -> list[Step]:
        """No such context/extension (dialer3 .8): the pair is hung up with cause 0, Reason 0."""
        device = f"Local/{self.request.number}@{self.request.dial_context}"
        invalid = lambda: device_state_event(device, "INVALID")  # noqa: E731
        return [
            self._response(False, REASON[Outcome.BAD_TARGET]),
            self._hangup("d2", 0),
            self._hangup("d1", 0),
            self._step(DEVICE_LANE, invalid, event="DeviceStateChange"),
            self._step(DEVICE_LANE, invalid, event="DeviceStateChange"),
        ]

    def _devices_idle(self) -> list[Step]:
        return [self._dsc("T", "NOT_INUSE"), self._dsc("D", "NOT_INUSE"), self._dsc("D", "NOT_INUSE")]

    def _originated_hangup_steps(self, target: str, cause: int | None) -> list[Step]:
        """AMI Hangup of ``d1``/``d2`` while ringing: the Dial is cancelled, Reason 0."""
        c = 0 if cause is None else cause
        if target == "d1":
            steps = [
                self._request("SoftHangupRequest", "d1", c),
                self._dial("DialEnd", None, "d1", ("DialStatus", "NOANSWER")),
                self._hangup("d1", c),
                self._request("HangupRequest", "d2", c),
                self._dial("DialEnd", "d2", "t1", ("DialStatus", "CANCEL")),
                self._request("HangupRequest", "t2", c),
                self._hangup("t1", c),
                self._response(False, REASON_HANGUP_ORIGINATED),
                self._request("SoftHangupRequest", "t2", 16),
                self._hangup("t2", c),
                self._var("d2", "DIALSTATUS", "CANCEL"),
                self._request("SoftHangupRequest", "d2", 16),
                self._hangup("d2", c),
            ]
        else:
            steps = [
                self._request("SoftHangupRequest", "d2", c),
                self._dial("DialEnd", "d2", "t1", ("DialStatus", "CANCEL")),
                self._request("HangupRequest", "t2", c),
                self._var("d2", "DIALSTATUS", "CANCEL"),
                self._hangup("d2", c),
                self._request("HangupRequest", "d1", c),
                self._dial("DialEnd", None, "d1", ("DialStatus", "NOANSWER")),
                self._hangup("t1", c),
                self._response(False, REASON_HANGUP_ORIGINATED),
                self._hangup("d1", c),
                self._request("SoftHangupRequest", "t2", 16),
                self._hangup("t2", c),
            ]
        return [*steps, *self._devices_idle(), self._dsc("T", "NOT_INUSE")]

    def _trunk_hangup_steps(self, target: str, cause: int | None) -> list[Step]:
        """AMI Hangup of ``t1``/``t2`` while ringing: the Dial returns CHANUNAVAIL, Congestion, Reason 8."""
        c = 0 if cause is None else cause
        unavailable = self._dial("DialEnd", "d2", "t1", ("DialStatus", "CHANUNAVAIL"))
        if target == "t2":
            steps = [
                self._request("SoftHangupRequest", "t2", c),
                self._request("HangupRequest", "t1", c),
                self._hangup("t2", c),
                unavailable,
                self._hangup("t1", c),
            ]
        else:
            steps = [
                self._request("SoftHangupRequest", "t1", c),
                self._request("HangupRequest", "t2", c),
                unavailable,
                self._hangup("t1", c),
                self._request("SoftHangupRequest", "t2", 16),
                self._hangup("t2", c),
            ]
        return [
            *steps,
            *self._after_dial("CHANUNAVAIL", c),
            self._state("d2", 7),
            self._dial("DialEnd", None, "d1", ("DialStatus", "CONGESTION")),
            self._request("HangupRequest", "d2", 0),
            self._request("SoftHangupRequest", "d2", 16),
            self._response(False, REASON_HANGUP_TRUNK),
            self._hangup("d2", CAUSE_CONGESTION),
            self._hangup("d1", 0),
            *self._devices_idle(),
        ]

    def _shutdown_steps(self) -> list[Step]:
        """Graceful shutdown: every live leg hangs up (16 when Up, else 0); Reason 0 if not answered."""
        live = [role for role in ROLES if role in self.legs and self.legs[role] in self.channels]
        steps: list[Step] = []
        for role in live:
            if role in self._bridge:
                steps.append(self._bridge_leave(role))
            steps.append(self._hangup(role, 16 if self.legs[role].state == 6 else 0))
        if self._bridge:
            steps.append(self._bridge_destroy())
        if self.reason is None:
            steps.insert(1 if steps else 0, self._response(False, REASON_SHUTDOWN))
        return [*steps, self._dsc("D", "NOT_INUSE")]


def _target_not_first(steps: list[Step], target: str) -> list[Step]:
    """Move the targeted leg's Hangup to just after the next Hangup (the 'usually' of 6a.3)."""
    index = next((i for i, step in enumerate(steps) if step.ends == target), None)
    if index is None:
        return steps
    following = next((i for i in range(index + 1, len(steps)) if steps[i].ends is not None), None)
    if following is None:
        return steps
    moved = list(steps)
    step = moved.pop(index)
    moved.insert(following, step)
    return moved
