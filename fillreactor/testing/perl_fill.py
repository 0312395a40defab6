"""A test double of the Perl FILL (``AST_VDauto_dial_FILL.pl``): its loop, its arithmetic, its rows.

For shadow-mode tests: fillreactor runs beside this double as it would run beside the real Perl.

Rules this module keeps (spec/VICIDIAL_FILL.md 2.2-2.8, 2.11, 5.3-5.5):

* **Its own timer**: one loop, then ``interval`` seconds (default 2.5, the Perl's loop delay) on
  the given clock, like the Perl's ``usleep`` after each loop (2.11). On a ``SteppedClock`` a
  loop comes only when the test advances the clock past its time; on a real clock, in real time.
  ``loop_once()`` runs one loop at the clock's now.
* **What it reads** is what the Perl reads (2.2-2.5): the fresh positive
  ``vicidial_campaign_server_stats`` rows (``read_stats_demand`` with the loop's wall time, as the
  Perl takes ``now - 1200 s`` once per loop), the kill switches, servers, trunks, the
  ``vicidial_auto_calls`` counts and the agent gate (``load_snapshot``). **Its arithmetic** is
  ``planner.plan`` in ``Mode.PARITY``: the Perl's to the letter, defects included (unclamped
  temp_avail, per-server VALIDATE cap, lines = every row on the server).
* **What it writes**, per planned call, in the Perl's order (2.7t): the ``vicidial_manager``
  Originate row (the 19 columns of 5.4, ``NEW``, ``entry_date`` = the loop time), then the
  ``vicidial_auto_calls`` row (5.5: ``OUTBALANCE``, ``SENT``, the ``V`` call id of 5.3 built from the
  loop time, ``call_time`` = the loop time); after the loop, ``balance_trunk_fill`` (2.8: the plan's
  values; every campaign reset to 0 on a RESET plan; untouched when auto-dial is disabled).
* **What it leaves out**, by design: the hopper and ``vicidial_list`` (each call takes the next
  lead id of its own counter, so a test can checksum the hopper and the leads), the log tables,
  ``campaign_calldate`` and ``list_lastcalldate``. Without ``pace_calls`` a loop's rows are one
  multi-row INSERT per table (a reader sees a loop whole or not at all); with it, one call at a
  time and ``1 / outbound_calls_per_second`` seconds on the clock after each (2.2.4).
* With ``servers`` (server_ip -> ``SimulatedAsterisk``) it also plays ``AST_manager_send.pl`` for
  its own rows (5.4): each call is placed on its simulated server (``Local/<dial string>@<context>``
  to the VDAD extension, the V id as CallerIDName) and its manager row marked ``SENT``; a server
  that is not up keeps the row ``NEW``, as its stopped sender would.
"""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fillreactor.clock import Clock, SystemClock, VirtualClock
from fillreactor.core.callid import build_call_id
from fillreactor.core.cluster import ServerConfig
from fillreactor.core.planner import Mode, Plan, PlanStatus, plan
from fillreactor.simulator import ServerNotRunning, SimulatedAsterisk
from fillreactor.store.database import Database
from fillreactor.store.servers import read_host_row
from fillreactor.store.snapshot import load_snapshot, read_stats_demand

MANAGER_COLUMNS = (
    "uniqueid, entry_date, status, response, server_ip, channel, action, callerid, cmd_line_b, cmd_line_c,"
    " cmd_line_d, cmd_line_e, cmd_line_f, cmd_line_g, cmd_line_h, cmd_line_i, cmd_line_j, cmd_line_k"
)
AUTO_CALL_COLUMNS = (
    "server_ip, campaign_id, status, lead_id, callerid, phone_code, phone_number, call_time, call_type,"
    " alt_dial, queue_priority"
)
CAMPAIGN_SQL = (
    "SELECT campaign_id, dial_prefix, campaign_vdad_exten, omit_phone_code, queue_priority, dial_timeout,"
    " campaign_cid FROM vicidial_campaigns"
)


class SteppedClock(VirtualClock):
    """A virtual clock that can be slept on: sleepers wake when ``advance`` reaches their time."""

    def __init__(self, start: datetime | None = None, monotonic_start: float = 1000.0) -> None:
        super().__init__(start, monotonic_start)
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    async def sleep(self, seconds: float) -> None:
        deadline = self.monotonic() + max(0.0, seconds)
        if deadline <= self.monotonic():
            await asyncio.sleep(0)
            return
        waiter = asyncio.get_running_loop().create_future()
        self._sleepers.append((deadline, waiter))
        try:
            await waiter
        finally:
            self._sleepers = [(d, w) for d, w in self._sleepers if w is not waiter]

    def advance(self, seconds: float) -> None:
        super().advance(seconds)
        now = self.monotonic()
        for deadline, waiter in list(self._sleepers):
            if deadline <= now and not waiter.done():
                waiter.set_result(None)


async def clock_sleep(clock: Clock, seconds: float) -> None:
    """Sleep ``seconds`` of ``clock``'s time (a clock with its own ``sleep``, else real time)."""
    sleep = getattr(clock, "sleep", None)
    if sleep is not None:
        await sleep(seconds)
    else:
        await asyncio.sleep(seconds)


@dataclass(frozen=True)
class PlacedCall:
    campaign: str
    server: str
    lead_id: int
    call_id: str
    call_time: datetime
    phone_number: str
    dial_string: str
    auto_call_id: int = 0
    man_id: int = 0
    sent: bool = False


@dataclass(frozen=True)
class PerlLoop:
    number: int
    at: datetime
    plan: Plan
    calls: tuple[PlacedCall, ...]


def routing_prefix_applies(asterisk_version: str) -> bool:
    """FILL's Asterisk >= 12 test (2.7s): a 1.x version compares its second number, others their first."""
    numbers = [int(n) for n in re.findall(r"\d+", asterisk_version or "")]
    if not numbers:
        return False
    minor = numbers[1] if numbers[0] == 1 and len(numbers) > 1 else numbers[0]
    return minor > 11


def _phone_number(lead_id: int) -> str:
    """A number the simulator answers (never ...0000 busy, ...1111 congestion, ...9999)."""
    number = f"312{lead_id % 10_000_000:07d}"
    if number.endswith(("0000", "1111", "9999")):
        number = number[:-1] + "2"
    return number


class PerlFillDouble:
    """See the module rules."""

    def __init__(
        self,
        database: Database,
        *,
        host_ip: str,
        clock: Clock | None = None,
        interval: float = 2.5,
        servers: Mapping[str, SimulatedAsterisk] | None = None,
        first_lead_id: int = 700_001,
        pace_calls: bool = False,
        phone_code: str = "1",
    ) -> None:
        self.database = database
        self.host_ip = host_ip
        self.clock: Clock = clock or SystemClock()
        self.interval = interval
        self.servers = dict(servers or {})
        self.pace_calls = pace_calls
        self.phone_code = phone_code
        self.leads = itertools.count(first_lead_id)
        self.loops: list[PerlLoop] = []
        self.fills: dict[str, int] = {}
        """The last ``balance_trunk_fill`` value written per campaign."""
        self.next_at: float | None = None
        """When the next loop runs (clock monotonic seconds), while the timer runs."""
        self._task: asyncio.Task[None] | None = None
        self._host: dict[str, Any] | None = None
        self._done = asyncio.Event()

    # -- the timer -------------------------------------------------------------------------------
    def start(self, first_in: float = 0.0) -> None:
        """The first loop ``first_in`` seconds from now (clock time), then ``interval`` after each."""
        first_at = self.clock.monotonic() + first_in  # taken now: the clock may move before the task runs
        self._task = asyncio.get_running_loop().create_task(self._run(first_at), name="perl FILL double")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self, next_at: float) -> None:
        while True:
            self.next_at = next_at
            await clock_sleep(self.clock, next_at - self.clock.monotonic())
            await self.loop_once()
            next_at = self.clock.monotonic() + self.interval  # the Perl sleeps after each loop (2.11)

    async def wait_loops(self, count: int, timeout: float = 10.0) -> None:
        """Return once ``count`` loops have finished."""
        async with asyncio.timeout(timeout):
            while len(self.loops) < count:
                self._done.clear()
                await self._done.wait()

    @property
    def call_ids(self) -> set[str]:
        return {call.call_id for loop in self.loops for call in loop.calls}

    @property
    def man_ids(self) -> set[int]:
        return {call.man_id for loop in self.loops for call in loop.calls}

    # -- one loop --------------------------------------------------------------------------------
    async def loop_once(self) -> PerlLoop:
        db = self.database
        loop_time = self.clock.wall().replace(microsecond=0)  # $SQLdate, once per loop (2.2.1)
        demand = await read_stats_demand(db, loop_time)
        snapshot = await load_snapshot(db)
        result = plan(snapshot, demand, None, mode=Mode.PARITY)
        if self._host is None:
            self._host = await read_host_row(db, self.host_ip) or {}
        campaigns = {row[0]: row for row in await db.fetch_all(CAMPAIGN_SQL)}
        cps = snapshot.system.outbound_calls_per_second
        per_call = 1.0 / cps if 0 < cps < 1001 else 0.025
        calls = [
            self._call(
                entry.campaign, snapshot.servers[entry.server], campaigns.get(entry.campaign), loop_time
            )
            for entry in result.entries
            if entry.server in snapshot.servers
            for _ in range(entry.calls)
        ]
        written: list[PlacedCall] = []
        if self.pace_calls:
            for call in calls:
                written += await self._write([call])
                await clock_sleep(self.clock, per_call)
        elif calls:
            written = await self._write(calls)
        await self._write_fill(result)
        loop = PerlLoop(len(self.loops) + 1, loop_time, result, tuple(written))
        self.loops.append(loop)
        self._done.set()
        return loop

    def _call(
        self, campaign: str, server: ServerConfig, row: Sequence[Any] | None, at: datetime
    ) -> dict[str, Any]:
        host = self._host or {}
        _cid, dial_prefix, vdad_exten, omit_code, queue_priority, dial_timeout, campaign_cid = row or (
            campaign,
            "",
            "",
            "N",
            0,
            0,
            "",
        )
        lead_id = next(self.leads)
        number = _phone_number(lead_id)
        prefix = dial_prefix or "9"
        if "x" in prefix.lower():
            prefix = ""
        dial_string = prefix + number if "Y" in (omit_code or "") else prefix + self.phone_code + number
        context = host.get("ext_context") or "default"
        exten = vdad_exten or host.get("answer_transfer_agent") or "8365"
        if routing_prefix_applies(server.asterisk_version):
            exten = (server.routing_prefix or "") + exten
        timeout_ms = (int(dial_timeout) if dial_timeout and int(dial_timeout) > 4 else 60) * 1000
        call_id = build_call_id(at, lead_id)
        ccid = campaign_cid or ""
        cid_type = "CAMPAIGN_CID" if len(ccid) > 6 else ""
        callerid = f'"{call_id}" <{ccid}>' if cid_type else call_id
        fields = (campaign, lead_id, self.phone_code, number, "OUTBALANCE", "MAIN", int(queue_priority or 0))
        note = ("VDACnote: " + "|".join(map(str, (*fields, self.host_ip, cid_type))))[:100]
        return {
            "campaign": campaign,
            "server": server.server_ip,
            "lead_id": lead_id,
            "call_id": call_id,
            "number": number,
            "dial_string": dial_string,
            "context": context,
            "exten": exten,
            "callerid": callerid,
            "timeout_ms": timeout_ms,
            "queue_priority": int(queue_priority or 0),
            "at": at,
            "manager": (
                "",
                at,
                "NEW",
                "N",
                server.server_ip,
                "",
                "Originate",
                call_id,
                f"Exten: {exten}",
                f"Context: {context}",
                f"Channel: Local/{dial_string}@{context}",
                "Priority: 1",
                f"Callerid: {callerid}",
                f"Timeout: {timeout_ms}",
                "",
                "",
                "",
                note,
            ),
        }

    async def _write(self, calls: list[dict[str, Any]]) -> list[PlacedCall]:
        db = self.database
        one = "(" + ", ".join(["%s"] * 18) + ")"
        result = await db.execute(
            f"INSERT INTO vicidial_manager ({MANAGER_COLUMNS}) VALUES " + ", ".join([one] * len(calls)),
            [value for call in calls for value in call["manager"]],
        )
        first_man = result.lastrowid  # a multi-row INSERT reports its first id; the rest follow
        one = "(" + ", ".join(["%s"] * 11) + ")"
        result = await db.execute(
            f"INSERT INTO vicidial_auto_calls ({AUTO_CALL_COLUMNS}) VALUES " + ", ".join([one] * len(calls)),
            [
                value
                for c in calls
                for value in (
                    c["server"],
                    c["campaign"],
                    "SENT",
                    c["lead_id"],
                    c["call_id"],
                    self.phone_code,
                    c["number"],
                    c["at"],
                    "OUTBALANCE",
                    "MAIN",
                    c["queue_priority"],
                )
            ],
        )
        first_vac = result.lastrowid
        placed: list[PlacedCall] = []
        sent_ids: list[int] = []
        for index, call in enumerate(calls):
            sent = self._send(call)
            if sent:
                sent_ids.append(first_man + index)
            placed.append(
                PlacedCall(
                    call["campaign"],
                    call["server"],
                    call["lead_id"],
                    call["call_id"],
                    call["at"],
                    call["number"],
                    call["dial_string"],
                    first_vac + index,
                    first_man + index,
                    sent,
                )
            )
        if sent_ids:  # AST_manager_send.pl: NEW -> SENT once sent (5.4)
            marks = ", ".join(["%s"] * len(sent_ids))
            await db.execute(
                f"UPDATE vicidial_manager SET status = 'SENT' WHERE man_id IN ({marks})", sent_ids
            )
        return placed

    def _send(self, call: dict[str, Any]) -> bool:
        server = self.servers.get(call["server"])
        if server is None or not server.accepting_calls:
            return False
        try:
            server.place_call(
                call["dial_string"],
                call["callerid"],
                context=call["context"],
                exten=call["exten"],
                timeout=call["timeout_ms"] / 1000,
            )
        except ServerNotRunning:
            return False
        return True

    async def _write_fill(self, result: Plan) -> None:
        db = self.database
        if result.status is PlanStatus.DIALING_DISABLED:
            return  # 2.2.6: balance_trunk_fill is not reset in this branch
        if result.reset_balance_fill:
            await db.execute("UPDATE vicidial_campaign_stats SET balance_trunk_fill = 0")
            self.fills = {c: 0 for c in self.fills}
            return
        for campaign, value in result.balance_trunk_fill.items():
            await db.execute(
                "UPDATE vicidial_campaign_stats SET balance_trunk_fill = %s WHERE campaign_id = %s",
                (value, campaign),
            )
            self.fills[campaign] = value
