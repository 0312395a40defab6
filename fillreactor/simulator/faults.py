"""Fault injection: the ways a real Asterisk or the network misbehaves, switchable from tests.

Rules this module keeps:

* Every fault acts on all sessions, or on one session when given; server-wide switches (silent,
  slow read) also apply to sessions that connect while they are on.
* ``drop`` aborts the TCP connection (RST, no Goodbye); the server keeps listening.
* ``go_silent`` keeps sockets open but stops reading, answering and sending events (a half-open
  peer); events emitted meanwhile are lost for that session, as they would be. ``resume`` undoes it.
* ``slow_read`` makes the server read at most ``chunk`` bytes per ``delay`` simulated seconds.
* ``send_garbage`` writes raw bytes; ``send_oversized`` writes one frame of ``size`` bytes with no
  blank line until its end, to test a client's frame limit.
* ``restart`` is the server's own restart (counters and channels reset, same port).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fillreactor.simulator.server import AmiSession, SimulatedAsterisk

DEFAULT_GARBAGE = b"\x00\xff garbage without a colon\r\n\x1b[2J\r\nnot: \xc3\x28 broken utf8\r\n\r\n"


class FaultInjector:
    def __init__(self, server: SimulatedAsterisk) -> None:
        self.server = server
        self.silent = False
        self.slow_read: tuple[int, float] | None = None
        self.drops = 0

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
        self.silent = False
        self.slow_read = None
        await self.server.restart()
