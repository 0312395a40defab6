"""A stand-in for the VICIdial processes around fillreactor, for the demo and end-to-end tests.

fillreactor replaces only the FILL process; on a real cluster the other VICIdial scripts keep
running, and fillreactor sees their work in the database and on AMI. This module plays the parts it
depends on, against simulated servers (``fillreactor.simulator``) and the test database:

* ``AgentDialer``: ``AST_VDauto_dial.pl`` on an agent server. It keeps a target number of its own
  calls of one campaign live on its server: each is a ``vicidial_auto_calls`` row (``OUT``,
  ``SENT``, the ``V`` call id) inserted before the call is placed on the simulator, deleted when
  the call ends (spec 5.5, 5.8).
* ``AgentHeartbeat``: the agent screens keep every logged-in agent fresh (spec 4.1).
* ``CallCleanup``: the balance servers' dead-call cleanup (``AST_VDauto_dial.pl`` timers,
  ``FastAGI_log.pl``): when any call of a simulated server ends, its ``vicidial_auto_calls`` row (by
  callerid) is deleted, as VICIdial does within seconds of the hangup (spec 5.8).

Rules this module keeps: it writes only what those VICIdial processes write; it never calls into
fillreactor's reactor; it is driven by the simulator's own records (calls started and finished), so
tests await conditions instead of sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Callable, Iterable
from datetime import datetime

from fillreactor.core.callid import build_call_id, call_id_of
from fillreactor.simulator import SimulatedAsterisk, SimulatedCall
from fillreactor.store.database import Database, StoreError

log = logging.getLogger(__name__)


def _call_id(call: SimulatedCall) -> str | None:
    ident = call_id_of(call.caller_name, "")
    return ident[1] if ident is not None else None


def _started_since(server: SimulatedAsterisk, count: int) -> Callable[[], bool]:
    return lambda: server.calls_started != count


class CallCleanup:
    """Deletes the ``vicidial_auto_calls`` row of every call that ends on the given servers."""

    def __init__(self, database: Database, servers: Iterable[SimulatedAsterisk]) -> None:
        self.database = database
        self.servers = list(servers)
        self.deleted = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._watchers: list[asyncio.Task[None]] = []

    def start(self) -> None:
        for server in self.servers:
            self._watchers.append(asyncio.get_running_loop().create_task(self._watch(server)))

    async def stop(self) -> None:
        for task in [*self._watchers, *self._tasks]:
            task.cancel()
        await asyncio.gather(*self._watchers, *self._tasks, return_exceptions=True)
        self._watchers.clear()

    async def _watch(self, server: SimulatedAsterisk) -> None:
        seen: set[int] = set()
        while True:
            for call in list(server.calls):
                if id(call) not in seen:
                    seen.add(id(call))
                    task = asyncio.get_running_loop().create_task(self._on_end(call))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
            if len(seen) > 100_000:
                seen = {id(call) for call in server.calls}
            await server.wait_until(_started_since(server, server.calls_started))

    async def _on_end(self, call: SimulatedCall) -> None:
        await call.finished.wait()
        call_id = _call_id(call)
        if call_id is None:
            return
        with contextlib.suppress(StoreError):
            result = await self.database.execute(
                "DELETE FROM vicidial_auto_calls WHERE callerid = %s", (call_id,), idempotent=True
            )
            self.deleted += result.rowcount


class AgentHeartbeat:
    """The agent screens: every logged-in agent's ``last_update_time`` refreshed each second.

    VICIdial's agent page does this through ``vdc_db_query.php``; without it an agent is stale after
    10 s and AST_VDauto_dial.pl (and fillreactor's shortage) stops counting it (spec 4.1).
    """

    def __init__(self, database: Database, interval: float = 1.0) -> None:
        self.database = database
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(StoreError):
                await self.database.execute(
                    "UPDATE vicidial_live_agents SET last_update_time = NOW()", idempotent=True
                )
            await asyncio.sleep(self.interval)


class AgentDialer:
    """Keeps ``target`` calls of ``campaign`` live on ``server``, each with its vac row (see module)."""

    def __init__(
        self,
        database: Database,
        server: SimulatedAsterisk,
        server_ip: str,
        campaign: str,
        *,
        target: int,
        first_lead_id: int = 1,
        calls_per_second: float = 20.0,
    ) -> None:
        self.database = database
        self.server = server
        self.server_ip = server_ip
        self.campaign = campaign
        self.target = target
        self.leads = itertools.count(first_lead_id)
        self.interval = 1.0 / calls_per_second
        self.placed = 0
        self.live: set[SimulatedCall] = set()
        self._task: asyncio.Task[None] | None = None
        self._ends: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()

    def set_target(self, target: int) -> None:
        self.target = target
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        tasks = [t for t in (self._task, *self._ends) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            while len(self.live) < self.target:
                if not self.server.accepting_calls:  # shutting down, down or booting: wait for it
                    await self.server.wait_until(lambda: self.server.accepting_calls)
                    continue
                await self.place_one()
                await self.server.time.sleep(self.interval)
            self._wake.clear()
            await self._wake.wait()

    async def place_one(self) -> SimulatedCall:
        lead_id = next(self.leads)
        call_id = build_call_id(datetime.fromtimestamp(self.server.time.now()), lead_id)
        number = f"9800{lead_id % 10_000_000:07d}"
        if number.endswith(("0000", "1111", "9999")):  # keep the agent server's own calls answered
            number = number[:-1] + "2"
        await self.database.execute(
            "INSERT INTO vicidial_auto_calls (server_ip, campaign_id, status, lead_id, callerid, phone_code,"
            " phone_number, call_time, call_type, alt_dial, queue_priority) VALUES"
            " (%s, %s, 'SENT', %s, %s, '1', %s, NOW(), 'OUT', 'MAIN', 50)",
            (self.server_ip, self.campaign, lead_id, call_id, number[1:]),
        )
        call = self.server.place_call(number, f'"{call_id}" <0000000000>', exten="8368", action_id=call_id)
        self.placed += 1
        self.live.add(call)
        task = asyncio.get_running_loop().create_task(self._ended(call, call_id))
        self._ends.add(task)
        task.add_done_callback(self._ends.discard)
        return call

    async def _ended(self, call: SimulatedCall, call_id: str) -> None:
        await call.finished.wait()
        self.live.discard(call)
        with contextlib.suppress(StoreError):
            await self.database.execute(
                "DELETE FROM vicidial_auto_calls WHERE callerid = %s", (call_id,), idempotent=True
            )
        self._wake.set()
