"""The fault matrix's harness: a small FILL cluster behind fault proxies, its invariants, the matrix.

``fault_cluster`` is ``tests/reactor/e2e_helpers.live_cluster`` with a ``FaultProxy`` between
fillreactor and every simulated server (the ``servers`` rows carry the proxy's port) and, on request,
one between fillreactor and MariaDB (the ``AstguiclientConf`` carries the proxy's port). The
VICIdial stand-ins (the agent server's own dialer, the agent screens, the dead-call cleanup) talk
to the simulators and the database directly, never through a proxy: only fillreactor's paths are
broken. Services are started by the test (``start_service``), one or two, in process; the
process-kill fault runs ``fillreactor run`` instead (``write_run_configs``).

The cluster, by hand (spec 4.4 and 2.4, as in e2e_helpers): A has 20 trunks, 10 READY agents at
dial level 3 and keeps 20 calls of its own: goal 30, make 10, line goal 30 > 20, shortage
``min(30 - 20, 10) = 10`` = ``NEED``. B (rank 2) has 30 trunks, 22 off limits: FILL may use
``30 - 22 = 8`` lines; C (rank 1) 12 trunks, 8 off limits: 4 lines (``LIMITS``). Calls are answered
and stay up (``STEADY``), so a settled cluster has exactly ``NEED`` FILL calls live.

The invariants, checked from the database rows and the simulators' own records:

* **limit**: no balance server ever above its FILL limit, neither in the service's model (its
  usage, sampled after every AMI event through ``service.event_observers``) nor on the simulated
  server (its live calls placed by a client session, sampled on every change of the server);
* **once**: no lead dialed twice: at most one accepted Originate per lead over all servers (the
  lead is ``int(call_id[10:20])``, spec 5.3), no accepted ActionID twice, and the lead's
  ``vicidial_manager`` Originate rows that are not DEAD (DEAD: written, never sent) carry one call
  id at most, and it has at most one OUTBALANCE ``vicidial_auto_calls`` row; where a test asks
  (``rows_true``), each Originate row that is not DEAD also names a server that accepted that call;
* **kept**: no lead lost: every lead that was in the hopper is either back to READY, or was
  dialed (an accepted Originate on a server, its ``vicidial_manager`` and ``vicidial_dial_log``
  rows) and its hopper row is gone; nothing is left in QUEUE or INCALL;
* **recovered**: the service gets back to the settled state by itself within the bound the test
  states; the time it took is measured and goes into the matrix.

``Verdict`` evaluates all four, records the matrix row, then raises the first violation as its
own exception class (``LimitExceeded``, ``DialedTwice``, ``LeadLost``, ``NotRecovered``). A fault
that shows a known product bug names the invariants it breaks (``Verdict(known=...)``) and is
``xfail(strict=True, raises=KnownBug)``: exactly those failing is the expected failure, any other
violation fails the test, and the bug fixed makes the strict xfail report it. Waits are bounded;
the ones on the database poll (another process's work cannot be awaited), the ones on a simulator
are woken by its changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import re
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "reactor"))

from e2e_helpers import (
    CAMPAIGN,
    LIST_ID,
    TIME_SCALE,
    A,
    B,
    C,
    conf_for,
    fast_settings,
    seed_cluster,
)

from fillreactor.clock import Clock
from fillreactor.core.events import Event
from fillreactor.reactor.service import ReactorService
from fillreactor.reactor.trace import TraceCollector
from fillreactor.service.settings import Settings
from fillreactor.simulator import CallTiming, OriginateRecord, SimulatedAsterisk, SimulatedCluster
from fillreactor.store.database import Database, DatabaseAddress
from fillreactor.testing.database import Dsn
from fillreactor.testing.faultproxy import FaultProxy
from fillreactor.testing.seed import Seeder
from fillreactor.testing.vicidial import AgentDialer, AgentHeartbeat, CallCleanup

__all__ = ["CAMPAIGN", "LIST_ID", "TIME_SCALE", "A", "B", "C"]

IPS = (A, B, C)
BALANCE = ((30, 22, 2), (12, 8, 1))  # (max_vicidial_trunks, balance_trunks_offlimits, rank) of B, C
LIMITS = {B: 30 - 22, C: 12 - 8}  # spec 2.4: available = (MVT - OFF) - dedicated(0)
NEED = 10  # A's shortage, by hand (module docstring)
STEADY = CallTiming(ring=1.0, talk=None, vdad_wait=None)  # answered calls stay up
RECOVERY_BOUND = 10.0  # seconds any fault of the matrix may take to heal by itself
SETTLE_TIMEOUT = 3.0
CALL_ID = re.compile(r"^V\d{19}$")
# short timeouts on top of e2e_helpers.fast_settings: a lost reservation frees its line in 2 s, an
# unanswered Originate is given up after 2 s
FAULT_SETTINGS: dict[str, Any] = {"reservation_timeout": 2.0, "originate_timeout": 2.0}


class SameSecondClock:
    """Real monotonic time, and a wall clock that stays in the second the test began: every call id
    of one lead is the same string (``V`` + the time to the second + the lead, spec 5.3), as for a
    refused call redialed within the same second. Makes that case deterministic."""

    def __init__(self) -> None:
        self._wall = datetime.now().replace(microsecond=0)

    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> datetime:
        return self._wall


def settings_for(**overrides: Any) -> Settings:
    return fast_settings(**{**FAULT_SETTINGS, **overrides})


def lead_of(call_id: str | None) -> int | None:
    """The lead id of a ``V`` call id: ``int(substr(cid, 10, 10))`` (spec 5.3)."""
    if call_id is None or not CALL_ID.match(call_id):
        return None
    return int(call_id[10:20])


def fill_records(sim: SimulatedAsterisk) -> list[OriginateRecord]:
    """Originates a client session sent to ``sim`` (not its own dialer's), accepted or refused."""
    return [r for r in sim.originates if r.session_id is not None]


def accepted(sim: SimulatedAsterisk) -> list[OriginateRecord]:
    return [r for r in fill_records(sim) if r.call is not None]


def live_fill(sim: SimulatedAsterisk) -> int:
    """The FILL calls live on ``sim`` now (the simulator's own record)."""
    return sum(1 for r in fill_records(sim) if r.call is not None and r.call.live)


# == the invariants' exceptions ========================================================================
class InvariantViolated(AssertionError):
    invariant = ""


class LimitExceeded(InvariantViolated):
    invariant = "limit"


class DialedTwice(InvariantViolated):
    invariant = "once"


class LeadLost(InvariantViolated):
    invariant = "kept"


class NotRecovered(InvariantViolated):
    invariant = "recovered"


class KnownBug(InvariantViolated):
    """Exactly the violations a test names as a known product bug (``Verdict(known=...)``)."""


class ScenarioError(RuntimeError):
    """The fault could not be set up as the test describes (not a verdict on the product)."""


VIOLATIONS: tuple[type[InvariantViolated], ...] = (LimitExceeded, DialedTwice, LeadLost, NotRecovered)
INVARIANT_TITLES = {
    "limit": "no server above its limit",
    "once": "no lead dialed twice",
    "kept": "no lead lost",
    "recovered": "recovers by itself",
}


# == limit: sampled after every event and on every change of a simulator ===============================
class LimitWatch:
    """The highest FILL usage each balance server ever had, in the services' models and on the simulators."""

    def __init__(self, limits: dict[str, int]) -> None:
        self.limits = dict(limits)
        self.model_max: Counter[str] = Counter()
        self.sim_max: Counter[str] = Counter()
        self.samples = 0
        self.first_over: dict[str, str] = {}  # what the model held when it first went over a limit
        self.services = 0
        self._tasks: list[asyncio.Task[None]] = []

    def observe(self, service: ReactorService) -> None:
        model = service.core.model
        self.services += 1

        def after_event(_server: str, _event: Event, _read_at: float) -> None:
            self.samples += 1
            for ip in self.limits:
                usage = model.usage(ip)
                if usage > self.model_max[ip]:
                    self.model_max[ip] = usage
                if usage > self.limits[ip] and ip not in self.first_over:
                    view = model.server_view(ip)
                    self.first_over[ip] = (
                        f"after {type(_event).__name__} of {_server}: {view.reservations} reservations"
                        f" {view.reserved_call_ids}, calls {view.campaigns}, stale {view.stale}"
                    )

        service.event_observers.append(after_event)

    def watch(self, ip: str, sim: SimulatedAsterisk) -> None:
        def sample() -> bool:  # re-checked by the simulator on every channel change and event
            live = live_fill(sim)
            if live > self.sim_max[ip]:
                self.sim_max[ip] = live
            return False

        self._tasks.append(asyncio.get_running_loop().create_task(sim.wait_until(sample)))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def problems(self) -> list[str]:
        out = []
        for ip, limit in self.limits.items():
            if self.model_max[ip] > limit:
                out.append(
                    f"{ip}: the model counted {self.model_max[ip]} lines in use, limit {limit}"
                    f" (first over {self.first_over.get(ip, '?')})"
                )
            if self.sim_max[ip] > limit:
                out.append(f"{ip}: {self.sim_max[ip]} FILL calls live on the server, limit {limit}")
        return out

    def summary(self) -> str:
        model = (lambda ip: f" model<={self.model_max[ip]}") if self.services else (lambda ip: "")
        return ", ".join(
            f"{ip}{model(ip)} live<={self.sim_max[ip]} (limit {limit})" for ip, limit in self.limits.items()
        )


# == once and kept: the leads, from the rows and the simulators' records ===============================
@dataclass
class Accounting:
    seeded: set[int]
    dialed: Counter[int]  # accepted Originates per lead, all servers
    action_ids: Counter[str]  # accepted Originates per ActionID
    received: dict[str, set[str]]  # server -> the ActionIDs it accepted
    originate_rows: list[tuple[int, str, str, str]]  # (lead, server, callerid, status), OUTBALANCE rows
    call_rows: Counter[int]  # OUTBALANCE vicidial_auto_calls rows per lead (those not cleaned up yet)
    dial_log: set[int]
    hopper: dict[int, tuple[str, str]]  # lead -> (status, user)

    def sent_rows(self) -> dict[int, set[str]]:
        """Per lead, the call ids of its Originate rows that say the call left (not DEAD: written and
        never sent, store.calls.undo_unsent). One call id is one call: a same-second redial of a
        refused call reuses the id, and an Originate accepted twice is caught by its ActionID."""
        out: dict[int, set[str]] = {}
        for lead, _server, callerid, status in self.originate_rows:
            if status != "DEAD":
                out.setdefault(lead, set()).add(callerid)
        return out

    def twice(self) -> list[str]:
        out = [f"lead {lead} dialed {n} times" for lead, n in sorted(self.dialed.items()) if n > 1]
        out += [f"ActionID {a} accepted {n} times" for a, n in sorted(self.action_ids.items()) if n > 1]
        out += [
            f"lead {lead} has Originate rows of {len(ids)} calls: {sorted(ids)}"
            for lead, ids in sorted(self.sent_rows().items())
            if len(ids) > 1
        ]
        out += [
            f"lead {lead} has {n} OUTBALANCE vicidial_auto_calls rows"
            for lead, n in sorted(self.call_rows.items())
            if n > 1
        ]
        return out

    def untrue_rows(self) -> list[str]:
        """Originate rows that say a server got a call it never accepted (checked where asked)."""
        return [
            f"lead {lead}: Originate row {status} for {server} {callerid}, which {server} never accepted"
            for lead, server, callerid, status in self.originate_rows
            if status != "DEAD" and callerid not in self.received.get(server, set())
        ]

    def lost(self) -> list[str]:
        out = []
        stuck = {lead: s for lead, s in self.hopper.items() if s[0] in ("QUEUE", "INCALL")}
        if stuck:
            out.append(f"{len(stuck)} hopper rows left claimed: " + ", ".join(
                f"lead {lead} {status} {user}" for lead, (status, user) in sorted(stuck.items())[:8]
            ))
        sent = self.sent_rows()
        gone = sorted(lead for lead in self.seeded if lead not in self.hopper and lead not in self.dialed)
        if gone:
            rows = [lead for lead in gone if lead in sent]
            out.append(
                f"{len(gone)} leads left the hopper without a call on any server"
                f" ({len(rows)} of them with an Originate row that is not DEAD): {gone[:8]}"
            )
        kept = sorted(lead for lead in self.dialed if lead in self.hopper)
        if kept:
            out.append(f"{len(kept)} dialed leads still in the hopper: {kept[:8]}")
        no_rows = sorted(lead for lead in self.dialed if lead not in sent or lead not in self.dial_log)
        if no_rows:
            out.append(f"{len(no_rows)} dialed leads without their Originate/dial-log rows: {no_rows[:8]}")
        return out


async def account(database: Database, sims: dict[str, SimulatedAsterisk], seeded: set[int]) -> Accounting:
    dialed: Counter[int] = Counter()
    action_ids: Counter[str] = Counter()
    received: dict[str, set[str]] = {}
    for ip, sim in sims.items():
        for record in accepted(sim):
            lead = lead_of(record.action_id)
            if lead is not None:
                dialed[lead] += 1
                action_ids[str(record.action_id)] += 1
                received.setdefault(ip, set()).add(str(record.action_id))
    originate_rows = []
    for row in await database.fetch_dicts(
        "SELECT callerid, status, server_ip FROM vicidial_manager WHERE action = 'Originate'"
        " AND cmd_line_k LIKE %s ORDER BY man_id",
        ("%|OUTBALANCE|%",),
    ):
        lead = lead_of(row["callerid"])
        if lead is not None:
            originate_rows.append((lead, str(row["server_ip"]), str(row["callerid"]), str(row["status"])))
    logged = await database.fetch_dicts("SELECT lead_id FROM vicidial_dial_log")
    dial_log = {int(r["lead_id"]) for r in logged}
    call_rows: Counter[int] = Counter(
        int(r["lead_id"])
        for r in await database.fetch_dicts(
            "SELECT lead_id FROM vicidial_auto_calls WHERE call_type = 'OUTBALANCE'"
        )
    )
    hopper = {
        int(r["lead_id"]): (str(r["status"]), str(r["user"] or ""))
        for r in await database.fetch_dicts("SELECT lead_id, status, user FROM vicidial_hopper")
    }
    return Accounting(seeded, dialed, action_ids, received, originate_rows, call_rows, dial_log, hopper)


# == the matrix ========================================================================================
@dataclass
class MatrixRow:
    fault: str
    cells: dict[str, str]
    recovery: float | None
    bound: float
    recovery_from: str
    notes: list[str] = field(default_factory=list)


MATRIX: list[MatrixRow] = []
KNOWN_BUG_CELL = "FAIL (bug)"


def render_matrix(rows: Sequence[MatrixRow]) -> str:
    """The matrix as a reStructuredText grid table (fault x invariant, recovery time and bound)."""
    header = ["fault", *INVARIANT_TITLES.values(), "recovery (bound)"]
    body = []
    for row in rows:
        seconds = "not within" if row.recovery is None else f"{row.recovery:.2f} s"
        body.append(
            [row.fault, *(row.cells.get(k, "-") for k in INVARIANT_TITLES), f"{seconds} (<= {row.bound:g} s)"]
        )
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]

    def rule(char: str) -> str:
        return "+" + "+".join(char * (w + 2) for w in widths) + "+"

    def line(cells: Sequence[str]) -> str:
        return "|" + "|".join(f" {c.ljust(w)} " for c, w in zip(cells, widths, strict=True)) + "|"

    out = [rule("-"), line(header), rule("=")]
    for cells in body:
        out += [line(cells), rule("-")]
    return "\n".join(out)


def render_notes(rows: Sequence[MatrixRow]) -> str:
    out = []
    for row in rows:
        out.append(f"* {row.fault}: recovery measured from {row.recovery_from}.")
        out += [f"  {note}" for note in row.notes]
    return "\n".join(out)


class Verdict:
    """The four invariants of one fault: evaluated together, recorded as a matrix row, then raised.

    ``known`` names the invariants a known product bug breaks in this fault: when exactly those
    fail, ``finish`` raises ``KnownBug`` (the test is ``xfail(strict=True, raises=KnownBug)``); when
    none of them fails any more it returns (the strict xfail then reports the fix); any other
    violation is raised as itself.
    """

    def __init__(
        self,
        fault: str,
        *,
        bound: float = RECOVERY_BOUND,
        recovery_from: str = "the fault",
        known: Sequence[str] = (),
    ) -> None:
        self.fault = fault
        self.bound = bound
        self.recovery_from = recovery_from
        self.known = frozenset(known)
        self.recovery: float | None = None
        self.failures: dict[str, list[str]] = {}
        self.checked: set[str] = set()
        self.notes: list[str] = []

    def fail(self, invariant: str, problems: list[str]) -> None:
        self.checked.add(invariant)
        if problems:
            self.failures.setdefault(invariant, []).extend(problems)

    async def recover(
        self, condition: Callable[[], Any], since: float, *, poll: float = 0.02
    ) -> float | None:
        """Wait (at most the bound, counted from ``since``) for ``condition``; the seconds it took."""
        deadline = since + self.bound
        while True:
            value = condition()
            if asyncio.iscoroutine(value):
                value = await value
            now = time.monotonic()
            if value:
                self.recovery = now - since
                self.fail("recovered", [])
                return self.recovery
            if now >= deadline:
                self.fail("recovered", [f"not recovered within {self.bound:g} s"])
                return None
            await asyncio.sleep(poll)  # the condition reads the database or another process's work

    def limits(self, watch: LimitWatch) -> None:
        self.fail("limit", watch.problems())
        self.notes.append(f"peak FILL usage: {watch.summary()}")

    def leads(self, books: Accounting, *, rows_true: bool = False) -> None:
        self.fail("once", books.twice() + (books.untrue_rows() if rows_true else []))
        self.fail("kept", books.lost())

    def finish(self) -> None:
        cells = {}
        for key in INVARIANT_TITLES:
            if key not in self.checked:
                cells[key] = "-"
            elif key not in self.failures:
                cells[key] = "ok"
            else:
                cells[key] = KNOWN_BUG_CELL if key in self.known else "FAIL"
        notes = list(self.notes)
        for invariant, problems in self.failures.items():
            notes += [f"{invariant}: {p}" for p in problems]
        MATRIX.append(MatrixRow(self.fault, cells, self.recovery, self.bound, self.recovery_from, notes))
        for kind in VIOLATIONS:
            if kind.invariant in self.failures and kind.invariant not in self.known:
                raise kind(f"{self.fault}: " + "; ".join(self.failures[kind.invariant]))
        if not self.known:
            return
        still = self.known & set(self.failures)
        if not still:
            return  # the known bug is gone: the test passes and its strict xfail says so
        if still != self.known:
            raise AssertionError(f"{self.fault}: the known bug no longer breaks {sorted(self.known - still)}")
        raise KnownBug(f"{self.fault}: " + "; ".join(p for k in sorted(still) for p in self.failures[k]))


# == the harness =======================================================================================
@dataclass
class RunningService:
    name: str
    service: ReactorService
    stop: asyncio.Event
    task: asyncio.Task[int]
    trace: TraceCollector
    db_proxy: FaultProxy | None

    async def halt(self) -> int | None:
        self.stop.set()
        with contextlib.suppress(Exception):
            return await asyncio.wait_for(self.task, 20)
        return None


@dataclass
class FaultCluster:
    dsn: Dsn
    sims: SimulatedCluster
    proxies: dict[str, FaultProxy]
    database: Database
    seed: Seeder
    watch: LimitWatch
    seeded: set[int]
    stack: contextlib.AsyncExitStack
    services: list[RunningService] = field(default_factory=list)

    def sim(self, ip: str) -> SimulatedAsterisk:
        return self.sims[IPS.index(ip)]

    @property
    def balance_sims(self) -> list[SimulatedAsterisk]:
        return [self.sim(ip) for ip in LIMITS]

    def live_total(self) -> int:
        return sum(live_fill(sim) for sim in self.balance_sims)

    def accepted_total(self) -> int:
        return sum(len(accepted(sim)) for sim in self.balance_sims)

    def live_calls(self, ip: str) -> list[Any]:
        return [r.call for r in fill_records(self.sim(ip)) if r.call is not None and r.call.live]

    def settled(self) -> bool:
        """NEED FILL calls live, every balance link ready and dialable in the leader."""
        if self.live_total() != NEED:
            return False
        leaders = [r.service for r in self.services if r.service.core.dialing]
        return len(leaders) == 1 and all(
            leaders[0].links.ready(ip) and ip in leaders[0].core.dialable_servers() for ip in LIMITS
        )

    async def start_service(
        self,
        name: str = "r1",
        *,
        settings: Settings | None = None,
        db_proxy: bool = False,
        pacing: bool = False,
        wait: bool = True,
        clock: Clock | None = None,
    ) -> RunningService:
        conf = conf_for(self.dsn)
        proxy = None
        if db_proxy:
            proxy = await self.stack.enter_async_context(FaultProxy((self.dsn.host, self.dsn.port)))
            conf = dataclasses.replace(conf, db_port=proxy.address[1])
        trace = TraceCollector()
        service = ReactorService(conf, settings or settings_for(), clock=clock, trace=trace, pacing=pacing)
        self.watch.observe(service)
        stop = asyncio.Event()
        task = asyncio.get_running_loop().create_task(service.run(stop), name=f"service {name}")
        running = RunningService(name, service, stop, task, trace, proxy)
        self.services.append(running)
        self.stack.push_async_callback(running.halt)
        if wait:
            await asyncio.wait_for(service.started.wait(), 10)
        return running

    async def eventually(self, condition: Callable[[], Any], timeout: float = 10.0, what: str = "") -> None:
        try:
            async with asyncio.timeout(timeout):
                while True:
                    value = condition()
                    if asyncio.iscoroutine(value):
                        value = await value
                    if value:
                        return
                    await asyncio.sleep(0.02)  # database and cross-task state: polled
        except TimeoutError:
            raise ScenarioError(f"not reached within {timeout:g} s: {what or condition}") from None

    async def settle(self) -> None:
        """Dial tasks done and the hopper rows of every dialed lead deleted (bounded)."""
        with contextlib.suppress(ScenarioError):
            await self.eventually(
                lambda: not any(r.service._dial_tasks for r in self.services), SETTLE_TIMEOUT, "dials done"
            )
        with contextlib.suppress(ScenarioError):
            await self.eventually(self._dialed_rows_deleted, SETTLE_TIMEOUT, "dialed leads' rows deleted")

    async def _dialed_rows_deleted(self) -> bool:
        dialed = {lead_of(r.action_id) for sim in self.balance_sims for r in accepted(sim)}
        rows = await self.database.fetch_all("SELECT lead_id FROM vicidial_hopper")
        return not any(int(row[0]) in dialed for row in rows)

    async def books(self) -> Accounting:
        return await account(self.database, {ip: self.sim(ip) for ip in LIMITS}, self.seeded)

    async def judge(self, verdict: Verdict, *, rows_true: bool = False) -> None:
        """Settle, then check limit, once and kept; record the row and raise (``Verdict.finish``)."""
        await self.settle()
        verdict.limits(self.watch)
        verdict.leads(await self.books(), rows_true=rows_true)
        verdict.finish()


@contextlib.asynccontextmanager
async def fault_cluster(
    dsn: Dsn,
    seed: Seeder,
    *,
    agents: int = 10,
    leads: int = 100,
    cps: int = 1000,
    agent_calls: int = 20,
    usernames: dict[str, str] | None = None,
) -> AsyncIterator[FaultCluster]:
    """The cluster of the module docstring, every server behind its own ``FaultProxy``; no service yet."""
    async with contextlib.AsyncExitStack() as stack:
        sims = await stack.enter_async_context(SimulatedCluster(3, time_scale=TIME_SCALE, timing=STEADY))
        for sim in sims:
            sim.config.users.update(usernames or {})
        proxies = {
            ip: await stack.enter_async_context(FaultProxy(sim.address))
            for ip, sim in zip(IPS, sims, strict=True)
        }
        ports = [SimpleNamespace(port=proxies[ip].address[1]) for ip in IPS]  # what seed_cluster reads
        await seed_cluster(seed, ports, agents=agents, balance=BALANCE, leads=leads)  # type: ignore[arg-type]
        if cps != 1000:
            await seed.execute("UPDATE system_settings SET outbound_calls_per_second = %s", (cps,))
        database = await Database.open(DatabaseAddress.from_dsn(dsn))
        stack.push_async_callback(database.close)
        watch = LimitWatch(LIMITS)
        for ip in LIMITS:
            watch.watch(ip, sims[IPS.index(ip)])
        stack.push_async_callback(watch.stop)
        cleanup = CallCleanup(database, list(sims))
        cleanup.start()
        stack.push_async_callback(cleanup.stop)
        heartbeat = AgentHeartbeat(database)
        heartbeat.start()
        stack.push_async_callback(heartbeat.stop)
        if agent_calls:
            dialer = AgentDialer(database, sims[0], A, CAMPAIGN, target=agent_calls, first_lead_id=500_000)
            dialer.start()
            stack.push_async_callback(dialer.stop)
            async with asyncio.timeout(10):
                await sims[0].wait_until(lambda: len(dialer.live) >= agent_calls)
        seeded = {int(r[0]) for r in await database.fetch_all("SELECT lead_id FROM vicidial_hopper")}
        yield FaultCluster(dsn, sims, proxies, database, seed, watch, seeded, stack)


# == `fillreactor run` in a subprocess =================================================================
FILLREACTOR = [sys.executable, "-m", "fillreactor"]


def write_run_configs(tmp: Path, dsn: Dsn, db_port: int, **overrides: Any) -> tuple[Path, Path]:
    """astguiclient.conf (the database at ``db_port``: the proxy) and the settings INI of a run."""
    conf = tmp / "astguiclient.conf"
    conf.write_text(
        f"VARserver_ip => {A}\nVARDB_server => {dsn.host}\nVARDB_port => {db_port}\n"
        f"VARDB_user => {dsn.user}\nVARDB_pass => {dsn.password}\nVARDB_database => {dsn.database}\n"
        f"PATHhome => {tmp}\nPATHlogs => {tmp}\n"
    )
    settings = settings_for(**overrides)
    names = ("agents_refresh", "config_refresh", "stats_refresh", "lock_check", "ping_interval",
             "ping_timeout", "reconnect_max_wait", "stale_claim_age", "hopper_retry",
             "reservation_timeout", "originate_timeout", "lock_name")
    lines = [f"{n} = {getattr(settings, n)}\n" for n in names]
    socket_path = tmp / "status.sock"
    if len(str(socket_path)) < 100:
        lines.append(f"status_socket = {socket_path}\n")
    ini = tmp / "fillreactor.conf"
    ini.write_text("[fillreactor]\n" + "".join(lines))
    return conf, ini


async def start_run(conf: Path, ini: Path, log: Path) -> asyncio.subprocess.Process:
    handle = log.open("wb")
    try:
        return await asyncio.create_subprocess_exec(
            *FILLREACTOR, "run", "--conf", str(conf), "--config", str(ini), "--log-level", "INFO",
            stdout=handle, stderr=handle, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    finally:
        handle.close()
