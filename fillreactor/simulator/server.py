"""One simulated Asterisk: an asyncio TCP server speaking AMI, its sessions and its live channels.

Rules this module keeps (spec/AMI.md A§4-6a, the captures in fixtures/asterisk22):

* Wire: banner ``Asterisk Call Manager/11.0.0`` + CRLF, then CRLF ``Key: Value`` blocks ended by an
  empty line. Frames are parsed whole with ``AmiFramer``; junk frames are ignored, as Asterisk does.
* Delivery (6a.6): every event is its own write, and a call yields to the event loop between two
  of its events (``pace``: once, or twice in ``PACE_SECOND_YIELD`` of the cases), so a reader gets
  a median of 2 messages per read, 45% single ones, as from a real server at 5 calls/s.
  ``delivery="burst"`` writes a phase's events back to back (the old behaviour).
  ``split_writes`` cuts the byte stream of each session at seeded, arbitrary offsets (pieces of
  1..``split_max_bytes``), one piece per loop iteration, as a WAN link may; bytes never reorder.
* A response is ``Response``, ``ActionID`` (when the action had one), then its fields. Action names
  and header names are case-insensitive; unknown headers (``VDACnote:``) are ignored.
* Before login only ``Login`` and ``Challenge`` are served; anything else gets ``Permission
  denied``. A failed login gets ``Authentication failed`` and the socket is closed. While the
  server shuts down every action gets ``Asterisk is shutting down`` (6a.1).
* A successful login answers ``Authentication accepted``, then sends the session ``FullyBooted``
  (``Uptime, LastReload, Status``) if the server is fully booted, then broadcasts
  ``SuccessfulAuth`` (security) to every session whose mask holds it (6a: every login on the
  server shows on every ``Events: on`` session). A login while the server boots gets no
  FullyBooted; the broadcast one at the end of the boot has ``Status`` first (6a.2).
* Every broadcast event has a class, the first word of its Privilege; a session receives it only
  if its mask (Login ``Events:``, or the ``Events`` action) holds that class or ``all``. Action
  replies and list rows go to the requesting session only, whatever its mask.
* ``timestamp_events`` adds ``Timestamp: <epoch>.<6 digits>`` as the third line of every broadcast
  event (6a.8); what is written straight to one session (the login-time FullyBooted, list rows,
  responses) has none.
* CoreShowChannels is atomic by default (the rows of one instant in creation order, written at
  once). With ``listing_row_interval`` set it spans events (6a.7): one row per interval of
  simulated time (0 = one per loop iteration), walking the channels in hash-bucket order as
  Asterisk's container iterator does (the captured listings are in that kind of order, not in
  creation order), each row the next unlisted channel live at that moment: other events interleave
  with the rows, channels hang up before or after their row, channels created meanwhile are listed
  when they land ahead of the walk, and the listing can show a set that never existed at one
  instant. ``ListItems`` is always the number of rows sent.
* Uniqueids are ``<epoch of creation>.<n>`` with a per-server counter from 0 (so a server's first
  channel after a boot is ``<boot epoch>.0``); Local channel sequence numbers are a second
  per-server counter. A reboot resets both, so channel names repeat across a restart (6a.1).
* Lifecycle ``state``: ``up`` -> ``shutting_down`` -> ``down`` -> ``booting`` -> ``up`` (faults:
  ``fillreactor.simulator.faults``). Only an ``up`` server places calls of its own dialer.
* State changes wake ``wait_until`` waiters: tests await conditions, never sleep.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import random
import zlib
from collections import deque
from collections.abc import Callable, Coroutine, Iterable
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
from fillreactor.simulator.records import PLACED, QUEUED, WAITING, OriginateRecord
from fillreactor.simulator.timebase import TimeBase

BANNER = "Asterisk Call Manager/11.0.0"
ALL_CLASSES = frozenset({"all"})
NO_CLASSES: frozenset[str] = frozenset()
_TRUE_WORDS = {"yes", "true", "y", "t", "1", "on"}
_session_ids = itertools.count(1)

UP = "up"
SHUTTING_DOWN = "shutting_down"
DOWN = "down"
BOOTING = "booting"
STATES = (UP, SHUTTING_DOWN, DOWN, BOOTING)
DELIVERIES = ("per_event", "burst")
SHUTTING_DOWN_MESSAGE = "Asterisk is shutting down"
CHANNEL_BUCKETS = 1567  # AST_NUM_CHANNEL_BUCKETS
# After an event a call yields to the loop once, or twice with this probability: a reader in the same
# loop then gets one message per read about 45% of the time and a median of 2 (measured, 6a.6).
PACE_SECOND_YIELD = 0.6


def _bucket(channel: Channel) -> int:
    """The channel's bucket in Asterisk's channel container (hashed by name; 1567 buckets)."""
    return zlib.crc32(channel.name.lower().encode()) % CHANNEL_BUCKETS


class ServerNotRunning(RuntimeError):
    """The server cannot place a call now (it is shutting down, down or booting)."""


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
    seed: int = 0  # every random choice of the server (orders, splits, shutdown spread) derives from it
    delivery: str = "per_event"  # or "burst"
    split_writes: bool = False
    split_max_bytes: int = 256
    timestamp_events: bool = False
    listing_row_interval: float | None = None  # simulated seconds per CoreShowChannel row; None = atomic
    # fault durations, simulated seconds (spec/AMI.md 6a.1-2); faults may override them per call
    shutdown_hangup_spread: float = 1.0
    shutdown_close_delay: float = 0.02
    restart_down_for: float = 2.0
    crash_down_for: float = 2.4
    boot_time: float = 0.2  # listening but not fully booted after a reboot (not measured)
    history_size: int = 10_000  # finished calls kept in ``history``

    def __post_init__(self) -> None:
        if self.delivery not in DELIVERIES:
            raise ValueError(f"delivery must be one of {DELIVERIES}, not {self.delivery!r}")
        if self.split_max_bytes < 1:
            raise ValueError("split_max_bytes must be at least 1")
        if self.listing_row_interval is not None and self.listing_row_interval < 0:
            raise ValueError("listing_row_interval cannot be negative")


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
        self.writes = 0
        self.actions: list[AmiMessage] = []
        self.events_sent = 0
        self.logged_in_at: float | None = None
        self._readable = asyncio.Event()
        self._readable.set()
        self._pending = bytearray()  # split_writes: bytes not written yet
        self._flush_scheduled = False
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
        if self.server.config.split_writes:
            self._pending += data
            self._schedule_flush()
            return
        self.writes += 1
        self.writer.write(data)

    # -- split writes: one piece per loop iteration ---------------------------------------------
    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush_piece)

    def _flush_piece(self) -> None:
        self._flush_scheduled = False
        transport = self.writer.transport
        if not self._pending or transport is None or transport.is_closing():
            self._pending.clear()
            return
        size = self.server.rng.randint(1, self.server.config.split_max_bytes)
        piece = bytes(self._pending[:size])
        del self._pending[:size]
        self.writes += 1
        self.writer.write(piece)
        if self._pending:
            self._schedule_flush()

    def _flush_all(self) -> None:
        transport = self.writer.transport
        if self._pending and transport is not None and not transport.is_closing():
            self.writes += 1
            self.writer.write(bytes(self._pending))
        self._pending.clear()

    def abort(self) -> None:
        self.closing = True
        self._pending.clear()
        self._readable.set()  # let the read loop see the close
        if self.writer.transport is not None:
            self.writer.transport.abort()

    def close(self) -> None:
        self.closing = True
        self._flush_all()
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
        self.rng = random.Random(f"{self.config.seed}:{self.name}")
        self._pace_rng = random.Random(f"{self.config.seed}:{self.name}:pace")  # apart: it draws per event
        self.sessions: list[AmiSession] = []
        self.channels: dict[str, Channel] = {}
        self.calls: list[SimulatedCall] = []
        self.history: deque[SimulatedCall] = deque(maxlen=self.config.history_size)
        self.originates: list[OriginateRecord] = []
        self.faults = FaultInjector(self)
        self.port = self.config.port
        self.started_at = self.time.now()
        self.boot_epoch = int(self.started_at)
        self.state = DOWN
        self.fully_booted = False
        self.boots = 0
        self.uniqueid_counter = 0
        self.sequence_counter = 0
        self.restarts = 0
        self.logins = 0
        self.failed_logins = 0
        self.calls_started = 0
        self.calls_finished = 0
        self.events_emitted = 0
        self.cancel_reason = "stopped"  # what a call cancelled now records as ``ended_by``
        self.event_log: deque[tuple[int, AmiMessage]] = deque(maxlen=self.config.event_log_size)
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._waiters: list[asyncio.Future[None]] = []
        self._boot_task: asyncio.Task[None] | None = None

    # -- lifecycle --------------------------------------------------------------------------------
    @property
    def host(self) -> str:
        return self.config.host

    @property
    def address(self) -> tuple[str, int]:
        return self.config.host, self.port

    @property
    def accepting_calls(self) -> bool:
        """The server's own dialer may place calls (``place_call``): only when up."""
        return self.state == UP

    async def start(self) -> None:
        """Listen and be fully booted at once (the first start of a test server)."""
        await self._listen()
        self.boots += 1
        self.started_at = self.time.now()
        self.boot_epoch = int(self.started_at)
        self.fully_booted = True
        self._set_state(UP)

    async def stop(self) -> None:
        await self.faults.cancel_outages()
        await self._shut_down()
        self._set_state(DOWN)

    async def restart(self) -> None:
        """The old instant restart: close everything, forget channels and counters, listen again.

        Calls vanish without events and the port is back within a millisecond; for what a real
        restart does, use ``faults.graceful_shutdown(restart=True)`` or ``faults.crash()``.
        """
        self.cancel_reason = "restart"
        await self._shut_down()
        self._reset_counters()
        self.restarts += 1
        await self.start()
        self._wake()

    def _reset_counters(self) -> None:
        self.uniqueid_counter = 0
        self.sequence_counter = 0

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.config.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _stop_listening(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _shut_down(self) -> None:
        if self._boot_task is not None:
            self._boot_task.cancel()
            await asyncio.gather(self._boot_task, return_exceptions=True)
            self._boot_task = None
        if self._server is not None:
            self._server.close()
        for session in list(self.sessions):
            session.abort()
        await self._cancel_calls(self.cancel_reason)
        if self._handlers:
            await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._stop_listening()
        self.calls.clear()
        self.channels.clear()
        self.fully_booted = False

    async def _cancel_calls(self, reason: str) -> None:
        self.cancel_reason = reason
        calls = [call for call in self.calls if call.task is not None]
        for call in calls:
            call.task.cancel()  # type: ignore[union-attr]
        await asyncio.gather(*(call.task for call in calls if call.task), return_exceptions=True)
        self.cancel_reason = "stopped"

    def _set_state(self, state: str) -> None:
        self.state = state
        self._wake()

    async def _boot(self, boot_time: float) -> None:
        """Listen again after an outage: counters reset, not fully booted for ``boot_time``."""
        self._reset_counters()
        self.restarts += 1
        self.boots += 1
        self.started_at = self.time.now()
        self.boot_epoch = int(self.started_at)
        self.fully_booted = False
        await self._listen()
        self._set_state(BOOTING)
        if boot_time > 0:
            await self.time.sleep(boot_time)
        self.fully_booted = True
        self._set_state(UP)
        self.emit(self._fully_booted(broadcast=True))

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

    async def wait_state(self, *states: str) -> None:
        """Return once the server is in one of ``states`` (up, shutting_down, down, booting)."""
        unknown = set(states) - set(STATES)
        if unknown:
            raise ValueError(f"unknown server states {sorted(unknown)}")
        await self.wait_until(lambda: self.state in states)

    async def wait_up(self) -> None:
        """Return once the server is up (listening and fully booted)."""
        await self.wait_state(UP)

    async def wait_down(self) -> None:
        """Return once the server refuses connections."""
        await self.wait_state(DOWN)

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

    # -- records ----------------------------------------------------------------------------------
    def live_calls(self) -> list[SimulatedCall]:
        """Calls with at least one live channel."""
        return [call for call in self.calls if call.channels]

    def live_call_ids(self) -> set[str]:
        """The CallerIDName (VICIdial call id) of every call with a live channel."""
        return {call.call_id for call in self.live_calls() if call.call_id}

    def live_channel_names(self) -> set[str]:
        return set(self.channels)

    def call_by_id(self, call_id: str) -> SimulatedCall | None:
        """The latest call (live or finished) whose CallerIDName is ``call_id``."""
        for call in reversed([*self.history, *self.calls]):
            if call.call_id == call_id:
                return call
        return None

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
        self._wake()

    def remove_channel(self, channel: Channel) -> None:
        self.channels.pop(channel.name, None)
        self._wake()

    async def pace(self) -> None:
        """Between two events of a call: let readers run (one write per event, 6a.6)."""
        if self.config.delivery == "per_event":
            await asyncio.sleep(0)
            if self._pace_rng.random() < PACE_SECOND_YIELD:
                await asyncio.sleep(0)

    def emit(self, pairs: Pairs) -> None:
        """Broadcast one event to every session whose mask holds its class."""
        if self.config.timestamp_events and len(pairs) > 1 and pairs[1][0] == "Privilege":
            pairs = [pairs[0], pairs[1], ("Timestamp", f"{self.time.now():.6f}"), *pairs[2:]]
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
        index = self.calls_started
        call = SimulatedCall(
            self,
            request,
            outcome,
            timing,
            send_originate_response=send_originate_response,
            placed_by_dialer=by_dialer,
            orders=self.rules.orders,
            rng=random.Random(f"{self.config.seed}:{self.name}:{self.boots}:{index}"),
            index=index,
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
        """A call placed by this server's own dialer (not through a client session).

        Raises ``ServerNotRunning`` unless the server is up.
        """
        if not self.accepting_calls:
            raise ServerNotRunning(f"{self.name} is {self.state}")
        request = OriginateRequest(
            channel=f"Local/{number}@{context}",
            exten=exten,
            context="default",
            callerid=callerid,
            timeout=timeout,
            action_id=action_id,
            is_async=True,
        )
        call = self.originate(request, send_originate_response=True, by_dialer=True)
        self._record_originate(None, request, PLACED, call)
        return call

    def _record_originate(
        self, session: AmiSession | None, request: OriginateRequest, answer: str, call: SimulatedCall | None
    ) -> None:
        self.originates.append(
            OriginateRecord(
                received_at=self.time.now(),
                boot=self.boots,
                session_id=None if session is None else session.id,
                action_id=request.action_id,
                channel=request.channel,
                exten=request.exten,
                context=request.context,
                callerid=request.callerid,
                is_async=request.is_async,
                answer=answer,
                call=call,
            )
        )

    def _call_done(self, call: SimulatedCall) -> None:
        if call in self.calls:
            self.calls.remove(call)
            self.calls_finished += 1
        self.history.append(call)
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
            session._flush_all()
            writer.close()
            try:
                await writer.wait_closed()
            except (ConnectionError, OSError):
                pass
            session.closed.set()
            if task is not None:
                self._handlers.discard(task)
            self._wake()

    def _spawn(self, coroutine: Coroutine[object, object, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._handlers.add(task)
        task.add_done_callback(self._handlers.discard)

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
        if self.state == SHUTTING_DOWN:
            if name == "originate":
                request = self._request(headers, action_id, message)
                self._record_originate(session, request, SHUTTING_DOWN_MESSAGE, None)
            self._respond(session, action_id, "Error", ("Message", SHUTTING_DOWN_MESSAGE))
            return
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
        session.challenge = str(self.rng.randint(100_000_000, 999_999_999))
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
        session.logged_in_at = self.time.now()
        self.logins += 1
        self._respond(session, action_id, "Success", ("Message", "Authentication accepted"))
        if self.fully_booted:  # written to this session only: no Timestamp, no filter
            self._send_if_wanted(session, self._fully_booted())
        self.emit(self._successful_auth(session))

    def _send_if_wanted(self, session: AmiSession, pairs: Pairs) -> None:
        if session.wants(event_class(pairs)):
            session.events_sent += 1
            session.send(pairs)

    def _fully_booted(self, *, broadcast: bool = False) -> Pairs:
        uptime = str(max(0, int(self.time.now() - self.started_at)))
        head: Pairs = [("Event", "FullyBooted"), ("Privilege", "system,all")]
        if broadcast:  # the event at the end of a boot: Status first (6a.2)
            return [*head, ("Status", "Fully Booted"), ("Uptime", uptime), ("LastReload", uptime)]
        return [*head, ("Uptime", uptime), ("LastReload", uptime), ("Status", "Fully Booted")]

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

    def shutdown_event(self, restart: bool) -> Pairs:
        return [
            ("Event", "Shutdown"),
            ("Privilege", "system,all"),
            ("Shutdown", "Cleanly"),
            ("Restart", "True" if restart else "False"),
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
        if self.config.listing_row_interval is not None:
            self._spawn(self._spanning_listing(session, action_id or "", self.config.listing_row_interval))
            return
        now = self.time.now()
        channels = self._list_channels()
        for channel in channels:
            session.send(core_show_channel_row(channel, action_id or "", now))
        self._list_complete(session, action_id or "", len(channels))

    def _list_complete(self, session: AmiSession, action_id: str, count: int) -> None:
        session.send(
            [
                ("Event", "CoreShowChannelsComplete"),
                ("ActionID", action_id),
                ("EventList", "Complete"),
                ("ListItems", str(count)),
            ]
        )

    async def _spanning_listing(self, session: AmiSession, action_id: str, interval: float) -> None:
        """A listing that spans events (6a.7), walking the channels as Asterisk's hash container does.

        Each row is the next unlisted channel live now, in bucket order from the bucket of the last
        row on: a channel created meanwhile is listed if it lands in a bucket not passed yet, a
        channel that hangs up before its turn is not, and the walk always ends.
        """
        listed: set[str] = set()  # uniqueids
        cursor = 0
        rows = 0
        try:
            while not session.closing:
                ahead = [
                    c for c in self.channels.values() if c.uniqueid not in listed and _bucket(c) >= cursor
                ]
                if not ahead:
                    break
                channel = min(ahead, key=_bucket)
                cursor = _bucket(channel)
                listed.add(channel.uniqueid)
                session.send(core_show_channel_row(channel, action_id, self.time.now()))
                rows += 1
                if interval > 0:
                    await self.time.sleep(interval)
                else:
                    await asyncio.sleep(0)
        finally:
            self._list_complete(session, action_id, rows)

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
        raw_cause = headers.get("cause", "").strip()
        cause: int | None
        try:
            cause = int(raw_cause) if raw_cause else None
        except ValueError:
            cause = None
        self._respond(session, action_id, "Success", ("Message", "Channel Hungup"))
        call.request_hangup(cause, target=name)

    @staticmethod
    def _request(headers: dict[str, str], action_id: str | None, m: AmiMessage) -> OriginateRequest:
        try:
            timeout = int(headers.get("timeout", "") or DEFAULT_ORIGINATE_TIMEOUT * 1000) / 1000
        except ValueError:
            timeout = -1.0  # refused below
        return OriginateRequest(
            channel=headers.get("channel", ""),
            exten=headers.get("exten", ""),
            context=headers.get("context", ""),
            priority=headers.get("priority", "1"),
            callerid=headers.get("callerid", ""),
            timeout=timeout,
            action_id=action_id,
            is_async=headers.get("async", "").strip().lower() in _TRUE_WORDS,
            variables=[value for key, value in m.pairs if key.lower() == "variable"],
        )

    def _action_originate(
        self, session: AmiSession, headers: dict[str, str], action_id: str | None, m: AmiMessage
    ):
        request = self._request(headers, action_id, m)
        problem = ""
        if not request.channel:
            problem = "Channel not specified"
        elif "/" not in request.channel:
            problem = "Invalid channel"
        elif request.timeout < 0:
            problem = "Invalid timeout"
        if problem:
            self._record_originate(session, request, problem, None)
            self._respond(session, action_id, "Error", ("Message", problem))
            return
        if request.is_async:
            self._respond(session, action_id, "Success", ("Message", "Originate successfully queued"))
            call = self.originate(request, send_originate_response=True)
            self._record_originate(session, request, QUEUED, call)
            return
        # without Async the reply waits for the outcome, and there is no OriginateResponse event
        call = self.originate(request, send_originate_response=False)
        self._record_originate(session, request, WAITING, call)
        self._spawn(self._answer_sync_originate(session, call, action_id))

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
