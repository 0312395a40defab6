"""Shadow mode's I/O shell: the comparison wired into a ``ReactorService`` built with ``shadow=True``.

Rules this module keeps:

* ``attach(service, report_path=...)`` uses the service's extension points only: a decision
  observer (every ``PlanDecision`` with the OUTBALANCE call ids its snapshot counted), an event
  observer (lines used of the servers carrying Perl FILL calls; a Perl FILL call seen on AMI
  before its row was polled wakes the poller at once), an extra task (the poller) and, when the
  service has them, ``status_providers`` / ``metric_providers``. It refuses a service that may
  dial: shadow mode claims, writes and originates nothing, and neither does this module (it only
  reads, ``fillreactor.store.observe``).
* The poller reads the Perl's new rows by increasing id every ``poll_interval`` seconds, at once
  when woken, but never more often than every ``poll_min_gap``; which of its calls still exist
  (by primary key) each poll; the stats rows and ``balance_trunk_fill`` every ``stats_interval``.
  A failed read is logged and retried on the next poll: it never stops the service.
* Times are the service clock's (``Moment``): a decision is dated by its ``planned_at``, a Perl
  call by the poll that saw it.
* Every report line goes to the JSON Lines file (appended; a ``start`` line opens each run, an
  ``end`` line with the summary closes it) and to the trace as kind ``shadow``; a summary line
  goes to the trace and the log every ``summary_interval`` seconds. Observers never raise.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from fillreactor.core.callid import call_id_of
from fillreactor.core.cluster import LiveCounts
from fillreactor.core.events import ChannelFields, Event
from fillreactor.core.lines import used_lines
from fillreactor.reactor.core import PlanDecision
from fillreactor.shadow.compare import Line, Moment, PerlCall, ShadowComparison, StatsRow, World, iso
from fillreactor.shadow.report import Figures, percentile
from fillreactor.store import observe
from fillreactor.store.database import Database, StoreError

if TYPE_CHECKING:
    from fillreactor.reactor.service import ReactorService

log = logging.getLogger(__name__)

KICKED_KEEP = 10_000
MANAGER_KEEP = 20_000


@dataclass(frozen=True)
class ShadowOptions:
    report_path: Path | None = None
    poll_interval: float = 0.5
    poll_min_gap: float = 0.05
    stats_interval: float = 2.5
    stale_after: float = 10.0
    summary_interval: float = 60.0


class ShadowRunner:
    """See the module rules. Made by ``attach``."""

    def __init__(self, service: ReactorService, options: ShadowOptions) -> None:
        self.service = service
        self.options = options
        self.comparison = ShadowComparison()
        self.after_id = 0
        self.after_man = 0
        self.polls = 0
        self.poll_errors = 0
        self.decisions = 0
        self.started = asyncio.Event()
        self.lead_observers: list[Callable[[float], None]] = []
        """Called with each match's lead time in seconds (a metrics histogram)."""
        self._ids: dict[str, int] = {}  # call id -> auto_call_id of the Perl calls alive
        self._man: OrderedDict[str, int] = OrderedDict()  # call id -> man_id, row not seen yet
        self._kicked: OrderedDict[str, None] = OrderedDict()
        self._kick = asyncio.Event()
        self._changed = asyncio.Event()
        self._stats: tuple[StatsRow, ...] = ()
        self._model_usage: dict[str, int] = {}
        self._file: IO[str] | None = None
        self._finished = False

    # -- the report file -------------------------------------------------------------------------
    def open_report(self) -> None:
        """Open the report for appending and write the run's ``start`` line (``OSError`` if not)."""
        path = self.options.report_path
        if path is None:
            return
        self._file = path.open("a", encoding="utf-8")
        conf, settings = self.service.conf, self.service.settings
        self._write(
            {
                "kind": "start",
                "at": iso(self.moment()),
                "host": conf.server_ip,
                "shortage_source": settings.shortage_source,
                "trigger": settings.trigger,
            }
        )
        self._file.flush()

    def _write(self, line: Line) -> None:
        if self._file is None:
            return
        try:
            self._file.write(json.dumps(line, separators=(",", ":"), default=str) + "\n")
        except OSError as error:
            log.error("shadow report %s not written any more: %s", self.options.report_path, error)
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None

    # -- hooks (called synchronously by the service; never raise) --------------------------------
    def moment(self) -> Moment:
        clock = self.service.clock
        return Moment(clock.monotonic(), clock.wall())

    def on_decision(self, decision: PlanDecision) -> None:
        try:
            self.decisions += 1
            snapshot = self.service.core.snapshot
            counted = snapshot.outbalance_calls if snapshot is not None else {}
            moment = Moment(decision.planned_at, self.service.clock.wall())
            self.comparison.on_decision(self.decisions, moment, decision.plan, decision.campaigns, counted)
            self._flush()
            self._changed.set()
        except Exception:
            log.exception("shadow: a decision could not be compared")

    def on_event(self, server: str, event: Event, read_at: float) -> None:
        try:
            self._changed.set()
            model = self.service.core.model
            usage = model.usage(server)
            if usage != self._model_usage.get(server):
                self._model_usage[server] = usage
                if self.comparison.watching(server):
                    used, limit = self._used(server), self._limit(server)
                    if used is not None:
                        self.comparison.on_usage(server, used, limit, self.moment())
                        self._flush()
            if isinstance(event, ChannelFields):
                ident = call_id_of(event.caller_id_name, event.connected_line_name)
                if ident is not None and ident[0] == "V":
                    call_id = ident[1]
                    if call_id not in self._ids and call_id not in self._kicked:
                        origin = model.origin_of(call_id)
                        if origin is not None and origin.call_type == "OUTBALANCE":
                            self._kicked[call_id] = None  # a Perl FILL call on AMI: poll now
                            if len(self._kicked) > KICKED_KEEP:
                                self._kicked.popitem(last=False)
                            self._kick.set()
        except Exception:
            log.exception("shadow: an event could not be looked at")

    # -- the poller ------------------------------------------------------------------------------
    async def run(self) -> None:
        """The extra task: poll the Perl's rows until cancelled; then finish the report."""
        database = self.service.database
        loop = asyncio.get_running_loop()
        try:
            if database is None:
                log.error("shadow: the service has no database; nothing to compare")
                return
            await self._start(database)
            self.started.set()
            last_stats = last_summary = loop.time()
            stats_due = True
            while True:
                try:
                    await self._poll(database, stats_due)
                    self._changed.set()
                    if stats_due:
                        last_stats = loop.time()
                except StoreError as error:
                    self.poll_errors += 1
                    log.warning("shadow: reading the Perl FILL's rows failed (%s); next poll retries", error)
                except Exception:  # a bug here must not end the comparison
                    self.poll_errors += 1
                    log.exception("shadow: a poll failed")
                if loop.time() - last_summary >= self.options.summary_interval:
                    last_summary = loop.time()
                    summary = self.summary_line()
                    self._note("", "", summary)
                    log.info("shadow: %s", summary)
                await asyncio.sleep(self.options.poll_min_gap)  # a rate limit, not a synchronisation
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.options.poll_interval):
                        await self._kick.wait()
                self._kick.clear()
                stats_due = loop.time() - last_stats >= self.options.stats_interval
        finally:
            self.finish()

    async def _start(self, database: Database) -> None:
        while True:
            try:
                self.after_id = await observe.last_auto_call_id(database)
                self.after_man = await observe.last_manager_id(database)
                known = await observe.balance_calls(database)
                break
            except StoreError as error:
                log.warning("shadow: start-up read failed (%s); retrying", error)
                await asyncio.sleep(self.options.poll_interval)
        calls = [PerlCall(r.auto_call_id, r.campaign_id, r.server_ip, r.callerid, r.call_time) for r in known]
        self.after_id = max([self.after_id, *(r.auto_call_id for r in known)])
        for row in known:
            self._ids[row.callerid] = row.auto_call_id
        self.comparison.known_calls(calls)

    async def _poll(self, database: Database, stats_due: bool) -> None:
        # the ids move on only once the rows are compared: a failed read reads them again
        rows: list[observe.BalanceCallRow] = []
        after_id, after_man = self.after_id, self.after_man
        while True:
            batch = await observe.new_balance_calls(database, after_id)
            rows.extend(batch)
            if batch:
                after_id = batch[-1].auto_call_id
            if len(batch) < observe.BATCH:
                break
        originates: list[observe.OriginateRow] = []
        while True:  # read after the vac rows: a call's manager row is inserted before its vac row
            batch_man = await observe.new_fill_originates(database, after_man)
            originates.extend(batch_man)
            if batch_man:
                after_man = batch_man[-1].man_id
            if len(batch_man) < observe.BATCH:
                break
        alive = [*self._ids.values(), *(r.auto_call_id for r in rows)]
        present = await observe.present_auto_calls(database, alive) if alive else set()
        fills = None
        if stats_due:
            self._stats = tuple(
                StatsRow(r.campaign_id, r.server_ip, r.shortage, r.age)
                for r in await observe.shortage_rows(database)
            )
            fills = await observe.balance_trunk_fill(database)
        self.polls += 1
        self.after_id, self.after_man = after_id, after_man
        for originate in originates:
            self._man[originate.callerid] = originate.man_id
        while len(self._man) > MANAGER_KEEP:
            self._man.popitem(last=False)
        moment = self.moment()
        world = self.world()
        calls = []
        for row in rows:
            again = row.callerid in self._ids  # the same call's row written again (spec 5.6)
            self._ids[row.callerid] = row.auto_call_id
            if not again:
                man_id = self._man.pop(row.callerid, None)
                calls.append(
                    PerlCall(
                        row.auto_call_id, row.campaign_id, row.server_ip, row.callerid, row.call_time, man_id
                    )
                )
        self.comparison.on_perl_calls(calls, moment, world)
        gone = [cid for cid, auto_call_id in self._ids.items() if auto_call_id not in present]
        for cid in gone:
            del self._ids[cid]
            self._kicked.pop(cid, None)
        if gone:
            self.comparison.on_perl_gone(gone, moment, world)
        if fills is not None:
            self.comparison.on_perl_fill(fills, moment)
        for server, used in world.used.items():  # off-AMI rows moved with the snapshot
            if self.comparison.watching(server):
                self.comparison.on_usage(server, used, world.limits.get(server), moment)
        self._flush()

    def finish(self) -> None:
        """The end of the run: open wants and intervals closed, the ``end`` line written."""
        if self._finished:
            return
        self._finished = True
        try:
            self.comparison.finish(self.moment())
            self._flush()
            self._note("", "", "final: " + self.summary_line())
            self._write(
                {"kind": "end", "at": iso(self.moment()), "summary": self.comparison.totals.as_dict()}
            )
        finally:
            if self._file is not None:
                with contextlib.suppress(OSError):
                    self._file.close()
                self._file = None

    # -- what the reactor knows --------------------------------------------------------------------
    def _used(self, server: str) -> int | None:
        snapshot = self.service.core.snapshot
        if snapshot is None:
            return None
        live = LiveCounts(usage={server: self.service.core.model.usage(server)})
        return used_lines(snapshot, live, server)

    def _limit(self, server: str) -> int | None:
        snapshot = self.service.core.snapshot
        config = snapshot.servers.get(server) if snapshot is not None else None
        return config.max_vicidial_trunks if config is not None else None

    def world(self) -> World:
        core = self.service.core
        snapshot = core.snapshot
        if snapshot is None:
            return World(stats=self._stats, stale_after=self.options.stale_after)
        model = core.model
        live = LiveCounts(usage={s: model.usage(s) for s in snapshot.servers})
        demand = core.demand()
        return World(
            dialable=core.dialable_servers(),
            used={s: used_lines(snapshot, live, s) for s in snapshot.servers},
            limits={s: c.max_vicidial_trunks for s, c in snapshot.servers.items()},
            demand={c: demand.total(c) for c in demand.by_campaign},
            stats=self._stats,
            stale_after=self.options.stale_after,
        )

    # -- output ----------------------------------------------------------------------------------
    def _flush(self) -> None:
        lines = self.comparison.drain()
        if not lines:
            return
        for line in lines:
            self._write(line)
            self._note(line.get("server", ""), line.get("campaign", ""), describe(line))
            if line["kind"] == "match":
                for lead in line["lead_s"]:
                    for observer in self.lead_observers:
                        with contextlib.suppress(Exception):
                            observer(lead)
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.flush()
        self._changed.set()

    def _note(self, server: str, campaign: str, text: str) -> None:
        self.service.core.note(self.service.clock.monotonic(), "shadow", server, campaign, text)

    def summary_line(self) -> str:
        totals = self.comparison.totals.overall
        open_wants = sum(self.comparison.outstanding().values())
        p50, p99 = percentile(totals.leads, 0.5), percentile(totals.leads, 0.99)
        lead = "-" if p50 is None or p99 is None else f"p50 {p50 * 1000:.0f} ms p99 {p99 * 1000:.0f} ms"
        return (
            f"Perl placed {totals.perl_placed}, fillreactor asked {totals.fill_asked + open_wants}"
            f" ({open_wants} open), matched {totals.matched} (lead {lead}),"
            f" fillreactor only {sum(totals.fill_only.values())}, Perl only {sum(totals.perl_only.values())},"
            f" over limit {totals.over_limit_s:.1f} s"
        )

    def status(self) -> dict[str, Any]:
        """The ``shadow`` part of ``fillreactor status`` (plain data)."""
        comparison = self.comparison
        summary = comparison.totals.as_dict()
        open_wants = comparison.outstanding()
        summary["fill_open"] = sum(open_wants.values())
        summary["fill_asked"] += summary["fill_open"]
        for (campaign, server), count in open_wants.items():
            for table, key in (("campaigns", campaign), ("servers", server)):
                entry = summary[table].setdefault(key, {"fill_asked": 0})
                entry["fill_asked"] = entry.get("fill_asked", 0) + count
                entry["fill_open"] = entry.get("fill_open", 0) + count
        summary.update(
            {
                "report": None if self.options.report_path is None else str(self.options.report_path),
                "decisions": self.decisions,
                "polls": self.polls,
                "poll_errors": self.poll_errors,
                "open_wants": {f"{c} {s}": n for (c, s), n in open_wants.items()},
                "perl_calls_live": comparison.perl_calls_live(),
                "over_limit_now": comparison.over_limit_now(),
            }
        )
        return summary

    def metric_samples(self) -> list[tuple[str, dict[str, str], float]]:
        """Every shadow figure as ``(metric name, labels, value)`` (see README "Try it beside ...")."""
        totals = self.comparison.totals
        samples: list[tuple[str, dict[str, str], float]] = []
        open_wants = self.comparison.outstanding()
        for campaign, server in sorted(set(totals.pairs) | set(open_wants)):
            figures = totals.pairs.get((campaign, server)) or Figures()
            labels = {"campaign": campaign, "server": server}
            samples += [
                ("fillreactor_shadow_perl_calls_total", labels, figures.perl_placed),
                (
                    "fillreactor_shadow_fill_asked_total",
                    labels,
                    figures.fill_asked + open_wants.get((campaign, server), 0),
                ),
                ("fillreactor_shadow_matched_total", labels, figures.matched),
            ]
            for quantile in (0.5, 0.99):
                value = figures.lead(quantile)
                if value is not None:
                    samples.append(
                        ("fillreactor_shadow_lead_seconds", {**labels, "quantile": str(quantile)}, value)
                    )
            for reason, count in sorted(figures.fill_only.items()):
                samples.append(("fillreactor_shadow_fill_only_total", {**labels, "reason": reason}, count))
            for reason, count in sorted(figures.perl_only.items()):
                samples.append(("fillreactor_shadow_perl_only_total", {**labels, "reason": reason}, count))
        for (campaign, server), count in open_wants.items():
            samples.append(("fillreactor_shadow_open_wants", {"campaign": campaign, "server": server}, count))
        for name, count in sorted(totals.overall.corrections.items()):
            samples.append(("fillreactor_shadow_correction_calls_total", {"correction": name}, count))
        for server, figures in sorted(totals.servers.items()):
            samples.append(
                ("fillreactor_shadow_over_limit_seconds_total", {"server": server}, figures.over_limit_s)
            )
        for server, count in self.comparison.perl_calls_live().items():
            samples.append(("fillreactor_shadow_perl_calls_live", {"server": server}, count))
        for campaign, value in sorted(self.comparison.perl_fill.items()):
            samples.append(
                ("fillreactor_shadow_balance_trunk_fill", {"campaign": campaign, "source": "perl"}, value)
            )
        for campaign, value in sorted(self.comparison.fill_fill.items()):
            samples.append(
                (
                    "fillreactor_shadow_balance_trunk_fill",
                    {"campaign": campaign, "source": "fillreactor"},
                    value,
                )
            )
        return samples

    async def wait_for(self, condition: Callable[[], bool], timeout: float = 10.0) -> None:
        """Return once ``condition()`` holds, re-checked whenever the comparison or the model moved."""
        async with asyncio.timeout(timeout):
            while not condition():
                self._changed.clear()
                await self._changed.wait()


def describe(line: Line) -> str:
    """A report line as one trace line."""
    kind = line["kind"]
    if kind == "match":
        leads = line["lead_s"]
        return (
            f"match {line['calls']} (decision #{line['decision']}): the Perl placed them"
            f" {min(leads) * 1000:.0f}-{max(leads) * 1000:.0f} ms after fillreactor's plan"
        )
    if kind == "perl_only":
        named = f" [{', '.join(line['corrections'])}]" if line["corrections"] else ""
        return f"Perl only {line['calls']}: {line['reason']}: {line['detail']}{named}"
    if kind == "fill_only":
        named = f" [{', '.join(line['corrections'])}]" if line["corrections"] else ""
        head = f"fillreactor only {line['calls']} (decision #{line['decision']})"
        return f"{head}: {line['reason']}: {line['detail']}{named}"
    if kind == "over_limit":
        return (
            f"over its limit of {line['limit']} by up to {line['peak_over']} for {line['seconds']:.3f} s"
            " because of Perl FILL calls"
        )
    if kind == "balance_trunk_fill":
        return f"balance_trunk_fill: the Perl stored {line['perl']}, fillreactor's plan {line['fillreactor']}"
    return kind


def attach(
    service: ReactorService,
    report_path: str | Path | None = None,
    **options: Any,
) -> ShadowRunner:
    """Wire shadow mode into ``service`` (see the module rules); ``ValueError`` if it may dial or the
    report cannot be opened."""
    if not getattr(service, "shadow", False) or service.dialing_allowed:
        raise ValueError("shadow mode needs a ReactorService built with shadow=True (it must never dial)")
    path = Path(report_path) if report_path is not None else None
    runner = ShadowRunner(service, ShadowOptions(report_path=path, **options))
    try:
        runner.open_report()
    except OSError as error:
        raise ValueError(f"--shadow-report {path}: cannot be written ({error.strerror or error})") from None
    service.decision_observers.append(runner.on_decision)
    service.event_observers.append(runner.on_event)
    service.extra_tasks.append(runner.run)
    for name, provide in (("status_providers", runner.status), ("metric_providers", runner.metric_samples)):
        providers = getattr(service, name, None)
        if isinstance(providers, dict):
            providers["shadow"] = provide
    return runner
