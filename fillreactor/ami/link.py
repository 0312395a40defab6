"""One AMI link per Asterisk server: connect, log in, resync, stay alive, reconnect, originate.

Rules this module keeps (spec/AMI.md B 1.1-1.9, 2, 3.4, 4.6, 4.7; DESIGN.md "Rules learned by
measuring"):

* **Transport.** panoramisk 1.4's ``Manager`` (``_LinkManager``) opens the TCP connection with
  ``FastAMIProtocol``. Its own machinery is switched off: no reconnect timer (``connection_lost``
  schedules nothing, and ``close()`` leaves no timer behind), no pinger, no re-send of "awaiting"
  actions after FullyBooted, no Login of its own. Every action of ours (Login, Filter,
  CoreShowChannels, Ping, Originate) goes through ``actions.ActionTable``: written once, ended
  exactly once by its reply, a timeout or the loss of the connection. panoramisk's futures are
  not used, so no event is consumed by an action: the handler sees every CoreShowChannel row and
  every OriginateResponse.
* **One session = one connection**, and the supervisor task runs them one after the other:

  ==========================  ================================================================
  step                        bounded by / on failure
  ==========================  ================================================================
  TCP connect                 ``connect_timeout`` (a host that drops SYNs cannot block)
  Login (``Events:`` mask)    ``login_timeout``; refused: the server closes, session ends
  FullyBooted                 ``fully_booted_timeout`` when ``require_fully_booted``
  Action: Filter (optional)   ``action_timeout``; refused: logged once per link, not fatal
  CoreShowChannels resync     ``resync_timeout``; rows != ListItems: retried after
                              ``resync_retry_delay``; an error reply: retried after
                              ``shutdown_probe_interval``; accepted: the link is **ready**
  Ping every ping_interval    ``ping_timeout``: no reply = dead link, transport aborted
  ==========================  ================================================================

  An Asterisk without CoreShowChannels (1.4: "Invalid/unknown command") is listed with
  ``Action: Status`` from then on (its rows and StatusComplete are the same typed events).
  Any action without a reply in time means the peer is gone: the transport is aborted and the
  session ends. A session that ends is followed by a reconnect after a full-jitter backoff
  (``backoff.ReconnectBackoff``), for ever, until ``stop()``.
* **Ready** = logged in, the latest resync of this session accepted, not shutting down, the
  transport open. ``ready`` turns False synchronously when any of these stops being true.
* **Shutting down.** An ``Event: Shutdown``, or any reply "Asterisk is shutting down" (Asterisk
  answers every action so from the moment a graceful stop begins, manager.c process_message),
  makes the link not ready at once. After a Shutdown event the connection closes; after an error
  reply the session stays up (the calls still running keep sending events) and a resync is tried
  every ``shutdown_probe_interval``: accepted, the server is ready again (an aborted
  ``core stop gracefully``).
* **The handler** (``LinkHandler``) is called synchronously, never through a queue:
  ``on_event(server, event, read_at)`` for every typed event in wire order, each exactly once
  (``read_at`` = the clock when the read that carried it started), and
  ``on_state(server, LinkChange)`` for each state change, at the moment it happens and in wire
  order with the events (LOGGED_IN before the first event after the Login reply; RESYNC_STARTED
  before the CoreShowChannels bytes are written; RESYNCED right after the CoreShowChannelsComplete
  event was handed over). A handler that raises is logged and counted; the link goes on.
* **Originate** (``send_originate``): only when ready; always ``Async: true``; ``ActionID`` = the
  caller's id (the V call id); synchronous up to the write, so whatever the caller (or its
  ``before_write``) does before is done before the bytes leave. It ends in exactly one
  ``OriginateStatus`` (QUEUED, ERROR with Asterisk's message, NOT_SENT, TIMEOUT, LINK_LOST) and is
  never re-sent. Its OriginateResponse reaches the handler as an ``OriginateResult`` event.
* Nothing the server sends can end the link except by closing it: frames are handled by
  ``FastAMIProtocol`` (garbage, oversized frames, split UTF-8, unknown events are counted).
"""

from __future__ import annotations

import asyncio
import enum
import functools
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from panoramisk import Manager
from panoramisk.message import Message

from fillreactor.ami.actions import (
    ActionReply,
    ActionTable,
    Fields,
    ReplyStatus,
    encode_action,
    field_pairs,
    is_shutting_down,
    new_action_id,
)
from fillreactor.ami.backoff import ReconnectBackoff
from fillreactor.ami.config import LinkSettings, LinkTarget, filter_pattern
from fillreactor.ami.fast_protocol import FastAMIProtocol
from fillreactor.clock import Clock, SystemClock
from fillreactor.core.events import LIST_ITEMS_UNKNOWN, Event, FullyBooted, Shutdown, SnapshotEnd, SnapshotRow
from fillreactor.core.message import AmiMessage

log = logging.getLogger(__name__)


# -- what the handler hears ------------------------------------------------------------------------
class LinkChangeKind(enum.Enum):
    CONNECTING = "connecting"  # a connection attempt starts (attempt = its number on this link)
    LOGGED_IN = "logged_in"  # Login accepted
    RESYNC_STARTED = "resync_started"  # action_id = the CoreShowChannels' ActionID (not yet written)
    RESYNCED = "resynced"  # accepted (the link is ready unless shutting down) or rejected; detail
    SHUTTING_DOWN = "shutting_down"  # Shutdown event or "Asterisk is shutting down": not ready
    DOWN = "down"  # the session ended (or the attempt failed); detail = the reason
    STOPPED = "stopped"  # the link is finished and will not reconnect; detail = why


@dataclass(frozen=True, slots=True)
class LinkChange:
    kind: LinkChangeKind
    at: float  # clock.monotonic() when it happened
    attempt: int = 0  # the connection attempt (session) number on this link, from 1
    action_id: str = ""  # RESYNC_STARTED, RESYNCED
    accepted: bool = False  # RESYNCED
    detail: str = ""


class LinkHandler(Protocol):
    """What a link calls. Both methods are called synchronously and must be quick (no I/O)."""

    def on_event(self, server: str, event: Event, read_at: float) -> None: ...

    def on_state(self, server: str, change: LinkChange) -> None: ...


class LinkState(enum.Enum):
    """The link as a whole, for metrics and logs."""

    CONNECTING = "connecting"  # connecting or logging in
    RESYNCING = "resyncing"  # logged in, no accepted resync yet
    READY = "ready"
    SHUTTING_DOWN = "shutting_down"
    DOWN = "down"  # between sessions (backing off)
    STOPPED = "stopped"


# -- originate results ---------------------------------------------------------------------------
class OriginateStatus(enum.Enum):
    QUEUED = "queued"  # Response: Success ("Originate successfully queued")
    ERROR = "error"  # Response: Error; message = Asterisk's Message
    NOT_SENT = "not_sent"  # nothing was written (link not ready, bad field, before_write raised)
    TIMEOUT = "timeout"  # written, no reply within the timeout (it may or may not be queued)
    LINK_LOST = "link_lost"  # written, the connection ended before the reply (may or may not be queued)


@dataclass(frozen=True, slots=True)
class OriginateReply:
    action_id: str
    status: OriginateStatus
    message: str
    written_at: float | None  # clock.monotonic() right after the bytes were handed to the socket
    at: float  # when the status became known


@dataclass(frozen=True, slots=True)
class OriginateTicket:
    action_id: str
    written_at: float | None  # None: not sent
    reply: asyncio.Future[OriginateReply]  # always resolves (never raises, never pends for ever)


@dataclass
class LinkCounters:
    connects: int = 0  # connection attempts (sessions)
    logins: int = 0
    sessions_lost: int = 0  # sessions that ended after a successful login
    resyncs: int = 0
    resyncs_rejected: int = 0
    pings: int = 0
    ping_timeouts: int = 0
    originates: int = 0  # written
    originate_errors: int = 0
    originate_timeouts: int = 0
    originates_lost: int = 0
    originates_not_sent: int = 0
    filter_refused: int = 0
    shutdowns: int = 0  # shutting-down periods seen
    handler_errors: int = 0  # on_state raised, or on_event during a resync
    last_error: str = ""
    last_error_at: float | None = None

    @property
    def reconnects(self) -> int:
        return max(0, self.connects - 1)


_RESERVED_ORIGINATE_KEYS = frozenset({"action", "actionid", "async"})


class _Ended(Exception):
    """The session is over; ``reason`` says why (already reported when the session ended first)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# -- panoramisk's Manager, tamed -----------------------------------------------------------------
class _LinkManager(Manager):
    """panoramisk's Manager without its reconnect timer, pinger, Login and re-sent actions."""

    def __init__(self, **config: Any) -> None:
        super().__init__(**config)
        self.stopped = False

    def connection_made(self, future: asyncio.Future[Any]) -> None:
        # a failed or cancelled connect reaches the awaiting link; panoramisk would schedule a retry
        if future.cancelled() or future.exception() is not None:
            return
        if self.stopped:
            transport, _protocol = future.result()
            transport.abort()
            return
        super().connection_made(future)  # no 'username' in config: it sends no Login

    def ping(self) -> None:
        self.pinger = None  # liveness is the link's own Ping with a timeout

    def send_awaiting_actions(self, *_: object) -> None:
        self.awaiting_actions.clear()  # never re-send anything after a reconnect

    def connection_lost(self, exc: object) -> None:
        self._connected = False
        if self.pinger is not None:
            self.pinger.cancel()
            self.pinger = None
        # no call_later(reconnect_timeout, self.connect): the link reconnects with backoff

    def close(self) -> None:
        self.stopped = True
        super().close()


# -- per-session state ---------------------------------------------------------------------------
class _Resync:
    __slots__ = ("action_id", "done", "rows", "shutdown_seq")

    def __init__(self, action_id: str, done: asyncio.Future[bool | None], shutdown_seq: int) -> None:
        self.action_id = action_id
        self.done = done
        self.rows = 0
        self.shutdown_seq = shutdown_seq


class _Session:
    def __init__(self, number: int, loop: asyncio.AbstractEventLoop, clock: Callable[[], float]) -> None:
        self.number = number
        self.table = ActionTable(clock, loop)
        self.lost: asyncio.Future[str] = loop.create_future()
        self.booted = asyncio.Event()
        self.protocol: FastAMIProtocol | None = None
        self.ended = False
        self.ended_at = 0.0
        self.logged_in = False
        self.ready_at: float | None = None
        self.needs_resync = True
        self.resync_refused = False  # the latest listing got an error reply (not a mismatch)
        self.shutting_down = False
        self.shutdown_seq = 0
        self.resync: _Resync | None = None


# -- the link ------------------------------------------------------------------------------------
class AmiLink:
    """The AMI link of one server. ``start()`` in a running loop; ``await stop()`` to end it."""

    def __init__(
        self,
        target: LinkTarget,
        handler: LinkHandler,
        settings: LinkSettings | None = None,
        *,
        clock: Clock | None = None,
    ) -> None:
        self.target = target
        self.server = target.server
        self.handler = handler
        self.settings = settings or LinkSettings()
        self.clock: Clock = clock or SystemClock()
        self.counters = LinkCounters()
        self._now = self.clock.monotonic
        self._deliver = functools.partial(handler.on_event, self.server)
        self._backoff = ReconnectBackoff(self.settings.reconnect_multiplier, self.settings.reconnect_max)
        self._manager: _LinkManager | None = None
        self._task: asyncio.Task[None] | None = None
        self._session: _Session | None = None
        self._ready = False
        self._stopped = False
        self._stop_reason = "stopped"
        self._filter_warned = False
        # Asterisk 1.4 has no CoreShowChannels: after "Invalid/unknown command" the link lists
        # channels with Action: Status (Status rows and StatusComplete, without a count on 1.4)
        self._listing_action = "CoreShowChannels"
        self._last_logged_resync = ""
        self._last_logged_down = ""
        self._event_totals: Counter[str] = Counter()
        self._protocol_totals: Counter[str] = Counter()

    def __repr__(self) -> str:
        return f"<AmiLink {self.server} {self.target.address} {self.state.value}>"

    # -- public ----------------------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        """May this server receive calls now? (see the module rules)"""
        if not self._ready:
            return False
        session = self._session
        if session is None or session.ended or session.protocol is None:
            return False
        transport = session.protocol.transport
        return transport is not None and not transport.is_closing()

    @property
    def protocol(self) -> FastAMIProtocol | None:
        """The protocol of the current connection (diagnostics), None between sessions."""
        session = self._session
        return None if session is None or session.ended else session.protocol

    @property
    def state(self) -> LinkState:
        if self._stopped:
            return LinkState.STOPPED
        session = self._session
        if session is None or session.ended:
            return LinkState.DOWN if self.counters.connects else LinkState.CONNECTING
        if self.ready:
            return LinkState.READY
        if session.shutting_down:
            return LinkState.SHUTTING_DOWN
        if session.logged_in:
            return LinkState.RESYNCING
        return LinkState.CONNECTING

    def start(self) -> None:
        """Start connecting (and keep the link up) in the running loop."""
        if self._task is not None or self._stopped:
            return
        loop = asyncio.get_running_loop()
        self._manager = _LinkManager(
            host=self.target.host,
            port=self.target.port,
            events=self.settings.events,
            loop=loop,
            ping_delay=3600,
            ping_interval=3600,
            reconnect_timeout=3600,
            forgetable_actions=("ping", "login", "originate", "coreshowchannels", "filter", "events"),
            protocol_factory=functools.partial(
                FastAMIProtocol, max_message_bytes=self.settings.max_message_bytes
            ),
            log=logging.getLogger("panoramisk.manager"),
        )
        self._task = loop.create_task(self._run(), name=f"ami-link-{self.server}")

    async def stop(self, reason: str = "stopped") -> None:
        """End the link for good: closes the connection, reports DOWN (if up) and STOPPED."""
        self._stop_reason = reason
        task = self._task
        if task is None:
            if not self._stopped:
                self._stopped = True
                self._report(LinkChangeKind.STOPPED, detail=reason)
            return
        if not task.done():
            task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    def send_originate(
        self,
        fields: Fields,
        *,
        action_id: str,
        timeout: float | None = None,
        before_write: Callable[[], object] | None = None,
    ) -> OriginateTicket:
        """Write an Async Originate now (or refuse); synchronous up to the write. Never raises.

        ``fields`` are the Originate's headers (Channel, Context, Exten, Priority, Callerid,
        Timeout, Variable as a list, ...); Action, ActionID and Async are set here. ``before_write``
        runs right before the bytes are written, only once the link is ready and the fields valid
        (e.g. the reservation); the reply can then still be NOT_SENT if the socket refused the
        write (closing at that very instant). ERROR and NOT_SENT: no call exists, release now;
        TIMEOUT and LINK_LOST: a call may exist, its channels or OriginateResponse will tell.
        Must be called in the event loop.
        """
        loop = asyncio.get_running_loop()
        reply: asyncio.Future[OriginateReply] = loop.create_future()
        session = self._session
        if not self.ready or session is None or session.protocol is None:
            return self._not_sent(reply, action_id, f"link not ready ({self.state.value})")
        try:
            pairs = [("Action", "Originate"), ("ActionID", action_id), ("Async", "true")]
            pairs += [p for p in field_pairs(fields) if p[0].lower() not in _RESERVED_ORIGINATE_KEYS]
            encode_action(pairs)
            if not action_id or action_id in session.table:
                raise ValueError(f"ActionID {action_id!r} is empty or already waiting for a reply")
        except (TypeError, ValueError) as exc:
            return self._not_sent(reply, action_id, f"bad originate: {exc}")
        if before_write is not None:
            try:
                before_write()
            except Exception as exc:
                log.exception("%s: before_write of originate %s raised; not sent", self.server, action_id)
                return self._not_sent(reply, action_id, f"before_write raised {exc!r}")
        written: list[float | None] = [None]
        session.table.send(
            functools.partial(self._write, session),
            pairs,
            timeout=self.settings.action_timeout if timeout is None else timeout,
            on_done=functools.partial(self._originate_done, reply, written),
        )
        if reply.done():  # the write itself failed: nothing left
            return OriginateTicket(action_id, None, reply)
        written[0] = self._now()
        self.counters.originates += 1
        return OriginateTicket(action_id, written[0], reply)

    async def originate(
        self,
        fields: Fields,
        *,
        action_id: str,
        timeout: float | None = None,
        before_write: Callable[[], object] | None = None,
    ) -> OriginateReply:
        """``send_originate`` and wait for its immediate reply."""
        ticket = self.send_originate(fields, action_id=action_id, timeout=timeout, before_write=before_write)
        return await ticket.reply

    def stats(self) -> dict[str, object]:
        """Counters for metrics and the trace."""
        events = Counter(self._event_totals)
        protocol_totals = Counter(self._protocol_totals)
        session = self._session
        if session is not None and session.protocol is not None and not session.ended:
            self._add_protocol_counts(session.protocol, events, protocol_totals)
        counters = asdict(self.counters)
        counters["reconnects"] = self.counters.reconnects
        return {
            "server": self.server,
            "address": self.target.address,
            "state": self.state.value,
            "ready": self.ready,
            **counters,
            "consecutive_failures": self._backoff.failures,
            "events": dict(events),
            "events_total": sum(events.values()),
            **dict(protocol_totals),
        }

    # -- the supervisor --------------------------------------------------------------------------
    async def _run(self) -> None:
        try:
            while True:
                ready_for = await self._one_session()
                if ready_for >= self.settings.reconnect_reset_after:
                    self._backoff.reset()
                delay = self._backoff.next_delay()
                log.debug(
                    "%s: reconnecting in %.2f s (attempt %d)", self.server, delay, self._backoff.failures
                )
                await asyncio.sleep(delay)
        finally:
            session = self._session
            if session is not None:
                self._end_session(session, self._stop_reason, stopping=True)
            if self._manager is not None:
                self._manager.close()
            self._stopped = True
            self._ready = False
            self._report(LinkChangeKind.STOPPED, detail=self._stop_reason)
            log.info("%s: AMI link stopped (%s)", self.server, self._stop_reason)

    async def _one_session(self) -> float:
        """Run one session to its end; returns how long it was ready (0 if never)."""
        self.counters.connects += 1
        session = _Session(self.counters.connects, asyncio.get_running_loop(), self._now)
        self._session = session
        try:
            await self._serve(session)
        except _Ended as ended:
            self._end_session(session, ended.reason)
        except Exception as exc:  # a bug here must not end the link: log it, reconnect
            log.exception("%s: AMI link session failed", self.server)
            self._end_session(session, f"internal error: {exc!r}")
        if session.ready_at is None:
            return 0.0
        return max(0.0, session.ended_at - session.ready_at)

    async def _serve(self, session: _Session) -> None:
        settings, target = self.settings, self.target
        self._report(LinkChangeKind.CONNECTING, attempt=session.number, detail=target.address)
        assert self._manager is not None
        try:
            _transport, protocol = await asyncio.wait_for(self._manager.connect(), settings.connect_timeout)
        except TimeoutError:
            raise _Ended(
                f"connect to {target.address} timed out after {settings.connect_timeout:g} s"
            ) from None
        except OSError as exc:
            raise _Ended(f"connect to {target.address} failed: {exc.strerror or exc!r}") from None
        self._attach(session, protocol)

        login = await self._request(
            session,
            [
                ("Action", "Login"),
                ("ActionID", new_action_id("login")),
                ("Username", target.username),
                ("Secret", target.secret),
                ("Events", settings.events),
            ],
            settings.login_timeout,
            on_reply=functools.partial(self._login_replied, session),
        )
        if not login.success:
            raise _Ended(f"login as {target.username!r} refused: {login.text}")

        if settings.require_fully_booted and not session.booted.is_set():
            if not await self._wait(session, session.booted.wait(), settings.fully_booted_timeout):
                raise _Ended(
                    f"no FullyBooted within {settings.fully_booted_timeout:g} s of the login "
                    "(Asterisk still booting, or the AMI user lacks read=system)"
                )

        if settings.filter_events:
            await self._apply_filter(session)

        while True:
            if session.needs_resync:
                if not await self._resync(session):
                    # a refusal (shutting down, no permission) does not clear up in half a second
                    refused = session.shutting_down or session.resync_refused
                    delay = settings.shutdown_probe_interval if refused else settings.resync_retry_delay
                    await self._pause(session, delay)
                continue
            await self._pause(session, settings.ping_interval)
            self.counters.pings += 1
            await self._request(
                session, [("Action", "Ping"), ("ActionID", new_action_id("ping"))], settings.ping_timeout
            )

    def _attach(self, session: _Session, protocol: Any) -> None:
        if not isinstance(protocol, FastAMIProtocol):  # pragma: no cover - our factory made it
            raise _Ended(f"unexpected protocol {type(protocol).__name__}")
        session.protocol = protocol
        protocol.clock = self._now
        protocol.timed_sink = self._deliver
        protocol.replies = session.table
        protocol.on_control = functools.partial(self._control, session)
        protocol.on_lost = functools.partial(self._lost, session)
        protocol.log = logging.getLogger("fillreactor.ami.fast_protocol")
        session.table.on_error = functools.partial(self._error_reply, session)
        if protocol.transport is None or protocol.transport.is_closing():
            raise _Ended("the connection closed right after it opened")

    # -- actions ---------------------------------------------------------------------------------
    def _write(self, session: _Session, data: bytes) -> None:
        protocol = session.protocol
        transport = protocol.transport if protocol is not None else None
        if session.ended or transport is None or transport.is_closing():
            raise ConnectionError("the connection is closing")
        transport.write(data)

    async def _request(
        self,
        session: _Session,
        pairs: list[tuple[str, str]],
        timeout: float,
        on_reply: Callable[[ActionReply], object] | None = None,
    ) -> ActionReply:
        """Send one action and return its reply; a timeout or a lost connection ends the session."""
        future: asyncio.Future[ActionReply] = asyncio.get_running_loop().create_future()

        def done(reply: ActionReply) -> None:
            if on_reply is not None:
                on_reply(reply)
            if not future.done():
                future.set_result(reply)

        session.table.send(functools.partial(self._write, session), pairs, timeout=timeout, on_done=done)
        reply = await future  # always resolves: reply, timeout or lost
        if reply.status is ReplyStatus.TIMEOUT:
            if reply.name == "Ping":
                self.counters.ping_timeouts += 1
            raise _Ended(self._dead(session, reply.detail))
        if reply.status is ReplyStatus.LOST:
            raise _Ended(session.lost.result() if session.lost.done() else reply.detail)
        return reply

    def _login_replied(self, session: _Session, reply: ActionReply) -> None:
        # runs inside data_received, before any event that follows the reply on the wire
        if reply.success and not session.ended:
            session.logged_in = True
            self.counters.logins += 1
            self._report(LinkChangeKind.LOGGED_IN, attempt=session.number, detail=self.target.username)

    async def _apply_filter(self, session: _Session) -> None:
        pattern = filter_pattern(self.settings.filter_events)
        reply = await self._request(
            session,
            [
                ("Action", "Filter"),
                ("ActionID", new_action_id("filter")),
                ("Operation", "Add"),
                ("Filter", pattern),
            ],
            self.settings.action_timeout,
        )
        if reply.success:
            return
        self.counters.filter_refused += 1
        level = logging.DEBUG if self._filter_warned else logging.WARNING
        self._filter_warned = True
        log.log(
            level,
            "%s: Action: Filter refused (%s); going on unfiltered (needs write=system; Asterisk 13+)",
            self.server,
            reply.text,
        )

    # -- resync ----------------------------------------------------------------------------------
    async def _resync(self, session: _Session) -> bool:
        """One channel listing checked against its ListItems; True when accepted and ready."""
        protocol = session.protocol
        assert protocol is not None
        action_id = new_action_id("resync")
        resync = _Resync(action_id, asyncio.get_running_loop().create_future(), session.shutdown_seq)
        session.resync = resync
        self.counters.resyncs += 1
        self._ready = False
        # the model's begin_snapshot(action_id) must run before the request leaves
        self._report(LinkChangeKind.RESYNC_STARTED, attempt=session.number, action_id=action_id)
        if session.ended:
            raise _Ended(session.lost.result() if session.lost.done() else "session ended")
        protocol.timed_sink = functools.partial(self._resync_sink, session, resync)
        session.resync_refused = False
        try:
            session.table.send(
                functools.partial(self._write, session),
                [("Action", self._listing_action), ("ActionID", action_id)],
                timeout=self.settings.resync_timeout,
                on_done=functools.partial(self._resync_replied, session, resync),
            )
            result = await self._wait(session, resync.done, self.settings.resync_timeout)
        finally:
            if not resync.done.done():
                resync.done.set_result(None)
            protocol.timed_sink = self._deliver
            session.resync = None
        if result is None:
            raise _Ended(
                self._dead(
                    session,
                    f"no end of the {self._listing_action} listing within {self.settings.resync_timeout:g} s",
                )
            )
        return bool(result) and self.ready

    def _resync_sink(self, session: _Session, resync: _Resync, event: Event, read_at: float) -> None:
        """The event sink while a resync runs: counts its rows, ends it at its Complete event."""
        kind = type(event)
        if kind is SnapshotRow and event.action_id == resync.action_id:  # type: ignore[union-attr]
            resync.rows += 1
        try:
            self._deliver(event, read_at)
        except Exception:
            self.counters.handler_errors += 1
            log.exception("%s: the AMI event handler raised", self.server)
        if kind is SnapshotEnd and event.action_id == resync.action_id:  # type: ignore[union-attr]
            self._resync_ended(session, resync, event.list_items)  # type: ignore[union-attr]

    def _resync_replied(self, session: _Session, resync: _Resync, reply: ActionReply) -> None:
        if resync.done.done() or reply.success:
            return  # a Success reply: the rows and the Complete event follow
        if reply.status is ReplyStatus.REPLIED:
            action = self._listing_action
            if action == "CoreShowChannels" and "unknown command" in reply.text.lower():
                self._listing_action = "Status"  # Asterisk 1.4: retried at once with Status
                self._finish_resync(session, resync, False, f"{action} refused: {reply.text}; using Status")
                return
            session.resync_refused = True
            self._finish_resync(session, resync, False, f"{action} refused: {reply.text}")
        else:  # timeout or lost: the waiting supervisor ends the session
            resync.done.set_result(None)

    def _resync_ended(self, session: _Session, resync: _Resync, list_items: int) -> None:
        if resync.done.done():
            return
        if session.protocol is not None:
            session.protocol.timed_sink = self._deliver
        if list_items != LIST_ITEMS_UNKNOWN and resync.rows != list_items:
            self.counters.resyncs_rejected += 1
            self._finish_resync(
                session, resync, False, f"{resync.rows} rows received, ListItems {list_items}"
            )
            return
        detail = f"{resync.rows} channels"
        if session.shutdown_seq != resync.shutdown_seq:  # "shutting down" arrived while it ran
            self._finish_resync(session, resync, True, detail + "; but the server is shutting down")
            return
        session.shutting_down = False
        session.needs_resync = False
        if session.ready_at is None:
            session.ready_at = self._now()
        self._ready = True
        self._finish_resync(session, resync, True, detail)

    def _finish_resync(self, session: _Session, resync: _Resync, accepted: bool, detail: str) -> None:
        resync.done.set_result(accepted)
        if not session.ended:
            self._report(
                LinkChangeKind.RESYNCED,
                attempt=session.number,
                action_id=resync.action_id,
                accepted=accepted,
                detail=detail,
            )
        if accepted and self._ready:
            log.info("%s: AMI link ready (%s)", self.server, detail)
            self._last_logged_down = self._last_logged_resync = ""
            return
        # one line per new reason: a server refusing every 5 s must not flood the log
        level = logging.DEBUG if detail == self._last_logged_resync else logging.WARNING
        self._last_logged_resync = detail
        log.log(level, "%s: resync %s: %s", self.server, "accepted" if accepted else "rejected", detail)

    # -- events from the protocol ----------------------------------------------------------------
    def _control(self, session: _Session, event: Event) -> None:
        if isinstance(event, FullyBooted):
            session.booted.set()
        elif isinstance(event, Shutdown):
            self._shutting_down(session, "Shutdown event" + (" (restart)" if event.restart else ""))

    def _error_reply(self, session: _Session, message: AmiMessage) -> None:
        if is_shutting_down(message):
            self._shutting_down(session, f"reply: {message.get('Message')}")

    def _shutting_down(self, session: _Session, detail: str) -> None:
        if session.ended:
            return
        session.shutdown_seq += 1
        session.needs_resync = True
        self._ready = False
        if session.shutting_down:
            return
        session.shutting_down = True
        self.counters.shutdowns += 1
        log.warning("%s: Asterisk is shutting down (%s): not dialable", self.server, detail)
        self._report(LinkChangeKind.SHUTTING_DOWN, attempt=session.number, detail=detail)

    def _lost(self, session: _Session, exc: object) -> None:
        if isinstance(exc, Message):  # panoramisk closes the connection on a Shutdown event
            reason = "Asterisk shut down (Shutdown event)"
        elif exc is None:
            reason = "connection closed by the server"
        else:
            reason = f"connection lost: {exc!r}"
        self._end_session(session, reason)

    # -- ending a session ------------------------------------------------------------------------
    def _dead(self, session: _Session, detail: str) -> str:
        """The peer does not answer: abort the transport (no FIN handshake to wait for)."""
        self._end_session(session, detail)
        return detail

    def _end_session(self, session: _Session, reason: str, *, stopping: bool = False) -> None:
        if session.ended:
            return
        session.ended = True
        session.ended_at = self._now()
        if self._session is session:
            self._ready = False
        protocol = session.protocol
        if protocol is not None:
            self._add_protocol_counts(protocol, self._event_totals, self._protocol_totals)
            transport = protocol.transport
            if transport is not None and not transport.is_closing():
                if stopping:
                    transport.close()  # ours to end: let the buffered bytes go, then FIN
                else:
                    transport.abort()
        if session.resync is not None and not session.resync.done.done():
            session.resync.done.set_result(None)
        session.table.lose_all(reason)
        if not session.lost.done():
            session.lost.set_result(reason)
        if session.logged_in:
            self.counters.sessions_lost += 1
        if not stopping:
            self.counters.last_error = reason
            self.counters.last_error_at = session.ended_at
            level = logging.DEBUG if reason == self._last_logged_down else logging.WARNING
            self._last_logged_down = reason
            log.log(level, "%s: AMI link down: %s", self.server, reason)
        self._report(LinkChangeKind.DOWN, attempt=session.number, detail=reason)

    @staticmethod
    def _add_protocol_counts(protocol: FastAMIProtocol, events: Counter[str], totals: Counter[str]) -> None:
        for name, count in protocol.normaliser.events.items():
            events[name.__name__] += count
        totals["frames_dropped"] += protocol.normaliser.dropped
        totals["malformed_events"] += protocol.normaliser.errors
        totals["oversized_frames"] += protocol.framer.errors
        totals["sink_errors"] += protocol.sink_errors
        totals["frame_errors"] += protocol.frame_errors

    # -- helpers ---------------------------------------------------------------------------------
    async def _wait(self, session: _Session, awaitable: Any, timeout: float) -> Any:
        """The result of ``awaitable`` (None on timeout); ``_Ended`` if the session ends first."""
        future = asyncio.ensure_future(awaitable)
        try:
            await asyncio.wait({future, session.lost}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not future.done():
                future.cancel()
        if future.done() and not future.cancelled():
            return future.result()
        if session.lost.done():
            raise _Ended(session.lost.result())
        return None

    async def _pause(self, session: _Session, seconds: float) -> None:
        await asyncio.wait({session.lost}, timeout=seconds)
        if session.lost.done():
            raise _Ended(session.lost.result())

    def _not_sent(self, reply: asyncio.Future[OriginateReply], action_id: str, why: str) -> OriginateTicket:
        self.counters.originates_not_sent += 1
        log.info("%s: originate %s not sent: %s", self.server, action_id, why)
        reply.set_result(OriginateReply(action_id, OriginateStatus.NOT_SENT, why, None, self._now()))
        return OriginateTicket(action_id, None, reply)

    def _originate_done(
        self, future: asyncio.Future[OriginateReply], written: list[float | None], reply: ActionReply
    ) -> None:
        if reply.status is ReplyStatus.REPLIED:
            status = OriginateStatus.QUEUED if reply.success else OriginateStatus.ERROR
        elif reply.status is ReplyStatus.TIMEOUT:
            status = OriginateStatus.TIMEOUT
        else:
            status = OriginateStatus.LINK_LOST if written[0] is not None else OriginateStatus.NOT_SENT
        if status is OriginateStatus.ERROR:
            self.counters.originate_errors += 1
        elif status is OriginateStatus.TIMEOUT:
            self.counters.originate_timeouts += 1
        elif status is OriginateStatus.LINK_LOST:
            self.counters.originates_lost += 1
        elif status is OriginateStatus.NOT_SENT:
            self.counters.originates_not_sent += 1
        if status is not OriginateStatus.QUEUED:
            log.warning("%s: originate %s %s: %s", self.server, reply.action_id, status.value, reply.text)
        if not future.done():
            future.set_result(OriginateReply(reply.action_id, status, reply.text, written[0], reply.at))

    def _report(
        self,
        kind: LinkChangeKind,
        *,
        attempt: int = 0,
        action_id: str = "",
        accepted: bool = False,
        detail: str = "",
    ) -> None:
        change = LinkChange(kind, self._now(), attempt, action_id, accepted, detail)
        try:
            self.handler.on_state(self.server, change)
        except Exception:
            self.counters.handler_errors += 1
            log.exception("%s: the AMI link state handler raised on %s", self.server, kind.value)
