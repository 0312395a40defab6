"""The fault proxy between an AMI client and the simulated Asterisk (its public API only).

The clients are raw: ``RawAmiClient`` (asyncio streams, whole messages) and ``FastAMIProtocol`` on
a bare ``loop.create_connection`` (no panoramisk Manager), so what is tested is the proxy and the
bytes it delivers. Expected events come from the simulator's own record of what it emitted
(``events_since``), normalised independently of the client's byte path.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from fault_helpers import WAIT, EventRecorder, RawAmiClient

from fillreactor.ami.fast_protocol import FastAMIProtocol
from fillreactor.core.events import ChannelCreated, Event, FullyBooted
from fillreactor.core.message import encode_message
from fillreactor.core.normalise import normalise
from fillreactor.simulator import CallTiming, OutcomeRules, ServerConfig, SimulatedAsterisk, TimeBase
from fillreactor.testing.faultproxy import (
    AMI_END,
    CUT_FIN,
    TO_CLIENT,
    TO_UPSTREAM,
    FaultProxy,
    garbage,
    oversized_frame,
    split_inside_character,
)

FAST = 0.01  # real seconds per simulated second: a 2 s ring takes 20 ms
LOGIN = encode_message(
    [("Action", "Login"), ("ActionID", "login"), ("Username", "cron"), ("Secret", "1234"), ("Events", "on")]
)
UTF8_NAME = "Zoë Müller"
UTF8_FRAME = (
    "Event: Newchannel\r\nPrivilege: call,all\r\nChannel: SIP/zoe-00000001\r\nChannelState: 0\r\n"
    "ChannelStateDesc: Down\r\nCallerIDNum: 100\r\nCallerIDName: " + UTF8_NAME + "\r\n"
    "ConnectedLineNum: <unknown>\r\nConnectedLineName: <unknown>\r\n"
    "Uniqueid: 1795688000.77\r\nLinkedid: 1795688000.77\r\n\r\n"
).encode()


@pytest.fixture
async def server() -> AsyncIterator[SimulatedAsterisk]:
    rules = OutcomeRules(timing=CallTiming(ring=2.0, talk=4.0, vdad_wait=3.0))
    async with SimulatedAsterisk(ServerConfig(name="dialer1"), time=TimeBase(FAST), rules=rules) as sim:
        yield sim


@pytest.fixture
async def ami_proxy(server: SimulatedAsterisk) -> AsyncIterator[FaultProxy]:
    async with FaultProxy(server.address) as running:
        yield running


async def connect_fast(
    proxy: FaultProxy, *, max_message_bytes: int | None = None
) -> tuple[FastAMIProtocol, EventRecorder]:
    """A FastAMIProtocol through the proxy, logged in: its FullyBooted has reached the sink."""
    recorder = EventRecorder()

    def factory() -> FastAMIProtocol:
        if max_message_bytes is None:
            protocol = FastAMIProtocol(on_event=recorder)
        else:
            protocol = FastAMIProtocol(on_event=recorder, max_message_bytes=max_message_bytes)
        protocol.on_lost = recorder.on_lost
        return protocol

    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_connection(factory, *proxy.address)
    transport.write(LOGIN)
    await recorder.wait_until(lambda: any(isinstance(e, FullyBooted) for e in recorder.events))
    return protocol, recorder


def expected_events(server: SimulatedAsterisk, mark: int) -> list[Event]:
    """What the simulator broadcast since ``mark``, as typed events (the message path)."""
    return [e for e in (normalise(m) for m in server.events_since(mark)) if e is not None]


def call_events(recorder: EventRecorder) -> list[Event]:
    return [e for e in recorder.events if not isinstance(e, FullyBooted)]


def place_calls(server: SimulatedAsterisk, count: int) -> None:
    for index in range(count):
        server.place_call("918005551212", f"V11261010100000000{index + 10:02d}")


async def test_login_and_ping_through_the_proxy(server: SimulatedAsterisk, ami_proxy: FaultProxy) -> None:
    client = await RawAmiClient.connect(ami_proxy.address)
    assert (await client.login()).get("Message") == "Authentication accepted"
    pong = await client.action(("Action", "Ping"), ("ActionID", "p1"))
    assert pong.get("Ping") == "Pong"
    connection = await ami_proxy.connection(0)
    # everything read was forwarded, both ways; the server saw exactly what the client wrote
    for direction in (TO_UPSTREAM, TO_CLIENT):
        assert connection.bytes_read(direction) == connection.bytes_written(direction) > 0
    assert [m.get("Action") for m in server.sessions[0].actions] == ["Login", "Ping"]
    await client.close()


async def test_a_cut_during_a_burst_loses_the_tail_only_and_a_new_session_logs_in(
    server: SimulatedAsterisk, ami_proxy: FaultProxy
) -> None:
    protocol, recorder = await connect_fast(ami_proxy)
    mark = server.mark()
    place_calls(server, 5)
    await recorder.wait_until(lambda: len(call_events(recorder)) >= 3)  # in the middle of the burst
    assert ami_proxy.cut() == 1
    await recorder.wait_until(lambda: recorder.lost)
    assert protocol.sink_errors == 0 and protocol.frame_errors == 0
    got = call_events(recorder)
    # what arrived is exactly the start of what the server sent: nothing invented or reordered
    assert got == expected_events(server, mark)[: len(got)]
    await server.wait_until(lambda: not server.sessions)  # the server saw its session go
    # the server kept running its calls; a new session through the same proxy logs in
    _protocol, again = await connect_fast(ami_proxy)
    assert server.logins == 2 and ami_proxy.stats.established == 2
    assert ami_proxy.connections[0].closed_by == "cut-rst"
    await server.wait_calls_finished()
    del again


async def test_a_clean_cut_reads_as_end_of_stream(server: SimulatedAsterisk, ami_proxy: FaultProxy) -> None:
    client = await RawAmiClient.connect(ami_proxy.address)
    await client.login()
    ami_proxy.cut(CUT_FIN)
    with pytest.raises(EOFError):  # after what was already read (the login's FullyBooted): the end
        await client.read_until(lambda m: False)
    await server.wait_until(lambda: not server.sessions)
    await client.close()


async def test_half_open_silence_holds_a_ping_until_resumed(
    server: SimulatedAsterisk, ami_proxy: FaultProxy
) -> None:
    client = await RawAmiClient.connect(ami_proxy.address)
    await client.login()
    connection = await ami_proxy.connection(0)
    ami_proxy.silence()
    ping = encode_message([("Action", "Ping"), ("ActionID", "p2")])
    before = connection.bytes_read(TO_UPSTREAM)
    client.writer.write(ping)
    await ami_proxy.wait_bytes(TO_UPSTREAM, before + len(ping), read=True)
    # the Ping is held at the proxy: the server never saw it, the sockets are open
    assert connection.held(TO_UPSTREAM) == len(ping)
    assert [m.get("Action") for m in server.sessions[0].actions] == ["Login"]
    assert len(server.sessions) == 1 and not connection.closed
    # events the server sends meanwhile are held too
    mark = server.mark()
    place_calls(server, 1)
    await server.wait_calls_finished()
    assert connection.held(TO_CLIENT) > 0
    ami_proxy.resume()
    messages = await client.read_until(lambda m: m.get("ActionID") == "p2")
    assert messages[-1].get("Ping") == "Pong"
    # the held events came first, in order, none lost
    held = [e for e in (normalise(m) for m in messages[:-1]) if e is not None and e != FullyBooted()]
    assert held == expected_events(server, mark)
    await client.close()


async def test_garbage_oversized_and_split_utf8_frames_do_no_harm(
    server: SimulatedAsterisk, ami_proxy: FaultProxy
) -> None:
    protocol, recorder = await connect_fast(ami_proxy, max_message_bytes=8192)
    ami_proxy.inject(garbage(400, seed=5), after=AMI_END)
    frame = oversized_frame(50_000)
    ami_proxy.inject([frame[i : i + 4096] for i in range(0, len(frame), 4096)], after=AMI_END)
    ami_proxy.inject(split_inside_character(UTF8_FRAME), after=AMI_END)
    mark = server.mark()
    place_calls(server, 1)
    await server.wait_calls_finished()
    expected = expected_events(server, mark)
    await recorder.wait_until(lambda: len(call_events(recorder)) == 1 + len(expected))
    first, *rest = call_events(recorder)
    # the character cut between two writes survives: decoded per message, not per read
    assert isinstance(first, ChannelCreated) and first.caller_id_name == UTF8_NAME
    assert rest == expected  # the junk took nothing with it
    assert protocol.framer.errors == 1  # the one oversized frame, discarded whole
    assert not recorder.lost and not protocol.closed
    injected = ami_proxy.connections[0].counters(TO_CLIENT).bytes_injected
    assert injected == len(garbage(400, seed=5)) + len(frame) + len(UTF8_FRAME)


async def test_a_slow_reader_gets_every_event_in_order(
    server: SimulatedAsterisk, ami_proxy: FaultProxy
) -> None:
    _protocol, recorder = await connect_fast(ami_proxy)
    connection = await ami_proxy.connection(0)
    ami_proxy.throttle(200_000, direction=TO_CLIENT)  # writes of at most 4 000 bytes, 50 a second
    mark = server.mark()
    before = connection.counters(TO_CLIENT).writes
    place_calls(server, 3)
    await server.wait_calls_finished()
    expected = expected_events(server, mark)
    await recorder.wait_until(lambda: len(call_events(recorder)) == len(expected), timeout=WAIT)
    assert call_events(recorder) == expected
    sent = connection.bytes_written(TO_CLIENT)
    assert connection.counters(TO_CLIENT).writes - before >= (sent - 4_000) // 4_000


async def test_writes_split_at_random_offsets_give_the_same_events(
    server: SimulatedAsterisk, ami_proxy: FaultProxy
) -> None:
    ami_proxy.split(max_piece=13, seed=5, gap=0, direction=TO_CLIENT)
    _protocol, recorder = await connect_fast(ami_proxy)
    mark = server.mark()
    place_calls(server, 2)
    await server.wait_calls_finished()
    expected = expected_events(server, mark)
    await recorder.wait_until(lambda: len(call_events(recorder)) == len(expected))
    assert call_events(recorder) == expected
    connection = ami_proxy.connections[0]
    assert connection.counters(TO_CLIENT).writes >= connection.bytes_written(TO_CLIENT) // 13


async def test_refused_connections_then_accepted_again(
    server: SimulatedAsterisk, ami_proxy: FaultProxy
) -> None:
    await ami_proxy.refuse()
    with pytest.raises(ConnectionRefusedError):
        await RawAmiClient.connect(ami_proxy.address)
    await ami_proxy.accept()
    client = await RawAmiClient.connect(ami_proxy.address)
    assert (await client.login()).response == "Success"
    assert server.logins == 1
    await client.close()


async def test_a_logoff_is_a_clean_close_started_by_the_server(
    server: SimulatedAsterisk, ami_proxy: FaultProxy
) -> None:
    client = await RawAmiClient.connect(ami_proxy.address)
    await client.login()
    goodbye = await client.action(("Action", "Logoff"), ("ActionID", "bye"))
    assert goodbye.response == "Goodbye"
    connection = await ami_proxy.connection(0)
    client.writer.close()  # the client answers the server's FIN with its own
    await connection.wait_closed()
    assert connection.closed_by == "upstream" and ami_proxy.stats.closed_reasons == {"upstream": 1}
