"""The fault proxy against a plain echo server: every fault, as the client and the server see it.

Expected values are the bytes the test itself sent and the TCP facts each fault is defined by (a
reset raises ConnectionResetError on read, a FIN reads as end of stream, a closed listener refuses).
"""

from __future__ import annotations

import asyncio
import math
import random

import pytest
from fault_helpers import WAIT, ChunkClient, EchoServer, read_exactly

from fillreactor.testing.faultproxy import (
    AMI_END,
    BOTH,
    CUT_FIN,
    REFUSE_RESET,
    TO_CLIENT,
    TO_UPSTREAM,
    FaultProxy,
    ProxyConnection,
    ProxyError,
    garbage,
    oversized_frame,
    reset,
    split_inside_character,
)


async def open_client(proxy: FaultProxy) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(*proxy.address)


async def open_chunk_client(proxy: FaultProxy) -> ChunkClient:
    loop = asyncio.get_running_loop()
    _, client = await loop.create_connection(ChunkClient, *proxy.address)
    return client


async def test_bytes_pass_both_ways_and_are_counted(proxy: FaultProxy, echo: EchoServer) -> None:
    reader, writer = await open_client(proxy)
    writer.write(b"hello proxy")
    assert await read_exactly(reader, 11) == b"hello proxy"
    connection = await proxy.connection(0)
    assert connection.bytes_written(TO_UPSTREAM) == 11 and connection.bytes_written(TO_CLIENT) == 11
    assert proxy.total_bytes(TO_UPSTREAM) == 11 and proxy.total_bytes(TO_CLIENT) == 11
    assert proxy.stats.accepted == 1 and proxy.stats.established == 1 and proxy.active == [connection]
    assert bytes(echo.connections[0].received) == b"hello proxy"
    writer.close()  # the client's FIN goes to the server, whose FIN comes back: a clean close
    await connection.wait_closed()
    assert connection.closed_by == "client" and echo.connections[0].ended == "eof"
    assert proxy.stats.closed == 1 and proxy.active == []


async def test_a_large_random_stream_survives_split_and_delay_unchanged(proxy: FaultProxy) -> None:
    payload = random.Random(7).randbytes(300_000)
    proxy.split(max_piece=997, seed=3, gap=0)
    proxy.delay(0.005)
    reader, writer = await open_client(proxy)
    writer.write(payload)
    assert await read_exactly(reader, len(payload)) == payload  # nothing lost, reordered or doubled
    connection = await proxy.connection(0)
    for direction in (TO_UPSTREAM, TO_CLIENT):
        # every chunk was cut into pieces of at most 997 bytes, each its own write
        assert connection.counters(direction).writes >= math.ceil(len(payload) / 997)
    writer.close()


async def test_cut_with_rst_resets_both_peers(proxy: FaultProxy, echo: EchoServer) -> None:
    reader, writer = await open_client(proxy)
    writer.write(b"ping")
    await read_exactly(reader, 4)
    assert proxy.cut() == 1
    with pytest.raises(ConnectionResetError):
        async with asyncio.timeout(WAIT):
            await reader.read(100)
    await echo.wait_until(lambda: echo.connections[0].ended is not None)
    assert echo.connections[0].ended == "reset"
    assert proxy.connections[0].closed_by == "cut-rst"
    # the proxy keeps listening: the next connection works
    reader, writer = await open_client(proxy)
    writer.write(b"again")
    assert await read_exactly(reader, 5) == b"again"
    assert proxy.stats.established == 2
    writer.close()


async def test_cut_with_fin_closes_both_peers_cleanly(proxy: FaultProxy, echo: EchoServer) -> None:
    reader, writer = await open_client(proxy)
    writer.write(b"ping")
    await read_exactly(reader, 4)
    proxy.cut(CUT_FIN)
    async with asyncio.timeout(WAIT):
        assert await reader.read(100) == b""  # end of stream, no error
    await echo.wait_until(lambda: echo.connections[0].ended is not None)
    assert echo.connections[0].ended == "eof" and proxy.connections[0].closed_by == "cut-fin"
    writer.close()


async def test_cut_after_an_exact_byte_count(proxy: FaultProxy) -> None:
    proxy.cut_after(5)  # client-bound: the echo of "hello world" stops after "hello"
    client = await open_chunk_client(proxy)
    assert client.transport is not None
    client.transport.write(b"hello world")
    await client.wait_until(lambda: client.closed)
    assert client.data == b"hello" and isinstance(client.lost, ConnectionResetError)
    assert proxy.connections[0].closed_by == "cut-rst"


async def test_cut_after_with_fin_and_upstream_bound(proxy: FaultProxy, echo: EchoServer) -> None:
    proxy.cut_after(3, mode=CUT_FIN, direction=TO_UPSTREAM)
    client = await open_chunk_client(proxy)
    assert client.transport is not None
    client.transport.write(b"abcdef")
    await client.wait_until(lambda: client.closed)
    assert client.eof and client.lost is None  # a clean end of stream
    await echo.wait_until(lambda: echo.connections[0].ended is not None)
    assert bytes(echo.connections[0].received) == b"abc" and echo.connections[0].ended == "eof"


async def test_on_connection_sets_faults_before_the_first_byte(proxy: FaultProxy) -> None:
    """The hook runs when a connection is established: here the second one is cut at its start."""
    seen: list[int] = []
    closed: list[str | None] = []

    def established(connection: ProxyConnection) -> None:
        seen.append(connection.index)
        if connection.index == 1:
            connection.cut()

    proxy.on_connection = established
    proxy.on_close = lambda connection: closed.append(connection.closed_by)
    first_reader, first = await open_client(proxy)
    await proxy.connection(0)
    second_reader, _second = await open_client(proxy)
    with pytest.raises(ConnectionResetError):
        async with asyncio.timeout(WAIT):
            await second_reader.read(100)
    first.write(b"fine")
    assert await read_exactly(first_reader, 4) == b"fine"
    assert seen == [0, 1] and closed == ["cut-rst"]
    assert proxy.connections[1].bytes_written(TO_CLIENT) == 0
    first.close()


async def test_cut_one_connection_leaves_the_other(proxy: FaultProxy) -> None:
    first_reader, _first = await open_client(proxy)
    second_reader, second = await open_client(proxy)
    await proxy.wait_connections(2)
    proxy.connections[0].cut()
    with pytest.raises(ConnectionResetError):
        async with asyncio.timeout(WAIT):
            await first_reader.read(100)
    second.write(b"still here")
    assert await read_exactly(second_reader, 10) == b"still here"
    second.close()


async def test_silence_holds_bytes_both_ways_until_resumed(proxy: FaultProxy, echo: EchoServer) -> None:
    reader, writer = await open_client(proxy)
    connection = await proxy.connection(0)
    proxy.silence()
    writer.write(b"are you there?")
    await proxy.wait_bytes(TO_UPSTREAM, 14, read=True)  # it reached the proxy ...
    assert connection.held(TO_UPSTREAM) == 14 and connection.bytes_written(TO_UPSTREAM) == 0
    assert bytes(echo.connections[0].received) == b""  # ... and went no further
    assert not connection.closed and echo.connections[0].ended is None  # both sockets still open
    proxy.resume()
    assert await read_exactly(reader, 14) == b"are you there?"
    writer.close()


async def test_silence_hides_the_clients_close_from_the_server(proxy: FaultProxy, echo: EchoServer) -> None:
    """A half-open connection: the client gives up, the server never hears of it until resumed."""
    _reader, writer = await open_client(proxy)
    connection = await proxy.connection(0)
    await echo.wait_until(lambda: len(echo.connections) == 1)
    proxy.silence(connection=connection)
    reset(writer)  # the client resets its side
    await proxy.wait_until(lambda: connection.counters(TO_UPSTREAM).eof, what="the client's reset")
    assert echo.connections[0].ended is None and not connection.closed
    proxy.resume(connection=connection)
    await connection.wait_closed()
    await echo.wait_until(lambda: echo.connections[0].ended is not None)
    assert echo.connections[0].ended == "reset" and connection.closed_by == "client-reset"


async def test_silence_of_one_connection_and_of_new_ones(proxy: FaultProxy) -> None:
    quiet_reader, quiet = await open_client(proxy)
    loud_reader, loud = await open_client(proxy)
    await proxy.wait_connections(2)
    proxy.silence(connection=proxy.connections[0])
    quiet.write(b"q")
    loud.write(b"l")
    assert await read_exactly(loud_reader, 1) == b"l"
    await proxy.wait_bytes(TO_UPSTREAM, 1, read=True, connection=proxy.connections[0])
    assert proxy.connections[0].bytes_written(TO_UPSTREAM) == 0
    # silence for all: a connection made meanwhile is silent too
    proxy.silence()
    late_reader, late = await open_client(proxy)
    late_connection = await proxy.connection(2)
    late.write(b"z")
    await proxy.wait_bytes(TO_UPSTREAM, 1, read=True, connection=late_connection)
    assert late_connection.silenced and late_connection.bytes_written(TO_UPSTREAM) == 0
    proxy.resume()
    assert await read_exactly(quiet_reader, 1) == b"q"
    assert await read_exactly(late_reader, 1) == b"z"
    for writer in (quiet, loud, late):
        writer.close()


async def test_refuse_then_accept_again_on_the_same_port(proxy: FaultProxy) -> None:
    port = proxy.address[1]
    reader, writer = await open_client(proxy)  # an existing connection is not affected
    await proxy.refuse()
    with pytest.raises(ConnectionRefusedError):
        await open_client(proxy)
    assert not proxy.stats.listening
    writer.write(b"old")
    assert await read_exactly(reader, 3) == b"old"
    await proxy.accept()
    assert proxy.address[1] == port
    new_reader, new_writer = await open_client(proxy)
    new_writer.write(b"new")
    assert await read_exactly(new_reader, 3) == b"new"
    assert proxy.stats.established == 2
    writer.close()
    new_writer.close()


async def test_refuse_by_reset_accepts_and_resets(proxy: FaultProxy) -> None:
    await proxy.refuse(REFUSE_RESET)
    reader, writer = await open_client(proxy)  # the handshake succeeds ...
    with pytest.raises(ConnectionResetError):  # ... and the connection is reset at once
        async with asyncio.timeout(WAIT):
            await reader.read(100)
    assert proxy.stats.refused == 1 and proxy.stats.established == 0
    await proxy.accept()
    reader, writer = await open_client(proxy)
    writer.write(b"ok")
    assert await read_exactly(reader, 2) == b"ok"
    writer.close()


async def test_an_unreachable_upstream_resets_the_client() -> None:
    async with EchoServer() as gone:
        address = gone.address
    async with FaultProxy(address) as proxy:  # nothing listens there any more
        reader, _writer = await open_client(proxy)
        with pytest.raises(ConnectionResetError):
            async with asyncio.timeout(WAIT):
                await reader.read(100)
        await proxy.wait_until(lambda: proxy.stats.failed == 1, what="the failed upstream connect")
        assert proxy.connections == [] and proxy.stats.established == 0


async def test_delay_adds_latency_each_way(proxy: FaultProxy) -> None:
    proxy.delay(0.05)  # 50 ms each way: an echo takes at least 100 ms
    reader, writer = await open_client(proxy)
    loop = asyncio.get_running_loop()
    began = loop.time()
    writer.write(b"x")
    await read_exactly(reader, 1)
    assert loop.time() - began >= 0.1
    proxy.delay(None)
    writer.close()


async def test_delay_only_one_way(proxy: FaultProxy) -> None:
    proxy.delay(0.05, direction=TO_UPSTREAM)
    connection_faults = []
    reader, writer = await open_client(proxy)
    connection = await proxy.connection(0)
    connection_faults = [connection.pipes[d].faults.delay for d in (TO_UPSTREAM, TO_CLIENT)]
    assert connection_faults == [0.05, 0.0]
    loop = asyncio.get_running_loop()
    began = loop.time()
    writer.write(b"x")
    await read_exactly(reader, 1)
    assert loop.time() - began >= 0.05
    writer.close()


async def test_throttle_is_a_slow_reader() -> None:
    """The server side reads at 20 kB/s: 10 kB take at least ~0.45 s, in writes of <= 400 bytes."""
    async with EchoServer(sink=True) as sink, FaultProxy(sink.address) as proxy:
        proxy.throttle(20_000, direction=TO_UPSTREAM)
        _reader, writer = await open_client(proxy)
        connection = await proxy.connection(0)
        loop = asyncio.get_running_loop()
        began = loop.time()
        writer.write(b"y" * 10_000)
        await sink.wait_until(lambda: len(sink.connections[0].received) == 10_000)
        # 25 writes of 400 bytes (20 000 / 50 per second), 24 waits of 20 ms between them
        assert loop.time() - began >= 0.45
        assert connection.counters(TO_UPSTREAM).writes == 25
        writer.close()


async def test_throttle_pushes_back_on_the_sender() -> None:
    """A throttled reader stops reading: the sender's writes back up instead of piling in the proxy."""
    async with EchoServer(sink=True) as sink, FaultProxy(sink.address) as proxy:
        proxy.throttle(1_000, direction=TO_UPSTREAM)
        _reader, writer = await open_client(proxy)
        connection = await proxy.connection(0)
        payload = b"z" * (32 << 20)  # far more than the kernel's socket buffers hold
        writer.write(payload)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.5):
                await writer.drain()  # unthrottled this takes a few ms; throttled it cannot finish
        assert writer.transport.get_write_buffer_size() > 0
        # the proxy holds at most one second's worth (1 000 bytes) plus what one read brought
        assert connection.held(TO_UPSTREAM) <= 1_000 + 65_536
        assert connection.bytes_read(TO_UPSTREAM) < len(payload) // 2
        writer.transport.abort()


async def test_split_at_offsets_makes_separate_writes(proxy: FaultProxy) -> None:
    client = await open_chunk_client(proxy)
    connection = await proxy.connection(0)
    proxy.split([2, 5], direction=TO_CLIENT)
    assert client.transport is not None
    client.transport.write(b"abcdefgh")
    await client.wait_until(lambda: client.data == b"abcdefgh")
    assert connection.counters(TO_CLIENT).writes == 3
    assert client.chunks == [b"ab", b"cde", b"fgh"]  # a reader in the same loop gets each alone
    assert connection.counters(TO_UPSTREAM).writes == 1  # the other way is not split
    client.transport.close()


async def test_random_split_pieces_are_bounded(proxy: FaultProxy) -> None:
    client = await open_chunk_client(proxy)
    connection = await proxy.connection(0)
    proxy.split(max_piece=3, seed=11, direction=BOTH)
    data = bytes(range(200))
    assert client.transport is not None
    client.transport.write(data)
    await client.wait_until(lambda: len(client.data) == 200)
    assert client.data == data
    assert connection.counters(TO_CLIENT).writes >= math.ceil(200 / 3)
    assert all(len(chunk) <= 3 for chunk in client.chunks)
    proxy.clear()
    client.transport.write(b"whole")
    await client.wait_until(lambda: client.data.endswith(b"whole"))
    assert client.chunks[-1] == b"whole"
    client.transport.close()


async def test_inject_at_once_and_after_a_marker(proxy: FaultProxy) -> None:
    client = await open_chunk_client(proxy)
    connection = await proxy.connection(0)
    assert client.transport is not None
    assert proxy.inject(b"<now>") == 1  # an idle stream: written at once
    await client.wait_until(lambda: client.data == b"<now>")
    proxy.inject(b"<X>", after=b"|")
    client.transport.write(b"ab|cd")  # echoed in one chunk; the proxy cuts it after the marker
    await client.wait_until(lambda: client.data == b"<now>ab|<X>cd")
    assert connection.counters(TO_CLIENT).bytes_injected == 8
    assert connection.bytes_written(TO_CLIENT) == 13 and connection.bytes_read(TO_CLIENT) == 5
    client.transport.close()


async def test_inject_pieces_are_separate_writes(proxy: FaultProxy) -> None:
    client = await open_chunk_client(proxy)
    connection = await proxy.connection(0)
    frame = "Event: Newchannel\r\nCallerIDName: Zoë\r\n\r\n".encode()
    pieces = split_inside_character(frame)
    assert pieces[0].endswith(b"\xc3") and pieces[1].startswith(b"\xab")  # the two bytes of ë
    proxy.inject(pieces)
    await client.wait_until(lambda: client.data == frame)
    assert client.chunks == pieces and connection.counters(TO_CLIENT).writes == 2
    assert client.transport is not None
    client.transport.close()


async def test_inject_into_the_upstream_bound_stream(proxy: FaultProxy, echo: EchoServer) -> None:
    reader, writer = await open_client(proxy)
    await proxy.connection(0)
    proxy.inject(b"to-server", direction=TO_UPSTREAM)
    assert await read_exactly(reader, 9) == b"to-server"  # the echo proves the server got it
    assert bytes(echo.connections[0].received) == b"to-server"
    writer.close()


def test_payload_helpers() -> None:
    junk = garbage(300, seed=1)
    body = junk[: -len(AMI_END)]
    assert junk.endswith(AMI_END) and AMI_END not in body and b"\n\n" not in body
    assert len(junk) >= 300 and junk == garbage(300, seed=1) and junk != garbage(300, seed=2)
    frame = oversized_frame(10_000)
    assert len(frame) == 10_000 and frame.startswith(b"Event: Junk\r\n") and frame.count(AMI_END) == 1
    with pytest.raises(ProxyError):
        oversized_frame(5)
    with pytest.raises(ProxyError):
        split_inside_character(b"plain ascii")


async def test_bad_arguments_are_refused(proxy: FaultProxy) -> None:
    with pytest.raises(ProxyError):
        proxy.cut("sideways")
    with pytest.raises(ProxyError):
        proxy.cut_after(-1)
    with pytest.raises(ProxyError):
        proxy.cut_after(1, mode="sideways")
    with pytest.raises(ProxyError):
        proxy.delay(-1)
    with pytest.raises(ProxyError):
        proxy.throttle(0)
    with pytest.raises(ProxyError):
        proxy.split([1], max_piece=2)
    with pytest.raises(ProxyError):
        proxy.split(direction="sideways")
    with pytest.raises(ProxyError):
        await proxy.refuse("politely")
    with pytest.raises(ProxyError):
        await proxy.start()  # already listening
    with pytest.raises(TimeoutError, match="3 connections"):
        await proxy.wait_connections(3, timeout=0.05)
