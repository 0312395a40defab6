"""The reactor's state machine: events, link changes, snapshots and time in; plans out. No I/O.

The async service (``fillreactor.reactor.service``), ``fillreactor replay`` and shadow mode all drive
this one object, so a decision is made by the same code wherever it is made.

Rules this module keeps:

* **Inputs** are method calls with ``now`` passed in (monotonic seconds): ``on_event`` (a typed AMI
  event of one server), ``on_link`` (a link state change), ``on_snapshot`` / ``on_stats`` /
  ``on_lookups`` (store reads), ``tick`` (time passing). Each may mark campaigns *pending*; nothing
  is planned inside an input, so a burst of events read in one go gives one plan.
* **Output** is ``next_plan(now)``: a ``PlanDecision`` for the pending campaigns (at most
  ``max_campaigns_per_slice`` of them, so a full-cluster plan is cut into slices the event loop can
  interleave), or ``None``. The caller hands its entries to the dialer and reports back with
  ``call_sent`` (before the Originate bytes leave: it becomes a reservation in the model),
  ``call_refused`` (the reservation is released at once), ``entry_done`` (the calls of an entry that
  were not placed).
* **No line is handed out twice.** Between a plan and the reservation of each of its calls, the
  planned calls are *in flight to the dialer*: first anonymous (``inflight``), then by call id
  once their rows are being written (``calls_writing``), so a snapshot that already holds their
  ``vicidial_auto_calls`` rows does not count them twice. The next plan sees them as used lines and
  as OUTBALANCE calls in flight, exactly as it will see their reservations a moment later.
* **Unknown state means no dialing there**: no snapshot yet, a server whose link is not live and
  resynced, dialing disabled (standby, shadow, dry run, database unreachable: ``dialing`` False).
  Plans are still made and traced when dialing is off, and their entries are not dispatched.
* **Demand**: ``live`` computes shortages from the model (TriggerState); for an agent server whose
  link is down or not resynced, its rows are replaced by that server's fresh
  ``vicidial_campaign_server_stats`` rows until it is resynced (the trace says so). ``stats`` takes the
  stats rows for every server, as the Perl FILL does.
* **Timer trigger** (``trigger == "timer"``): every campaign with demand is pending each
  ``timer_interval``, and usage changes mark nothing (the Perl's 2.5 s loop, for comparison).
* **A call counts for its campaign only once its lookup answered.** While a server has live calls
  awaiting their ``vicidial_auto_calls`` lookup (a few milliseconds), they are lines but no
  campaign's existing calls, which would inflate that server's shortages: its usage changes are
  held (not fed to the triggers) until the lookups answer, at most ``hold_limit`` seconds.
* A campaign whose last claim found fewer leads than planned is muted for ``hopper_retry`` seconds,
  so an empty hopper is not claimed from on every event.
* **Carrier circuit breakers** (``breakers``: ``fillreactor.core.breaker``; None = off) are fed
  with the results of fillreactor's own originates: their OriginateResponse, an error reply, a
  leg's hang-up cause, a server going away (Shutdown, link down). An open breaker takes its server
  out of the planner's dialable set and nothing else: its link, its demand and its own dialer are
  untouched, and its share of a shortage goes to the next server by rank. Half-open, a plan may
  give it one line (for that plan its usage is raised to its limit less one); the entry that gets
  it takes the probe slot (given back if it was not placed) and ``fill_admits`` lets one call out.
  Every transition is traced (kind ``breaker``), counted, handed to ``on_breaker``, and marks the
  campaigns with demand pending.
* Every input is traced (``fillreactor.reactor.trace``) when it moved something.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from dataclasses import replace as dc_replace
from types import MappingProxyType

from fillreactor.core.breaker import Breakers, BreakerView, Change, Outcome, Transition
from fillreactor.core.cluster import CampaignServer, ClusterSnapshot, LiveCounts
from fillreactor.core.events import (
    ChannelHungUp,
    Event,
    OriginateResult,
    Shutdown,
)
from fillreactor.core.lines import used_lines
from fillreactor.core.model import ChannelModel
from fillreactor.core.origin import CallOrigin
from fillreactor.core.planner import Mode, Plan, PlanEntry, PlanStatus, plan
from fillreactor.core.shortage import Demand
from fillreactor.core.triggers import ShortageSource, TriggerState, Why
from fillreactor.core.usage import UsageChange
from fillreactor.reactor.trace import TraceRecord, TraceSink

# Link states the links report (fillreactor.ami): the reactor maps them onto the model.
LINK_CONNECTING = "connecting"
LINK_LOGGED_IN = "logged_in"
LINK_RESYNC_STARTED = "resync_started"
LINK_RESYNCED = "resynced"
LINK_SHUTTING_DOWN = "shutting_down"
LINK_DOWN = "down"
LINK_STOPPED = "stopped"

OWN_ENDED_KEEP = 20_000  # ended own calls remembered (their rows outlive them by seconds at most)

WHY_TIMER = "timer"
WHY_STARTUP = "start-up"
WHY_LINK = "link resynced"
WHY_RETRY = "hopper retry"
WHY_BREAKER = "circuit breaker {change} on {server}"
BREAKER_COUNTERS = {
    Change.OPENED: "breaker_opened",
    Change.REOPENED: "breaker_reopened",
    Change.HALF_OPEN: "breaker_half_open",
    Change.PROBE: "breaker_probes",
    Change.PROBE_LOST: "breaker_probes_lost",
    Change.CLOSED: "breaker_closed",
}
WHY_DIALING = "dialing enabled"


@dataclass(frozen=True)
class PlanDecision:
    """One plan and what to do with it."""

    plan: Plan
    campaigns: tuple[str, ...]
    reasons: Mapping[str, str]
    dispatch: tuple[PlanEntry, ...]
    """Entries to hand to the dialer (empty when dialing is off)."""
    triggered_at: float | None
    """When the earliest input that made one of these campaigns pending arrived (latency origin)."""
    planned_at: float


@dataclass
class ReactorCounters:
    events: int = 0
    usage_changes: int = 0
    plans: int = 0
    plans_empty: int = 0
    calls_planned: int = 0
    calls_sent: int = 0
    calls_refused: int = 0
    calls_not_placed: int = 0
    snapshots: int = 0
    lookups: int = 0
    shutdowns: int = 0
    resyncs: int = 0
    fallbacks: int = 0
    held: int = 0
    breaker_opened: int = 0
    breaker_reopened: int = 0
    breaker_half_open: int = 0
    breaker_probes: int = 0
    breaker_probes_lost: int = 0
    breaker_closed: int = 0


@dataclass
class _Pending:
    reason: str
    since: float


@dataclass
class ReactorCore:
    """See the module rules. ``dialing`` is the single switch that lets plans be dispatched."""

    source: ShortageSource = ShortageSource.LIVE
    trigger: str = "event"
    timer_interval: float = 2.5
    hopper_retry: float = 1.0
    max_campaigns_per_slice: int = 64
    hold_limit: float = 2.0
    """Longest a server's usage changes wait for its calls' campaign lookups (a slow database)."""
    mode: Mode = Mode.CORRECTED
    model: ChannelModel = field(default_factory=ChannelModel)
    trace: TraceSink | None = None
    started_at: float = 0.0
    dialing: bool = False
    breakers: Breakers | None = None
    """Carrier circuit breakers per balance server (None: ``--no-circuit-breaker``)."""
    on_breaker: Callable[[Transition], None] | None = None
    """Called with every breaker transition (the service logs it and feeds the metrics)."""

    snapshot: ClusterSnapshot | None = field(default=None, init=False)
    triggers: TriggerState | None = field(default=None, init=False)
    inflight: dict[CampaignServer, int] = field(default_factory=dict, init=False)
    own_calls: dict[str, CampaignServer] = field(default_factory=dict, init=False)
    counters: ReactorCounters = field(default_factory=ReactorCounters, init=False)
    _pending: dict[str, _Pending] = field(default_factory=dict, init=False)
    _stats: Demand = field(default_factory=lambda: Demand.from_pairs(()), init=False)
    _muted: dict[str, float] = field(default_factory=dict, init=False)
    _next_timer: float | None = field(default=None, init=False)
    _dialable: set[str] = field(default_factory=set, init=False)
    _not_ready: set[str] = field(default_factory=set, init=False)
    _held: dict[str, tuple[float, float, list[UsageChange]]] = field(default_factory=dict, init=False)
    _deferred: tuple[float, ClusterSnapshot] | None = field(default=None, init=False)
    _probe_entries: dict[str, PlanEntry] = field(default_factory=dict, init=False)
    _own_ended: dict[str, float] = field(default_factory=dict, init=False)
    _pending_ids: dict[str, CampaignServer] = field(default_factory=dict, init=False)
    _accounted: dict[CampaignServer, int] = field(default_factory=dict, init=False)
    _clock_hint: float = field(default=0.0, init=False)

    # -- inputs: AMI ---------------------------------------------------------------------------
    def on_event(self, server: str, event: Event, now: float, received_at: float | None = None) -> None:
        """A typed AMI event read from ``server`` (``received_at``: when its read started)."""
        self.counters.events += 1
        changes = self.model.apply(server, event, now)
        at = now if received_at is None else received_at
        if isinstance(event, OriginateResult) and (not event.success or event.action_id in self.own_calls):
            outcome = "answered" if event.success else "failed"
            campaign = self.own_calls.get(event.action_id, ("", ""))[0]
            detail = f"{outcome} reason {event.reason} {event.action_id}"
            self._trace(now, "originate", server, campaign, detail)
        elif isinstance(event, Shutdown):
            self.counters.shutdowns += 1
            self._not_ready.add(server)
            self._trace(now, "link", server, "", f"Shutdown (restart {'yes' if event.restart else 'no'})")
        if self.breakers is not None and isinstance(event, (OriginateResult, ChannelHungUp, Shutdown)):
            self._breaker_event(server, event, now)
        if changes:
            self._on_changes(server, changes, at, now, event)
        self._sync_dialable(server, at, now)

    def on_link(
        self, server: str, state: str, now: float, detail: str = "", *, accepted: bool = True
    ) -> None:
        """A link state change (``fillreactor.ami.LinkChangeKind`` values).

        ``detail`` is the ActionID for ``resync_started``; ``accepted`` tells a ``resynced``'s outcome.
        A resync also follows an aborted shutdown without a new login, so it marks the link live too.
        """
        model = self.model
        if state == LINK_LOGGED_IN:
            model.set_link(server, True, now)
        elif state == LINK_RESYNC_STARTED:
            model.set_link(server, True, now)
            model.begin_snapshot(server, detail, now)
        elif state == LINK_RESYNCED:
            self.counters.resyncs += 1
            if accepted:
                self._not_ready.discard(server)
        elif state in (LINK_DOWN, LINK_SHUTTING_DOWN, LINK_STOPPED):
            model.set_link(server, False, now)
            if state == LINK_SHUTTING_DOWN:
                self._not_ready.add(server)
        if self.breakers is not None and state in (LINK_DOWN, LINK_SHUTTING_DOWN, LINK_STOPPED):
            # no OriginateResponse of its calls will reach us now; its last failures may be the stop's
            self._breaker_moves(self.breakers.server_lost(server, now), now)
        self._trace(now, "link", server, "", f"{state} {detail}".rstrip())
        self._sync_dialable(server, now, now)

    # -- inputs: the store ---------------------------------------------------------------------
    def on_snapshot(self, snapshot: ClusterSnapshot, now: float) -> None:
        if snapshot is self.snapshot:
            return
        first = self.snapshot is None or self.triggers is None
        if first and self.model.has_pending_lookups():
            # the first shortages need every live call's campaign (see the module rules): wait
            if self._deferred is None:
                self._deferred = (now, snapshot)
            else:
                self._deferred = (self._deferred[0], snapshot)
            if now - self._deferred[0] < self.hold_limit:
                return
        self._deferred = None
        self.counters.snapshots += 1
        self.snapshot = snapshot
        for server in snapshot.servers:
            self.model.add_server(server)
        if first or self.triggers is None:
            self.triggers = TriggerState(
                snapshot, self._model_counts(snapshot), source=self.source, demand=self._stats
            )
            self._trace(now, "refresh", "", "", f"first snapshot: {len(snapshot.servers)} servers, "
                        f"{len(snapshot.campaigns)} campaigns")
            for campaign in self._demand().campaigns():
                self._mark(campaign, WHY_STARTUP, now)
            return
        fired = self.triggers.on_snapshot(snapshot)
        self._mark_fired(fired, now)
        if fired:
            self._trace(now, "refresh", "", "", f"snapshot changed: {len(fired)} campaigns to plan")

    def on_stats(self, rows: Iterable[tuple[str, str, int]], now: float) -> None:
        """Fresh ``vicidial_campaign_server_stats`` rows ``(campaign, server, shortage)``."""
        demand = Demand.from_stats(rows)
        if dict(demand.by_campaign) == dict(self._stats.by_campaign):
            return
        old = self._stats
        self._stats = demand
        if self.triggers is None:
            return
        if self.source is ShortageSource.STATS:
            self._mark_fired(self.triggers.on_stats(demand), now)
        else:  # live: only the fallback of servers that are not dialable reads these
            fallback = self._fallback_servers()
            for campaign in sorted(set(old.by_campaign) | set(demand.by_campaign)):
                before = {s: n for s, n in old.full_servers(campaign).items() if s in fallback}
                after = {s: n for s, n in demand.full_servers(campaign).items() if s in fallback}
                if before != after:
                    self._mark(campaign, Why.SHORTAGE.value, now)

    def on_lookups(self, found: Mapping[str, CallOrigin | str | None], now: float) -> None:
        self.counters.lookups += 1
        changes = self.model.resolve_campaigns(dict(found), now)
        for server in sorted({c.server for c in changes}):
            self._on_changes(server, tuple(c for c in changes if c.server == server), now, now, None)
        self._release_held(now)

    def pending_lookups(self) -> set[str]:
        return self.model.pending_lookups()

    def has_pending_lookups(self) -> bool:
        """Cheap: is any live call waiting for its campaign? (asked after every event)"""
        return self.model.has_pending_lookups()

    # -- inputs: time --------------------------------------------------------------------------
    def tick(self, now: float) -> None:
        if self.breakers is not None:
            self._breaker_moves(self.breakers.advance(now), now)
        changes = self.model.expire(now)
        for server in sorted({c.server for c in changes}):
            self._on_changes(server, tuple(c for c in changes if c.server == server), now, now, None)
        self._release_held(now)
        for campaign, until in list(self._muted.items()):
            if until <= now:
                del self._muted[campaign]
                if self.triggers is not None and self._demand().total(campaign) > 0:
                    self._mark(campaign, WHY_RETRY, now)
        if self.trigger == "timer" and self.triggers is not None:
            if self._next_timer is None or now >= self._next_timer:
                self._next_timer = now + self.timer_interval
                for campaign in self._demand().campaigns():
                    self._mark(campaign, WHY_TIMER, now, force=True)

    def set_dialing(self, dialing: bool, now: float) -> None:
        """Turn dispatching on or off; turned on, every campaign with demand is planned again (plans
        made while it was off dispatched nothing)."""
        if dialing == self.dialing:
            return
        self.dialing = dialing
        if dialing and self.triggers is not None:
            for campaign in self._demand().campaigns():
                self._mark(campaign, WHY_DIALING, now)

    # -- output --------------------------------------------------------------------------------
    @property
    def wants_plan(self) -> bool:
        # asked after every event: the common answers without a generator
        if self.triggers is None or not self._pending:
            return False
        muted = self._muted
        return not muted or any(c not in muted for c in self._pending)

    def next_plan(self, now: float) -> PlanDecision | None:
        triggers = self.triggers
        snapshot = self.snapshot
        if triggers is None or snapshot is None:
            return None
        ready = sorted(c for c in self._pending if c not in self._muted)
        if not ready:
            return None
        campaigns = tuple(ready[: self.max_campaigns_per_slice])
        reasons = {c: self._pending[c].reason for c in campaigns}
        triggered_at = min(self._pending[c].since for c in campaigns)
        for campaign in campaigns:
            del self._pending[campaign]
        self._clock_hint = now
        probing = self._probing()
        live = self._breaker_limits(self._live_for_plan(), probing)
        result = plan(snapshot, self._demand(), live, campaigns=campaigns, mode=self.mode)
        triggers.record_plan(result)
        self.counters.plans += 1
        dispatch: tuple[PlanEntry, ...] = ()
        if result.entries and self.dialing:
            dispatch = result.entries
            for entry in dispatch:
                key = (entry.campaign, entry.server)
                self.inflight[key] = self.inflight.get(key, 0) + entry.calls
            self.counters.calls_planned += sum(e.calls for e in dispatch)
            if probing:
                self._reserve_probes(dispatch, probing, now)
        if not result.entries:
            self.counters.plans_empty += 1
        self._trace_plan(result, campaigns, reasons, now)
        return PlanDecision(result, campaigns, MappingProxyType(reasons), dispatch, triggered_at, now)

    # -- feedback from the dialer ----------------------------------------------------------------
    def calls_writing(self, calls: Iterable[tuple[str, str, str]]) -> None:
        """``(call_id, campaign, server)`` of dispatched calls whose rows are being written now.

        From here their ``vicidial_auto_calls`` rows may show up in a snapshot: they are known by id
        (``_pending``), so a row and the planned call are never counted twice.
        """
        for call_id, campaign, server in calls:
            self._account(campaign, server)
            self._pending_ids[call_id] = (campaign, server)

    def call_sent(
        self, server: str, call_id: str, campaign: str, now: float, reply_within: float = 0.0
    ) -> None:
        """An Originate for ``call_id`` is about to be written: reserve its line in the model, for
        the reservation timeout plus ``reply_within`` (the time its reply may take: ``call_queued``
        restarts the reservation when the reply comes)."""
        if self._pending_ids.pop(call_id, None) is None:
            self._account(campaign, server)
        self.own_calls[call_id] = (campaign, server)
        self.counters.calls_sent += 1
        if self.breakers is not None:
            self._breaker_moves(self.breakers.sent(server, call_id, now), now)
        before = self.model.usage(server)
        timeout = self.model.reservation_timeout + reply_within
        changes = self.model.reserve(server, call_id, campaign, now, timeout)
        after = self.model.usage(server)
        self._trace(now, "originate", server, campaign, f"sent {call_id} usage {before}->{after}")
        if changes:
            self._on_changes(server, changes, now, now, None)

    def call_queued(self, server: str, call_id: str, now: float) -> None:
        """Asterisk accepted the Originate: the call's channels have the reservation timeout from now."""
        self.model.extend_reservation(server, call_id, now)

    def call_refused(
        self, server: str, call_id: str, message: str, now: float, *, error_reply: bool = False
    ) -> None:
        """Asterisk answered the Originate with an error (``error_reply``) or it could not be sent:
        release at once. Only an error reply can count against the server's circuit breaker."""
        self.counters.calls_refused += 1
        self._pending_ids.pop(call_id, None)
        failure = OriginateResult(call_id, False, 0, "", "", call_id)
        changes = self.model.apply(server, failure, now)
        self.own_calls.pop(call_id, None)
        self._trace(now, "originate", server, "", f"refused {call_id}: {message}")
        if self.breakers is not None:
            outcome = Outcome.error_reply(message) if error_reply else Outcome.not_sent(message)
            self._breaker_moves(self.breakers.result(call_id, outcome, now), now)
        if "shutting down" in message.lower():
            self._not_ready.add(server)
            self._sync_dialable(server, now, now)
        if changes:
            self._on_changes(server, changes, now, now, None)

    def hangup_requested(self, call_id: str, why: str = "fillreactor's own Hangup") -> None:
        """A Hangup of one of our calls was asked for (by us, or seen for an admin): its failure is
        not the carrier's."""
        if self.breakers is not None:
            self.breakers.hangup_requested(call_id, why)

    def entry_done(self, entry: PlanEntry, placed: int, now: float, *, hopper_short: bool = False) -> None:
        """The dialer finished an entry: ``placed`` of ``entry.calls`` were sent (``call_sent`` each)."""
        if self._probe_entries.get(entry.server) is entry:
            del self._probe_entries[entry.server]
            if placed == 0 and self.breakers is not None and self.breakers.release_probe(entry.server, now):
                self._trace(now, "breaker", entry.server, entry.campaign, "probe not placed; another may go")
                self._mark(entry.campaign, WHY_BREAKER.format(change="probe", server=entry.server), now)
        missing = entry.calls - placed
        key = (entry.campaign, entry.server)
        for call_id in [cid for cid, of in self._pending_ids.items() if of == key]:
            del self._pending_ids[call_id]  # written, never sent: its rows were undone
        # the dialer runs one entry of a (campaign, server) at a time: what this entry did not take
        # out of the anonymous in-flight count is released here
        self._release_inflight(entry.campaign, entry.server, entry.calls - self._accounted.pop(key, 0))
        if missing > 0:
            self.counters.calls_not_placed += missing
            if hopper_short and self.hopper_retry > 0:
                self._muted[entry.campaign] = now + self.hopper_retry
            self._trace(
                now, "note", entry.server, entry.campaign, f"{placed} of {entry.calls} placed"
                + (f"; hopper short, next claim in {self.hopper_retry:g} s" if hopper_short else "")
            )

    # -- views ---------------------------------------------------------------------------------
    def demand(self) -> Demand:
        """The demand the planner fills now (live with stats fallback, or stats)."""
        return self._demand()

    def dialable_servers(self) -> frozenset[str]:
        return frozenset(self._dialable)

    def fill_admits(self, server: str) -> bool:
        """May a FILL call be written to ``server`` now, as far as its circuit breaker goes?

        Asked once per call right before its rows are written; half-open it lets the one probe
        through (and only once)."""
        return self.breakers is None or self.breakers.admit(server)

    def fill_may_send(self, server: str) -> bool:
        """Asked right before an admitted FILL call's Originate is written (``Breakers.may_send``)."""
        return self.breakers is None or self.breakers.may_send(server)

    def breaker_blocked(self) -> frozenset[str]:
        """Servers FILL gives no call now because of their breaker (open, or the probe is out)."""
        return frozenset() if self.breakers is None else self.breakers.blocked()

    def breaker_view(self, server: str, now: float) -> BreakerView | None:
        return None if self.breakers is None else self.breakers.view(server, now)

    # -- internals -----------------------------------------------------------------------------
    def _model_counts(self, snapshot: ClusterSnapshot) -> LiveCounts:
        model = self.model
        usage = {ip: model.usage(ip) for ip in snapshot.servers}
        campaign_usage = {
            (campaign, ip): count
            for ip in snapshot.servers
            for campaign, count in model.server_view(ip).campaigns.items()
        }
        return LiveCounts(usage, campaign_usage, frozenset(self._dialable))

    def _fallback_servers(self) -> set[str]:
        if self.snapshot is None:
            return set()
        return {ip for ip in self.snapshot.servers if ip not in self._dialable}

    def _demand(self) -> Demand:
        triggers = self.triggers
        if triggers is None:
            return Demand.from_pairs(())
        if self.source is ShortageSource.STATS:
            return triggers.demand
        fallback = self._fallback_servers()
        if not fallback:
            return triggers.demand
        pairs = [
            ((campaign, server), shortage)
            for campaign, servers in triggers.demand.by_campaign.items()
            for server, shortage in servers.items()
            if server not in fallback
        ]
        pairs += [
            ((campaign, server), shortage)
            for campaign, servers in self._stats.by_campaign.items()
            for server, shortage in servers.items()
            if server in fallback
        ]
        return Demand.from_pairs(pairs)

    def _live_for_plan(self) -> LiveCounts:
        assert self.triggers is not None and self.snapshot is not None
        live = self.triggers.live()
        usage = dict(live.usage)
        own = self._own_active_ids()
        exact: dict[CampaignServer, int] = {}
        ended = self._own_ended
        model = self.model
        for key, ids in self.snapshot.outbalance_calls.items():
            # a row of a call fillreactor saw end is waiting for VICIdial's cleanup: not in flight,
            # unless the call is there after all (its channels came after its reservation expired)
            count = sum(1 for cid in ids if cid not in ended or model.call_active(key[1], cid))
            if count:
                exact[key] = count
        for call_id, key in own.items():
            if call_id not in self.snapshot.outbalance_calls.get(key, ()):
                exact[key] = exact.get(key, 0) + 1  # placed after the rows were read
        for call_id, key in self._pending_ids.items():  # rows being written, not reserved yet
            usage[key[1]] = usage.get(key[1], 0) + 1
            if call_id not in self.snapshot.outbalance_calls.get(key, ()):
                exact[key] = exact.get(key, 0) + 1
        own_counts: dict[CampaignServer, int] = {}
        for key in (*own.values(), *self._pending_ids.values()):
            own_counts[key] = own_counts.get(key, 0) + 1
        for key, count in self.inflight.items():
            if count:
                exact[key] = exact.get(key, 0) + count
                own_counts[key] = own_counts.get(key, 0) + count
                usage[key[1]] = usage.get(key[1], 0) + count
        return dc_replace(
            live,
            usage=usage,
            own_outbalance=own_counts,
            outbalance_in_flight=exact,
            dialable=frozenset(self._dialable),
        )

    def own_calls_active(self) -> dict[CampaignServer, int]:
        """fillreactor's own OUTBALANCE calls still live or reserved, per (campaign, server)."""
        counts: dict[CampaignServer, int] = {}
        for key in self._own_active_ids().values():
            counts[key] = counts.get(key, 0) + 1
        return counts

    def _own_active_ids(self) -> dict[str, CampaignServer]:
        """Own calls still live or reserved; the others move to ``_own_ended`` (kept a while)."""
        model = self.model
        gone = [cid for cid, key in self.own_calls.items() if not model.call_active(key[1], cid)]
        for call_id in gone:
            del self.own_calls[call_id]
            self._own_ended[call_id] = self._clock_hint
        if len(self._own_ended) > OWN_ENDED_KEEP:
            for call_id in list(self._own_ended)[: len(self._own_ended) - OWN_ENDED_KEEP]:
                del self._own_ended[call_id]
        return dict(self.own_calls)

    def _account(self, campaign: str, server: str) -> None:
        """One dispatched call leaves the anonymous in-flight count (known by id from now on)."""
        key = (campaign, server)
        self._release_inflight(campaign, server, 1)
        self._accounted[key] = self._accounted.get(key, 0) + 1

    def _release_inflight(self, campaign: str, server: str, count: int) -> None:
        key = (campaign, server)
        left = self.inflight.get(key, 0) - count
        if left > 0:
            self.inflight[key] = left
        else:
            self.inflight.pop(key, None)

    def _on_changes(
        self, server: str, changes: tuple[UsageChange, ...], at: float, now: float, event: Event | None
    ) -> None:
        self.counters.usage_changes += len(changes)
        if self.trace is not None and event is not None:
            self._trace_event(server, changes, event, now)
        if self.triggers is None:
            return
        held = self._held.get(server)
        if self.model.awaits_campaign(server) and (held is None or now - held[0] < self.hold_limit):
            # a call here is counted as a line but not yet as its campaign's existing call: the
            # shortage would be too high until the lookup answers (milliseconds); keep the last one
            if held is None:
                self._held[server] = (now, at, list(changes))
            else:
                held[2].extend(changes)
            self.counters.held += 1
            return
        if held is not None:
            del self._held[server]
            changes = (*held[2], *changes)
            at = min(at, held[1])
        fired = self.triggers.on_usage(changes)
        if self.trigger != "timer":
            self._mark_fired(fired, at)

    def _release_held(self, now: float) -> None:
        if self._deferred is not None:
            self.on_snapshot(self._deferred[1], now)
        for server in list(self._held):
            since = self._held[server][0]
            if not self.model.awaits_campaign(server) or now - since >= self.hold_limit:
                self._on_changes(server, (), now, now, None)

    def _sync_dialable(self, server: str, at: float, now: float) -> None:
        dialable = self.model.dialable(server) and server not in self._not_ready
        if dialable == (server in self._dialable):
            return
        if dialable:
            self._dialable.add(server)
        else:
            self._dialable.discard(server)
        if self.triggers is None:
            self._trace(now, "link", server, "", "dialable" if dialable else "not dialable")
            return
        fired = self.triggers.set_dialable(server, dialable)
        self._mark_fired(fired, at)
        config = self.snapshot.servers.get(server) if self.snapshot is not None else None
        if self.source is ShortageSource.LIVE and config is not None:
            # this server's demand switches between live counts and its stats rows: replan its campaigns
            affected = set(self.snapshot.campaigns_on_server.get(server, ())) if self.snapshot else set()
            affected |= {c for c, servers in self._stats.by_campaign.items() if server in servers}
            for campaign in sorted(affected):
                self._mark(campaign, WHY_LINK, at)
            if not dialable and affected:
                self.counters.fallbacks += 1
                self._trace(now, "note", server, "", f"not dialable: demand of {len(affected)} campaigns "
                            "falls back to its vicidial_campaign_server_stats rows")
        self._trace(now, "link", server, "", "dialable" if dialable else "not dialable")

    def _mark_fired(self, fired: Iterable[str], at: float) -> None:
        triggers = self.triggers
        reasons = triggers.last_reasons if triggers is not None else {}
        for campaign in sorted(fired):  # sorted: the trace is the same whatever the hash seed
            why = reasons.get(campaign)
            self._mark(campaign, why.value if isinstance(why, Why) else "changed", at)

    def _mark(self, campaign: str, reason: str, at: float, *, force: bool = False) -> None:
        if self.trigger == "timer" and not force:
            return
        pending = self._pending.get(campaign)
        if pending is None:
            self._pending[campaign] = _Pending(reason, at)
            self._trace(at, "threshold", "", campaign, reason)
        elif at < pending.since:
            pending.since = at

    # -- circuit breakers ------------------------------------------------------------------------
    def _breaker_event(self, server: str, event: Event, now: float) -> None:
        breakers = self.breakers
        assert breakers is not None
        if isinstance(event, OriginateResult):
            call_id = event.action_id if breakers.tracks(event.action_id) else event.caller_id_name
            outcome = Outcome.response(event.success, event.reason)
            self._breaker_moves(breakers.result(call_id, outcome, now), now)
        elif isinstance(event, ChannelHungUp):
            breakers.on_hangup(event.caller_id_name or event.connected_line_name, event.cause)
        elif isinstance(event, Shutdown):  # its ringing calls just failed with Reason 0 (AMI.md 6a.1)
            self._breaker_moves(breakers.server_lost(server, now), now)

    def _probing(self) -> frozenset[str]:
        """Half-open dialable servers whose one probe may be planned now (reserved only if dispatched)."""
        if self.breakers is None:
            return frozenset()
        return self.breakers.probe_open() & frozenset(self._dialable)

    def _breaker_limits(self, live: LiveCounts, probing: frozenset[str]) -> LiveCounts:
        """The plan's counts with open breakers out of the dialable set and one line when half-open."""
        breakers = self.breakers
        if breakers is None:
            return live
        blocked = breakers.blocked()
        snapshot = self.snapshot
        if not (blocked & live.dialable or probing) or snapshot is None:
            return live
        usage = dict(live.usage)
        for server in sorted(probing & live.dialable):
            config = snapshot.servers.get(server)
            if config is None:
                continue
            spare = config.max_vicidial_trunks - used_lines(snapshot, live, server)
            if spare > 1:  # the planner's temp_avail becomes 1: one call, the rest by rank
                model_part = usage.get(server, snapshot.row_lines.v_lines.get(server, 0))
                usage[server] = model_part + spare - 1
        return dc_replace(live, usage=usage, dialable=live.dialable - blocked)

    def _reserve_probes(self, dispatch: tuple[PlanEntry, ...], probing: frozenset[str], now: float) -> None:
        breakers = self.breakers
        assert breakers is not None
        for entry in dispatch:
            server = entry.server
            if server not in probing or server in self._probe_entries:
                continue
            if breakers.reserve_probe(server, now):
                self._probe_entries[server] = entry
                self._trace(now, "breaker", server, entry.campaign, "probe planned: 1 call while half-open")

    def _breaker_moves(self, moves: Iterable[Transition], now: float) -> None:
        """Trace, count and report each transition; all but PROBE replan the campaigns with demand."""
        counters = self.counters
        for move in moves:
            name = BREAKER_COUNTERS[move.change]
            setattr(counters, name, getattr(counters, name) + 1)
            self._trace(now, "breaker", move.server, "", move.describe())
            if self.on_breaker is not None:
                self.on_breaker(move)
            if move.change is Change.PROBE or self.triggers is None:
                continue
            # open: its share goes to the next server by rank; half-open, closed, probe lost: it may take one
            reason = WHY_BREAKER.format(change=move.change.value, server=move.server)
            for campaign in self._demand().campaigns():
                self._mark(campaign, reason, now)

    # -- trace ---------------------------------------------------------------------------------
    def note(self, now: float, kind: str, server: str, campaign: str, detail: str) -> None:
        """A trace record from a driver (the dialer's outcome, a replay's would-originate)."""
        self._trace(now, kind, server, campaign, detail)

    def _trace(self, now: float, kind: str, server: str, campaign: str, detail: str) -> None:
        if self.trace is not None:
            self.trace(TraceRecord(round(now - self.started_at, 3), kind, server, campaign, detail))

    def _trace_event(self, server: str, changes: tuple[UsageChange, ...], event: Event, now: float) -> None:
        name = type(event).__name__
        channel = getattr(event, "channel", "")
        call = getattr(event, "caller_id_name", "") or getattr(event, "connected_line_name", "")
        first = changes[0]
        campaigns = " ".join(
            f"{c.campaign} {c.campaign_before}->{c.campaign_after}" for c in changes if c.campaign is not None
        )
        text = f"{name} {channel} {call}".rstrip() + f" usage {first.usage_before}->{changes[-1].usage_after}"
        if isinstance(event, ChannelHungUp):
            text += f" cause {event.cause}"
        if campaigns:
            text += f" ({campaigns})"
        self._trace(now, "event", server, "", text)

    def _trace_plan(
        self, result: Plan, campaigns: tuple[str, ...], reasons: Mapping[str, str], now: float
    ) -> None:
        if self.trace is None:
            return
        if result.status is not PlanStatus.PLANNED:
            self._trace(now, "plan", "", "", result.status.value)
            return
        for campaign_plan in result.campaigns:
            calls = ", ".join(
                f"{e.server} +{e.calls}" for e in result.entries if e.campaign == campaign_plan.campaign
            )
            head = (
                f"shortage {campaign_plan.shortage} in flight {campaign_plan.balance_in_flight} "
                f"needed {campaign_plan.needed} -> {calls or 'no calls'}"
                + ("" if self.dialing or not calls else " (not dialing)")
            )
            self._trace(now, "plan", "", campaign_plan.campaign, head)
            for line in campaign_plan.explain()[1:]:
                self._trace(now, "plan", "", campaign_plan.campaign, "  " + line.strip())

