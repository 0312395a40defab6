"""The dialer: runs a plan's entries. Claims leads, computes every call, writes the rows, originates, paces.

Rules this module keeps (spec 2.7-2.11, 5.1-5.5; DESIGN.md "Dial"):

* One entry (campaign C, server B, n calls) is one batch, in the Perl's order: the ``VDFC_<B>``
  claim of n rows (fenced by the leader lock), one read of the claimed rows with their lead and
  list, INCALL, then the calls computed by ``core.outbound_call`` and written a chunk at a time.
  Entries run in the order given (the plan's: campaigns, then servers by rank), so a later claim
  never sees a lead an earlier entry already dialed, as in the Perl's loop; with
  ``concurrent_entries`` (the live service) they run at once, as two plans dialing at once always
  did, so one server's Originate replies never hold up another's calls.
* Round trips: the claim and its read are one multi-statement query, a chunk's rows another, the
  end of the entry a third (``Database.execute_batch``): the statements are the Perl's, the waits
  fewer.
* The order of the writes, chosen so that a crash at any point leaves a state the start-up
  recovery (``store.calls.find_stale_claims``) resolves. Per chunk: the lead counters (before the
  call can be answered: the agent app sets ``vicidial_list.user`` at pick-up), then
  ``vicidial_auto_calls`` (so the vac row is committed before the Originate leaves), then the
  ``vicidial_manager`` row (status ``NEW`` is the Originate for ``AST_manager_send.pl``; ``SENT``
  when the originator sends it itself), then ``vicidial_dial_log`` and the callback record (VICIdial
  reads them while the call is alive: FastAGI_log.pl at hangup, the answer AGI), then the Originate
  is handed to the originator. After the entry's last chunk: the daily counts, the 24-hour and CID
  logs and the CID counters (read only later), and only then the hopper rows are deleted. Until
  that delete the rows stay INCALL under the claim tag: a crash before the manager row leaves them
  to be released, a crash after it leaves them to be deleted (a NEW or SENT Originate row proves
  the call went out; a DEAD one, not marked yet, is decided by what the server's AMI saw; a vac
  row with no manager row is undone, as that call never left). Paced passes thus
  pay four statements per chunk (one round trip), not nine.
* Nothing lost: every claimed row that is not dialed goes back to READY (no lead row - a named
  correction -, a lead another task is dialing, a call the originator refuses or fails, an error,
  a lost leader lock, cancellation). The only exception is a chunk's rows whose outcome is
  unknown (the connection dropped with the query sent): those rows are left INCALL for the
  recovery, because releasing them could dial the lead twice.
* Nothing twice: claims for one server run one at a time (a lock per server, held from the claim
  until no QUEUE row of it is left under the tag), so two tasks never read each other's QUEUE
  rows; a lead being dialed by one task is never dialed by another (the in-flight set); a lead
  claimed twice in one claim is dialed once and the other row goes with the first's DELETE, as the
  Perl's duplicate guard does (and its VDFC_DUPLICATE line is written when the FILL host's
  ``vd_server_logs`` is Y).
* Cancellation waits for a chunk being written to finish (its statements are bounded by their
  timeouts) and releases the rest; pacing waits are where a cancellation normally lands.
* Pacing is a token bucket at ``system_settings.outbound_calls_per_second`` (``core.pacing``), and
  per server at ``servers.outbound_calls_per_second`` with ``per_server_pacing``; a chunk is as many
  calls, in order, as the buckets allow now.
* The report says, per call, sent, refused or failed, and per entry how many calls were placed:
  the reactor feeds placed calls, not planned ones, back into its triggers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Protocol

from fillreactor.clock import Clock, SystemClock
from fillreactor.core.outbound_call import (
    DISABLED_GROUP,
    AltPhone,
    Callback,
    CidPool,
    DialedNumber,
    HopperEntry,
    LocalTime,
    OutboundCall,
    PassTime,
    choose_number,
    phone_code_key,
    prepare_call,
)
from fillreactor.core.pacing import TokenBucket, fill_rate, server_rate
from fillreactor.core.planner import PlanEntry
from fillreactor.store import calls as store
from fillreactor.store.database import BatchError, Database, StoreError, StoreUnavailable
from fillreactor.store.leader import Fence, LeaderLock

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]
PACING_LOOP_LIMIT = 100_000
CONTEXT_TTL = 10.0  # seconds: the dial context is configuration (the service passes config_refresh)


def system_localtime(epoch: int) -> tuple[datetime, bool]:
    """The host's local time, as Perl's ``localtime`` reads it (the C library's zone)."""
    parts = time.localtime(epoch)
    return datetime(*parts[:6]), parts.tm_isdst > 0


def pass_time(clock: Clock, localtime: LocalTime = system_localtime) -> PassTime:
    """The clock's wall time as a pass's "now" (the wall time is the system zone's local time)."""
    wall = clock.wall().replace(microsecond=0)
    return PassTime.at(int(time.mktime(wall.timetuple())), localtime)


# -- how a call leaves ------------------------------------------------------------------------


class CallOutcome(Enum):
    SENT = "sent"
    REFUSED = "refused"
    """The originator would not take it: nothing of it was written, its lead is released."""
    FAILED = "failed"
    """An error: see the reason; its lead is released unless the reason says it was kept."""
    UNKNOWN = "unknown"
    """Written, and no answer (a timeout, the link lost): the call may exist. Its Originate row stays
    DEAD and its hopper row INCALL under the claim tag, for the recovery to decide once the server's
    AMI can tell (``recover_stale_claims(went_out=...)``)."""


@dataclass(frozen=True, slots=True)
class SendResult:
    outcome: CallOutcome
    reason: str = ""


class Originator(Protocol):
    """Sends prepared calls. ``--dial-via manager`` and ``--dial-via ami`` implement it."""

    @property
    def manager_status(self) -> str:
        """The ``vicidial_manager.status`` the Originate row is written with: ``NEW`` (the row is the
        Originate) or ``DEAD`` (not sent yet; ``sent_status`` once it is)."""
        ...

    @property
    def sent_status(self) -> str | None:
        """The status the row takes once ``originate`` sent the call (``SENT``), None to keep it."""
        ...

    def admit(self, server_ip: str) -> bool:
        """May a call go to this server now? Asked before any row of the call is written."""
        ...

    async def originate(self, call: OutboundCall) -> SendResult:
        """Send it (the rows, vac included, are committed). Never raises for a refused call."""
        ...

    def writing(self, calls: Sequence[OutboundCall]) -> None:
        """Their rows are about to be written (the reactor learns their call ids). Must not raise."""
        ...


class ManagerOriginator:
    """``--dial-via manager``: the ``NEW`` row is the Originate; the target's AST_manager_send.pl sends it."""

    manager_status = "NEW"
    sent_status = None

    def admit(self, server_ip: str) -> bool:
        return True

    async def originate(self, call: OutboundCall) -> SendResult:
        return SendResult(CallOutcome.SENT, "vicidial_manager row NEW")

    def writing(self, calls: Sequence[OutboundCall]) -> None:
        return None


# -- the report -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CallResult:
    call: OutboundCall
    outcome: CallOutcome
    reason: str = ""


@dataclass
class EntryResult:
    entry: PlanEntry
    claimed: int = 0
    calls: list[CallResult] = field(default_factory=list)
    released: int = 0
    missing_leads: list[int] = field(default_factory=list)
    duplicates: list[int] = field(default_factory=list)
    busy_leads: list[int] = field(default_factory=list)
    """Leads another task was dialing: released, not dialed here."""
    kept_incall: list[int] = field(default_factory=list)
    """Leads whose Originate row may or may not have been written: left INCALL for the recovery."""
    problems: list[str] = field(default_factory=list)
    """Leads whose call could not be computed (released)."""
    error: str = ""
    """What stopped the entry early, if anything."""

    @property
    def placed(self) -> int:
        return sum(1 for result in self.calls if result.outcome is CallOutcome.SENT)


@dataclass
class DialReport:
    entries: list[EntryResult] = field(default_factory=list)

    @property
    def placed(self) -> int:
        return sum(entry.placed for entry in self.entries)

    def placed_by(self) -> dict[tuple[str, str], int]:
        """(campaign, server) -> calls placed."""
        out: dict[tuple[str, str], int] = {}
        for entry in self.entries:
            key = (entry.entry.campaign, entry.entry.server)
            out[key] = out.get(key, 0) + entry.placed
        return out

    def sent_calls(self) -> list[OutboundCall]:
        return [r.call for e in self.entries for r in e.calls if r.outcome is CallOutcome.SENT]


# -- pacing -----------------------------------------------------------------------------------


class Pacer:
    """The cluster bucket, and one per server with ``per_server``; ``None`` rates mean no pacing."""

    def __init__(self, clock: Clock, sleep: Sleep, *, enabled: bool = True, per_server: bool = False) -> None:
        self.clock = clock
        self.sleep = sleep
        self.enabled = enabled
        self.per_server = per_server
        self.cluster: TokenBucket | None = None
        self.servers: dict[str, TokenBucket] = {}
        self.waits = 0

    def configure(self, cluster_cps: int | None, server_cps: Mapping[str, int]) -> None:
        now = self.clock.monotonic()
        rate = fill_rate(cluster_cps)
        if self.cluster is None:
            self.cluster = TokenBucket(rate, now)
        elif self.cluster.rate != rate:
            self.cluster.set_rate(rate, now)
        if self.per_server:
            for server, cps in server_cps.items():
                rate = server_rate(cps)
                bucket = self.servers.get(server)
                if bucket is None:
                    self.servers[server] = TokenBucket(rate, now)
                elif bucket.rate != rate:
                    bucket.set_rate(rate, now)

    def _buckets(self, server: str) -> list[TokenBucket]:
        assert self.cluster is not None
        own = self.servers.get(server) if self.per_server else None
        return [self.cluster, own] if own is not None else [self.cluster]

    def _possible(self, now: float, servers: Sequence[str]) -> int:
        """How many of the next calls, in order, the buckets would let go at ``now``."""
        used: dict[int, int] = {}
        count = 0
        for server in servers:
            buckets = self._buckets(server)
            if any(bucket.available(now) - used.get(id(bucket), 0) < 1 for bucket in buckets):
                break
            for bucket in buckets:
                used[id(bucket)] = used.get(id(bucket), 0) + 1
            count += 1
        return count

    async def admit(self, servers: Sequence[str]) -> int:
        """How many of the next calls (their servers, in order) may go now; waits for a full burst.

        A chunk waits until the buckets hold a whole burst for it (the cluster bucket's capacity, or
        what is left to place), so a paced pass is written a burst at a time rather than a call at a
        time: the same rate, far fewer statements.
        """
        if not self.enabled or not servers:
            return len(servers)
        if self.cluster is None:
            self.configure(None, {})
        assert self.cluster is not None
        first = self._buckets(servers[0])
        target = int(min(len(servers), *(bucket.capacity for bucket in first)))
        for _ in range(PACING_LOOP_LIMIT):
            now = self.clock.monotonic()
            count = self._possible(now, servers)
            wait = max(bucket.wait_time(now, target) for bucket in first)
            if count >= target or (count >= 1 and wait <= 0):
                for server in servers[:count]:
                    for bucket in self._buckets(server):
                        bucket.take(now)
                return count
            self.waits += 1
            await self.sleep(max(wait, 1e-4))
        raise RuntimeError("pacing did not admit a call after many waits")  # pragma: no cover


# -- the dialer -------------------------------------------------------------------------------


class Dialer:
    """Runs plan entries against the database through an ``Originator`` (see the module rules)."""

    def __init__(
        self,
        db: Database,
        originator: Originator,
        *,
        host_ip: str,
        leader: LeaderLock | None = None,
        clock: Clock | None = None,
        sleep: Sleep = asyncio.sleep,
        localtime: LocalTime = system_localtime,
        pacing: bool = True,
        per_server_pacing: bool = False,
        logs_dir: str | Path | None = None,
        context_ttl: float = CONTEXT_TTL,
        concurrent_entries: bool = False,
    ) -> None:
        self.db = db
        self.concurrent_entries = concurrent_entries
        """Entries of one plan dialed at once (the live service) rather than in order (one pass)."""
        self.context_ttl = context_ttl
        self.originator = originator
        self.host_ip = host_ip
        self.leader = leader
        self.clock = clock or SystemClock()
        self.localtime = localtime
        self.pacer = Pacer(self.clock, sleep, enabled=pacing, per_server=per_server_pacing)
        self.logs_dir = Path(logs_dir) if logs_dir is not None else None
        self._locks: dict[str, asyncio.Lock] = {}
        self._in_flight: set[int] = set()
        self._held: set[int] = set()
        """Hopper ids this dialer claimed and has not finished with (the recovery leaves them alone)."""
        self._context_cache: tuple[float, set[str], store.DialContext] | None = None
        self._dated: dict[tuple[str, object], str] = {}
        self.on_rows: Callable[[str, str, str], None] | None = None
        """Told after each batch of rows: ``(campaign, server, "table n, table n, ...")`` (the trace)."""

    @asynccontextmanager
    async def holding(self, stale: Sequence[store.StaleClaim]) -> AsyncIterator[list[store.StaleClaim]]:
        """A ``ClaimGuard``: with the lock of every server the claims are tagged for (so no claim of
        this dialer is between its UPDATE and the bookkeeping of what it took), the claims it does
        not hold. Without it, a periodic recovery could release rows a running entry still dials."""
        servers = sorted({claim.user[len(store.TAG_PREFIX):] for claim in stale})
        async with AsyncExitStack() as stack:
            for server in servers:
                await stack.enter_async_context(self._lock(server))
            yield [claim for claim in stale if claim.hopper_id not in self._held]

    def _lock(self, server: str) -> asyncio.Lock:
        lock = self._locks.get(server)
        if lock is None:
            lock = self._locks[server] = asyncio.Lock()
        return lock

    # -- dialing -----------------------------------------------------------------------------
    async def dial(self, entries: Iterable[PlanEntry], *, now: PassTime | None = None) -> DialReport:
        """Place the calls of ``entries``, in their order (at once with ``concurrent_entries``); the
        report of what happened, its entries in the plan's order."""
        wanted = [entry for entry in entries if entry.calls > 0]
        report = DialReport()
        if not wanted:
            return report
        now = now or pass_time(self.clock, self.localtime)
        context = await self._context({e.campaign for e in wanted})
        self.pacer.configure(context.outbound_calls_per_second, context.server_cps)
        pool = CidPool()
        try:
            if self.concurrent_entries and len(wanted) > 1:
                # the live service: entries of different servers do not wait for each other's
                # Originate replies and late rows (two triggers read in one batch would otherwise
                # see the second server wait for the first); each has its own CID reads, as two
                # plans dialing at once always had
                results = [EntryResult(entry) for entry in wanted]
                report.entries.extend(results)
                await _all_to_end([self._dial_entry(r, context, now, CidPool()) for r in results])
            else:
                for entry in wanted:
                    result = EntryResult(entry)
                    report.entries.append(result)
                    await self._dial_entry(result, context, now, pool)
        finally:
            await _shielded(self._after(report, now))
        return report

    async def _context(self, campaigns: set[str]) -> store.DialContext:
        """The dial context (configuration), read again when older than ``context_ttl`` or
        missing a campaign: not three statements before every Originate."""
        at = self.clock.monotonic()
        cached = self._context_cache
        fresh = cached is not None and at - cached[0] < self.context_ttl
        if cached is not None and fresh and campaigns <= cached[1]:
            return cached[2]
        wanted = campaigns | (cached[1] if cached is not None and fresh else set())
        context = await store.read_dial_context(self.db, self.host_ip, wanted)
        self._context_cache = (at, set(wanted), context)
        return context

    async def _after(self, report: DialReport, now: PassTime) -> None:
        sent = report.sent_calls()
        if not sent:
            return
        try:
            # the same date written again changes nothing: only what this second has not written
            campaigns = {c.campaign_id for c in sent if self._dated.get(("c", c.campaign_id)) != now.sql}
            lists = {c.list_id for c in sent if self._dated.get(("l", c.list_id)) != now.sql}
            await store.write_campaign_calldate(self.db, campaigns, now.sql)
            await store.write_list_lastcalldate(self.db, lists, now.sql)
            self._dated.update({("c", c): now.sql for c in campaigns})
            self._dated.update({("l", n): now.sql for n in lists})
        except StoreError as error:
            log.error("campaign_calldate / list_lastcalldate not written: %s", error)

    async def _dial_entry(
        self, result: EntryResult, context: store.DialContext, now: PassTime, pool: CidPool
    ) -> None:
        entry = result.entry
        # the server's claim tag is this entry's while QUEUE rows under it are (see _claim): other
        # entries for the server wait until they are INCALL or back to READY, not for the whole entry
        tag = _TagHold(self._lock(entry.server))
        await tag.take()
        try:
            await self._dial_claimed(result, context, now, pool, tag)
        finally:
            tag.let_go()

    async def _dial_claimed(
        self, result: EntryResult, context: store.DialContext, now: PassTime, pool: CidPool, tag: _TagHold
    ) -> None:
        entry = result.entry
        fence = None
        if self.leader is not None:
            fence = self.leader.fence
            if fence is None:
                result.error = "not the leader: nothing claimed"
                return
        claiming = asyncio.ensure_future(self._claim(result, fence))
        try:
            rows = await asyncio.shield(claiming)
        except asyncio.CancelledError:  # the claim runs to its end; what it took goes back
            await asyncio.wait({claiming})
            if not claiming.cancelled() and claiming.exception() is None:
                await _shielded(self._release([row.hopper for row in claiming.result()]))
            raise
        except StoreError as error:
            result.error = f"claim failed: {error}"
            log.error("%s on %s: %s", entry.campaign, entry.server, result.error)
            return
        if not rows:
            return
        held = {row.hopper.hopper_id for row in rows}
        self._held |= held
        try:
            await self._dial_rows(result, context, now, pool, tag, rows)
        finally:
            self._held -= held

    async def _dial_rows(
        self,
        result: EntryResult,
        context: store.DialContext,
        now: PassTime,
        pool: CidPool,
        tag: _TagHold,
        rows: list[store.ClaimedRow],
    ) -> None:
        entry = result.entry
        pending: dict[int, HopperEntry] = {row.hopper.hopper_id: row.hopper for row in rows}
        registered: list[int] = []
        sent: list[OutboundCall] = []
        unmarked: list[OutboundCall] = []  # sent, their Originate row still DEAD ("not sent yet")
        try:
            dial_rows = self._classify(rows, result, registered, now, context)
            # rows of leads not dialed here go back at once; a duplicate waits for its lead's call
            not_dialed = [
                pending.pop(h.hopper_id) for h in list(pending.values()) if h.lead_id not in registered
            ]
            if not_dialed:
                result.released += await store.release_claims(self.db, not_dialed)
            if not dial_rows:
                return
            by_lead: dict[int, list[HopperEntry]] = {}
            for hopper in pending.values():
                by_lead.setdefault(hopper.lead_id, []).append(hopper)
            incall = {row.hopper.hopper_id for row in dial_rows}
            await store.mark_incall(self.db, [row.hopper.hopper_id for row in dial_rows])
            if all(hopper_id in incall for hopper_id in pending):
                tag.let_go()  # no QUEUE row left under the tag (a duplicate's row would still be)
            prepared = await self._prepare(entry, dial_rows, context, now, pool, result)
            admitted: list[OutboundCall] = []
            for call in prepared:
                if self.originator.admit(call.server_ip):
                    admitted.append(call)
                else:
                    result.calls.append(
                        CallResult(call, CallOutcome.REFUSED, "the originator takes no call now")
                    )
            position = 0
            while position < len(admitted):
                count = await self.pacer.admit([call.server_ip for call in admitted[position:]])
                if self.leader is not None and not self.leader.is_held:  # checked after any pacing wait
                    result.error = "leader lock lost: the rest of the claim is released"
                    break
                chunk = admitted[position : position + count]
                position += count
                await _run_to_end(self._chunk(chunk, by_lead, pending, result, sent, unmarked))
                if result.error:
                    break
                if position < len(admitted):  # another chunk follows: no SENT mark waits for it
                    await self._mark_sent(unmarked)
            for call in admitted[position:]:
                result.calls.append(CallResult(call, CallOutcome.FAILED, result.error or "not sent"))
        except StoreError as error:
            result.error = str(error)
            log.error("%s on %s: %s; the claimed rows are released", entry.campaign, entry.server, error)
        finally:
            await _shielded(self._clean_up(result, sent, unmarked, pending, registered))

    async def _claim(self, result: EntryResult, fence: Fence | None) -> list[store.ClaimedRow]:
        """The claim and the read of what it took; a failed read puts the claim back at once."""
        entry = result.entry
        try:
            result.claimed, rows = await store.claim_and_read(
                self.db, entry.campaign, entry.server, entry.calls, fence
            )
            return rows
        except StoreError as error:
            if isinstance(error, BatchError):
                if error.index == 0:
                    raise  # the claim itself failed: nothing taken
                result.claimed = error.results[0].rowcount  # claimed; the read failed
            # the claim ran, or may have with its reply lost; the server's lock is held, so every
            # QUEUE row under this tag for the campaign is this claim's: put them back at once
            with contextlib.suppress(StoreError):
                result.released += await store.release_tag(self.db, entry.campaign, entry.server)
            raise

    async def _clean_up(
        self,
        result: EntryResult,
        sent: Sequence[OutboundCall],
        unmarked: Sequence[OutboundCall],
        pending: Mapping[int, HopperEntry],
        registered: Sequence[int],
    ) -> None:
        """The end of an entry, whatever ended it: late rows of the sent calls, releases, in-flight set."""
        try:
            await self._finish(sent, unmarked)
            leftovers = list(pending.values())
            if leftovers:
                result.released += await self._release(leftovers)
        finally:
            for lead_id in registered:
                self._in_flight.discard(lead_id)

    def _classify(
        self,
        rows: Sequence[store.ClaimedRow],
        result: EntryResult,
        registered: list[int],
        now: PassTime,
        context: store.DialContext,
    ) -> list[store.ClaimedRow]:
        """Which claimed rows are dialed; records missing leads, duplicates and busy leads."""
        dial_rows: list[store.ClaimedRow] = []
        dialed: list[int] = []
        for row in rows:
            lead_id = row.hopper.lead_id
            if lead_id in dialed:
                result.duplicates.append(lead_id)
                self._log_duplicate(now, dialed, lead_id, context)
                continue
            if lead_id in self._in_flight:
                result.busy_leads.append(lead_id)
                log.warning(
                    "lead %s is being dialed by another task: hopper row %s released",
                    lead_id,
                    row.hopper.hopper_id,
                )
                continue
            if row.lead is None:
                result.missing_leads.append(lead_id)
                log.warning(
                    "lead %s of hopper row %s has no vicidial_list row: released to READY",
                    lead_id,
                    row.hopper.hopper_id,
                )
                continue
            dialed.append(lead_id)
            dial_rows.append(row)
            # registered with no await since the read: another task cannot have read this lead in between
            self._in_flight.add(lead_id)
            registered.append(lead_id)
        return dial_rows

    async def _prepare(
        self,
        entry: PlanEntry,
        rows: Sequence[store.ClaimedRow],
        context: store.DialContext,
        now: PassTime,
        pool: CidPool,
        result: EntryResult | None,
    ) -> list[OutboundCall]:
        """Read what the calls need beyond the claimed rows, and compute every call (pure)."""
        campaign = context.campaign(entry.campaign)
        target = context.target(entry.server)
        alt_phones: dict[int, list[AltPhone]] = {}
        if campaign.dials_extended and any("X" in row.hopper.alt_dial for row in rows):
            alt_phones = await store.read_alt_phones(
                self.db, [r.hopper.lead_id for r in rows if "X" in r.hopper.alt_dial]
            )
        numbers: dict[int, DialedNumber] = {}
        for row in rows:
            assert row.lead is not None
            numbers[row.hopper.hopper_id] = choose_number(
                row.hopper, row.lead, campaign, alt_phones.get(row.hopper.lead_id, ())
            )
        states: dict[tuple[str, str], str] = {}
        if context.call_limit_24hour:
            keys = {phone_code_key(n.phone_code, n.phone_number) for n in numbers.values()}
            states = await store.read_phone_code_states(self.db, keys)
        callbacks: dict[int, Callback] = {}
        wanted_callbacks = [
            r.hopper.lead_id for r in rows if campaign.reschedules_callbacks or r.hopper.source == "C"
        ]
        if wanted_callbacks:
            callbacks = await store.read_callbacks(self.db, wanted_callbacks)
        owners = list(campaign.cid_groups())
        owners += [
            r.lists.cid_group_id
            for r in rows
            if r.lists is not None and r.lists.cid_group_id and DISABLED_GROUP not in r.lists.cid_group_id
        ]
        if "AREACODE" in campaign.use_custom_cid:
            owners.append(campaign.campaign_id)
        missing = pool.missing(owners)
        if missing:
            pool.add(await store.read_cid_rows(self.db, missing), owners=missing)
        prepared: list[OutboundCall] = []
        for row in rows:
            lead = row.lead
            assert lead is not None
            number = numbers[row.hopper.hopper_id]
            try:
                call = prepare_call(
                    hopper=row.hopper,
                    lead=lead,
                    lists=row.lists,
                    campaign=campaign,
                    host=context.host,
                    target=target,
                    now=now,
                    number=number,
                    pool=pool,
                    tf_state=states.get(phone_code_key(number.phone_code, number.phone_number), ""),
                    callback=callbacks.get(lead.lead_id),
                )
            except Exception as error:  # bad data in one lead: that lead is released, the others go on
                log.error("lead %s: the call cannot be computed (%s): released", lead.lead_id, error)
                if result is not None:
                    result.problems.append(f"lead {lead.lead_id}: {error}")
                continue
            prepared.append(call)
        return prepared

    async def _chunk(
        self,
        chunk: Sequence[OutboundCall],
        hopper_rows: Mapping[int, list[HopperEntry]],
        pending: dict[int, HopperEntry],
        result: EntryResult,
        sent: list[OutboundCall],
        unmarked: list[OutboundCall],
    ) -> None:
        """Write a chunk's rows and originate; sent calls go to ``sent`` and ``unmarked`` (their
        SENT marks are written after the chunk). Never raises a StoreError."""
        mine: dict[int, list[HopperEntry]] = {}
        for call in chunk:  # from here on this chunk, not the entry's finally, owns these rows
            mine[call.lead_id] = [
                pending.pop(h.hopper_id) for h in hopper_rows.get(call.lead_id, []) if h.hopper_id in pending
            ]
        writing = getattr(self.originator, "writing", None)  # optional (test doubles need not have it)
        if writing is not None:
            try:
                writing(chunk)
            except Exception:  # an originator must not raise; its bookkeeping is its own business
                log.exception("originator.writing raised")
        try:
            failed = await store.write_call_rows(self.db, chunk, self.originator.manager_status)
        except StoreUnavailable as error:
            # lost with the statements sent: the Originate rows may be there (--dial-via manager:
            # AST_manager_send.pl may send them), so only the recovery, which asks the servers, decides
            reason = f"unknown whether the call rows were written ({error}): left INCALL for recovery"
            for call in chunk:
                result.calls.append(CallResult(call, CallOutcome.FAILED, reason))
                result.kept_incall.append(call.lead_id)
            result.error = reason
            log.error("%s", reason)
            return
        if failed is not None and failed.table != "vicidial_dial_log":
            reason = f"{failed.table} not written: {failed.error}"
            result.error = reason
            log.error("%s; %d leads released", reason, len(chunk))
            if failed.table != "vicidial_list":
                with contextlib.suppress(StoreError):
                    await store.undo_unsent(self.db, chunk)
            for call in chunk:
                result.calls.append(CallResult(call, CallOutcome.FAILED, reason))
            result.released += await self._release([h for rows in mine.values() for h in rows])
            return
        if failed is not None:  # the calls are out (or about to be): go on, but say so
            log.error("vicidial_dial_log rows not written for %d calls: %s", len(chunk), failed.error)
        self._told_rows(chunk, store.CALL_ROW_TABLES)
        unsent: list[OutboundCall] = []
        for call in chunk:
            try:
                outcome = await self.originator.originate(call)
            except Exception as error:  # an originator must not raise; if it does, the call failed
                outcome = SendResult(CallOutcome.FAILED, f"originator error: {error}")
            result.calls.append(CallResult(call, outcome.outcome, outcome.reason))
            if outcome.outcome is CallOutcome.UNKNOWN:
                result.kept_incall.append(call.lead_id)  # the recovery decides (see CallOutcome)
                log.warning("call %s on %s: %s; its lead stays claimed until its server can tell",
                            call.call_id, call.server_ip, outcome.reason)
                continue
            if outcome.outcome is CallOutcome.SENT:
                sent.append(call)
                unmarked.append(call)
                log.debug(
                    "call %s: lead %s on %s %s", call.call_id, call.lead_id, call.server_ip, call.channel
                )
            else:
                unsent.append(call)
        if unsent:
            try:
                await store.undo_unsent(self.db, unsent)
            except StoreError as error:
                log.error("rows of %d calls not sent were not undone: %s", len(unsent), error)
            result.released += await self._release([h for c in unsent for h in mine.get(c.lead_id, [])])

    @property
    def _sent_status(self) -> str | None:
        return getattr(self.originator, "sent_status", None)

    async def _mark_sent(self, unmarked: list[OutboundCall]) -> None:
        """The sent calls' Originate rows leave their "not sent yet" status (then ``unmarked`` is
        empty). Until then a crash leaves them DEAD with their vac rows, and the recovery asks the
        server's AMI whether each call is there; from then on it is recovered as a placed call."""
        status = self._sent_status
        calls, unmarked[:] = list(unmarked), []
        if not status or not calls:
            return
        try:
            await store.mark_calls_sent(self.db, calls, status)
        except StoreError as error:
            log.error("%d Originate rows left DEAD (%s); the calls are out", len(calls), error)

    async def _finish(self, sent: Sequence[OutboundCall], unmarked: Sequence[OutboundCall]) -> None:
        """After an entry's chunks, in one round trip: the SENT marks of its last chunk, the records
        nothing reads while a call is alive, and the hopper rows of the sent calls (until now INCALL
        under the claim tag)."""
        if not sent:
            return
        status = self._sent_status
        problems = await store.finish_calls(
            self.db, sent, [pick for call in sent for pick in call.cid_picks],
            unmarked if status else (), status or "SENT",
        )
        if problems.marks is not None:
            log.error("%d Originate rows left DEAD (%s); the calls are out", len(unmarked), problems.marks)
        if problems.records is not None:
            log.error("daily counts, 24-hour or CID log rows not written for %d calls: %s",
                      len(sent), problems.records)
        if problems.hopper is not None:  # the rows stay INCALL; the recovery finishes the job
            log.error("hopper rows not deleted after the Originates: %s", problems.hopper)
        self._told_rows(
            sent,
            (
                "vicidial_lead_call_daily_counts",
                "vicidial_phone_number_call_daily_counts",
                "vicidial_lead_24hour_calls",
                "vicidial_dial_cid_log",
                "vicidial_hopper deleted",
            ),
        )

    def _told_rows(self, calls: Sequence[OutboundCall], tables: Sequence[str]) -> None:
        if self.on_rows is None or not calls:
            return
        text = ", ".join(f"{table} {len(calls)}" for table in tables)
        try:
            self.on_rows(calls[0].campaign_id, calls[0].server_ip, text)
        except Exception:  # the trace must never break dialing
            log.exception("on_rows raised")

    async def _release(self, rows: Sequence[HopperEntry]) -> int:
        if not rows:
            return 0
        try:
            return await store.release_claims(self.db, rows)
        except StoreError as error:
            log.error(
                "%d claimed hopper rows not released (%s): the recovery releases them", len(rows), error
            )
            return 0

    def _log_duplicate(
        self, now: PassTime, dialed: Sequence[int], lead_id: int, context: store.DialContext
    ) -> None:
        """The Perl's ``VDFC_DUPLICATE.<date>`` line (lines 675-686), when the host logs to files."""
        listed = "|" + "".join(f"{lead}|" for lead in dialed)
        log.warning("duplicate lead_id for this claim: |%s|     %s", lead_id, listed)
        if not context.host.server_logs or self.logs_dir is None:
            return
        path = self.logs_dir / f"VDFC_DUPLICATE.{now.day}"
        try:
            with path.open("a", encoding="utf-8") as out:
                out.write(f"{now.sql}-----{listed}-----{lead_id}\n")
        except OSError as error:
            log.warning("cannot append to %s: %s", path, error.strerror or error)

    # -- dry run -----------------------------------------------------------------------------
    async def preview(
        self, entries: Iterable[PlanEntry], *, now: PassTime | None = None
    ) -> list[OutboundCall]:
        """The calls ``dial`` would place now, computed from READY rows without claiming any."""
        wanted = [entry for entry in entries if entry.calls > 0]
        if not wanted:
            return []
        now = now or pass_time(self.clock, self.localtime)
        context = await store.read_dial_context(self.db, self.host_ip, {e.campaign for e in wanted})
        pool = CidPool()
        queues: dict[str, list[store.ClaimedRow]] = {}
        for campaign in sorted({e.campaign for e in wanted}):
            total = sum(e.calls for e in wanted if e.campaign == campaign)
            queues[campaign] = await store.peek_ready(self.db, campaign, total * 2 + 10)
        handed: set[int] = set()
        calls: list[OutboundCall] = []
        for entry in wanted:
            queue = queues[entry.campaign]
            taken: list[store.ClaimedRow] = []
            slots = entry.calls
            while slots > 0 and queue:
                row = queue.pop(0)
                if row.hopper.lead_id in handed:  # an earlier entry's DELETE would have removed it
                    continue
                slots -= 1
                if row.lead is None or any(t.hopper.lead_id == row.hopper.lead_id for t in taken):
                    continue  # a missing lead or a duplicate uses a slot and places nothing
                taken.append(row)
            handed.update(row.hopper.lead_id for row in taken)
            if taken:
                calls.extend(await self._prepare(entry, taken, context, now, pool, None))
        return calls


class _TagHold:
    """A server's claim-tag lock, let go once (early, when the entry's rows are off the tag)."""

    def __init__(self, lock: asyncio.Lock) -> None:
        self.lock = lock
        self.held = False

    async def take(self) -> None:
        await self.lock.acquire()
        self.held = True

    def let_go(self) -> None:
        if self.held:
            self.held = False
            self.lock.release()


async def _all_to_end(awaitables: Sequence[Awaitable[None]]) -> None:
    """Run them at once, each to its own end; cancelled, each is cancelled and awaited (every
    entry cleans up after itself), then the first error, if any, is raised."""
    tasks = [asyncio.ensure_future(a) for a in awaitables]
    try:
        await asyncio.wait(tasks)
    except asyncio.CancelledError:
        for task in tasks:
            task.cancel()
        await asyncio.wait(tasks)
        raise
    for task in tasks:
        if not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]


async def _shielded(awaitable: Awaitable[int | None]) -> int:
    """Run a clean-up to its end even when the task running it is being cancelled."""
    task = asyncio.ensure_future(awaitable)
    try:
        value = await asyncio.shield(task)
    except asyncio.CancelledError:
        await asyncio.wait({task})
        raise
    return int(value or 0)


async def _run_to_end(awaitable: Awaitable[None]) -> None:
    """Run a chunk's writes to their end; a cancellation arriving meanwhile is raised afterwards."""
    task = asyncio.ensure_future(awaitable)
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        await asyncio.wait({task})
        raise


# -- start-up recovery ------------------------------------------------------------------------

ClaimGuard = Callable[[Sequence[store.StaleClaim]], AbstractAsyncContextManager[list[store.StaleClaim]]]
"""Given claims found stale, the ones nobody here holds, safe to recover while the context is open."""


async def recover_stale_claims(
    db: Database,
    *,
    now: datetime,
    min_age: float,
    sleep: Sleep = asyncio.sleep,
    went_out: store.WentOut | None = None,
    guard: ClaimGuard | None = None,
) -> store.Recovery:
    """Release (or finish) the ``VDFC_`` claims an earlier run left behind (see ``store.calls``).

    The hopper has no timestamp, so age is observed: a claim is stale when it is still there,
    unchanged, ``min_age`` seconds after it was first seen (0: every claim found is stale; right
    only when no other FILL, Perl or fillreactor, is running: the leader lock covers the latter).
    ``guard`` (``Dialer.holding``) leaves alone the claims a running dialer of this process holds.
    """
    first = await store.find_stale_claims(db, now)
    if not first:
        return store.Recovery()
    stale = first
    if min_age > 0:
        log.info("%d FILL claims in the hopper at start-up: looking again in %.1f s", len(first), min_age)
        await sleep(min_age)
        seen = {claim.key for claim in first}
        stale = [claim for claim in await store.find_stale_claims(db, now) if claim.key in seen]
    if guard is None:
        recovery = await store.recover_claims(db, stale, went_out)
    else:
        async with guard(stale) as theirs:
            recovery = await store.recover_claims(db, theirs, went_out)
    for claim in recovery.undecided:
        log.info("lead %s (%s) may have gone out: left until its server can tell", claim.lead_id, claim.user)
    for claim in recovery.released:
        log.warning(
            "stale claim released to READY: hopper_id %s lead %s campaign %s %s %s",
            claim.hopper_id,
            claim.lead_id,
            claim.campaign_id,
            claim.user,
            claim.status,
        )
    for claim in recovery.deleted:
        log.warning(
            "stale claim deleted (its OUTBALANCE Originate row exists): hopper_id %s lead %s campaign %s %s",
            claim.hopper_id,
            claim.lead_id,
            claim.campaign_id,
            claim.user,
        )
    return recovery
