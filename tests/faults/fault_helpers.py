"""Helpers of the fault tests: a TCP echo/sink server that records what it saw, a raw AMI client
and an event recorder for ``FastAMIProtocol``. Imported by name (fixtures live in conftest.py).

Every wait here has a timeout and re-checks its condition when something happened; none sleeps.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from fillreactor.core.events import Event
from fillreactor.core.message import AmiFramer, AmiMessage, encode_message

WAIT = 5.0  # seconds any single wait of these tests may take before it fails


class Waitable:
    """``wait_until(condition)``: re-checked whenever ``changed()`` is called."""

    def __init__(self) -> None:
        self._waiters: list[asyncio.Future[None]] = []

    def changed(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def wait_until(self, condition: Callable[[], bool], timeout: float = WAIT) -> None:
        async with asyncio.timeout(timeout):
            while not condition():
                waiter = asyncio.get_running_loop().create_future()
                self._waiters.append(waiter)
                await waiter


@dataclass(eq=False)
class ServerSide:
    """One connection as the upstream server saw it."""

    writer: asyncio.StreamWriter
    received: bytearray = field(default_factory=bytearray)
    ended: str | None = None  # "eof" (a FIN) or "reset"


class EchoServer(Waitable):
    """A TCP server on 127.0.0.1 that echoes (``sink=True``: only counts) what it receives."""

    def __init__(self, *, sink: bool = False) -> None:
        super().__init__()
        self.sink = sink
        self.connections: list[ServerSide] = []
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> EchoServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        for side in self.connections:
            side.writer.transport.abort()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    @property
    def address(self) -> tuple[str, int]:
        assert self._server is not None
        host, port = self._server.sockets[0].getsockname()[:2]
        return host, port

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        side = ServerSide(writer)
        self.connections.append(side)
        self.changed()
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    side.ended = "eof"
                    break
                side.received += data
                if not self.sink:
                    writer.write(data)
                    await writer.drain()
                self.changed()
        except ConnectionResetError:
            side.ended = "reset"
        except OSError:
            side.ended = "reset"
        finally:
            self.changed()
            writer.close()
            self._tasks.discard(task)


async def read_exactly(reader: asyncio.StreamReader, count: int, timeout: float = WAIT) -> bytes:
    async with asyncio.timeout(timeout):
        return await reader.readexactly(count)


class ChunkClient(asyncio.Protocol, Waitable):
    """A raw asyncio client that keeps every ``data_received`` chunk and how the connection ended."""

    def __init__(self) -> None:
        Waitable.__init__(self)
        self.chunks: list[bytes] = []
        self.lost: BaseException | None = None
        self.closed = False
        self.eof = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.chunks.append(data)
        self.changed()

    def eof_received(self) -> bool:
        self.eof = True
        self.changed()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = exc
        self.closed = True
        self.changed()

    @property
    def data(self) -> bytes:
        return b"".join(self.chunks)


class RawAmiClient:
    """A minimal AMI client over asyncio streams, reading whole messages with ``AmiFramer``."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.framer = AmiFramer()
        self.pending: list[AmiMessage] = []

    @classmethod
    async def connect(cls, address: tuple[str, int]) -> RawAmiClient:
        reader, writer = await asyncio.open_connection(*address)
        return cls(reader, writer)

    def send(self, *pairs: tuple[str, str]) -> None:
        self.writer.write(encode_message(pairs))

    async def read(self, timeout: float = WAIT) -> AmiMessage:
        """The next message; EOFError when the peer closed, ConnectionResetError on a reset."""
        async with asyncio.timeout(timeout):
            while not self.pending:
                data = await self.reader.read(65536)
                if not data:
                    raise EOFError
                self.pending.extend(AmiMessage.from_bytes(frame) for frame in self.framer.feed(data))
        return self.pending.pop(0)

    async def read_until(self, predicate: Callable[[AmiMessage], bool]) -> list[AmiMessage]:
        seen: list[AmiMessage] = []
        while True:
            message = await self.read()
            seen.append(message)
            if predicate(message):
                return seen

    async def action(self, *pairs: tuple[str, str]) -> AmiMessage:
        action_id = dict(pairs)["ActionID"]
        self.send(*pairs)
        messages = await self.read_until(lambda m: bool(m.response) and m.action_id == action_id)
        return messages[-1]

    async def login(self, events: str = "on") -> AmiMessage:
        return await self.action(
            ("Action", "Login"),
            ("ActionID", "login"),
            ("Username", "cron"),
            ("Secret", "1234"),
            ("Events", events),
        )

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except (ConnectionError, OSError):
            pass


class EventRecorder(Waitable):
    """The sink of a ``FastAMIProtocol``: keeps the typed events, wakes waiters."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[Event] = []
        self.lost = False

    def __call__(self, event: Event) -> None:
        self.events.append(event)
        self.changed()

    def on_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.changed()
