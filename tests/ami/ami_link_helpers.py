"""Helpers for the AMI link tests: a recording handler, a simulator with test-only behaviours.

Imported by name (fixtures live in conftest.py). What ``TestAsterisk`` adds to the simulator is
an *emulation* of behaviours the simulator does not have yet (listed in the lead's report):
``Action: Filter``, "Asterisk is shutting down" error replies, a wrong ``ListItems`` on demand,
a Shutdown event, and a tee of the bytes each session wrote (the independent record of what
reached the wire).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from fillreactor.ami import AmiLink, LinkChange, LinkChangeKind, LinkSettings, LinkTarget
from fillreactor.core.events import Event
from fillreactor.core.message import AmiFramer, AmiMessage
from fillreactor.core.model import ChannelModel
from fillreactor.core.normalise import normalise_raw
from fillreactor.simulator import (
    AmiSession,
    CallTiming,
    OutcomeRules,
    ServerConfig,
    SimulatedAsterisk,
    TimeBase,
)
from fillreactor.simulator.channels import Pairs

FAST = 0.01  # simulated seconds run 100x faster
WAIT = 5.0  # the bound of every wait in these tests (real seconds); a hang fails, never stalls

# Timeouts small enough that every fault is seen within a few tenths of a second.
FAST_SETTINGS = LinkSettings(
    connect_timeout=0.5,
    login_timeout=0.5,
    fully_booted_timeout=0.3,
    action_timeout=1.0,
    resync_timeout=1.0,
    resync_retry_delay=0.02,
    ping_interval=0.05,
    ping_timeout=0.3,
    shutdown_probe_interval=0.05,
    reconnect_multiplier=0.02,
    reconnect_max=0.1,
    reconnect_reset_after=0.5,
)

# Calls that never end by themselves: their channels stay listed until the server stops.
LASTING = CallTiming(ring=1.0, talk=None, vdad_wait=None)


def originate_fields(number: str, call_id: str) -> dict[str, str]:
    """The headers of a VICIdial-style balance originate to the simulator's dialplan."""
    return {
        "Channel": f"Local/{number}@default",
        "Context": "default",
        "Exten": "8365",
        "Priority": "1",
        "Callerid": call_id,
        "Timeout": "30000",
    }


def sentinel(uniqueid: str) -> Pairs:
    """A Newstate of no real channel: once it reached the handler, everything sent before it has."""
    return [
        ("Event", "Newstate"),
        ("Privilege", "call,all"),
        ("Channel", f"SIP/sentinel-{uniqueid}"),
        ("ChannelState", "6"),
        ("ChannelStateDesc", "Up"),
        ("CallerIDNum", "<unknown>"),
        ("CallerIDName", "<unknown>"),
        ("ConnectedLineNum", "<unknown>"),
        ("ConnectedLineName", "<unknown>"),
        ("Language", "en"),
        ("AccountCode", ""),
        ("Context", "default"),
        ("Exten", "s"),
        ("Priority", "1"),
        ("Uniqueid", uniqueid),
        ("Linkedid", uniqueid),
    ]


SHUTDOWN_EVENT: Pairs = [
    ("Event", "Shutdown"),
    ("Privilege", "system,all"),
    ("Shutdown", "Cleanly"),
    ("Restart", "True"),
]


class TestAsterisk(SimulatedAsterisk):
    """The simulator plus emulated behaviours (see the module docstring); all off by default."""

    __test__ = False  # not a pytest test class

    def __init__(self, *args: object, filter_supported: bool = False, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.filter_supported = filter_supported
        self.shutting_down = False  # answer every action "Asterisk is shutting down"
        self.wrong_list_items = 0  # the next N CoreShowChannels report ListItems one too high
        self.no_coreshowchannels = False  # Asterisk 1.4: the action does not exist
        self.wire: dict[int, bytearray] = {}  # session id -> every byte written to it
        self.wire_in: dict[int, bytearray] = {}  # session id -> every action it received
        self.filters: dict[int, list[re.Pattern[bytes]]] = {}
        original = self.faults.apply_to_new_session

        def new_session(session: AmiSession) -> None:
            self._tee(session)
            original(session)

        self.faults.apply_to_new_session = new_session  # type: ignore[method-assign]

    # -- recording the wire ------------------------------------------------------------------------
    def _tee(self, session: AmiSession) -> None:
        buffer = self.wire.setdefault(session.id, bytearray())
        write = session.write_raw

        def write_raw(data: bytes) -> None:
            transport = session.writer.transport
            if transport is not None and not transport.is_closing():
                buffer.extend(data)
            write(data)

        session.write_raw = write_raw  # type: ignore[method-assign]

    def wire_events(self, session_id: int) -> list[Event]:
        """Every typed event written to one session, in order (the banner skipped)."""
        framer = AmiFramer()
        events = (normalise_raw(frame) for frame in framer.feed(bytes(self.wire[session_id])))
        return [event for event in events if event is not None]

    def wire_frames(self, session_id: int) -> list[AmiMessage]:
        framer = AmiFramer()
        return [AmiMessage.from_bytes(frame) for frame in framer.feed(bytes(self.wire[session_id]))]

    def actions_named(self, name: str) -> list[tuple[int, AmiMessage]]:
        """(session id, action) of every action with this name any session received, in order."""
        found = []
        for session_id, data in sorted(self.wire_in.items()):
            for frame in AmiFramer(expect_banner=False).feed(bytes(data)):
                message = AmiMessage.from_bytes(frame)
                if message.get("Action").lower() == name.lower():
                    found.append((session_id, message))
        return found

    # -- emulated behaviours ---------------------------------------------------------------------
    def _handle(self, session: AmiSession, message: AmiMessage) -> None:
        self.wire_in.setdefault(session.id, bytearray()).extend(message.to_bytes())
        if self.shutting_down:
            headers = {key.lower(): value for key, value in message.pairs}
            self._respond(session, headers.get("actionid"), "Error", ("Message", "Asterisk is shutting down"))
            self._wake()
            return
        super()._handle(session, message)

    def _action_filter(
        self, session: AmiSession, headers: dict[str, str], action_id: str | None, _m: AmiMessage
    ) -> None:
        if not self.filter_supported:
            self._respond(session, action_id, "Error", ("Message", "Invalid/unknown command: Filter."))
            return
        pattern = re.compile(headers.get("filter", "").encode())  # the link's pattern is also valid ERE
        self.filters.setdefault(session.id, []).append(pattern)
        self._respond(session, action_id, "Success", ("Message", "Success"))

    def _action_coreshowchannels(
        self, session: AmiSession, headers: dict[str, str], action_id: str | None, m: AmiMessage
    ) -> None:
        if self.no_coreshowchannels:
            message = "Invalid/unknown command: CoreShowChannels. "
            message += "Use Action: ListCommands to show available commands."
            self._respond(session, action_id, "Error", ("Message", message))
            return
        if not self.wrong_list_items:
            super()._action_coreshowchannels(session, headers, action_id, m)
            return
        self.wrong_list_items -= 1
        real = session.write_raw

        def one_too_many(data: bytes) -> None:
            match = re.search(rb"ListItems: (\d+)", data)
            if data.startswith(b"Event: CoreShowChannelsComplete") and match:
                data = data.replace(match.group(0), b"ListItems: %d" % (int(match.group(1)) + 1))
            real(data)

        session.write_raw = one_too_many  # type: ignore[method-assign]
        try:
            super()._action_coreshowchannels(session, headers, action_id, m)
        finally:
            session.write_raw = real  # type: ignore[method-assign]

    def emit(self, pairs: Pairs) -> None:
        """As the simulator's, but a session with include filters gets only what matches one."""
        if not self.filters:
            super().emit(pairs)
            return
        from fillreactor.core.message import encode_message
        from fillreactor.simulator.server import event_class

        klass = event_class(pairs)
        data = encode_message(pairs)
        for session in self.sessions:
            patterns = self.filters.get(session.id)
            if session.wants(klass) and (not patterns or any(p.search(data) for p in patterns)):
                session.events_sent += 1
                session.write_raw(data)
        self.event_log.append((self.events_emitted, AmiMessage.from_pairs(pairs)))
        self.events_emitted += 1
        self._wake()


def make_server(name: str = "dialer1", *, timing: CallTiming = LASTING, **kwargs: object) -> TestAsterisk:
    return TestAsterisk(
        ServerConfig(name=name), time=TimeBase(FAST), rules=OutcomeRules(timing=timing), **kwargs
    )


def target_of(server: SimulatedAsterisk, server_ip: str = "10.0.0.1", **changes: object) -> LinkTarget:
    fields: dict[str, object] = {
        "server": server_ip,
        "host": server.host,
        "port": server.port,
        "username": "cron",
        "secret": "1234",
    }
    fields.update(changes)
    return LinkTarget(**fields)  # type: ignore[arg-type]


# -- the recording handler -----------------------------------------------------------------------
@dataclass
class Seen:
    """One call to the handler, in order."""

    server: str
    event: Event | None = None
    read_at: float = 0.0
    change: LinkChange | None = None
    ready: bool | None = None  # the link's ``ready`` at the moment of the call


@dataclass
class Recorder:
    """A ``LinkHandler`` that records every call and lets tests await conditions over them."""

    links: dict[str, AmiLink] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    on_change: Callable[[str, LinkChange], None] | None = None
    _waiters: list[asyncio.Future[None]] = field(default_factory=list)

    def on_event(self, server: str, event: Event, read_at: float) -> None:
        link = self.links.get(server)
        self.seen.append(Seen(server, event=event, read_at=read_at, ready=link.ready if link else None))
        self._wake()

    def on_state(self, server: str, change: LinkChange) -> None:
        link = self.links.get(server)
        self.seen.append(Seen(server, change=change, ready=link.ready if link else None))
        if self.on_change is not None:
            self.on_change(server, change)
        self._wake()

    # -- reading -------------------------------------------------------------------------------
    def events(self, server: str | None = None) -> list[Event]:
        return [s.event for s in self.seen if s.event is not None and (server is None or s.server == server)]

    def changes(self, server: str | None = None, kind: LinkChangeKind | None = None) -> list[LinkChange]:
        return [
            s.change
            for s in self.seen
            if s.change is not None
            and (server is None or s.server == server)
            and (kind is None or s.change.kind is kind)
        ]

    def kinds(self, server: str | None = None) -> list[LinkChangeKind]:
        return [change.kind for change in self.changes(server)]

    def __iter__(self) -> Iterator[Seen]:
        return iter(self.seen)

    # -- waiting -------------------------------------------------------------------------------
    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def wait_for(self, condition: Callable[[], object], timeout: float = WAIT) -> None:
        """Return once ``condition()`` is true; re-checked after every handler call."""
        async with asyncio.timeout(timeout):
            while not condition():
                waiter = asyncio.get_running_loop().create_future()
                self._waiters.append(waiter)
                await waiter

    def count(self, server: str, kind: LinkChangeKind, *, accepted: bool | None = None) -> int:
        return sum(
            1 for change in self.changes(server, kind) if accepted is None or change.accepted is accepted
        )


class ModelRecorder(Recorder):
    """A Recorder that also drives a ``ChannelModel`` exactly as fillreactor.ami documents it."""

    def __init__(self) -> None:
        super().__init__()
        self.model = ChannelModel()
        self.disagreements: list[str] = []  # RESYNCED where model.dialable != link.ready

    def on_event(self, server: str, event: Event, read_at: float) -> None:
        self.model.apply(server, event, read_at)
        super().on_event(server, event, read_at)

    def on_state(self, server: str, change: LinkChange) -> None:
        kind = change.kind
        if kind is LinkChangeKind.RESYNC_STARTED:
            self.model.set_link(server, True, change.at)
            self.model.begin_snapshot(server, change.action_id, change.at)
        elif kind in (LinkChangeKind.SHUTTING_DOWN, LinkChangeKind.DOWN, LinkChangeKind.STOPPED):
            self.model.set_link(server, False, change.at)
        elif kind is LinkChangeKind.RESYNCED:
            link = self.links.get(server)
            if link is not None and self.model.dialable(server) != link.ready:
                self.disagreements.append(f"{server}: model {self.model.dialable(server)}, link {link.ready}")
        super().on_state(server, change)


def start_link(recorder: Recorder, target: LinkTarget, settings: LinkSettings = FAST_SETTINGS) -> AmiLink:
    link = AmiLink(target, recorder, settings)
    recorder.links[target.server] = link
    link.start()
    return link
