"""Fault injection: the ways a real Asterisk or the network misbehaves, switchable from tests.

Rules this module keeps (durations are simulated seconds on the server's ``TimeBase``, so a test at
``TimeBase(0.01)`` sees a 2 s outage last 20 ms; defaults from ``ServerConfig``, measured on
Asterisk 22, spec/AMI.md A§6a):

* Every session fault acts on all sessions, or on one session when given; server-wide switches
  (silent, slow read) also apply to sessions that connect while they are on.
* ``drop`` aborts the TCP connection (no Goodbye, no Shutdown); the server keeps listening and its
  calls go on.
* ``go_silent`` keeps sockets open but stops reading, answering and sending events (a half-open
  peer); events emitted meanwhile are lost for that session, as they would be. ``resume`` undoes it.
* ``set_slow_read`` makes the server read at most ``chunk`` bytes per ``delay`` simulated seconds.
* ``send_garbage`` writes raw bytes; ``send_oversized`` writes one frame of ``size`` bytes with no
  blank line until its end, to test a client's frame limit.
* ``restart`` is the **old instant restart**: sessions aborted, calls vanish without events,
  counters reset, listening again on the same port within a millisecond. Real Asterisk never does
  that; it stays for tests that only need "the connection went away and came back".
* ``graceful_shutdown(restart=...)`` is ``core stop now`` / ``core restart now`` (6a.1): the state
  becomes ``shutting_down`` and every action of every session is answered ``Response: Error`` /
  ``Message: Asterisk is shutting down`` (an Originate refused so never gets an OriginateResponse);
  each live call hangs up at a seeded moment within ``hangup_spread`` (1 s): a Hangup for every
  live channel (cause 16 when Up, else 0) and a Failure OriginateResponse with Reason 0 for a call
  still ringing; then ``Event: Shutdown`` (``Shutdown: Cleanly``, ``Restart: True|False``); the
  sockets close (FIN) ``close_delay`` (20 ms) later and the port refuses connections (state
  ``down``). With ``restart=True`` it listens again after ``down_for`` (2 s); else it stays down
  until ``boot()``.
* ``crash(down_for=...)`` is a SIGKILL (6a.2): at once EOF on every session, no Hangup, no
  Shutdown, calls vanish; the port refuses connections for ``down_for`` (2.4 s), then the server
  boots (``reboot=False``: stays down until ``boot()``).
* A boot (after either, or ``boot()``): Uniqueids restart at ``<boot epoch>.0``, Local names at
  ``-00000000``; the server listens but is not fully booted for ``boot_time`` (state ``booting``,
  0.2 s, not measured): a login then gets no FullyBooted, and at the end of the boot a broadcast
  ``FullyBooted`` with ``Status`` first reaches the sessions that logged in meanwhile.
* The two outages return an ``Outage``: ``await outage.wait_down()`` / ``wait_up()`` (or the
  server's ``wait_down()`` / ``wait_up()`` / ``wait_state()``); nothing needs a sleep.
  ``graceful_shutdown`` returns once the server is down unless ``wait=False`` (then at once, with
  the server already refusing actions).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fillreactor.simulator.server import DOWN, SHUTTING_DOWN, UP

if TYPE_CHECKING:
    from fillreactor.simulator.server import AmiSession, SimulatedAsterisk

DEFAULT_GARBAGE = b"\x00\xff garbage without a colon\r\n\x1b[2J\r\nnot: \xc3\x28 broken utf8\r\n\r\n"

GRACEFUL = "graceful"
CRASH = "crash"


@dataclass(eq=False)
class Outage:
    """One graceful shutdown or crash of a server, with awaitable milestones."""

    kind: str  # graceful / crash
    restart: bool  # the server comes back by itself
    began_at: float  # simulated epoch seconds
    calls_at_start: int = 0
    shutdown_sent_at: float | None = None
    down_at: float | None = None
    up_at: float | None = None
    down: asyncio.Event = field(default_factory=asyncio.Event)
    up: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    async def wait_down(self) -> None:
        await self._wait(self.down)

    async def wait_up(self) -> None:
        """Return once the server is up again (raises if the outage failed, e.g. the port was taken)."""
        await self._wait(self.up)

    async def _wait(self, event: asyncio.Event) -> None:
        waiter = asyncio.ensure_future(event.wait())
        pending = {waiter}
        if self.task is not None and not self.task.done():
            pending.add(self.task)  # type: ignore[arg-type]
        await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        if not event.is_set():
            waiter.cancel()
            if self.task is not None and self.task.done() and self.task.exception() is not None:
                raise self.task.exception()  # type: ignore[misc]
            await event.wait()


class FaultInjector:
    def __init__(self, server: SimulatedAsterisk) -> None:
        self.server = server
        self.silent = False
        self.slow_read: tuple[int, float] | None = None
        self.drops = 0
        self.outages: list[Outage] = []

    def _targets(self, session: AmiSession | None) -> list[AmiSession]:
        return [session] if session is not None else list(self.server.sessions)

    def apply_to_new_session(self, session: AmiSession) -> None:
        if self.silent:
            session.set_silent(True)
        if self.slow_read is not None:
            session.read_chunk, session.read_delay = self.slow_read

    # -- connection faults ------------------------------------------------------------------------
    def drop(self, session: AmiSession | None = None) -> int:
        """Abort the connection of ``session`` (or all); returns how many were dropped."""
        targets = self._targets(session)
        for target in targets:
            target.abort()
        self.drops += len(targets)
        return len(targets)

    def go_silent(self, session: AmiSession | None = None) -> None:
        if session is None:
            self.silent = True
        for target in self._targets(session):
            target.set_silent(True)

    def resume(self, session: AmiSession | None = None) -> None:
        if session is None:
            self.silent = False
            self.slow_read = None
        for target in self._targets(session):
            target.set_silent(False)
            target.read_chunk, target.read_delay = self.server.config.read_chunk, 0.0

    def set_slow_read(self, chunk: int = 16, delay: float = 0.05, session: AmiSession | None = None) -> None:
        if session is None:
            self.slow_read = (chunk, delay)
        for target in self._targets(session):
            target.read_chunk, target.read_delay = chunk, delay

    # -- bad bytes --------------------------------------------------------------------------------
    def send_garbage(self, data: bytes = DEFAULT_GARBAGE, session: AmiSession | None = None) -> None:
        for target in self._targets(session):
            target.write_raw(data)

    def send_oversized(self, size: int = 2 << 20, session: AmiSession | None = None) -> None:
        frame = b"Event: Oversized\r\nPrivilege: call,all\r\nData: " + b"x" * size + b"\r\n\r\n"
        for target in self._targets(session):
            target.write_raw(frame)

    # -- whole server -----------------------------------------------------------------------------
    async def restart(self) -> None:
        """The old instant restart (see the module rules)."""
        self.silent = False
        self.slow_read = None
        await self.server.restart()

    async def graceful_shutdown(
        self,
        restart: bool = True,
        *,
        hangup_spread: float | None = None,
        close_delay: float | None = None,
        down_for: float | None = None,
        boot_time: float | None = None,
        wait: bool = True,
    ) -> Outage:
        """``core restart now`` (``restart=True``) or ``core stop now``; see the module rules.

        Raises RuntimeError unless the server is up (one outage at a time).
        """
        server, config = self.server, self.server.config
        if server.state != UP:
            raise RuntimeError(f"{server.name} is {server.state}, not up")
        outage = self._begin(GRACEFUL, restart)
        server._set_state(SHUTTING_DOWN)
        outage.task = asyncio.get_running_loop().create_task(
            self._graceful(
                outage,
                config.shutdown_hangup_spread if hangup_spread is None else hangup_spread,
                config.shutdown_close_delay if close_delay is None else close_delay,
                config.restart_down_for if down_for is None else down_for,
                config.boot_time if boot_time is None else boot_time,
            ),
            name=f"graceful shutdown {server.name}",
        )
        if wait:
            await outage.wait_down()
        return outage

    async def crash(
        self, *, down_for: float | None = None, reboot: bool = True, boot_time: float | None = None
    ) -> Outage:
        """SIGKILL: EOF at once, nothing else; back after ``down_for`` (see the module rules).

        Raises RuntimeError when the server is already down.
        """
        server, config = self.server, self.server.config
        if server.state == DOWN:
            raise RuntimeError(f"{server.name} is already down")
        outage = self._begin(CRASH, reboot)
        await self._crash_now(outage)
        if reboot:
            outage.task = asyncio.get_running_loop().create_task(
                self._back_after(
                    outage,
                    config.crash_down_for if down_for is None else down_for,
                    config.boot_time if boot_time is None else boot_time,
                ),
                name=f"reboot {server.name}",
            )
        return outage

    async def boot(self, *, boot_time: float | None = None) -> None:
        """Start a server left down (``restart=False`` / ``reboot=False``); returns once it is up."""
        server = self.server
        if server.state != DOWN:
            raise RuntimeError(f"{server.name} is {server.state}, not down")
        await server._boot(server.config.boot_time if boot_time is None else boot_time)
        for outage in self.outages:
            if not outage.up.is_set():
                outage.up_at = server.time.now()
                outage.up.set()

    async def cancel_outages(self) -> None:
        """Stop every outage in progress (the server is being stopped)."""
        tasks = [o.task for o in self.outages if o.task is not None and not o.task.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- the outages ------------------------------------------------------------------------------
    def _begin(self, kind: str, restart: bool) -> Outage:
        server = self.server
        self.silent = False
        self.slow_read = None
        outage = Outage(kind, restart, server.time.now(), calls_at_start=len(server.live_calls()))
        self.outages.append(outage)
        return outage

    async def _graceful(
        self, outage: Outage, spread: float, close_delay: float, down_for: float, boot_time: float
    ) -> None:
        server = self.server
        calls = list(server.calls)
        offsets = sorted(server.rng.uniform(0.0, max(0.0, spread)) for _ in calls)
        server.rng.shuffle(calls)
        elapsed = 0.0
        for call, offset in zip(calls, offsets, strict=True):
            if offset > elapsed:
                await server.time.sleep(offset - elapsed)
                elapsed = offset
            call.request_shutdown()
        await asyncio.gather(*(call.finished.wait() for call in calls))
        outage.shutdown_sent_at = server.time.now()
        server.emit(server.shutdown_event(outage.restart))
        if close_delay > 0:
            await server.time.sleep(close_delay)
        await server._stop_listening()
        for session in list(server.sessions):
            session.close()
        await server._cancel_calls("shutdown")  # nothing left normally; belt and braces
        server.calls.clear()
        server.channels.clear()
        server.fully_booted = False
        self._mark_down(outage)
        if outage.restart:
            await self._back_after(outage, down_for, boot_time)

    async def _crash_now(self, outage: Outage) -> None:
        server = self.server
        await server._stop_listening()
        for session in list(server.sessions):
            session.abort()
        await server._cancel_calls("crash")
        server.calls.clear()
        server.channels.clear()
        server.fully_booted = False
        self._mark_down(outage)

    def _mark_down(self, outage: Outage) -> None:
        outage.down_at = self.server.time.now()
        outage.down.set()
        self.server._set_state(DOWN)

    async def _back_after(self, outage: Outage, down_for: float, boot_time: float) -> None:
        server = self.server
        if down_for > 0:
            await server.time.sleep(down_for)
        await server._boot(boot_time)
        outage.up_at = server.time.now()
        outage.up.set()
