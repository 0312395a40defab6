"""FastAMIProtocol under a real panoramisk Manager, against a small AMI server on a real socket.

The server sends the banner, accepts Login, then replays a real capture in random chunk sizes
(one cut falls inside a UTF-8 character) and answers Ping and CoreShowChannels. Because TCP keeps
order and the server answers an action only after it has written the replay, a resolved Ping
means every replayed event has been through ``data_received``.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import random
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from panoramisk import Manager

from fillreactor.ami.fast_protocol import FastAMIProtocol, event_of
from fillreactor.core.events import (
    ChannelCreated,
    ChannelStateChanged,
    Event,
    FullyBooted,
    SnapshotEnd,
    SnapshotRow,
)
from fillreactor.core.message import iter_messages
from fillreactor.core.normalise import normalise_raw

CAPTURE = Path(__file__).resolve().parent.parent / "fixtures" / "asterisk22" / "asterisk22-dialer-5038.raw"
BANNER = b"Asterisk Call Manager/11.0.0\r\n"
UTF8_EVENT = (
    "Event: Newchannel\r\nPrivilege: call,all\r\nChannel: SIP/zoe-00000001\r\nChannelState: 0\r\n"
    "ChannelStateDesc: Down\r\nCallerIDNum: 100\r\nCallerIDName: Zoë Müller\r\n"
    "ConnectedLineNum: <unknown>\r\nConnectedLineName: <unknown>\r\n"
    "Uniqueid: 1795688000.1\r\nLinkedid: 1795688000.1\r\n\r\n"
).encode()
STRAY = (
    b"Event: Newstate\r\nChannel: SIP/stray-1\r\nChannelState: 6\r\nUniqueid: 9.9\r\nLinkedid: 9.9\r\n\r\n"
)


def replay_bytes() -> bytes:
    """The capture after its banner, with a UTF-8 event in front."""
    data = CAPTURE.read_bytes()
    assert data.startswith(BANNER)
    return UTF8_EVENT + data[len(BANNER) :]


def chunked(data: bytes, rng: random.Random) -> list[bytes]:
    """Random chunk sizes (1..300 bytes), always cutting inside the ë of 'Zoë'."""
    inside_multibyte = data.index("ë".encode()) + 1
    cuts = {inside_multibyte}
    position = 0
    while position < len(data):
        position += rng.randint(1, 300)
        cuts.add(position)
    edges = [0, *sorted(c for c in cuts if 0 < c < len(data)), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges)]


def reply(response: str, action_id: str, *lines: str) -> bytes:
    return "\r\n".join([f"Response: {response}", f"ActionID: {action_id}", *lines, "", ""]).encode()


def fields_of(block: bytes) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in block.decode().split("\r\n") if ": " in line)


class FakeAsterisk:
    """Just enough AMI: banner, Login, replay, Ping, CoreShowChannels (with a stray event inside)."""

    def __init__(self, replay: bytes, seed: int) -> None:
        self.replay = replay
        self.rng = random.Random(seed)
        self.logins = 0
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self.serve, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(BANNER)
        try:
            while True:
                action = fields_of(await reader.readuntil(b"\r\n\r\n"))
                await self.answer(action, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def answer(self, action: dict[str, str], writer: asyncio.StreamWriter) -> None:
        action_id = action.get("ActionID", "")
        name = action.get("Action", "").lower()
        if name == "login":
            self.logins += 1
            writer.write(reply("Success", action_id, "Message: Authentication accepted"))
            for chunk in chunked(self.replay, self.rng):
                writer.write(chunk)
                await writer.drain()
        elif name == "ping":
            writer.write(
                f"Response: Success\r\nActionID: {action_id}\r\nPing: Pong\r\nTimestamp: 1.5\r\n\r\n".encode()
            )
        elif name == "coreshowchannels":
            row = (
                "Event: CoreShowChannel\r\nActionID: {id}\r\nChannel: SIP/a-{n}\r\nChannelState: 6\r\n"
                "ChannelStateDesc: Up\r\nCallerIDNum: 1\r\nCallerIDName: V1126101010000000123\r\n"
                "ConnectedLineNum: <unknown>\r\nConnectedLineName: <unknown>\r\n"
                "Uniqueid: 5.{n}\r\nLinkedid: 5.0\r\n"
                "Application: Wait\r\nApplicationData: 5\r\nDuration: 00:00:01\r\nBridgeId: \r\n\r\n"
            )
            writer.write(
                f"Response: Success\r\nActionID: {action_id}\r\nEventList: start\r\n"
                "Message: Channels will follow\r\n\r\n".encode()
                + row.format(id=action_id, n=1).encode()
                + STRAY  # an event for nobody in the middle of the list: goes to the sink
                + row.format(id=action_id, n=2).encode()
                + f"Event: CoreShowChannelsComplete\r\nActionID: {action_id}\r\nEventList: Complete\r\n"
                "ListItems: 2\r\n\r\n".encode()
            )
        elif name == "originate":
            pass  # the test feeds the answers to the protocol itself
        else:
            writer.write(reply("Error", action_id, "Message: Invalid/unknown command"))
        await writer.drain()


@pytest.fixture
async def fake_asterisk() -> AsyncIterator[tuple[FakeAsterisk, int]]:
    server = FakeAsterisk(replay_bytes(), seed=random.randrange(1 << 30))
    port = await server.start()
    yield server, port
    await server.stop()


async def connect(port: int, sink: Callable[[Event], object]) -> Manager:
    manager = Manager(
        host="127.0.0.1",
        port=port,
        username="cron",
        secret="1234",
        events="call,system",
        ping_delay=3600,
        reconnect_timeout=3600,
        loop=asyncio.get_running_loop(),
        protocol_factory=functools.partial(FastAMIProtocol, on_event=sink),
    )
    await manager.connect()
    login = await asyncio.wait_for(manager.authenticated_future, 5)
    assert login.success
    return manager


def expected_events() -> list[Event]:
    events = [normalise_raw(frame) for frame in iter_messages(BANNER + replay_bytes())]
    return [event for event in events if event is not None]


async def test_sink_gets_exactly_the_expected_events_and_actions_resolve(fake_asterisk) -> None:
    _server, port = fake_asterisk
    received: list[Event] = []
    manager = await connect(port, received.append)
    try:
        pong = await asyncio.wait_for(manager.send_action({"Action": "Ping"}), 5)
        assert pong.ping == "Pong"
        expected = expected_events()
        assert received == expected
        assert received[0] == ChannelCreated(
            "SIP/zoe-00000001", "1795688000.1", "1795688000.1", 0, "Zoë Müller", ""
        )
        assert FullyBooted() in received
        protocol = manager.protocol
        assert isinstance(protocol, FastAMIProtocol)
        assert protocol.version == "11.0.0"
        assert protocol.normaliser.errors == 0 and protocol.sink_errors == 0

        received.clear()
        listing = await asyncio.wait_for(manager.send_action({"Action": "CoreShowChannels"}), 5)
        assert [m.get("event") or m.get("response") for m in listing] == [
            "Success",
            "CoreShowChannel",
            "CoreShowChannel",
            "CoreShowChannelsComplete",
        ]
        typed = [event_of(message) for message in listing[1:]]
        assert isinstance(typed[0], SnapshotRow) and typed[0].uniqueid == "5.1"
        assert typed[-1] == SnapshotEnd(listing[0].actionid, 2)
        # the rows were consumed by their action; the stray event went to the sink
        assert received == [ChannelStateChanged("SIP/stray-1", "9.9", "9.9", 6, "", "")]
        assert not protocol.responses
    finally:
        manager.close()


async def test_a_raising_sink_does_not_drop_the_connection(fake_asterisk) -> None:
    server, port = fake_asterisk
    received: list[Event] = []

    def sink(event: Event) -> None:
        received.append(event)
        if isinstance(event, ChannelCreated):
            raise RuntimeError("sink bug")

    manager = await connect(port, sink)
    try:
        pong = await asyncio.wait_for(manager.send_action({"Action": "Ping"}), 5)
        assert pong.ping == "Pong"
        expected = expected_events()
        assert received == expected  # nothing after a raise was lost
        protocol = manager.protocol
        assert protocol.sink_errors == sum(isinstance(e, ChannelCreated) for e in expected) > 0
        assert not protocol.closed and server.logins == 1
        assert "sink bug" in protocol.last_failures[-1]
    finally:
        manager.close()


async def test_awaited_originate_response_resolves_its_action(fake_asterisk) -> None:
    """An Async Originate gets [queued, OriginateResponse] like with panoramisk's protocol."""
    _server, port = fake_asterisk
    received: list[Event] = []
    manager = await connect(port, received.append)
    try:
        await asyncio.wait_for(manager.send_action({"Action": "Ping"}), 5)
        protocol = manager.protocol
        received.clear()
        future = manager.send_action({"Action": "Originate", "ActionID": "orig-1", "Async": "true"})
        protocol.data_received(
            b"Response: Success\r\nActionID: orig-1\r\nMessage: Originate successfully queued\r\n\r\n"
        )
        assert not future.done()
        protocol.data_received(
            b"Event: OriginateResponse\r\nPrivilege: call,all\r\nActionID: orig-1\r\nResponse: Failure\r\n"
            b"Channel: Local/918005550000@default\r\nReason: 5\r\nUniqueid: <unknown>\r\n"
            b"CallerIDNum: <unknown>\r\nCallerIDName: V1126101010000000111\r\n\r\n"
        )
        result = future.result()
        assert [m.get("event") or m.get("response") for m in result] == ["Success", "OriginateResponse"]
        assert received == []  # consumed by its action, as panoramisk does
        assert event_of(result[1]).reason == 5

        # panoramisk raises KeyError('async') for an Originate without Async: the future fails
        failing = manager.send_action({"Action": "Originate", "ActionID": "orig-2"})
        protocol.data_received(
            b"Response: Success\r\nActionID: orig-2\r\nMessage: Originate successfully queued\r\n\r\n"
        )
        with pytest.raises(KeyError):
            failing.result()
        assert protocol.action_errors == 1 and not protocol.closed
    finally:
        manager.close()


class _Transport:
    """Just enough of an asyncio transport for a protocol fed by hand."""

    def __init__(self) -> None:
        self.closing = False

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def write(self, data: bytes) -> None:
        pass

    def get_extra_info(self, name: str, default: object = None) -> object:
        return default


class _Replies:
    """An ``ActionReplies`` that takes the ActionIDs it was given."""

    def __init__(self, *action_ids: str) -> None:
        self.waiting = set(action_ids)
        self.taken: list[tuple[str, bytes]] = []

    def __len__(self) -> int:
        return len(self.waiting)

    def take(self, action_id: str, frame: bytes) -> bool:
        if action_id not in self.waiting:
            return False
        self.waiting.discard(action_id)
        self.taken.append((action_id, frame))
        return True


def test_the_timed_sink_gets_every_event_with_the_start_time_of_its_read() -> None:
    protocol = FastAMIProtocol()
    protocol.connection_made(_Transport())
    ticks = iter([10.0, 20.0])
    protocol.clock = lambda: next(ticks)
    got: list[tuple[Event, float]] = []
    protocol.timed_sink = lambda event, read_at: got.append((event, read_at))
    protocol.on_event = lambda event: pytest.fail("the plain sink is not used when a timed one is set")
    replies = _Replies("own-1")
    protocol.replies = replies
    controls: list[Event] = []
    protocol.on_control = controls.append
    row = (
        b"Event: CoreShowChannel\r\nActionID: own-1\r\nChannel: SIP/a-1\r\nChannelState: 6\r\n"
        b"ChannelStateDesc: Up\r\nCallerIDNum: 1\r\nCallerIDName: V1126101010000000123\r\n"
        b"ConnectedLineNum: <unknown>\r\nConnectedLineName: <unknown>\r\n"
        b"Uniqueid: 5.1\r\nLinkedid: 5.0\r\n\r\n"
    )
    reply = (
        b"Response: Success\r\nActionID: own-1\r\nEventList: start\r\nMessage: Channels will follow\r\n\r\n"
    )
    complete = (
        b"Event: CoreShowChannelsComplete\r\nActionID: own-1\r\nEventList: Complete\r\nListItems: 1\r\n\r\n"
    )
    booted = b"Event: FullyBooted\r\nPrivilege: system,all\r\nStatus: Fully Booted\r\n\r\n"
    protocol.data_received(BANNER + reply + row[:50])
    protocol.data_received(row[50:] + complete + booted)
    # the response went to its owner; the row and the Complete event of its action to the sink
    assert [action_id for action_id, _frame in replies.taken] == ["own-1"]
    assert [(type(e).__name__, at) for e, at in got] == [
        ("SnapshotRow", 20.0),
        ("SnapshotEnd", 20.0),
        ("FullyBooted", 20.0),
    ]
    assert controls == [FullyBooted()]


def test_on_lost_is_called_once_even_without_a_manager() -> None:
    protocol = FastAMIProtocol()
    protocol.connection_made(_Transport())
    lost: list[object] = []
    protocol.on_lost = lost.append
    error = ConnectionResetError("reset")
    protocol.connection_lost(error)  # panoramisk's own would raise: factory is None
    protocol.connection_lost(None)
    assert lost == [error] and protocol.closed and protocol.frame_errors == 0
