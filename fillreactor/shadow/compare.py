"""The shadow comparison: fillreactor's wanted calls paired with the calls the Perl FILL placed.

Pure: no I/O, no clock (a ``Moment`` comes with every input), deterministic, nothing raises on odd
input (an unknown campaign or server simply gets its own lane).

Rules this module keeps:

* **A lane** per (campaign, balance server). fillreactor's *level* there is what its latest plan
  for the campaign gives the server (``PlanEntry.calls``; in shadow mode nothing is dispatched, so
  every plan asks again for what is still missing). Its *wants* are the calls it asks for that no
  Perl call has met yet, each dated by the decision that first asked for it.
* **The Perl's calls** are its new OUTBALANCE ``vicidial_auto_calls`` rows, fed in
  ``auto_call_id`` order when the poller sees them (``on_perl_calls``). A call meets the oldest
  want of its lane: a **match**, lead time = seen at - wanted since (seconds, the service's
  monotonic clock; so at most one poll late, never skewed by the FILL host's clock). A call that
  meets no want is **Perl only** and gets a reason.
* **Reconciling a lane** (after each decision and each Perl row seen or gone). A plan counts as
  in flight the OUTBALANCE rows its snapshot read (``ClusterSnapshot.outbalance_calls``, by call
  id), so its level already leaves those out. With K = the ids the plan counted on the lane,
  U = the ids of K the poller has not seen yet and V = the Perl calls the poller has seen and the
  plan did not count (newer than its snapshot)::

      wants = min(|U|, open wants) + max(0, level - |V|)

  More wants than before: new ones, dated by the lane's latest decision. Fewer: the newest are
  **withdrawn** (fillreactor no longer wants them and no Perl call met them: *fillreactor only*,
  with the reason of the decision that dropped them). Whether the snapshot or the poller sees a
  Perl call first, the wants come out the same.
* **Perl-only reasons** are the table ``PERL_ONLY_RULES``, tried in order; the first rule that
  holds names the call. The *reference plan* is the campaign's latest decision that counted none
  of the calls of that Perl loop (a loop is the call id's ``CIDdate``, spec 5.3: a snapshot read
  in the middle of the Perl's inserts does not change the answer).
* Where a difference comes from a named ``Correction`` of the planner (the plan's step for the
  server carries the Perl's own DIAL on the same state, ``ServerStep.perl_dial``), the line says
  which: a Perl-only call where ``perl_dial > dial``, a want where ``perl_dial < dial``.
* **Over the limit because of Perl FILL calls**: a server's lines used exceed its
  ``max_vicidial_trunks`` while it carries live Perl FILL calls; the excess counted is
  ``min(used - limit, Perl FILL calls on it)``. Each interval is one report line.
* ``finish`` turns every open want into *fillreactor only* ("still wanted") and closes open
  intervals, so a finished report holds: asked = matched + fillreactor only, and Perl placed =
  matched + Perl only (``report.Totals`` adds the lines up).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from types import MappingProxyType
from typing import Any

from fillreactor.core.callid import is_auto_dial_id
from fillreactor.core.planner import (
    CampaignOutcome,
    CampaignPlan,
    Correction,
    Plan,
    PlanStatus,
    ServerStep,
)
from fillreactor.shadow.report import Totals

HISTORY = 64  # decisions kept per campaign (the reference plan is one of the latest)
GONE_KEEP = 20_000  # call ids of Perl calls seen gone, remembered to tell "gone" from "not seen yet"
LOOP_KEEP = 4_096
LEADS_KEEP = 100_000  # lead times kept for the running percentiles (a report file keeps all)
EMPTY: frozenset[str] = frozenset()
Line = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Moment:
    at: float
    """The service clock's monotonic seconds."""
    wall: datetime


@dataclass(frozen=True, slots=True)
class PerlCall:
    """One new OUTBALANCE row of the Perl FILL (and its ``vicidial_manager`` row, when seen)."""

    auto_call_id: int
    campaign: str
    server: str
    callerid: str
    call_time: datetime | None = None
    man_id: int | None = None

    @property
    def loop(self) -> str:
        """The Perl loop that placed it: every call of one loop shares the CIDdate (spec 5.3)."""
        if is_auto_dial_id(self.callerid):
            return self.callerid[1:10]
        return f"call {self.auto_call_id}"


@dataclass(frozen=True, slots=True)
class StatsRow:
    """A ``vicidial_campaign_server_stats`` row the Perl FILL reads (spec 2.2.3), and its age."""

    campaign: str
    server: str
    shortage: int
    age: float
    """Seconds since its ``update_time`` (the database's clock)."""


@dataclass(frozen=True)
class World:
    """What the reactor knows when a Perl call is seen (for the reasons)."""

    dialable: frozenset[str] = frozenset()
    used: Mapping[str, int] = field(default_factory=dict)
    """Lines used per server (the model's V calls + every other row in a live status)."""
    limits: Mapping[str, int] = field(default_factory=dict)
    """``servers.max_vicidial_trunks``."""
    demand: Mapping[str, int] = field(default_factory=dict)
    """fillreactor's shortage per campaign now."""
    stats: tuple[StatsRow, ...] = ()
    stale_after: float = 10.0
    """A stats row older than this is stale (AST_VDauto_dial.pl rewrites it about every second)."""


class PerlOnly(Enum):
    """Why the Perl placed a call fillreactor would not have (``PERL_ONLY_RULES`` decides)."""

    LINK_DOWN = "link down"
    OVERDIAL = "overdial"
    FULL_SERVER = "full server"
    PERL_FIRST = "perl first"
    STALE_SHORTAGE = "stale shortage"
    SHORTAGE_DIFFERS = "shortage differs"
    OTHER_SERVER = "other server"
    NOT_WANTED = "not wanted"


class FillOnly(Enum):
    """Why a call fillreactor wanted was never placed by the Perl."""

    FILLED_ELSEWHERE = "filled elsewhere"
    DEMAND_GONE = "demand gone"
    NO_AGENTS = "no agents"
    LINK_DOWN = "link down"
    CAPACITY = "capacity"
    NEED_MET = "need met"
    DIALING_DISABLED = "dialing disabled"
    STILL_WANTED = "still wanted"


def iso(moment: Moment | datetime | None) -> str | None:
    if moment is None:
        return None
    wall = moment.wall if isinstance(moment, Moment) else moment
    return wall.isoformat(sep=" ", timespec="milliseconds")


@dataclass(frozen=True, eq=False)
class _View:
    """One campaign's part of one decision, as the comparison keeps it."""

    number: int
    at: Moment
    campaign: str
    status: PlanStatus
    plan: CampaignPlan | None
    levels: Mapping[str, int]
    counted: Mapping[str, frozenset[str]]
    loops: frozenset[str]
    fill: int | None

    def step(self, server: str) -> ServerStep | None:
        if self.plan is None:
            return None
        for step in self.plan.steps:
            if step.server == server:
                return step
        return None

    def explanation(self) -> list[str]:
        if self.status is not PlanStatus.PLANNED:
            return [self.status.value]
        return self.plan.explain() if self.plan is not None else [f"{self.campaign}: no shortage"]


@dataclass(eq=False)
class _Want:
    since: Moment
    view: _View
    corrections: tuple[str, ...]


@dataclass(eq=False)
class _Lane:
    campaign: str
    server: str
    wants: deque[_Want] = field(default_factory=deque)
    level: int = 0
    counted: frozenset[str] = EMPTY
    view: _View | None = None
    alive: dict[str, int] = field(default_factory=dict)
    """Call id -> auto_call_id of the Perl calls seen on the lane and not seen gone."""


@dataclass(eq=False)
class _Over:
    since: Moment
    limit: int
    peak: int


@dataclass(frozen=True)
class _Ctx:
    call: PerlCall
    lane: _Lane
    ref: _View | None
    world: World
    lanes: Mapping[str, _Lane]
    """The campaign's lanes by server."""

    @property
    def step(self) -> ServerStep | None:
        return self.ref.step(self.call.server) if self.ref is not None else None


Rule = Callable[[_Ctx], "tuple[str, tuple[str, ...]] | None"]


def _link_down(ctx: _Ctx) -> tuple[str, tuple[str, ...]] | None:
    server, step = ctx.call.server, ctx.step
    if server not in ctx.world.dialable or (step is not None and Correction.NOT_DIALABLE in step.corrections):
        return (
            f"{server}: its AMI link was not live and resynced, fillreactor gives such a server no calls",
            (Correction.NOT_DIALABLE.name,),
        )
    return None


def _overdial(ctx: _Ctx) -> tuple[str, tuple[str, ...]] | None:
    step, server = ctx.step, ctx.call.server
    if step is not None and step.perl_dial > step.dial:
        text = f"the Perl's DIAL on {server} is {step.perl_dial} on this state, fillreactor's {step.dial}"
        if step.temp_avail < step.perl_dial:
            text += f"; {server} had {step.temp_avail} lines free"
        return text, tuple(c.name for c in step.corrections)
    plan = ctx.ref.plan if ctx.ref is not None else None
    if plan is not None and plan.perl_calls is not None and plan.perl_calls > plan.tally:
        text = (
            f"the Perl places {plan.perl_calls} calls for {plan.campaign} on this state, fillreactor"
            f" {plan.tally} (needed {plan.needed})"
        )
        return text, tuple(c.name for c in plan.corrections)
    return None


def _full_server(ctx: _Ctx) -> tuple[str, tuple[str, ...]] | None:
    server = ctx.call.server
    used, limit = ctx.world.used.get(server), ctx.world.limits.get(server)
    if used is not None and limit is not None and used >= limit:
        return f"{server} at or over its limit: {used} lines used of {limit}", ()
    return None


def _perl_first(ctx: _Ctx) -> tuple[str, tuple[str, ...]] | None:
    campaign = ctx.call.campaign
    live = ctx.world.demand.get(campaign, 0)
    planned = ctx.ref.plan.shortage if ctx.ref is not None and ctx.ref.plan is not None else 0
    if live > planned:
        return (
            f"fillreactor's shortage for {campaign} had risen to {live} but its latest plan had {planned}:"
            " the Perl's loop came first",
            (),
        )
    return None


def _perl_shortage(ctx: _Ctx) -> tuple[list[StatsRow], int, int]:
    rows = [r for r in ctx.world.stats if r.campaign == ctx.call.campaign and r.shortage > 0]
    return rows, sum(r.shortage for r in rows), ctx.world.demand.get(ctx.call.campaign, 0)


def _stale_shortage(ctx: _Ctx) -> tuple[str, tuple[str, ...]] | None:
    rows, perl, live = _perl_shortage(ctx)
    old = [r for r in rows if r.age > ctx.world.stale_after]
    if perl > live and old:
        where = ", ".join(f"{r.server} {r.shortage} ({r.age:.0f} s old)" for r in old)
        return (
            f"vicidial_campaign_server_stats says {ctx.call.campaign} is short {perl} (stale rows: {where});"
            f" fillreactor's live count says {live}",
            (),
        )
    return None


def _shortage_differs(ctx: _Ctx) -> tuple[str, tuple[str, ...]] | None:
    _rows, perl, live = _perl_shortage(ctx)
    if perl > live:
        return (
            f"vicidial_campaign_server_stats says {ctx.call.campaign} is short {perl},"
            f" fillreactor's live count says {live}",
            (),
        )
    return None


def _other_server(ctx: _Ctx) -> tuple[str, tuple[str, ...]] | None:
    campaign, server = ctx.call.campaign, ctx.call.server
    elsewhere = {s: len(lane.wants) for s, lane in ctx.lanes.items() if s != server and lane.wants}
    if elsewhere:
        where = ", ".join(f"{n} on {s}" for s, n in sorted(elsewhere.items()))
        return f"fillreactor wanted {campaign}'s calls elsewhere: {where}", ()
    return None


def _not_wanted(ctx: _Ctx) -> tuple[str, tuple[str, ...]]:
    plan = ctx.ref.plan if ctx.ref is not None else None
    if ctx.ref is None:
        return f"fillreactor had made no plan for {ctx.call.campaign}", ()
    if plan is None:
        return f"fillreactor's plan: {ctx.ref.explanation()[0]}", ()
    return (
        f"fillreactor's plan for {plan.campaign}: shortage {plan.shortage}, in flight"
        f" {plan.balance_in_flight}, needed {plan.needed}, {ctx.ref.levels.get(ctx.call.server, 0)} here",
        tuple(c.name for c in plan.corrections),
    )


PERL_ONLY_RULES: tuple[tuple[PerlOnly, Rule], ...] = (
    (PerlOnly.LINK_DOWN, _link_down),
    (PerlOnly.OVERDIAL, _overdial),
    (PerlOnly.FULL_SERVER, _full_server),
    (PerlOnly.PERL_FIRST, _perl_first),
    (PerlOnly.STALE_SHORTAGE, _stale_shortage),
    (PerlOnly.SHORTAGE_DIFFERS, _shortage_differs),
    (PerlOnly.OTHER_SERVER, _other_server),
    (PerlOnly.NOT_WANTED, _not_wanted),
)
"""Why a Perl call met no want: the first rule that holds, in this order."""


def classify(ctx: _Ctx) -> tuple[PerlOnly, str, tuple[str, ...]]:
    for reason, rule in PERL_ONLY_RULES:
        found = rule(ctx)
        if found is not None:
            return reason, found[0], found[1]
    raise AssertionError("the last rule always holds")  # pragma: no cover


def _withdrawn_reason(view: _View | None, server: str, first: _View) -> tuple[FillOnly, str]:
    """Why ``view`` (the decision that dropped the wants; None: the end) no longer asks for them;
    ``first`` is the decision that asked for them."""
    if view is None:
        return FillOnly.STILL_WANTED, "still wanted when the comparison ended; the Perl never placed it"
    if view.status is PlanStatus.DIALING_DISABLED:
        return FillOnly.DIALING_DISABLED, PlanStatus.DIALING_DISABLED.value
    plan = view.plan
    if view.status is PlanStatus.RESET or plan is None:
        return FillOnly.DEMAND_GONE, f"{view.campaign}: no shortage left"
    head = f"shortage {plan.shortage}, in flight {plan.balance_in_flight}, needed {plan.needed}"
    before = first.plan
    if before is not None and plan.balance_in_flight > before.balance_in_flight:
        return FillOnly.FILLED_ELSEWHERE, (
            f"the Perl's calls on other servers were counted: in flight {before.balance_in_flight}"
            f" -> {plan.balance_in_flight} ({head})"
        )
    if plan.outcome is CampaignOutcome.NO_AGENTS:
        return FillOnly.NO_AGENTS, f"{plan.outcome.value} ({head})"
    if plan.outcome is not CampaignOutcome.PLANNED:
        return FillOnly.DEMAND_GONE, f"{plan.outcome.value} ({head})"
    if before is not None and plan.shortage < before.shortage:
        return FillOnly.DEMAND_GONE, f"shortage {before.shortage} -> {plan.shortage} ({head})"
    step = view.step(server)
    if step is None:
        return FillOnly.NEED_MET, f"the need was met on servers asked before {server} ({head})"
    if Correction.NOT_DIALABLE in step.corrections:
        return FillOnly.LINK_DOWN, f"{server}: AMI link not live and resynced"
    return (
        FillOnly.CAPACITY,
        f"{server}: AVAIL {step.available}, lines free {step.temp_avail}, DIAL {step.dial}",
    )


class ShadowComparison:
    """See the module rules. Inputs: ``on_decision``, ``on_perl_calls``, ``on_perl_gone``,
    ``on_usage``, ``on_perl_fill``, ``finish``; output: ``drain()`` report lines, ``totals``."""

    def __init__(self) -> None:
        self._lanes: dict[tuple[str, str], _Lane] = {}
        self._lanes_of: dict[str, dict[str, _Lane]] = {}  # campaign -> server -> lane
        self._where: dict[str, _Lane] = {}  # call id -> the lane of a live Perl call
        self._counted_of: tuple[object, dict[str, dict[str, frozenset[str]]]] = (None, {})
        self._history: dict[str, deque[_View]] = {}
        self._gone: OrderedDict[str, None] = OrderedDict()
        self._loop_base: OrderedDict[tuple[str, str], _View | None] = OrderedDict()
        self._fill_on: dict[str, int] = {}
        self._over: dict[str, _Over] = {}
        self._lines: list[Line] = []
        self.totals = Totals(lead_limit=LEADS_KEEP)
        self.perl_fill: dict[str, int] = {}
        self.fill_fill: dict[str, int] = {}
        self.decisions = 0
        self.asked = 0
        """Wants made: every one ends matched, withdrawn (fillreactor only) or still open."""

    # -- inputs ----------------------------------------------------------------------------------
    def known_calls(self, calls: Iterable[PerlCall]) -> None:
        """OUTBALANCE rows already there when the comparison starts: alive, but not new calls."""
        for call in calls:
            lane = self._lane(call.campaign, call.server)
            if call.callerid not in lane.alive:
                lane.alive[call.callerid] = call.auto_call_id
                self._where[call.callerid] = lane
                self._fill_on[call.server] = self._fill_on.get(call.server, 0) + 1

    def on_decision(
        self,
        number: int,
        moment: Moment,
        plan: Plan,
        campaigns: Iterable[str],
        counted: Mapping[tuple[str, str], frozenset[str]],
    ) -> None:
        """A ``PlanDecision``: its plan, its campaigns and the OUTBALANCE call ids its snapshot read."""
        self.decisions += 1
        plans = {p.campaign: p for p in plan.campaigns}
        source, by_campaign = self._counted_of
        if source is not counted:  # indexed once per snapshot (the same mapping object)
            by_campaign = {}
            for (campaign, server), ids in counted.items():
                by_campaign.setdefault(campaign, {})[server] = frozenset(ids)
            self._counted_of = (counted, by_campaign)
        for campaign in campaigns:
            levels: dict[str, int] = {}
            for entry in plan.entries:
                if entry.campaign == campaign:
                    levels[entry.server] = levels.get(entry.server, 0) + entry.calls
            mine = by_campaign.get(campaign, {})
            loops = frozenset(cid[1:10] for ids in mine.values() for cid in ids if is_auto_dial_id(cid))
            fill = plan.balance_trunk_fill.get(campaign)
            view = _View(
                number,
                moment,
                campaign,
                plan.status,
                plans.get(campaign),
                MappingProxyType(levels),
                MappingProxyType(mine),
                loops,
                fill,
            )
            if fill is not None:
                self.fill_fill[campaign] = fill
            self._history.setdefault(campaign, deque(maxlen=HISTORY)).append(view)
            servers = set(levels) | set(mine) | set(self._lanes_of.get(campaign, ()))
            for server in sorted(servers):
                lane = self._lane(campaign, server)
                lane.level = levels.get(server, 0)
                lane.counted = mine.get(server, EMPTY)
                lane.view = view
                self._reconcile(lane, moment, view)

    def on_perl_calls(self, calls: Sequence[PerlCall], moment: Moment, world: World) -> None:
        """New OUTBALANCE rows of the Perl FILL, in ``auto_call_id`` order."""
        groups: dict[tuple[Any, ...], Line] = {}
        touched: set[str] = set()
        for call in sorted(calls, key=lambda c: c.auto_call_id):
            lane = self._lane(call.campaign, call.server)
            if call.callerid in lane.alive:
                continue  # already seen
            if call.callerid in self._gone:  # its row written again after it was gone: the same call
                del self._gone[call.callerid]
                lane.alive[call.callerid] = call.auto_call_id
                self._where[call.callerid] = lane
                self._fill_on[call.server] = self._fill_on.get(call.server, 0) + 1
                touched.add(call.server)
                self._reconcile(lane, moment, None)
                continue
            ref = self._reference(call)
            lane.alive[call.callerid] = call.auto_call_id
            self._where[call.callerid] = lane
            self._fill_on[call.server] = self._fill_on.get(call.server, 0) + 1
            touched.add(call.server)
            if lane.wants:
                want = lane.wants.popleft()
                lead = round(moment.at - want.since.at, 6)
                key: tuple[Any, ...] = ("match", call.campaign, call.server, want.view.number, call.loop)
                line = groups.get(key)
                if line is None:
                    line = groups[key] = {
                        "kind": "match",
                        "campaign": call.campaign,
                        "server": call.server,
                        "calls": 0,
                        "decision": want.view.number,
                        "planned_at": iso(want.since),
                        "perl_call_time": iso(call.call_time),
                        "observed_at": iso(moment),
                        "lead_s": [],
                        "callerids": [],
                        "manager_rows": 0,
                        "corrections": list(want.corrections),
                        "explanation": want.view.explanation(),
                    }
                line["lead_s"].append(lead)
            else:
                reason, detail, corrections = classify(
                    _Ctx(call, lane, ref, world, self._lanes_of.get(call.campaign, {}))
                )
                key = (
                    "perl_only",
                    call.campaign,
                    call.server,
                    reason,
                    ref.number if ref else None,
                    call.loop,
                )
                line = groups.get(key)
                if line is None:
                    line = groups[key] = {
                        "kind": "perl_only",
                        "campaign": call.campaign,
                        "server": call.server,
                        "calls": 0,
                        "reason": reason.value,
                        "detail": detail,
                        "corrections": list(corrections),
                        "decision": ref.number if ref is not None else None,
                        "perl_call_time": iso(call.call_time),
                        "observed_at": iso(moment),
                        "callerids": [],
                        "manager_rows": 0,
                        "explanation": ref.explanation() if ref is not None else [],
                    }
            line["calls"] += 1
            line["callerids"].append(call.callerid)
            line["manager_rows"] += call.man_id is not None
            self._reconcile(lane, moment, None)
        for line in groups.values():
            self._emit(line)
        for server in sorted(touched):
            self._check_over(server, world.used.get(server), world.limits.get(server), moment)

    def on_perl_gone(self, callerids: Iterable[str], moment: Moment, world: World) -> None:
        """Perl calls whose rows are gone (the call ended and VICIdial cleaned up)."""
        touched: set[str] = set()
        lanes: dict[tuple[str, str], _Lane] = {}
        for cid in callerids:
            lane = self._where.pop(cid, None)
            if lane is None or cid not in lane.alive:
                continue
            del lane.alive[cid]
            self._gone[cid] = None
            self._fill_on[lane.server] = max(0, self._fill_on.get(lane.server, 0) - 1)
            touched.add(lane.server)
            lanes[(lane.campaign, lane.server)] = lane
        for key in sorted(lanes):
            self._reconcile(lanes[key], moment, None)
        while len(self._gone) > GONE_KEEP:
            self._gone.popitem(last=False)
        for server in sorted(touched):
            self._check_over(server, world.used.get(server), world.limits.get(server), moment)

    def on_usage(self, server: str, used: int, limit: int | None, moment: Moment) -> None:
        """A server's lines used changed (the AMI model)."""
        self._check_over(server, used, limit, moment)

    def on_perl_fill(self, values: Mapping[str, int], moment: Moment) -> None:
        """The ``balance_trunk_fill`` values the Perl stored (spec 2.8)."""
        for campaign, value in sorted(values.items()):
            if self.perl_fill.get(campaign) != value:
                self.perl_fill[campaign] = value
                self._emit(
                    {
                        "kind": "balance_trunk_fill",
                        "campaign": campaign,
                        "perl": value,
                        "fillreactor": self.fill_fill.get(campaign),
                        "observed_at": iso(moment),
                    }
                )

    def finish(self, moment: Moment) -> None:
        """The end of the comparison: open wants become "still wanted", open intervals close."""
        for lane in sorted(self._lanes.values(), key=lambda x: (x.campaign, x.server)):
            if lane.wants:
                self._withdraw(lane, len(lane.wants), moment, None)
        for server in sorted(self._over):
            self._close_over(server, moment)

    # -- outputs ---------------------------------------------------------------------------------
    def drain(self) -> list[Line]:
        lines, self._lines = self._lines, []
        return lines

    def outstanding(self) -> dict[tuple[str, str], int]:
        """Open wants per (campaign, server)."""
        return {key: len(lane.wants) for key, lane in sorted(self._lanes.items()) if lane.wants}

    def watching(self, server: str) -> bool:
        """Does ``server`` carry live Perl FILL calls or an open over-limit interval?"""
        return self._fill_on.get(server, 0) > 0 or server in self._over

    def perl_calls_live(self) -> dict[str, int]:
        return {s: n for s, n in sorted(self._fill_on.items()) if n}

    def over_limit_now(self) -> dict[str, int]:
        return {s: o.peak for s, o in sorted(self._over.items())}

    # -- internals -------------------------------------------------------------------------------
    def _lane(self, campaign: str, server: str) -> _Lane:
        key = (campaign, server)
        lane = self._lanes.get(key)
        if lane is None:
            lane = self._lanes[key] = _Lane(campaign, server)
            self._lanes_of.setdefault(campaign, {})[server] = lane
        return lane

    def _reference(self, call: PerlCall) -> _View | None:
        """The campaign's latest decision that counted none of this call's Perl loop (see rules)."""
        key = (call.campaign, call.loop)
        if key in self._loop_base:
            return self._loop_base[key]
        ref = None
        for view in reversed(self._history.get(call.campaign, ())):
            if call.loop not in view.loops:
                ref = view
                break
        self._loop_base[key] = ref
        while len(self._loop_base) > LOOP_KEEP:
            self._loop_base.popitem(last=False)
        return ref

    def _reconcile(self, lane: _Lane, moment: Moment, cause: _View | None) -> None:
        unseen = sum(1 for cid in lane.counted if cid not in lane.alive and cid not in self._gone)
        newer = sum(1 for cid in lane.alive if cid not in lane.counted)
        target = min(unseen, len(lane.wants)) + max(0, lane.level - newer)
        have = len(lane.wants)
        if target > have and lane.view is not None:
            view = lane.view
            corrections = self._want_corrections(view, lane.server)
            for _ in range(target - have):
                lane.wants.append(_Want(view.at, view, corrections))
            self.asked += target - have
        elif target < have:
            self._withdraw(lane, have - target, moment, cause or lane.view)

    @staticmethod
    def _want_corrections(view: _View, server: str) -> tuple[str, ...]:
        """Named corrections behind a want the Perl's arithmetic would not place (perl_dial < dial)."""
        step = view.step(server)
        if step is not None and step.perl_dial < step.dial:
            return tuple(c.name for c in step.corrections)
        plan = view.plan
        if plan is not None and plan.perl_calls is not None and plan.perl_calls < plan.tally:
            return tuple(c.name for c in plan.corrections)
        return ()

    def _withdraw(self, lane: _Lane, count: int, moment: Moment, cause: _View | None) -> None:
        withdrawn = [lane.wants.pop() for _ in range(count)]
        withdrawn.reverse()
        groups: dict[int, list[_Want]] = {}
        for want in withdrawn:
            groups.setdefault(want.view.number, []).append(want)
        for number in sorted(groups):
            wants = groups[number]
            first = wants[0].view
            reason, detail = _withdrawn_reason(cause, lane.server, first)
            self._emit(
                {
                    "kind": "fill_only",
                    "campaign": lane.campaign,
                    "server": lane.server,
                    "calls": len(wants),
                    "reason": reason.value,
                    "detail": detail,
                    "corrections": list(wants[0].corrections),
                    "decision": number,
                    "planned_at": iso(first.at),
                    "ended_at": iso(moment),
                    "wanted_s": [round(moment.at - w.since.at, 6) for w in wants],
                    "ended_by": cause.number if cause is not None else None,
                    "explanation": first.explanation(),
                }
            )

    def _check_over(self, server: str, used: int | None, limit: int | None, moment: Moment) -> None:
        if used is None or limit is None:
            return
        excess = min(used - limit, self._fill_on.get(server, 0)) if used > limit else 0
        over = self._over.get(server)
        if excess > 0:
            if over is None:
                self._over[server] = _Over(moment, limit, excess)
            else:
                over.peak = max(over.peak, excess)
        elif over is not None:
            self._close_over(server, moment)

    def _close_over(self, server: str, moment: Moment) -> None:
        over = self._over.pop(server)
        self._emit(
            {
                "kind": "over_limit",
                "server": server,
                "from": iso(over.since),
                "to": iso(moment),
                "seconds": round(moment.at - over.since.at, 6),
                "peak_over": over.peak,
                "limit": over.limit,
            }
        )

    def _emit(self, line: Line) -> None:
        self.totals.add(line)
        self._lines.append(line)
