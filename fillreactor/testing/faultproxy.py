"""A TCP fault proxy for tests: sits in front of one upstream and misbehaves on request.

Put it between a client (fillreactor's AMI link, aiomysql) and a server (the AMI simulator,
MariaDB): the client connects to ``proxy.address``, the proxy connects to the upstream, bytes flow
both ways until a test switches a fault on. The idea is asyncpg's test fuzzer
(``asyncpg/_testbase/fuzzer.py``); this is our own asyncio implementation, running in the test's
event loop.

Rules this module keeps:

* Loopback only: the proxy listens on ``127.0.0.1`` (an ephemeral port unless given) and only
  connects to the upstream it was given. Nothing here knows the protocol it carries; the payload
  helpers at the end build AMI frames, for the AMI fault tests.
* Bytes are never reordered, duplicated or lost, except by the faults that say so (a cut drops
  what was still buffered). Each direction is a pipe: a reader task moves what the source sends
  into a bounded buffer (``HIGH_WATER`` bytes; past it the proxy stops reading, so TCP pushes back
  on the sender), a writer task moves it on to the destination, applying the faults of that
  direction. An end of stream (FIN) or a reset travels through the pipe behind the data that came
  before it, so it is held, delayed and split like data.
* Faults act on every connection and on the connections accepted later, or on one connection
  when called on it (``proxy.connections[i]``) or given one (``connection=``):

  ==========================  =================================================================
  fault                       effect
  ==========================  =================================================================
  ``cut(mode="rst")``         both sockets closed with SO_LINGER 0: each peer gets a reset
  ``cut(mode="fin")``         both sockets closed cleanly: each peer reads end of stream
  ``cut_after(n)``            the same, once exactly ``n`` bytes went one way (byte-exact: the
                              piece that reaches ``n`` is shortened), e.g. inside a query
  ``silence()``/``resume()``  half-open: nothing is forwarded either way (not even a FIN or a
                              reset), the sockets stay open; on resume the held bytes flow on
  ``refuse()``/``accept()``   new connections refused (the listener closed: ECONNREFUSED), or
                              ``refuse(mode="reset")``: accepted and reset at once; existing
                              connections go on
  ``delay(s)``                every chunk is forwarded ``s`` seconds after it was read (latency,
                              pipelined: throughput is not cut)
  ``throttle(bytes_per_s)``   a slow reader: at most that many bytes per second go on, in small
                              writes; the proxy buffers one second's worth, then stops reading,
                              so the sender's socket fills and its writes back up
  ``split(offsets/max)``      every chunk is cut at the given offsets (or at seeded random
                              points, pieces of 1..``max_piece`` bytes), each piece its own write
  ``inject(data)``            bytes written into the stream (client-bound by default) at the
                              next chunk boundary, or right after the next ``after=`` marker
                              (``b"\\r\\n\\r\\n"``: between two AMI messages); a list of pieces
                              is written as separate writes
  ==========================  =================================================================

  ``delay``, ``throttle``, ``split``, ``cut_after`` and ``inject`` take ``direction``
  (``TO_CLIENT``, ``TO_UPSTREAM`` or ``BOTH``; ``delay`` and ``split`` default to both ways, the
  others to the client-bound stream); ``None`` switches one off, ``clear()`` switches all off.
* Separate writes reach the peer's socket separately; a reader that is slow to read may still
  get two of them in one ``recv`` (TCP keeps no write boundaries). ``piece_gap`` seconds between
  pieces (default 1 ms) makes that unlikely for a reader in the same event loop.
* Counted: connections accepted, established (upstream connected), refused, failed (upstream
  unreachable: the client is reset), closed; bytes read and written per direction, per
  connection and in total. Closed connections stay in ``connections`` with their counts.
* Awaitable, never sleep-based: ``wait_until(condition)`` (re-checked whenever a connection
  opens, closes or moves bytes), ``connection(i)`` (the i-th established connection, waiting for
  it), ``wait_connections(n)``, ``wait_bytes(direction, n)`` and, per connection,
  ``wait_closed()``; ``on_connection`` / ``on_close`` callbacks run synchronously when a
  connection is established (before its first byte moves: set its faults there) or closed.
  Every wait has a timeout (``DEFAULT_TIMEOUT``) and raises ``TimeoutError``
  naming what it waited for.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from types import TracebackType

TO_UPSTREAM = "to_upstream"
TO_CLIENT = "to_client"
BOTH = "both"
DIRECTIONS = (TO_UPSTREAM, TO_CLIENT)
Direction = str  # TO_UPSTREAM, TO_CLIENT or BOTH

CUT_RESET = "rst"
CUT_FIN = "fin"
REFUSE_CLOSED = "refused"  # the listener is closed: the kernel answers a SYN with a reset
REFUSE_RESET = "reset"  # accepted, then reset at once

READ_SIZE = 65536
HIGH_WATER = 1 << 22  # bytes buffered per direction before the proxy stops reading
DEFAULT_TIMEOUT = 10.0
DEFAULT_PIECE_GAP = 0.001
# a throttled direction writes at most this many times a second (so bytes/s stays smooth)
THROTTLE_WRITES_PER_SECOND = 50
_TAIL = 256  # bytes of forwarded stream remembered to find an ``after`` marker across chunks


class ProxyError(RuntimeError):
    """The proxy was used wrongly (not started, started twice, bad arguments)."""


def _directions(direction: Direction) -> tuple[str, ...]:
    if direction == BOTH:
        return DIRECTIONS
    if direction not in DIRECTIONS:
        raise ProxyError(f"direction must be {TO_UPSTREAM!r}, {TO_CLIENT!r} or {BOTH!r}, not {direction!r}")
    return (direction,)


@dataclass
class PipeFaults:
    """The switchable faults of one direction."""

    delay: float = 0.0
    rate: float | None = None  # bytes per second; None = unthrottled
    split_offsets: tuple[int, ...] = ()
    split_max_piece: int | None = None
    split_seed: int = 0
    piece_gap: float = DEFAULT_PIECE_GAP
    cut_after: int | None = None  # cut the connection once this many bytes went this way
    cut_mode: str = CUT_RESET

    def copy(self) -> PipeFaults:
        return replace(self)


@dataclass
class _Injection:
    pieces: list[bytes]
    after: bytes | None


@dataclass
class _End:
    """End of a direction's stream, queued behind its data: a FIN, or a reset (``error``)."""

    error: BaseException | None = None


@dataclass
class PipeCounters:
    bytes_read: int = 0  # from the source
    bytes_written: int = 0  # to the destination (forwarded + injected)
    bytes_injected: int = 0
    writes: int = 0
    eof: bool = False  # the source ended its stream (or reset)


def _check_cut_mode(mode: str) -> None:
    if mode not in (CUT_RESET, CUT_FIN):
        raise ProxyError(f"cut mode must be {CUT_RESET!r} or {CUT_FIN!r}, not {mode!r}")


def _set_reset_on_close(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def reset(writer: asyncio.StreamWriter) -> None:
    """Close a stream with a TCP reset (SO_LINGER 0), not a FIN (for tests that reset their own side)."""
    _set_reset_on_close(writer)
    writer.transport.abort()


class _Pipe:
    """One direction of one connection: reader task -> buffer -> writer task (faults applied)."""

    def __init__(
        self,
        connection: ProxyConnection,
        direction: str,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        faults: PipeFaults,
    ) -> None:
        self.connection = connection
        self.direction = direction
        # who sends into this pipe and who receives from it
        self.source, self.destination = (
            ("client", "upstream") if direction == TO_UPSTREAM else ("upstream", "client")
        )
        self.reader = reader
        self.writer = writer
        self.faults = faults
        self.counters = PipeCounters()
        self.buffer: deque[tuple[float, bytes] | _End] = deque()
        self.buffered = 0
        self.injections: deque[_Injection] = deque()
        self.tail = b""
        self.done = False
        self._wake = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._rng = random.Random(faults.split_seed)
        self._next_write_at = 0.0

    def wake(self) -> None:
        self._wake.set()

    def set_faults(self, faults: PipeFaults) -> None:
        old = self.faults
        if faults.split_seed != old.split_seed or faults.split_max_piece != old.split_max_piece:
            self._rng = random.Random(faults.split_seed)
        self.faults = faults
        if self.buffered < self.high_water():
            self._room.set()
        if faults.cut_after is not None and self.counters.bytes_written >= faults.cut_after:
            self.connection._close(f"cut-{faults.cut_mode}", rst=faults.cut_mode == CUT_RESET)
            return
        self.wake()

    # -- reading -----------------------------------------------------------------------------------
    async def read_loop(self) -> None:
        loop = asyncio.get_running_loop()
        end = _End()
        try:
            while True:
                await self._room.wait()
                data = await self.reader.read(READ_SIZE)
                if not data:
                    break
                self.counters.bytes_read += len(data)
                self.buffer.append((loop.time(), data))
                self.buffered += len(data)
                if self.buffered >= self.high_water():
                    self._room.clear()
                self.wake()
                self.connection.proxy._changed()
        except (ConnectionError, OSError) as error:
            end = _End(error)
        self.counters.eof = True
        if self.connection.first_end is None:
            self.connection.first_end = self.source
        self.buffer.append(end)
        self.wake()
        self.connection.proxy._changed()

    # -- writing -----------------------------------------------------------------------------------
    async def write_loop(self) -> None:
        connection = self.connection
        while not connection.closed:
            while not self._ready():
                self._wake.clear()
                await self._wake.wait()
            if self.injections and self._injection_due():
                await self._write_pieces(self.injections.popleft().pieces, injected=True)
                continue
            item = self.buffer.popleft()
            if isinstance(item, _End):
                self._finish(item)
                return
            read_at, data = item
            self.buffered -= len(data)
            if self.buffered < self.high_water():
                self._room.set()
            if self.faults.delay > 0:
                wait = read_at + self.faults.delay - asyncio.get_running_loop().time()
                if wait > 0:
                    await asyncio.sleep(wait)
                    if connection.silenced:  # silenced meanwhile: hold the chunk until resumed
                        self.buffer.appendleft((read_at, data))
                        self.buffered += len(data)
                        continue
            if self.injections and self.injections[0].after is not None:
                data = self._cut_at_marker(read_at, data, self.injections[0].after)
            await self._write_pieces(self._split(data), injected=False)

    def high_water(self) -> int:
        """Past this many buffered bytes the reader stops: one second's worth when throttled."""
        rate = self.faults.rate
        return HIGH_WATER if not rate else max(1024, int(rate))

    def _ready(self) -> bool:
        if self.connection.silenced:
            return False
        return bool(self.buffer) or (bool(self.injections) and self._injection_due())

    def _injection_due(self) -> bool:
        after = self.injections[0].after
        return after is None or self.tail.endswith(after)

    def _cut_at_marker(self, read_at: float, data: bytes, after: bytes) -> bytes:
        """Write only up to the end of the next ``after`` marker; the rest goes back in front."""
        joined = self.tail[-(len(after) - 1) :] + data if len(after) > 1 else data
        found = joined.find(after)
        if found < 0:
            return data
        cut = found + len(after) - (len(joined) - len(data))
        if cut < len(data):
            rest = data[cut:]
            self.buffer.appendleft((read_at, rest))
            self.buffered += len(rest)
            return data[:cut]
        return data

    def _split(self, data: bytes) -> list[bytes]:
        faults = self.faults
        cuts: list[int] = []
        if faults.split_offsets:
            cuts = sorted({o for o in faults.split_offsets if 0 < o < len(data)})
        elif faults.split_max_piece:
            position = 0
            while True:
                position += self._rng.randint(1, faults.split_max_piece)
                if position >= len(data):
                    break
                cuts.append(position)
        pieces = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
        if faults.rate:
            # a slow reader: small writes, each within the bytes of 1/THROTTLE_WRITES_PER_SECOND s
            size = max(1, int(faults.rate / THROTTLE_WRITES_PER_SECOND))
            pieces = [piece[i : i + size] for piece in pieces for i in range(0, len(piece), size)]
        return pieces

    async def _write_pieces(self, pieces: Sequence[bytes], *, injected: bool) -> None:
        loop = asyncio.get_running_loop()
        for index, piece in enumerate(pieces):
            if self.connection.closed:
                return
            limit, cut_now = self.faults.cut_after, False
            if limit is not None:
                room = limit - self.counters.bytes_written
                if len(piece) >= room:  # the byte-exact cut: this piece is the last, maybe shortened
                    piece, cut_now = piece[: max(room, 0)], True
            rate = self.faults.rate
            if index and not rate:
                # at least one loop iteration, so a peer in this loop reads each piece alone
                await asyncio.sleep(self.faults.piece_gap)
            if rate:
                wait = self._next_write_at - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                self._next_write_at = max(self._next_write_at, loop.time()) + len(piece) / rate
            if piece:
                self.writer.write(piece)
                self.counters.writes += 1
                self.counters.bytes_written += len(piece)
                if injected:
                    self.counters.bytes_injected += len(piece)
                self.tail = (self.tail + piece)[-_TAIL:]
                try:
                    await self.writer.drain()
                except (ConnectionError, OSError):
                    self.connection._peer_failed(self.destination)  # the destination went away
                    return
            if cut_now:
                self.connection._close(f"cut-{self.faults.cut_mode}", rst=self.faults.cut_mode == CUT_RESET)
                return
            self.connection.proxy._changed()

    def _finish(self, end: _End) -> None:
        self.done = True
        if end.error is not None:
            # the source reset: the destination gets a reset too, and the connection is over
            self.connection._peer_failed(self.source)
            return
        if self.writer.can_write_eof() and not self.writer.is_closing():
            with contextlib.suppress(OSError, RuntimeError):
                self.writer.write_eof()
        self.connection._pipe_done()


class ProxyConnection:
    """One client connection and its upstream connection."""

    def __init__(
        self,
        proxy: FaultProxy,
        index: int,
        client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        faults: dict[str, PipeFaults],
        silenced: bool,
    ) -> None:
        self.proxy = proxy
        self.index = index
        self.client_address: tuple[str, int] = client[1].get_extra_info("peername")
        self._client_writer = client[1]
        self._upstream_writer = upstream[1]
        self.silenced = silenced
        self.closed = False
        self.closed_by: str | None = None  # client / upstream / *-reset / cut-rst / cut-fin / stop
        self.first_end: str | None = None  # who ended its stream first (client or upstream)
        self.pipes: dict[str, _Pipe] = {
            TO_UPSTREAM: _Pipe(self, TO_UPSTREAM, client[0], upstream[1], faults[TO_UPSTREAM]),
            TO_CLIENT: _Pipe(self, TO_CLIENT, upstream[0], client[1], faults[TO_CLIENT]),
        }
        self._closed_event = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def _start(self) -> None:
        for pipe in self.pipes.values():
            self._tasks.append(asyncio.create_task(pipe.read_loop()))
            self._tasks.append(asyncio.create_task(pipe.write_loop()))

    def __repr__(self) -> str:
        state = f"closed by {self.closed_by}" if self.closed else ("silenced" if self.silenced else "open")
        return (
            f"<ProxyConnection #{self.index} {state} up={self.bytes_written(TO_UPSTREAM)}"
            f" down={self.bytes_written(TO_CLIENT)}>"
        )

    # -- counts ------------------------------------------------------------------------------------
    def bytes_written(self, direction: str) -> int:
        """Bytes written on in ``direction`` (forwarded and injected)."""
        return self.pipes[direction].counters.bytes_written

    def bytes_read(self, direction: str) -> int:
        """Bytes the proxy read from the source of ``direction`` (forwarded or not yet)."""
        return self.pipes[direction].counters.bytes_read

    def held(self, direction: str) -> int:
        """Bytes read from the source and not yet forwarded (held by silence, delay or throttle)."""
        return self.pipes[direction].buffered

    def counters(self, direction: str) -> PipeCounters:
        return self.pipes[direction].counters

    # -- faults --------------------------------------------------------------------------------------
    def cut(self, mode: str = CUT_RESET) -> None:
        """Close both sides now: ``rst`` resets each peer, ``fin`` closes each cleanly."""
        _check_cut_mode(mode)
        self._close(f"cut-{mode}", rst=mode == CUT_RESET)

    def silence(self) -> None:
        self.silenced = True

    def resume(self) -> None:
        self.silenced = False
        for pipe in self.pipes.values():
            pipe.wake()

    def set_faults(self, direction: str, faults: PipeFaults) -> None:
        self.pipes[direction].set_faults(faults)

    def inject(
        self,
        data: bytes | Iterable[bytes],
        *,
        direction: Direction = TO_CLIENT,
        after: bytes | None = None,
    ) -> None:
        """Write ``data`` (one write, or each piece of a list as its own write) into the stream."""
        pieces = [data] if isinstance(data, bytes | bytearray) else [bytes(p) for p in data]
        for name in _directions(direction):
            pipe = self.pipes[name]
            pipe.injections.append(_Injection([bytes(p) for p in pieces], after or None))
            pipe.wake()

    # -- waiting -------------------------------------------------------------------------------------
    async def wait_closed(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        try:
            async with asyncio.timeout(timeout):
                await self._closed_event.wait()
        except TimeoutError:
            raise TimeoutError(f"proxy connection #{self.index} still open after {timeout} s") from None

    # -- ending --------------------------------------------------------------------------------------
    def _pipe_done(self) -> None:
        if all(pipe.done for pipe in self.pipes.values()):
            # both ends sent FIN and it went through: a clean close, whoever started it
            self._close(self.first_end or "client", rst=False)

    def _peer_failed(self, who: str) -> None:
        """``who`` (client or upstream) reset its side, or could not be written to: reset both."""
        self._close(f"{who}-reset", rst=True)

    def _close(self, reason: str, *, rst: bool) -> None:
        if self.closed:
            return
        self.closed = True
        self.closed_by = reason
        current = asyncio.current_task()
        for task in self._tasks:
            if task is not current and not task.done():
                task.cancel()
        for writer in (self._client_writer, self._upstream_writer):
            if rst:
                reset(writer)
            else:
                writer.close()
        self._closed_event.set()
        self.proxy._connection_closed(self)


@dataclass
class ProxyStats:
    accepted: int = 0  # TCP connections accepted from clients
    established: int = 0  # ... whose upstream connection succeeded
    refused: int = 0  # reset at once while refusing (mode "reset")
    failed: int = 0  # upstream unreachable: the client was reset
    closed: int = 0
    listening: bool = False
    closed_reasons: dict[str, int] = field(default_factory=dict)


class FaultProxy:
    """A fault-injecting TCP proxy in front of ``upstream`` (host, port). Use ``async with``."""

    def __init__(
        self,
        upstream: tuple[str, int],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        connect_timeout: float = 5.0,
    ) -> None:
        self.upstream = upstream
        self.host = host
        self.port = port
        self.connect_timeout = connect_timeout
        self.connections: list[ProxyConnection] = []
        self.stats = ProxyStats()
        self._faults: dict[str, PipeFaults] = {d: PipeFaults() for d in DIRECTIONS}
        self._silenced = False
        self._refusing: str | None = None
        self._stopped = False
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._waiters: list[asyncio.Future[None]] = []
        self.on_connection: Callable[[ProxyConnection], object] | None = None
        self.on_close: Callable[[ProxyConnection], object] | None = None

    # -- lifecycle -----------------------------------------------------------------------------------
    @property
    def address(self) -> tuple[str, int]:
        if not self.port:
            raise ProxyError("the proxy is not started")
        return self.host, self.port

    async def start(self) -> FaultProxy:
        if self._server is not None:
            raise ProxyError("the proxy is already listening")
        self._stopped = False
        await self._listen()
        return self

    async def stop(self) -> None:
        """Stop listening and reset every open connection."""
        self._stopped = True
        await self._stop_listening()
        for connection in list(self.connections):
            if not connection.closed:
                connection._close("stop", rst=True)
        tasks = [t for c in self.connections for t in c._tasks] + list(self._handlers)
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def __aenter__(self) -> FaultProxy:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._accept, self.host, self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]
        self.stats.listening = True
        self._changed()

    async def _stop_listening(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            # not wait_closed(): from 3.12 it also waits for the accepted connections to end
        self.stats.listening = False
        self._changed()

    # -- the connections -----------------------------------------------------------------------------
    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.stats.accepted += 1
        if self._refusing == REFUSE_RESET:
            self.stats.refused += 1
            reset(writer)
            self._changed()
            return
        task = asyncio.create_task(self._connect_upstream(reader, writer))
        self._handlers.add(task)
        task.add_done_callback(self._handlers.discard)

    async def _connect_upstream(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(self.connect_timeout):
                upstream = await asyncio.open_connection(*self.upstream)
        except (OSError, TimeoutError):
            self.stats.failed += 1
            reset(writer)  # as if the server were not there: the client sees a reset
            self._changed()
            return
        if self._stopped:  # stopped while connecting
            reset(writer)
            reset(upstream[1])
            return
        connection = ProxyConnection(
            self,
            len(self.connections),
            (reader, writer),
            upstream,
            {d: f.copy() for d, f in self._faults.items()},
            self._silenced,
        )
        self.connections.append(connection)
        self.stats.established += 1
        if self.on_connection is not None:
            self.on_connection(connection)  # before the first byte moves
        if not connection.closed:
            connection._start()
        self._changed()

    def _connection_closed(self, connection: ProxyConnection) -> None:
        self.stats.closed += 1
        reason = connection.closed_by or "?"
        self.stats.closed_reasons[reason] = self.stats.closed_reasons.get(reason, 0) + 1
        if self.on_close is not None:
            self.on_close(connection)
        self._changed()

    @property
    def active(self) -> list[ProxyConnection]:
        return [c for c in self.connections if not c.closed]

    def total_bytes(self, direction: str) -> int:
        """Bytes written on in ``direction`` over every connection, open or closed."""
        return sum(c.bytes_written(direction) for c in self.connections)

    def _targets(self, connection: ProxyConnection | None) -> list[ProxyConnection]:
        return [connection] if connection is not None else self.active

    # -- faults --------------------------------------------------------------------------------------
    def cut(self, mode: str = CUT_RESET, *, connection: ProxyConnection | None = None) -> int:
        """Cut every open connection (or one); the number cut. The proxy keeps listening."""
        _check_cut_mode(mode)
        targets = [c for c in self._targets(connection) if not c.closed]
        for target in targets:
            target.cut(mode)
        return len(targets)

    def silence(self, *, connection: ProxyConnection | None = None) -> None:
        """Half-open: forward nothing either way; new connections are silent too (unless one given)."""
        if connection is None:
            self._silenced = True
        for target in self._targets(connection):
            target.silence()

    def resume(self, *, connection: ProxyConnection | None = None) -> None:
        if connection is None:
            self._silenced = False
        for target in self._targets(connection):
            target.resume()

    async def refuse(self, mode: str = REFUSE_CLOSED) -> None:
        """Refuse new connections until ``accept()``: listener closed, or accept-and-reset."""
        if mode not in (REFUSE_CLOSED, REFUSE_RESET):
            raise ProxyError(f"refuse mode must be {REFUSE_CLOSED!r} or {REFUSE_RESET!r}, not {mode!r}")
        self._refusing = mode
        if mode == REFUSE_CLOSED:
            await self._stop_listening()
        elif self._server is None:
            await self._listen()

    async def accept(self) -> None:
        """Accept new connections again, on the same port."""
        self._refusing = None
        if self._server is None:
            await self._listen()

    def _set(self, direction: Direction, connection: ProxyConnection | None, **changes: object) -> None:
        for name in _directions(direction):
            if connection is None:
                faults = self._faults[name]
                for key, value in changes.items():
                    setattr(faults, key, value)
            for target in self._targets(connection):
                faults = target.pipes[name].faults.copy()
                for key, value in changes.items():
                    setattr(faults, key, value)
                target.set_faults(name, faults)

    def delay(
        self, seconds: float | None, *, direction: Direction = BOTH, connection: ProxyConnection | None = None
    ) -> None:
        """Forward every chunk ``seconds`` after it was read (None or 0: no delay)."""
        if seconds is not None and seconds < 0:
            raise ProxyError("a delay cannot be negative")
        self._set(direction, connection, delay=seconds or 0.0)

    def throttle(
        self,
        bytes_per_second: float | None,
        *,
        direction: Direction = TO_CLIENT,
        connection: ProxyConnection | None = None,
    ) -> None:
        """A slow reader: forward at most ``bytes_per_second`` (None: unthrottled)."""
        if bytes_per_second is not None and bytes_per_second <= 0:
            raise ProxyError("a throttle needs a positive rate")
        self._set(direction, connection, rate=bytes_per_second)

    def split(
        self,
        offsets: Sequence[int] = (),
        *,
        max_piece: int | None = None,
        seed: int = 0,
        gap: float = DEFAULT_PIECE_GAP,
        direction: Direction = BOTH,
        connection: ProxyConnection | None = None,
    ) -> None:
        """Cut every forwarded chunk at ``offsets``, or into seeded random pieces of 1..max_piece."""
        if offsets and max_piece:
            raise ProxyError("give offsets or max_piece, not both")
        if max_piece is not None and max_piece < 1:
            raise ProxyError("max_piece must be at least 1")
        self._set(
            direction,
            connection,
            split_offsets=tuple(offsets),
            split_max_piece=max_piece,
            split_seed=seed,
            piece_gap=gap,
        )

    def cut_after(
        self,
        count: int | None,
        *,
        mode: str = CUT_RESET,
        direction: Direction = TO_CLIENT,
        connection: ProxyConnection | None = None,
    ) -> None:
        """Cut each connection (or one) once exactly ``count`` bytes went ``direction`` (None: off).

        The count is per connection and includes what went before the call; the piece that
        reaches it is shortened to end exactly there. Deterministic, unlike awaiting bytes and
        then calling ``cut`` (more may pass meanwhile).
        """
        _check_cut_mode(mode)
        if count is not None and count < 0:
            raise ProxyError("cut_after needs a byte count of 0 or more")
        self._set(direction, connection, cut_after=count, cut_mode=mode)

    def clear(self, *, connection: ProxyConnection | None = None) -> None:
        """Every delay, throttle and split off (and resume); refusing is left as it is."""
        self._set(BOTH, connection, **vars(PipeFaults()))
        self.resume(connection=connection)

    def inject(
        self,
        data: bytes | Iterable[bytes],
        *,
        direction: Direction = TO_CLIENT,
        after: bytes | None = None,
        connection: ProxyConnection | None = None,
    ) -> int:
        """Inject into every open connection (or one); the number of connections injected into."""
        pieces = [data] if isinstance(data, bytes | bytearray) else list(data)
        targets = [c for c in self._targets(connection) if not c.closed]
        for target in targets:
            target.inject(pieces, direction=direction, after=after)
        return len(targets)

    # -- waiting -------------------------------------------------------------------------------------
    def _changed(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def wait_until(
        self, condition: Callable[[], bool], *, timeout: float = DEFAULT_TIMEOUT, what: str = "condition"
    ) -> None:
        """Return once ``condition()`` holds (re-checked on every connection or byte change)."""
        try:
            async with asyncio.timeout(timeout):
                while not condition():
                    waiter = asyncio.get_running_loop().create_future()
                    self._waiters.append(waiter)
                    await waiter
        except TimeoutError:
            raise TimeoutError(f"fault proxy: {what} not reached within {timeout} s ({self.stats})") from None

    async def wait_connections(self, count: int, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Return once ``count`` connections have been established in all."""
        await self.wait_until(
            lambda: len(self.connections) >= count, timeout=timeout, what=f"{count} connections"
        )

    async def connection(self, index: int = -1, *, timeout: float = DEFAULT_TIMEOUT) -> ProxyConnection:
        """The ``index``-th established connection (waiting for it); -1: the latest, at least one."""
        needed = 1 if index < 0 else index + 1
        await self.wait_connections(needed, timeout=timeout)
        return self.connections[index]

    async def wait_bytes(
        self,
        direction: str,
        count: int,
        *,
        connection: ProxyConnection | None = None,
        read: bool = False,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        """Return once ``count`` bytes went on in ``direction`` (``read=True``: reached the proxy)."""

        def moved() -> bool:
            conns = [connection] if connection is not None else self.connections
            if read:
                return sum(c.bytes_read(direction) for c in conns) >= count
            return sum(c.bytes_written(direction) for c in conns) >= count

        await self.wait_until(moved, timeout=timeout, what=f"{count} bytes {direction}")


# -- payloads for the AMI fault tests -------------------------------------------------------------
AMI_END = b"\r\n\r\n"


def garbage(size: int = 256, *, seed: int = 0) -> bytes:
    """A junk AMI frame: about ``size`` seeded random bytes in CRLF lines, none empty, then a blank line.

    Any byte but CR and LF appears (NUL, 0xFF, broken UTF-8, lines without a colon); no blank line
    inside, so a framer sees exactly one frame and the stream after it is untouched.
    """
    rng = random.Random(seed)
    alphabet = bytes(b for b in range(256) if b not in b"\r\n")
    lines: list[bytes] = []
    total = 0
    while total < size:
        line = bytes(rng.choice(alphabet) for _ in range(min(rng.randint(1, 40), max(1, size - total))))
        lines.append(line)
        total += len(line) + 2
    return b"\r\n".join(lines) + AMI_END


def oversized_frame(size: int, *, event: str = "Junk") -> bytes:
    """One AMI frame of exactly ``size`` bytes (terminator included): ``Event:`` then one long value."""
    head = f"Event: {event}\r\nData: ".encode()
    filler = size - len(head) - len(AMI_END)
    if filler < 0:
        raise ProxyError(f"an oversized frame needs at least {len(head) + len(AMI_END)} bytes")
    return head + b"x" * filler + AMI_END


def split_inside_character(data: bytes) -> list[bytes]:
    """``data`` in two pieces cut inside its first multi-byte UTF-8 character."""
    for index, byte in enumerate(data):
        if byte >= 0xC0:  # a lead byte: cut right after it
            return [data[: index + 1], data[index + 1 :]]
    raise ProxyError("no multi-byte UTF-8 character to split")
