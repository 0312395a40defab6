"""One simulated Asterisk: an asyncio TCP server speaking AMI, its sessions and its live channels.

Rules this module keeps (spec/AMI.md A§4-6, the captures in fixtures/asterisk22):

* Wire: banner ``Asterisk Call Manager/11.0.0`` + CRLF, then CRLF ``Key: Value`` blocks ended by an
  empty line. Frames are parsed whole with ``AmiFramer``; junk frames are ignored, as Asterisk does.
* A response is ``Response``, ``ActionID`` (when the action had one), then its fields. Action names
  and header names are case-insensitive; unknown headers (``VDACnote:``) are ignored.
* Before login only ``Login`` and ``Challenge`` are served; anything else gets ``Permission
  denied``. A failed login gets ``Authentication failed`` and the socket is closed.
* A successful login answers ``Authentication accepted`` then sends ``FullyBooted`` (system) and
  ``SuccessfulAuth`` (security), each subject to the session's event mask.
* Every broadcast event has a class, the first word of its Privilege; a session receives it only
  if its mask (Login ``Events:``, or the ``Events`` action) holds that class or ``all``. Action
  replies and list rows go to the requesting session only, whatever its mask.
* Uniqueids are ``<epoch>.<n>`` with a per-server counter from 0; Local channel sequence numbers
  are a second per-server counter. ``restart`` resets both, like a restarted Asterisk.
* State changes wake ``wait_until`` waiters: tests await conditions, never sleep.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import random
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from fillreactor.core.message import AmiFramer, AmiMessage, MalformedMessage, encode_message
from fillreactor.simulator.calls import OriginateRequest, SimulatedCall
from fillreactor.simulator.channels import (
    Channel,
    Pairs,
    concise_line,
    core_show_channel_row,
    status_row,
)
from fillreactor.simulator.outcomes import DEFAULT_ORIGINATE_TIMEOUT, OutcomeRules
from fillreactor.simulator.timebase import TimeBase

BANNER = "Asterisk Call Manager/11.0.0"
ALL_CLASSES = frozenset({"all"})
NO_CLASSES: frozenset[str] = frozenset()
_TRUE_WORDS = {"yes", "true", "y", "t", "1", "on"}
_session_ids = itertools.count(1)


def parse_event_mask(value: str | None) -> frozenset[str]:
    """An ``Events:``/``EventMask:`` value as a set of classes (``all`` = every class)."""
    if value is None:
        return ALL_CLASSES
    text = value.strip().lower()
    if text in ("on", "yes", "true", "all", "1"):
        return ALL_CLASSES
    if text in ("off", "no", "false", "0", ""):
        return NO_CLASSES
    return frozenset(part.strip() for part in text.split(",") if part.strip())


def event_class(pairs: Pairs) -> str | None:
    for key, value in pairs:
        if key == "Privilege":
            return value.split(",", 1)[0].strip().lower()
    return None


@dataclass
class ServerConfig:
    name: str = "dialer1"
    host: str = "127.0.0.1"
    port: int = 0
    users: dict[str, str] = field(default_factory=lambda: {"cron": "1234"})
    banner: str = BANNER
    event_log_size: int = 100_000
    read_chunk: int = 65536


class AmiSession:
    """One client connection. Fault switches (``silent``, slow reads) are per session."""

    def __init__(self, server: SimulatedAsterisk, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.server = server
        self.id = next(_session_ids)
        self.reader = reader
        self.writer = writer
        self.peer: tuple[str, int] = writer.get_extra_info("peername") or ("?", 0)
        self.authenticated = False
        self.username: str | None = None
        self.event_mask: frozenset[str] = ALL_CLASSES
        self.challenge: str | None = None
        self.read_chunk = server.config.read_chunk
        self.read_delay = 0.0  # simulated seconds between reads (slow reader)
        self.banner_sent = False
        self.closing = False
        self.bytes_in = 0
        self.bytes_out = 0
        self.actions: list[AmiMessage] = []
        self.events_sent = 0
        self._readable = asyncio.Event()
        self._readable.set()
        self.closed = asyncio.Event()

    @property
    def silent(self) -> bool:
        return not self._readable.is_set()

    def set_silent(self, silent: bool) -> None:
        if silent:
            self._readable.clear()
        else:
            self._readable.set()
            if not self.banner_sent:
                self.send_banner()

    def wants(self, klass: str | None) -> bool:
        if not self.authenticated or self.silent or self.closing:
            return False
        return "all" in self.event_mask or (klass is not None and klass in self.event_mask)

    def send_banner(self) -> None:
        self.banner_sent = True
        self.write_raw(self.server.config.banner.encode() + b"\r\n")

    def send(self, pairs: Pairs) -> None:
        if not self.silent:
            self.write_raw(encode_message(pairs))

    def write_raw(self, data: bytes) -> None:
        transport = self.writer.transport
        if transport is None or transport.is_closing():
            return
        self.bytes_out += len(data)
        self.writer.write(data)

    def abort(self) -> None:
        self.closing = True
        self._readable.set()  # let the read loop see the close
        if self.writer.transport is not None:
            self.writer.transport.abort()

    def close(self) -> None:
        self.closing = True
        self._readable.set()
        self.writer.close()


class SimulatedAsterisk:
    """A simulated Asterisk 22 AMI endpoint with Local-channel calls. Use ``async with``."""

    def __init__(
        self,
        config: ServerConfig | None = None,
        *,
        time: TimeBase | None = None,
        rules: OutcomeRules | None = None,
    ) -> None:
        from fillreactor.simulator.faults import FaultInjector  # faults reach into this module

        self.config = config or ServerConfig()
        self.name = self.config.name
        self.time = time or TimeBase()
        self.rules = rules or OutcomeRules()
        self.sessions: list[AmiSession] = []
        self.channels: dict[str, Channel] = {}
        self.calls: list[SimulatedCall] = []
        self.faults = FaultInjector(self)
        self.port = self.config.port
        self.started_at = self.time.now()
        self.uniqueid_counter = 0
        self.sequence_counter = 0
        self.restarts = 0
        self.logins = 0
        self.failed_logins = 0
        self.calls_started = 0
        self.calls_finished = 0
        self.events_emitted = 0
        self.event_log: deque[tuple[int, AmiMessage]] = deque(maxlen=self.config.event_log_size)
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._waiters: list[asyncio.Future[None]] = []

    # -- lifecycle --------------------------------------------------------------------------------
    @property
    def host(self) -> str:
        return self.config.host

    @property
    def address(self) -> tuple[str, int]:
        return self.config.host, self.port

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.config.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        self.started_at = self.time.now()

    async def stop(self) -> None:
        await self._shut_down()

    async def restart(self) -> None:
        """Close everything, forget channels and counters, listen again on the same port."""
        await self._shut_down()
        self.uniqueid_counter = 0
        self.sequence_counter = 0
        self.restarts += 1
        await self.start()
        self._wake()

    async def _shut_down(self) -> None:
        if self._server is not None:
            self._server.close()
        for session in list(self.sessions):
            session.abort()
        calls = [call for call in self.calls if call.task is not None]
        for call in calls:
            call.task.cancel()  # type: ignore[union-attr]
        await asyncio.gather(*(call.task for call in calls if call.task), return_exceptions=True)
        if self._handlers:
            await asyncio.gather(*self._handlers, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        self.calls.clear()
        self.channels.clear()

    async def __aenter__(self) -> SimulatedAsterisk:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # -- waiting ----------------------------------------------------------------------------------
    def notify(self) -> None:
        """Re-check every ``wait_until`` condition: for state kept outside the server (e.g. the load)."""
        self._wake()

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def wait_until(self, condition: Callable[[], bool]) -> None:
        """Return once ``condition()`` holds; re-checked on every state change and event."""
        while not condition():
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter

    def mark(self) -> int:
        """A position in the event stream, for ``wait_for_event(since=...)``."""
        return self.events_emitted

    def events_since(self, mark: int) -> list[AmiMessage]:
        return [message for index, message in self.event_log if index >= mark]

    async def wait_for_event(self, predicate: Callable[[AmiMessage], bool], *, since: int = 0) -> AmiMessage:
        """The first broadcast event at or after ``since`` that matches ``predicate``."""
        found: list[AmiMessage] = []

        def seen() -> bool:
            for message in self.events_since(since):
                if predicate(message):
                    found.append(message)
                    return True
            return False

        await self.wait_until(seen)
        return found[0]

    async def wait_calls_finished(self) -> None:
        await self.wait_until(lambda: not self.calls)

    async def wait_for_sessions(self, count: int, *, authenticated: bool = True) -> None:
        await self.wait_until(
            lambda: sum(1 for s in self.sessions if s.authenticated or not authenticated) >= count
        )

    # -- state used by calls ----------------------------------------------------------------------
    def new_uniqueid(self) -> str:
        uniqueid = f"{int(self.time.now())}.{self.uniqueid_counter}"
        self.uniqueid_counter += 1
        return uniqueid

    def new_local_sequence(self) -> int:
        sequence = self.sequence_counter
        self.sequence_counter += 1
        return sequence

    def add_channel(self, channel: Channel) -> None:
        self.channels[channel.name] = channel

    def remove_channel(self, channel: Channel) -> None:
        self.channels.pop(channel.name, None)

    def live_calls(self) -> list[SimulatedCall]:
        return [call for call in self.calls if call.channels]

    def emit(self, pairs: Pairs) -> None:
        """Broadcast one event to every session whose mask holds its class."""
        klass = event_class(pairs)
        data = encode_message(pairs)
        for session in self.sessions:
            if session.wants(klass):
                session.events_sent += 1
                session.write_raw(data)
        self.event_log.append((self.events_emitted, AmiMessage.from_pairs(pairs)))
        self.events_emitted += 1
        self._wake()

    # -- placing calls ----------------------------------------------------------------------------
    def originate(
        self, request: OriginateRequest, *, send_originate_response: bool, by_dialer: bool = False
    ) -> SimulatedCall:
        """Start a call for ``request`` (from AMI or from the server's own dialer)."""
        outcome = self.rules.outcome_for(request.number, request.dial_context)
        timing = self.rules.timing_for(request.number)
        call = SimulatedCall(
            self,
            request,
            outcome,
            timing,
            send_originate_response=send_originate_response,
            placed_by_dialer=by_dialer,
        )
        self.calls.append(call)
        self.calls_started += 1
        task = call.start()
        task.add_done_callback(lambda _task: self._call_done(call))
        return call

    def place_call(
        self,
        number: str,
        callerid: str,
        *,
        context: str = "default",
        exten: str = "8365",
        timeout: float = 60.0,
        action_id: str | None = None,
    ) -> SimulatedCall:
        """A call placed by this server's own dialer (not through a client session)."""
        request = OriginateRequest(
            channel=f"Local/{number}@{context}",
            exten=exten,
            context="default",
            callerid=callerid,
            timeout=timeout,
            action_id=action_id,
            is_async=True,
        )
        return self.originate(request, send_originate_response=True, by_dialer=True)

    def _call_done(self, call: SimulatedCall) -> None:
        if call in self.calls:
            self.calls.remove(call)
            self.calls_finished += 1
        self._wake()

    # -- sessions ---------------------------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        session = AmiSession(self, reader, writer)
        self.sessions.append(session)
        self.faults.apply_to_new_session(session)
        if not session.silent:
            session.send_banner()
        self._wake()
        framer = AmiFramer(expect_banner=False)
        try:
            while not session.closing:
                await session._readable.wait()
                if session.closing:
                    break
                data = await reader.read(session.read_chunk)
                if not data:
                    break
                session.bytes_in += len(data)
                for frame in framer.feed(data):
                    await session._readable.wait()  # gone silent: stop answering
                    if session.closing:
                        break
                    try:
                        message = AmiMessage.from_bytes(frame)
                    except MalformedMessage:
                        continue
                    self._handle(session, message)
                if session.read_delay:
                    await self.time.sleep(session.read_delay)
        except (ConnectionError, OSError):
            pass
        finally:
            if session in self.sessions:
                self.sessions.remove(session)
            session.closing = True
            writer.close()
            try:
                await writer.wait_closed()
            except (ConnectionError, OSError):
                pass
            session.closed.set()
            if task is not None:
                self._handlers.discard(task)
            self._wake()

    # -- actions ----------------------------------------------------------------------------------
    def _handle(self, session: AmiSession, message: AmiMessage) -> None:
        headers = {key.lower(): value for key, value in reversed(message.pairs)}
        session.actions.append(message)
        action = headers.get("action", "").strip()
        action_id = headers.get("actionid")
        if not action:
            self._respond(session, action_id, "Error", ("Message", "Missing action in request"))
            return
        name = action.lower()
        if not session.authenticated and name not in ("login", "challenge"):
            self._respond(session, action_id, "Error", ("Message", "Permission denied"))
            return
        handler = getattr(self, f"_action_{name}", None)
        if handler is None:
            message_text = (
                f"Invalid/unknown command: {action}. Use Action: ListCommands to show available commands."
            )
            self._respond(session, action_id, "Error", ("Message", message_text))
            return
        handler(session, headers, action_id, message)
        self._wake()

    def _respond(
        self, session: AmiSession, action_id: str | None, response: str, *fields: tuple[str, str]
    ) -> None:
        pairs: Pairs = [("Response", response)]
        if action_id is not None:
            pairs.append(("ActionID", action_id))
        session.send(pairs + list(fields))

    def _action_challenge(
        self, session: AmiSession, headers: dict[str, str], action_id: str | None, _m: AmiMessage
    ):
        if headers.get("authtype", "").lower() != "md5":
            self._respond(session, action_id, "Error", ("Message", "Must specify AuthType"))
            return
        session.challenge = str(random.randint(100_000_000, 999_999_999))
        self._respond(session, action_id, "Success", ("Challenge", session.challenge))

    def _action_login(
        self, session: AmiSession, headers: dict[str, str], action_id: str | None, _m: AmiMessage
    ):
        username = headers.get("username", "")
        secret = self.config.users.get(username)
        if headers.get("authtype", "").lower() == "md5":
            expected = (
                hashlib.md5((session.challenge + secret).encode()).hexdigest()
                if secret is not None and session.challenge is not None
                else None
            )
            ok = expected is not None and headers.get("key", "").lower() == expected
        else:
            ok = secret is not None and headers.get("secret") == secret
        if not ok:
            self.failed_logins += 1
            self._respond(session, action_id, "Error", ("Message", "Authentication failed"))
            session.close()  # Asterisk hangs up on a failed login
            return
        session.authenticated = True
        session.username = username
        session.event_mask = parse_event_mask(headers.get("events"))
        self.logins += 1
        self._respond(session, action_id, "Success", ("Message", "Authentication accepted"))
        self._send_if_wanted(session, self._fully_booted())
        self._send_if_wanted(session, self._successful_auth(session))

    def _send_if_wanted(self, session: AmiSession, pairs: Pairs) -> None:
        if session.wants(event_class(pairs)):
            session.events_sent += 1
            session.send(pairs)

    def _fully_booted(self) -> Pairs:
        uptime = str(max(0, int(self.time.now() - self.started_at)))
        return [
            ("Event", "FullyBooted"),
            ("Privilege", "system,all"),
            ("Uptime", uptime),
            ("LastReload", uptime),
            ("Status", "Fully Booted"),
        ]

    def _successful_auth(self, session: AmiSession) -> Pairs:
        stamp = datetime.fromtimestamp(self.time.now(), UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"
        return [
            ("Event", "SuccessfulAuth"),
            ("Privilege", "security,all"),
            ("EventTV", stamp),
            ("Severity", "Informational"),
            ("Service", "AMI"),
            ("EventVersion", "1"),
            ("AccountID", session.username or ""),
            ("SessionID", f"0x{0x7FC718000000 + session.id * 0x10:x}"),
            ("LocalAddress", f"IPV4/TCP/{self.config.host}/{self.port}"),
            ("RemoteAddress", f"IPV4/TCP/{session.peer[0]}/{session.peer[1]}"),
            ("UsingPassword", "0"),
            ("SessionTV", stamp),
        ]

    def _action_logoff(self, session: AmiSession, _h: dict[str, str], action_id: str | None, _m: AmiMessage):
        self._respond(session, action_id, "Goodbye", ("Message", "Thanks for all the fish."))
        session.close()

    def _action_ping(self, session: AmiSession, _h: dict[str, str], action_id: str | None, _m: AmiMessage):
        self._respond(
            session, action_id, "Success", ("Ping", "Pong"), ("Timestamp", f"{self.time.now():.6f}")
        )

    def _action_events(
        self, session: AmiSession, headers: dict[str, str], action_id: str | None, _m: AmiMessage
    ):
        session.event_mask = parse_event_mask(headers.get("eventmask", "off"))
        state = "On" if session.event_mask else "Off"
        self._respond(session, action_id, "Success", ("Events", state))

    def _list_channels(self, names: Iterable[str] | None = None) -> list[Channel]:
        channels = list(self.channels.values())
        if names is not None:
            wanted = set(names)
            channels = [channel for channel in channels if channel.name in wanted]
        return channels

    def _action_coreshowchannels(self, session: AmiSession, _h: dict[str, str], action_id: str | None, _m):
        self._respond(
            session, action_id, "Success", ("EventList", "start"), ("Message", "Channels will follow")
        )
        now = self.time.now()
        channels = self._list_channels()
        for channel in channels:
            session.send(core_show_channel_row(channel, action_id or "", now))
        session.send(
            [
                ("Event", "CoreShowChannelsComplete"),
                ("ActionID", action_id or ""),
                ("EventList", "Complete"),
                ("ListItems", str(len(channels))),
            ]
        )

    def _action_status(
        self, session: AmiSession, headers: dict[str, str], action_id: str | None, _m: AmiMessage
    ):
        wanted = headers.get("channel")
        if wanted and wanted not in self.channels:
            self._respond(session, action_id, "Error", ("Message", "No such channel"))
            return
        channels = self._list_channels([wanted] if wanted else None)
        self._respond(
            session, action_id, "Success", ("EventList", "start"), ("Message", "Channel status will follow")
        )
        now = self.time.now()
        for channel in channels:
            session.send(status_row(channel, action_id or "", now))
        count = str(len(channels))
        session.send(
            [
                ("Event", "StatusComplete"),
                ("ActionID", action_id or ""),
                ("EventList", "Complete"),
                ("ListItems", count),
                ("Items", count),
            ]
        )

    def _action_command(
        self, session: AmiSession, headers: dict[str, str], action_id: str | None, _m: AmiMessage
    ):
        command = " ".join(headers.get("command", "").split())
        fields: list[tuple[str, str]] = [("Message", "Command output follows")]
        if command == "core show channels concise":
            now = self.time.now()
            fields += [("Output", concise_line(channel, now)) for channel in self._list_channels()]
        else:
            fields.append(
                ("Output", f"No such command '{command}' (type 'core show help {command}' for help)")
            )
        self._respond(session, action_id, "Success", *fields)

    def _action_hangup(
        self, session: AmiSession, headers: dict[str, str], action_id: str | None, _m: AmiMessage
    ):
        name = headers.get("channel", "")
        if not name:
            self._respond(session, action_id, "Error", ("Message", "No channel specified"))
            return
        call = next((call for call in self.calls if call.owns(name)), None)
        if call is None:
            self._respond(session, action_id, "Error", ("Message", "No such channel"))
            return
        try:
            cause = int(headers.get("cause", "16") or 16)
        except ValueError:
            cause = 16
        self._respond(session, action_id, "Success", ("Message", "Channel Hungup"))
        call.request_hangup(cause)

    def _action_originate(
        self, session: AmiSession, headers: dict[str, str], action_id: str | None, m: AmiMessage
    ):
        channel = headers.get("channel", "")
        if not channel:
            self._respond(session, action_id, "Error", ("Message", "Channel not specified"))
            return
        if "/" not in channel:
            self._respond(session, action_id, "Error", ("Message", "Invalid channel"))
            return
        try:
            timeout = int(headers.get("timeout", "") or DEFAULT_ORIGINATE_TIMEOUT * 1000) / 1000
        except ValueError:
            self._respond(session, action_id, "Error", ("Message", "Invalid timeout"))
            return
        request = OriginateRequest(
            channel=channel,
            exten=headers.get("exten", ""),
            context=headers.get("context", ""),
            priority=headers.get("priority", "1"),
            callerid=headers.get("callerid", ""),
            timeout=timeout,
            action_id=action_id,
            is_async=headers.get("async", "").strip().lower() in _TRUE_WORDS,
            variables=[value for key, value in m.pairs if key.lower() == "variable"],
        )
        if request.is_async:
            self._respond(session, action_id, "Success", ("Message", "Originate successfully queued"))
            self.originate(request, send_originate_response=True)
            return
        # without Async the reply waits for the outcome, and there is no OriginateResponse event
        call = self.originate(request, send_originate_response=False)
        task = asyncio.get_running_loop().create_task(self._answer_sync_originate(session, call, action_id))
        self._handlers.add(task)
        task.add_done_callback(self._handlers.discard)

    async def _answer_sync_originate(
        self, session: AmiSession, call: SimulatedCall, action_id: str | None
    ) -> None:
        try:
            reason = await call.result
        except asyncio.CancelledError:
            return
        if reason == 4:
            self._respond(session, action_id, "Success", ("Message", "Originate successfully queued"))
        else:
            self._respond(session, action_id, "Error", ("Message", "Originate failed"))
