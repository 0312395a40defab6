"""How the bytes arrive (issue 8 points 6 and 7, spec/AMI.md 6a.6 and 6a.8).

Measured on Asterisk 22 at 5 calls/s per server: a recv() holds a median of 2 messages (45% a single
one) and, on loopback, never ends inside a message. ``split_writes`` is the WAN case. With
``timestampevents = yes`` every event but the login-time FullyBooted carries ``Timestamp:`` as its
third line.
"""

from __future__ import annotations

import asyncio
import re
import statistics

import panoramisk
from ami_sim_helpers import RawAmiClient, login_pairs, open_recorder

from fillreactor.core.events import ChannelCreated, ChannelHungUp, OriginateResult
from fillreactor.core.message import MESSAGE_END
from fillreactor.core.normalise import normalise_raw
from fillreactor.simulator import (
    CallTiming,
    DialLevelLoad,
    OutcomeRules,
    ServerConfig,
    SimulatedAsterisk,
    TimeBase,
)

TIMESTAMP = re.compile(r"^\d+\.\d{6}$")


def server_with(**config: object) -> SimulatedAsterisk:
    rules = OutcomeRules(timing=CallTiming(ring=1.0, talk=2.0, vdad_wait=5.0))
    return SimulatedAsterisk(ServerConfig(name="dialer1", **config), time=TimeBase(0.05), rules=rules)  # type: ignore[arg-type]


async def messages_per_recv(delivery: str) -> list[int]:
    """Messages per data_received chunk of an ``Events: on`` session while the server dials 5 calls/s."""
    async with server_with(delivery=delivery) as server:
        recorder = await open_recorder(*server.address)
        recorder.send(*login_pairs("on"))
        await recorder.wait_for(lambda m: m.event == "SuccessfulAuth")
        first = len(recorder.chunks)
        load = DialLevelLoad(server, calls_per_second=5, max_concurrent=50)
        load.start()
        try:
            await server.wait_until(lambda: server.calls_finished >= 6)
        finally:
            await load.stop()
        await server.wait_calls_finished()
        recorder.send(("Action", "Ping"), ("ActionID", "end"))
        await recorder.wait_for(lambda m: m.action_id == "end")
        recorder.close()
        chunks = recorder.chunks[first:-1]
    assert all(chunk.endswith(MESSAGE_END) for chunk in chunks)  # loopback never cuts a message
    return [chunk.count(MESSAGE_END) for chunk in chunks]


async def test_a_write_per_event_gives_a_message_or_two_per_read_as_measured() -> None:
    per_event = await messages_per_recv("per_event")
    assert statistics.median(per_event) <= 2  # measured: median 2, 45% single messages
    assert 0.3 <= per_event.count(1) / len(per_event) <= 0.6
    burst = await messages_per_recv("burst")  # the old behaviour: a call step's events back to back
    assert statistics.median(burst) > 2 * statistics.median(per_event)


async def test_split_writes_cut_messages_at_arbitrary_offsets_and_lose_nothing() -> None:
    async with server_with(split_writes=True, split_max_bytes=40, seed=5) as server:
        recorder = await open_recorder(*server.address)
        recorder.send(*login_pairs("on"))
        await recorder.wait_for(lambda m: m.event == "SuccessfulAuth")
        mark = server.mark()
        server.place_call("918005551212", "V1126101010000000970")
        await server.wait_calls_finished()
        recorder.send(("Action", "Ping"), ("ActionID", "end"))
        await recorder.wait_for(lambda m: m.action_id == "end")
        recorder.close()
    # pieces of 1..40 bytes, one per loop iteration (a reader may get two at once)
    assert statistics.median(len(chunk) for chunk in recorder.chunks) <= 2 * 40
    assert sum(not chunk.endswith(MESSAGE_END) for chunk in recorder.chunks) > len(recorder.chunks) // 2
    events = [m for m in recorder.messages if m.event and m.event not in ("FullyBooted", "SuccessfulAuth")]
    assert events == server.events_since(mark)  # every event whole and in order


async def test_timestamp_events_adds_the_third_line_to_every_broadcast_event() -> None:
    async with server_with(timestamp_events=True) as server:
        client = await RawAmiClient.connect(*server.address)
        await client.login(events="on")
        booted, auth = await client.read(), await client.read()
        assert booted.event == "FullyBooted" and "Timestamp" not in booted.fields  # written at login
        assert auth.event == "SuccessfulAuth" and auth.pairs[2][0] == "Timestamp"
        server.place_call("918005551212", "V1126101010000000971")
        await server.wait_until(lambda: len(server.channels) == 4)
        client.send(("Action", "CoreShowChannels"), ("ActionID", "csc"))
        listing = await client.read_until(lambda m: m.event == "CoreShowChannelsComplete")
        await server.wait_calls_finished()
        client.send(("Action", "Ping"), ("ActionID", "end"))
        rest = await client.read_until(lambda m: m.action_id == "end")
        await client.close()
    events = [m for m in listing + rest if m.get("Privilege")]
    assert len(events) > 40
    for message in events:
        assert message.pairs[2][0] == "Timestamp" and TIMESTAMP.match(message.pairs[2][1]), message
    rows = [m for m in listing if m.event.startswith("CoreShowChannel")]
    assert len(rows) == 5 and all("Timestamp" not in m.fields for m in rows)  # list rows: no timestamp
    # the core's normaliser reads the timestamped shape like the plain one
    typed = [normalise_raw(m.to_bytes()[: -len(MESSAGE_END)]) for m in events]
    assert sum(isinstance(event, ChannelCreated) for event in typed) == 4
    assert sum(isinstance(event, ChannelHungUp) for event in typed) == 4
    assert sum(isinstance(event, OriginateResult) for event in typed) == 1


async def test_panoramisk_reads_timestamped_events() -> None:
    async with server_with(timestamp_events=True) as server:
        seen: list[panoramisk.Message] = []
        manager = panoramisk.Manager(
            host=server.host, port=server.port, username="cron", secret="1234", events="call", ping_delay=3600
        )
        manager.register_event("Hangup", lambda _manager, message: seen.append(message))
        await manager.connect()
        try:
            await asyncio.wait_for(manager.authenticated_future, 5)
            server.place_call("918005551212", "V1126101010000000972")
            await server.wait_calls_finished()
            await asyncio.wait_for(manager.send_action({"Action": "Ping"}), 5)
        finally:
            manager.close()
    assert len(seen) == 4
    assert all(TIMESTAMP.match(message["Timestamp"]) and message["Cause"] == "16" for message in seen)
