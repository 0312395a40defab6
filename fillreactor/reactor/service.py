"""The live reactor: one asyncio service around ``ReactorCore`` with AMI links, the store and the dialer.

Rules this module keeps (DESIGN.md; issue "the live reactor"):

* **One event loop, one core.** AMI links call ``on_event`` / ``on_state`` synchronously from their
  protocol (the firehose never leaves that path: O(1) model updates, no queue, no aiostream). What
  moved marks campaigns pending in the core and wakes that server's signal source.
* **The trigger stream.** Per-server signal sources (events moved a count, link up/down,
  resynced), the store refreshes (snapshot, stats rows, call-origin lookups), the ticks (expiry of
  reservations, the timer trigger) and the dialer's results are merged with aiostream into one
  stream. Its single consumer applies each signal to the core and then plans whatever is pending,
  in slices (``next_plan`` plans at most a slice of campaigns; the loop yields between slices). A
  burst of events read at once wakes a source once: one plan, not hundreds. Each source catches its
  own errors: one failing source never tears down the stream.
* **Dialing** happens in tasks (``Dialer.dial`` per decision): claims, rows, Originates, pacing.
  The ``vicidial_auto_calls`` row is committed before the Originate; the Originate is reserved in
  the model in ``before_write``, right before its bytes leave (``--dial-via ami``), or when its
  ``vicidial_manager`` row is written (``--dial-via manager``). Calls actually placed, not planned,
  are reported back (``entry_done``).
* **Only the leader dials.** ``dialing`` = leader lock held AND the database reachable AND not
  stopping AND not shadow/dry-run. A standby keeps its links and model current and retries the
  lock every ``lock_check`` seconds; the claims are fenced by the lock in their own WHERE.
* **Unknown state means no dialing there**: no snapshot yet, database unreachable, a link not
  ready. Nothing here exits on a bad row, a bad frame or an unreachable server: one log line, go on.
* **Stop** (``stop`` set, e.g. SIGTERM): dialing off, in-flight dial tasks finish their current
  chunk (their unsent claims go back to READY), the lock is released, links and pool closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiostream import stream

from fillreactor.ami.config import DEFAULT_FILTER_EVENTS, LinkSettings, targets_from_rows
from fillreactor.ami.link import LinkChange, OriginateStatus
from fillreactor.ami.linkset import LinkSet
from fillreactor.astguiclient import AstguiclientConf
from fillreactor.clock import Clock, SystemClock
from fillreactor.core.breaker import BreakerConfig, Breakers, Change, Transition
from fillreactor.core.events import Event
from fillreactor.core.model import ChannelModel
from fillreactor.core.outbound_call import OutboundCall
from fillreactor.core.planner import Plan, PlanEntry, PlanStatus
from fillreactor.core.triggers import ShortageSource
from fillreactor.dialer import CallOutcome, Dialer, SendResult, recover_stale_claims
from fillreactor.reactor.core import PlanDecision, ReactorCore
from fillreactor.reactor.trace import TraceRecord, TraceSink
from fillreactor.service.settings import Settings
from fillreactor.store import calls as store
from fillreactor.store.database import Database, DatabaseAddress, StoreError, StoreUnavailable
from fillreactor.store.leader import LeaderLock
from fillreactor.store.servers import read_host_row, read_link_rows
from fillreactor.store.snapshot import SnapshotLoader, lookup_call_origins, read_stats_rows

log = logging.getLogger(__name__)

TICK_SECONDS = 0.25
LOOKUP_BATCH_DELAY = 0.005  # gather the ids of one burst into one lookup
DRAIN_SECONDS = 10.0
LOCK_KEEPALIVE = 60.0  # seconds: the lock's own connection is queried at least this often
# the pool's connections, all opened at start: a plan's entries dial at once and the refreshes run
# beside them; a pool that grows opens its connection while holding the pool's lock, and every
# statement waits behind it (measured: acquire p99 5.4 ms at 6 growing, 0.08 ms at 10 fixed)
DB_POOL_SIZE = 10


# -- signals (what flows through the merged trigger stream) ---------------------------------------
@dataclass(frozen=True, slots=True)
class ServerSignal:
    server: str


@dataclass(frozen=True, slots=True)
class Refreshed:
    snapshot: Any
    stats: list[tuple[str, str, int]] | None


@dataclass(frozen=True, slots=True)
class LookedUp:
    found: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Tick:
    pass


@dataclass(frozen=True, slots=True)
class Wake:
    """Something outside the core changed (dialer result, leader change): plan what is pending."""


Signal = ServerSignal | Refreshed | LookedUp | Tick | Wake


class _Kick:
    """A level-triggered wake-up: set from synchronous code, awaited by one source."""

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.closed = False

    def set(self) -> None:
        self.event.set()

    async def wait(self) -> bool:
        await self.event.wait()
        self.event.clear()
        return not self.closed

    def close(self) -> None:
        self.closed = True
        self.event.set()


# -- originators ----------------------------------------------------------------------------------
@dataclass
class Latency:
    """Reaction latency samples: trigger input received -> first Originate of the plan entry
    written (seconds); see ``_Origins``."""

    samples: deque[float] = field(default_factory=lambda: deque(maxlen=100_000))
    observers: list[Callable[[float], None]] = field(default_factory=list)

    def add(self, seconds: float) -> None:
        self.samples.append(seconds)
        for observer in self.observers:
            observer(seconds)

    def percentile(self, fraction: float) -> float | None:
        if not self.samples:
            return None
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


class _Origins:
    """Per (campaign, server), when the input behind each planned call arrived (latency origin).

    Only the first call of each plan entry measures the reaction; the calls after it wait for the
    pacing of ``outbound_calls_per_second`` by design, so they carry no origin (``None``).
    """

    def __init__(self) -> None:
        self._times: dict[tuple[str, str], deque[float | None]] = {}

    def planned(self, decision: PlanDecision) -> None:
        at = decision.triggered_at if decision.triggered_at is not None else decision.planned_at
        for entry in decision.dispatch:
            times = self._times.setdefault((entry.campaign, entry.server), deque())
            times.append(at)
            times.extend([None] * (entry.calls - 1))

    def take(self, campaign: str, server: str) -> float | None:
        times = self._times.get((campaign, server))
        return times.popleft() if times else None

    def drop(self, campaign: str, server: str, count: int) -> None:
        times = self._times.get((campaign, server))
        for _ in range(min(count, len(times or ()))):
            assert times is not None
            times.popleft()


class AmiOriginator:
    """``--dial-via ami``: the Originate over the server's link; its line reserved before the write."""

    manager_status = "DEAD"  # not sent yet: SENT once its chunk is out (a crash before the write is
    sent_status = "SENT"  # recovered as a call that never left, after it by what the server saw)

    def __init__(self, service: ReactorService) -> None:
        self.service = service

    def admit(self, server_ip: str) -> bool:
        service = self.service
        return service.core.dialing and service.links.ready(server_ip) and (
            server_ip in service.core.dialable_servers()
        ) and service.core.fill_admits(server_ip)  # last: half-open, it lets the one probe through

    async def originate(self, call: OutboundCall) -> SendResult:
        service = self.service
        core, clock = service.core, service.clock
        if not core.fill_may_send(call.server_ip):  # its breaker opened after the call was admitted
            service.counters["originate_breaker"] += 1
            return SendResult(CallOutcome.REFUSED, "circuit breaker open: not sent")

        def reserve() -> None:
            core.call_sent(
                call.server_ip, call.call_id, call.campaign_id, clock.monotonic(),
                reply_within=service.settings.originate_timeout,
            )

        fields = {
            "Channel": call.channel,
            "Context": call.context,
            "Exten": call.exten,
            "Priority": "1",
            "Callerid": call.cid_string,
            "Timeout": str(int(call.timeout_ms)),
        }
        ticket = service.links.send_originate(
            call.server_ip,
            fields,
            action_id=call.call_id,
            timeout=service.settings.originate_timeout,
            before_write=reserve,
        )
        origin = service.origins.take(call.campaign_id, call.server_ip)
        if ticket.written_at is not None and origin is not None:
            service.latency.add(max(0.0, ticket.written_at - origin))
        reply = await ticket.reply
        status = reply.status
        if status is OriginateStatus.QUEUED:
            service.counters["originate_queued"] += 1
            core.call_queued(call.server_ip, call.call_id, clock.monotonic())
            return SendResult(CallOutcome.SENT, "queued")
        if status in (OriginateStatus.TIMEOUT, OriginateStatus.LINK_LOST):
            # it may exist: its line stays reserved (its channels, its OriginateResponse, the next
            # resync or the timeout decide) and its lead stays claimed until the recovery can tell
            service.counters[f"originate_{status.value}"] += 1
            service.uncertain.setdefault(call.server_ip, []).append((call, clock.monotonic()))
            return SendResult(CallOutcome.UNKNOWN, f"{status.value}: {reply.message}")
        service.counters[f"originate_{status.value}"] += 1
        core.call_refused(
            call.server_ip, call.call_id, reply.message or status.value, clock.monotonic(),
            error_reply=status is OriginateStatus.ERROR,
        )
        return SendResult(CallOutcome.REFUSED, f"{status.value}: {reply.message}")

    def writing(self, calls: Sequence[OutboundCall]) -> None:
        self.service.core.calls_writing((c.call_id, c.campaign_id, c.server_ip) for c in calls)


class ManagerRowOriginator:
    """``--dial-via manager``: the NEW row is the Originate (AST_manager_send.pl sends it); reserved here."""

    manager_status = "NEW"
    sent_status = None

    def __init__(self, service: ReactorService) -> None:
        self.service = service

    def admit(self, server_ip: str) -> bool:
        return self.service.core.dialing and self.service.core.fill_admits(server_ip)

    async def originate(self, call: OutboundCall) -> SendResult:
        service = self.service
        now = service.clock.monotonic()
        origin = service.origins.take(call.campaign_id, call.server_ip)
        if origin is not None:
            service.latency.add(max(0.0, now - origin))
        service.core.call_sent(call.server_ip, call.call_id, call.campaign_id, now)
        return SendResult(CallOutcome.SENT, "vicidial_manager row NEW")

    def writing(self, calls: Sequence[OutboundCall]) -> None:
        self.service.core.calls_writing((c.call_id, c.campaign_id, c.server_ip) for c in calls)


class _FillWriter:
    """Writes ``balance_trunk_fill`` as the plans change it (spec 2.8), coalesced, in one task.

    Only values that changed since the last write are written; a plan of status RESET (no balance
    server or no shortage) sets every campaign to 0 once; DIALING_DISABLED leaves the column alone,
    as the Perl does (spec 2.2.6). Only the dialing instance writes.
    """

    def __init__(self, service: ReactorService) -> None:
        self.service = service
        self.written: dict[str, int] = {}
        self.pending: dict[str, int] = {}
        self.reset = False
        self.was_reset = False
        self.writes = 0
        self._kick = _Kick()
        self._task: asyncio.Task[None] | None = None

    def plan(self, plan: Plan) -> None:
        if plan.status is PlanStatus.RESET:
            if not self.was_reset:
                self.reset, self.pending = True, {}
                self._wake()
            return
        if plan.status is not PlanStatus.PLANNED:
            return
        changed = {c: v for c, v in plan.balance_trunk_fill.items() if self.written.get(c) != v}
        if changed:
            self.pending.update(changed)
            self._wake()

    def _wake(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="balance_trunk_fill")
            self.service._background.add(self._task)
        self._kick.set()

    async def _run(self) -> None:
        while await self._kick.wait():
            database = self.service.database
            if database is None or not self.service.core.dialing:
                continue
            reset, pending = self.reset, self.pending
            self.reset, self.pending = False, {}
            try:
                if reset:
                    await store.reset_balance_fill(database)
                    self.written = {}
                    self.was_reset = True
                if pending:
                    await store.write_balance_fill(database, pending)
                    self.written.update(pending)
                    self.was_reset = False
                self.writes += 1
            except StoreError as error:
                log.error("balance_trunk_fill not written: %s", error)


# -- circuit breakers ----------------------------------------------------------------------------
def breaker_config(settings: Settings) -> BreakerConfig:
    return BreakerConfig(
        failures=settings.breaker_failures,
        ratio=settings.breaker_ratio,
        window=settings.breaker_window,
        cooldown=settings.breaker_cooldown,
        max_cooldown=settings.breaker_max_cooldown,
    )


def breakers_for(settings: Settings) -> Breakers | None:
    """The breakers of ``settings`` (None when ``circuit_breaker`` is off)."""
    return Breakers(breaker_config(settings)) if settings.circuit_breaker else None


# -- the service ----------------------------------------------------------------------------------
class ReactorService:
    """``fillreactor run`` (and the demo, and shadow mode): see the module rules."""

    def __init__(
        self,
        conf: AstguiclientConf,
        settings: Settings,
        *,
        clock: Clock | None = None,
        trace: TraceSink | None = None,
        link_settings: LinkSettings | None = None,
        dry_run: bool = False,
        shadow: bool = False,
        sql_mode: str | None = None,
        pacing: bool = True,
        database: Database | None = None,
    ) -> None:
        self.conf = conf
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self.dry_run = dry_run
        self.shadow = shadow
        self.sql_mode = sql_mode
        self.pacing = pacing
        self.database = database
        self._own_database = database is None
        self.trace_sinks: list[TraceSink] = [trace] if trace is not None else []
        self.core = ReactorCore(
            source=ShortageSource(settings.shortage_source),
            trigger=settings.trigger,
            timer_interval=settings.timer_interval,
            hopper_retry=settings.hopper_retry,
            model=ChannelModel(reservation_timeout=settings.reservation_timeout),
            trace=self._trace if self.trace_sinks else None,
            started_at=self.clock.monotonic(),
            breakers=breakers_for(settings),
            on_breaker=self._on_breaker,
        )
        self.link_settings = link_settings or LinkSettings(
            ping_interval=settings.ping_interval,
            ping_timeout=settings.ping_timeout,
            reconnect_max=settings.reconnect_max_wait,
            username_column=settings.ami_username_column,
            filter_events=DEFAULT_FILTER_EVENTS if settings.ami_filter else (),
        )
        self.links = LinkSet(self, self.link_settings, clock=self.clock)
        self.latency = Latency()
        self.origins = _Origins()
        self.counters: dict[str, int] = dict.fromkeys(
            (
                "originate_queued",
                "originate_error",
                "originate_not_sent",
                "originate_timeout",
                "originate_link_lost",
                "originate_breaker",
                "dial_tasks",
                "dial_errors",
                "refreshes",
                "refresh_errors",
                "lookups",
            ),
            0,
        )
        self.leader: LeaderLock | None = None
        self.is_leader = False
        self.database_ok = False
        self.stopping = False
        self.started = asyncio.Event()
        self.dialer: Dialer | None = None
        self.loader: SnapshotLoader | None = None
        self._server_kicks: dict[str, _Kick] = {}
        self._sourced: set[str] = set()
        self._new_servers: asyncio.Queue[str | None] = asyncio.Queue()
        self._lookup_kick = _Kick()
        self._wake_kick = _Kick()
        self._dial_tasks: set[asyncio.Task[None]] = set()
        self._background: set[asyncio.Task[Any]] = set()
        self._recovery: asyncio.Task[None] | None = None
        self.fills = _FillWriter(self)
        self.uncertain: dict[str, list[tuple[OutboundCall, float]]] = {}
        """Originates written without an answer (timeout, link lost), per server, to settle once the
        server's link is up and resynced again (``_settle_uncertain``)."""
        # extension points (shadow mode, metrics, tests): called synchronously, must not raise
        self.decision_observers: list[Callable[[PlanDecision], None]] = []
        self.breaker_observers: list[Callable[[Transition], None]] = []
        self.event_observers: list[Callable[[str, Event, float], None]] = []
        self.extra_tasks: list[Callable[[], Any]] = []
        """Coroutine functions started with the service and cancelled when it stops."""
        self.host_row: dict[str, Any] | None = None
        self._refresh_started = 0.0
        self._plan_cost: float | None = None  # seconds per campaign planned (moving average)
        self._last_config = -1e9
        self._last_stats = -1e9
        self._lock_seen_at: float | None = None  # a refresh saw the leader lock held by our connection
        self._lock_queried_at = -1e9

    # -- LinkHandler (called synchronously by the links) ------------------------------------------
    def on_event(self, server: str, event: Event, read_at: float) -> None:
        core = self.core
        before = core.counters.usage_changes
        core.on_event(server, event, self.clock.monotonic(), read_at)
        for observer in self.event_observers:
            try:
                observer(server, event, read_at)
            except Exception:
                log.exception("event observer failed")
        if core.counters.usage_changes != before or core.wants_plan:
            kick = self._server_kicks.get(server)
            if kick is not None:
                kick.set()
            if core.has_pending_lookups():
                self._lookup_kick.set()

    def on_state(self, server: str, change: LinkChange) -> None:
        self.core.on_link(
            server, change.kind.value, change.at, change.action_id or change.detail, accepted=change.accepted
        )
        if change.kind.value == "resynced" and change.accepted and self.uncertain.get(server):
            task = asyncio.get_running_loop().create_task(self._settle_uncertain(server))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        kick = self._server_kicks.get(server)
        if kick is not None:
            kick.set()

    # -- trace -----------------------------------------------------------------------------------
    def _trace(self, record: TraceRecord) -> None:
        for sink in self.trace_sinks:
            try:
                sink(record)
            except Exception:  # a trace sink must never break the reactor
                log.exception("trace sink failed")

    def _on_breaker(self, move: Transition) -> None:
        """One log line per breaker transition; then the observers (metrics). Never raises."""
        level = logging.WARNING if move.change in (Change.OPENED, Change.REOPENED) else logging.INFO
        log.log(level, "circuit breaker %s: %s", move.server, move.describe())
        for observer in self.breaker_observers:
            try:
                observer(move)
            except Exception:
                log.exception("breaker observer failed")

    @property
    def dialing_allowed(self) -> bool:
        return (
            self.is_leader and self.database_ok and not self.stopping and not self.shadow and not self.dry_run
        )

    def _update_dialing(self) -> None:
        allowed = self.dialing_allowed
        if allowed != self.core.dialing:
            now = self.clock.monotonic()
            self.core.set_dialing(allowed, now)
            text = "dialing" if allowed else f"not dialing ({self.why_not_dialing()})"
            self.core.note(now, "leader", "", "", text)
            self._wake_kick.set()

    def why_not_dialing(self) -> str:
        reasons = []
        if self.shadow:
            reasons.append("shadow mode")
        if self.dry_run:
            reasons.append("dry run")
        if not self.is_leader:
            reasons.append("standby: another instance holds the leader lock")
        if not self.database_ok:
            reasons.append("database unreachable")
        if self.stopping:
            reasons.append("stopping")
        return ", ".join(reasons) or "dialing"

    # -- running ---------------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event, *, ready: Callable[[], None] | None = None) -> int:
        """Run until ``stop`` is set; 0 on a clean stop."""
        try:
            if not await self._open_database(stop):
                return 0
            assert self.database is not None
            originator: AmiOriginator | ManagerRowOriginator = (
                AmiOriginator(self) if self.settings.dial_via == "ami" else ManagerRowOriginator(self)
            )
            if not (self.shadow or self.dry_run):
                self.leader = LeaderLock(DatabaseAddress.from_conf(self.conf), self.settings.lock_name)
            self.loader = SnapshotLoader(
                self.database, lock_name=None if self.leader is None else self.leader.name
            )
            self.dialer = Dialer(
                self.database,
                originator,
                host_ip=self.conf.server_ip,
                leader=self.leader,
                clock=self.clock,
                pacing=self.pacing,
                per_server_pacing=self.settings.per_server_pacing,
                logs_dir=self.conf.path_logs,
                context_ttl=self.settings.config_refresh,
                concurrent_entries=True,
            )
            if self.trace_sinks:
                self.dialer.on_rows = lambda campaign, server, text: self.core.note(
                    self.clock.monotonic(), "rows", server, campaign, text
                )
            await self._first_refresh()
            for start in self.extra_tasks:
                task = asyncio.get_running_loop().create_task(start())
                self._background.add(task)
            self.started.set()
            if ready is not None:
                ready()
            await self._consume(stop)
            return 0
        finally:
            await self._shut_down()

    async def _open_database(self, stop: asyncio.Event) -> bool:
        if self.database is not None:
            self.database_ok = True
            return True
        address = DatabaseAddress.from_conf(self.conf)
        delay = 0.5
        while not stop.is_set():
            try:
                self.database = await Database.open(
                    address, sql_mode=self.sql_mode, minsize=DB_POOL_SIZE, maxsize=DB_POOL_SIZE
                )
                self.database_ok = True
                log.info("database %s open", address)
                return True
            except StoreError as error:
                log.error("database %s: %s; retrying in %.1f s", address, error, delay)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await stop.wait()
                delay = min(delay * 2, 30.0)
        return False

    async def _first_refresh(self) -> None:
        assert self.database is not None
        try:
            self.host_row = await read_host_row(self.database, self.conf.server_ip)
            if self.host_row is None:
                log.warning(
                    "this host %s has no servers row: the Originates use context 'default' and exten 8365 "
                    "fallbacks", self.conf.server_ip
                )
            await self._refresh_links()
            snapshot, stats = await self._read_refresh(force=True)
            self._apply(Refreshed(snapshot, stats))
        except StoreError as error:
            self.database_ok = False
            log.error("start-up read failed: %s (retried by the refresh loop)", error)

    async def _refresh_links(self) -> None:
        assert self.database is not None
        rows = await read_link_rows(self.database)
        targets, _problems = targets_from_rows(rows, self.settings.ami_username_column)
        update = await self.links.update(targets)
        for server in update.added + update.restarted:
            if server not in self._server_kicks:
                self._server_kicks[server] = _Kick()
                self._new_servers.put_nowait(server)
        for server in update.removed:
            kick = self._server_kicks.pop(server, None)
            if kick is not None:
                kick.close()
        if update.changed:
            log.info(
                "AMI links: %d added, %d removed, %d restarted (%d in all)",
                len(update.added), len(update.removed), len(update.restarted), len(self.links),
            )

    async def _read_refresh(self, *, force: bool = False) -> tuple[Any, list[tuple[str, str, int]] | None]:
        assert self.loader is not None and self.database is not None
        now = self.clock.monotonic()
        config = force or now - self._last_config >= self.settings.config_refresh
        snapshot = await self.loader.load(config=config)
        fence = None if self.leader is None else self.leader.fence
        held = fence is not None and self.loader.lock_holder == fence.connection_id
        self._lock_seen_at = now if held else None
        stats = None
        if force or now - self._last_stats >= self.settings.stats_refresh:
            # live demand reads the stats rows only for servers that are not dialable (the fallback)
            core = self.core
            needed = (
                core.source is ShortageSource.STATS
                or core.snapshot is None
                or bool(set(core.snapshot.servers) - core.dialable_servers())
            )
            if force or needed:
                self._last_stats = now
                stats = await read_stats_rows(self.database, self.clock.wall())
            else:
                stats = []  # nothing falls back now; a later fallback starts from fresh rows, not old ones
        if config:
            self._last_config = now
            if not force:
                await self._refresh_links()
        self.counters["refreshes"] += 1
        return snapshot, stats

    # -- the merged trigger stream ------------------------------------------------------------
    async def _consume(self, stop: asyncio.Event) -> None:
        per_server: Any = stream.iterate(self._server_sources())
        merged = stream.merge(
            stream.flatten(per_server),
            self._refreshes(),
            self._lookups(),
            self._ticks(),
            self._wakes(),
        )
        consumer = asyncio.get_running_loop().create_task(self._consume_stream(merged))
        stopper = asyncio.get_running_loop().create_task(stop.wait())
        self._background.update({self._leader_loop_task()})
        try:
            await asyncio.wait({consumer, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.stopping = True
            self._update_dialing()
            for task in (consumer, stopper):
                task.cancel()
            await asyncio.gather(consumer, stopper, return_exceptions=True)
            if consumer.done() and not consumer.cancelled() and consumer.exception() is not None:
                log.error("the trigger stream ended: %r", consumer.exception())

    async def _consume_stream(self, merged: Any) -> None:
        async with merged.stream() as signals:
            async for signal in signals:
                try:
                    self._apply(signal)
                    await self._plan_pending()
                except Exception:  # a bug in one signal must not stop the reactor
                    log.exception("reactor: handling %s failed", type(signal).__name__)

    async def _server_sources(self) -> AsyncIterator[AsyncIterator[Signal]]:
        while True:  # every server added by _refresh_links is queued once
            name = await self._new_servers.get()
            if name is None:
                return
            server = name
            kick = self._server_kicks.get(server)
            if kick is not None and server not in self._sourced:
                yield self._server_signals(server, kick)

    async def _server_signals(self, server: str, kick: _Kick) -> AsyncIterator[Signal]:
        self._sourced.add(server)
        try:
            while await kick.wait():
                yield ServerSignal(server)
        finally:
            self._sourced.discard(server)

    async def _refreshes(self) -> AsyncIterator[Signal]:
        while True:
            await asyncio.sleep(self.settings.agents_refresh)
            try:
                snapshot, stats = await self._read_refresh()
            except StoreUnavailable as error:
                self.counters["refresh_errors"] += 1
                if self.database_ok:
                    log.error("database unreachable, dialing stops: %s", error)
                self.database_ok = False
                self._update_dialing()
                continue
            except StoreError as error:
                self.counters["refresh_errors"] += 1
                log.error("snapshot refresh failed: %s", error)
                continue
            except Exception:
                log.exception("snapshot refresh failed")
                continue
            if not self.database_ok:
                log.info("database reachable again")
                self.database_ok = True
                self._update_dialing()
            yield Refreshed(snapshot, stats)

    async def _lookups(self) -> AsyncIterator[Signal]:
        while await self._lookup_kick.wait():
            await asyncio.sleep(LOOKUP_BATCH_DELAY)
            wanted = self.core.pending_lookups()
            if not wanted or self.database is None:
                continue
            try:
                found = await lookup_call_origins(self.database, wanted)
            except StoreError as error:
                log.warning("call lookups failed (%s); asked again on the next event", error)
                continue
            self.counters["lookups"] += 1
            yield LookedUp(dict(found))

    async def _ticks(self) -> AsyncIterator[Signal]:
        while True:
            await asyncio.sleep(TICK_SECONDS)
            yield Tick()

    async def _wakes(self) -> AsyncIterator[Signal]:
        while await self._wake_kick.wait():
            yield Wake()

    def _apply(self, signal: Signal) -> None:
        now = self.clock.monotonic()
        core = self.core
        if isinstance(signal, Refreshed):
            if signal.snapshot is not None:
                core.on_snapshot(signal.snapshot, now)
            if signal.stats is not None:
                core.on_stats(signal.stats, now)
        elif isinstance(signal, LookedUp):
            core.on_lookups(signal.found, now)
        elif isinstance(signal, Tick):
            core.tick(now)

    async def _plan_pending(self) -> None:
        core = self.core
        while core.wants_plan:
            began = time.perf_counter()
            decision = core.next_plan(self.clock.monotonic())
            if decision is None:
                return
            self._fit_slice(len(decision.campaigns), time.perf_counter() - began)
            if core.dialing:
                self.fills.plan(decision.plan)
            for observer in self.decision_observers:
                try:
                    observer(decision)
                except Exception:
                    log.exception("decision observer failed")
            if decision.dispatch:
                self._dispatch(decision)
            if core.wants_plan:
                await asyncio.sleep(0)  # a slice done: let the links read before the next one

    def _fit_slice(self, campaigns: int, seconds: float) -> None:
        """Keep one slice of planning under ``plan_slice`` seconds of this loop (measured, adapted)."""
        if campaigns <= 0 or seconds <= 0:
            return
        per_campaign = seconds / campaigns
        cost = self._plan_cost
        self._plan_cost = per_campaign if cost is None else 0.8 * cost + 0.2 * per_campaign
        self.core.max_campaigns_per_slice = max(1, min(1000, int(self.settings.plan_slice / self._plan_cost)))

    # -- dialing ---------------------------------------------------------------------------------
    def _dispatch(self, decision: PlanDecision) -> None:
        self.origins.planned(decision)
        self.counters["dial_tasks"] += 1
        task = asyncio.get_running_loop().create_task(self._dial(decision))
        self._dial_tasks.add(task)
        task.add_done_callback(self._dial_tasks.discard)

    async def _dial(self, decision: PlanDecision) -> None:
        assert self.dialer is not None
        done: set[PlanEntry] = set()
        try:
            report = await self.dialer.dial(decision.dispatch)
            for result in report.entries:
                done.add(result.entry)
                entry = result.entry
                now = self.clock.monotonic()
                self.origins.drop(entry.campaign, entry.server, entry.calls - result.placed)
                self.core.entry_done(entry, result.placed, now, hopper_short=result.claimed < entry.calls)
                if result.error:
                    self.core.note(now, "note", entry.server, entry.campaign, result.error)
        except asyncio.CancelledError:
            raise
        except Exception:
            self.counters["dial_errors"] += 1
            log.exception("dialing a plan failed")
        finally:
            now = self.clock.monotonic()
            for entry in decision.dispatch:
                if entry not in done:
                    self.origins.drop(entry.campaign, entry.server, entry.calls)
                    self.core.entry_done(entry, 0, now)
            self._wake_kick.set()

    # -- the leader ------------------------------------------------------------------------------
    def _leader_loop_task(self) -> asyncio.Task[None]:
        return asyncio.get_running_loop().create_task(self._leader_loop(), name="leader lock")

    async def _leader_loop(self) -> None:
        lock = self.leader
        if lock is None:
            self._update_dialing()
            return
        while not self.stopping:
            now = self.clock.monotonic()
            seen = self._lock_seen_at
            try:
                if lock.is_held and seen is not None and now - seen < self.settings.lock_check and (
                    now - self._lock_queried_at < LOCK_KEEPALIVE
                ):
                    held = True  # the last refresh read the lock as ours: no statement of its own
                else:
                    self._lock_queried_at = now
                    held = await lock.still_held() if lock.is_held else await lock.acquire()
            except StoreUnavailable as error:
                held = False
                log.warning("leader lock: %s", error)
            except Exception:
                held = False
                log.exception("leader lock check failed")
            if held != self.is_leader:
                if held:
                    # a standby's snapshot may predate the calls the old leader placed since: read
                    # the rows again before the first plan, so they count as OUTBALANCE in flight
                    await self._refresh_before_dialing()
                self.is_leader = held
                log.warning("leader lock %s", "taken: this instance dials" if held else "not held: standby")
                if held:
                    self._start_recovery()
            self._update_dialing()
            await asyncio.sleep(self.settings.lock_check)

    async def _refresh_before_dialing(self) -> None:
        try:
            snapshot, stats = await self._read_refresh(force=True)
        except StoreError as error:
            log.warning("refresh before dialing failed (%s): the next refresh will do", error)
            return
        self._apply(Refreshed(snapshot, stats))

    def _start_recovery(self) -> None:
        if self._recovery is not None or self.database is None:
            return
        self._recovery = asyncio.get_running_loop().create_task(self._recover(), name="claim recovery")
        self._background.add(self._recovery)

    async def _recover(self) -> None:
        """While leading: the VDFC_ claims left by a crash, or by calls that got no answer, resolved.

        A pass every ``max(5, stale_claim_age)`` seconds; a claim must be unchanged for
        ``stale_claim_age`` seconds to be touched; one whose call may have gone out is decided by
        what the server's AMI saw (``_went_out``), or left for the next pass.
        """
        assert self.database is not None
        while self.is_leader and not self.stopping:
            try:
                await recover_stale_claims(
                    self.database,
                    now=self.clock.wall(),
                    min_age=self.settings.stale_claim_age,
                    went_out=self._went_out,
                    guard=None if self.dialer is None else self.dialer.holding,
                )
            except StoreError as error:
                log.error("stale-claim recovery failed: %s", error)
            await asyncio.sleep(max(5.0, self.settings.stale_claim_age))
        self._recovery = None

    async def _settle_uncertain(self, server: str) -> None:
        """The server resynced: each Originate it never answered went out if its call was seen there."""
        calls, self.uncertain[server] = self.uncertain.get(server, []), []
        assert self.database is not None
        for call, _at in calls:
            went_out = self.core.model.call_seen(server, call.call_id)
            try:
                await store.settle_attempt(self.database, call, went_out)
            except StoreError as error:  # the periodic recovery settles it later
                log.error("call %s on %s not settled: %s", call.call_id, server, error)
                continue
            outcome = "it went out" if went_out else "it never left; lead released"
            text = f"{call.call_id} had no answer: {outcome}"
            self.core.note(self.clock.monotonic(), "note", server, call.campaign_id, text)

    def _went_out(self, call_id: str, server: str) -> bool | None:
        """Did ``call_id`` reach ``server``? Its channels seen there: yes; the link up and resynced
        without them: no; the link not ready: cannot tell."""
        if self.core.model.call_seen(server, call_id):
            return True
        link = self.links.get(server)
        if link is None or not link.ready or server not in self.core.dialable_servers():
            return None
        return False

    # -- reloading -------------------------------------------------------------------------------
    def reload(self, settings: Settings) -> list[str]:
        """SIGHUP: take new settings without dropping links; what changed, for the log.

        Trigger, timer, hopper retry, refresh intervals, pacing and trace filters take effect at
        once. The shortage source, the way calls are sent, AMI login settings and the lock name need
        a restart (they are reported, not applied).
        """
        old = self.settings
        changed = [n for n in vars(old) if getattr(old, n) != getattr(settings, n)]
        restart = {
            "shortage_source", "dial_via", "ami_user", "lock_name", "ping_interval", "ping_timeout",
            "ami_filter", "reconnect_max_wait", "trace", "trace_file", "metrics_port", "status_socket",
        }
        needs_restart = [n for n in changed if n in restart]
        settings = settings.with_values({n: getattr(old, n) for n in needs_restart})
        self.settings = settings
        core = self.core
        core.trigger = settings.trigger
        core.timer_interval = settings.timer_interval
        core.hopper_retry = settings.hopper_retry
        core.model.reservation_timeout = settings.reservation_timeout
        if not settings.circuit_breaker:
            core.breakers = None
        elif core.breakers is None:
            core.breakers = breakers_for(settings)
        else:
            core.breakers.reconfigure(breaker_config(settings))
        if self.dialer is not None:
            self.dialer.pacer.per_server = settings.per_server_pacing
            self.dialer.context_ttl = settings.config_refresh
        lines = [f"{n} = {getattr(settings, n)!r}" for n in changed if n not in restart]
        lines += [f"{n} changed in the file: takes effect after a restart" for n in needs_restart]
        return lines

    # -- stopping --------------------------------------------------------------------------------
    async def _shut_down(self) -> None:
        self.stopping = True
        self.core.set_dialing(False, self.clock.monotonic())
        for kick in (*self._server_kicks.values(), self._lookup_kick, self._wake_kick, self.fills._kick):
            kick.close()
        self._new_servers.put_nowait(None)
        if self._dial_tasks:
            # cancellation lands in pacing waits; a chunk being written finishes, the rest is released
            tasks = list(self._dial_tasks)
            for task in tasks:
                task.cancel()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(DRAIN_SECONDS):
                    await asyncio.gather(*tasks, return_exceptions=True)
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        if self.leader is not None:
            with contextlib.suppress(Exception):
                await self.leader.release()
        await self.links.close()
        if self.database is not None and self._own_database:
            await self.database.close()

    # -- views -----------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """What ``fillreactor status`` shows (plain data)."""
        core = self.core
        snapshot = core.snapshot
        model = core.model
        now = self.clock.monotonic()
        servers = []
        for ip in sorted(snapshot.servers if snapshot is not None else ()):
            config = snapshot.servers[ip] if snapshot is not None else None
            view = model.server_view(ip)
            breaker = core.breaker_view(ip, now)
            link = self.links.get(ip)
            servers.append(
                {
                    "server_ip": ip,
                    "usage": view.usage,
                    "reservations": view.reservations,
                    "limit": config.max_vicidial_trunks if config is not None else None,
                    "balance": bool(config and config.balance_active),
                    "families": dict(view.dialer_calls),
                    "link": link.state.value if link is not None else "none",
                    "dialable": ip in core.dialable_servers(),
                    "breaker": None if breaker is None else breaker.as_dict(),
                }
            )
        demand = core.demand()
        campaigns = []
        inflight: dict[str, int] = {}
        for (campaign, _server), count in core.own_calls_active().items():
            inflight[campaign] = inflight.get(campaign, 0) + count
        for campaign in sorted(set(demand.by_campaign) | set(inflight)):
            campaigns.append(
                {
                    "campaign_id": campaign,
                    "shortage": demand.total(campaign),
                    "short_on": dict(demand.full_servers(campaign)),
                    "fill_in_flight": inflight.get(campaign, 0),
                }
            )
        p50, p99 = self.latency.percentile(0.5), self.latency.percentile(0.99)
        return {
            "time": time.time(),
            "dialing": core.dialing,
            "why_not_dialing": "" if core.dialing else self.why_not_dialing(),
            "leader": self.is_leader,
            "shortage_source": self.settings.shortage_source,
            "dial_via": self.settings.dial_via,
            "trigger": self.settings.trigger,
            "circuit_breaker": core.breakers is not None,
            "servers": servers,
            "campaigns": campaigns,
            "counters": {**self.counters, **vars(core.counters)},
            "latency_ms": {
                "p50": None if p50 is None else round(p50 * 1000, 3),
                "p99": None if p99 is None else round(p99 * 1000, 3),
                "samples": len(self.latency.samples),
            },
        }

    def status_line(self) -> str:
        """The systemd STATUS= line: "7/8 AMI servers live, 3 campaigns filling, 41 calls in flight"."""
        live = sum(1 for link in self.links.links() if link.ready)
        own = self.core.own_calls_active()
        filling = len({campaign for campaign, _ in own})
        calls = sum(own.values())
        text = f"{live}/{len(self.links)} AMI servers live, {filling} campaigns filling,"
        text += f" {calls} calls in flight"
        paused = self.core.breaker_blocked()
        if paused:
            text += f", FILL paused on {len(paused)} by the circuit breaker"
        if not self.core.dialing:
            text += f" (not dialing: {self.why_not_dialing()})"
        return text
