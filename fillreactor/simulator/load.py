"""Dial-level load: the calls a server's own VICIdial dialer (AST_VDauto_dial.pl) places.

Rules this module keeps:

* These calls do not come through a client session: they appear on the server as live calls that
  fillreactor did not place, with the same four-channel event sequence and a ``V`` call id
  (``build_call_id``) as CallerIDName and as ActionID of the broadcast OriginateResponse.
* Pacing is ``calls_per_second`` in simulated time, and at most ``max_concurrent`` live calls of
  this generator at once (a server's trunk limit); a full server skips a tick, it does not queue.
  A server that is not up (shutting down, down, booting) places nothing: those ticks are counted
  in ``down_ticks``.
* Lead ids count up from ``first_lead_id``; the dialled number is ``9`` + a 10-digit number made from
  the lead id, so the default outcome rules give a realistic mix (…0000 busy, …1111 congestion).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime

from fillreactor.core.callid import build_call_id
from fillreactor.simulator.calls import SimulatedCall
from fillreactor.simulator.server import SimulatedAsterisk


def default_number(lead_id: int) -> str:
    return f"9800{lead_id % 10_000_000:07d}"


class DialLevelLoad:
    def __init__(
        self,
        server: SimulatedAsterisk,
        *,
        calls_per_second: float,
        max_concurrent: int = 50,
        first_lead_id: int = 1,
        number_for: Callable[[int], str] = default_number,
        caller_number: str = "0000000000",
    ) -> None:
        if calls_per_second <= 0:
            raise ValueError("calls_per_second must be positive")
        self.server = server
        self.calls_per_second = calls_per_second
        self.max_concurrent = max_concurrent
        self.next_lead_id = first_lead_id
        self.number_for = number_for
        self.caller_number = caller_number
        self.placed: list[SimulatedCall] = []
        self.skipped_ticks = 0
        self.down_ticks = 0
        self._task: asyncio.Task[None] | None = None

    @property
    def live(self) -> list[SimulatedCall]:
        return [call for call in self.placed if not call.finished.is_set()]

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"load {self.server.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def place_one(self) -> SimulatedCall:
        lead_id = self.next_lead_id
        self.next_lead_id += 1
        call_id = build_call_id(datetime.fromtimestamp(self.server.time.now()), lead_id)
        call = self.server.place_call(
            self.number_for(lead_id),
            f'"{call_id}" <{self.caller_number}>',
            action_id=call_id,
        )
        self.placed.append(call)
        # forget finished calls so a long run does not grow without bound
        if len(self.placed) > 4 * self.max_concurrent:
            self.placed = self.live
        return call

    async def _run(self) -> None:
        interval = 1.0 / self.calls_per_second
        while True:
            if not self.server.accepting_calls:
                self.down_ticks += 1
                self.server.notify()
            elif len(self.live) < self.max_concurrent:
                self.place_one()
            else:
                self.skipped_ticks += 1
                # no call event follows a skipped tick, so wake waiters on this counter ourselves
                self.server.notify()
            await self.server.time.sleep(interval)
