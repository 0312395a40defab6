"""Fault injection: drop, silence, slow reads, garbage, oversized frames, restart."""

from __future__ import annotations

import asyncio

from ami_sim_helpers import RawAmiClient

from fillreactor.core.message import AmiFramer
from fillreactor.simulator import SimulatedAsterisk


async def logged_in(server: SimulatedAsterisk, events: str = "on") -> RawAmiClient:
    client = await RawAmiClient.connect(*server.address)
    await client.login(events=events)
    return client


async def test_drop_one_session_or_all(server: SimulatedAsterisk) -> None:
    first, second = await logged_in(server), await logged_in(server)
    await server.wait_for_sessions(2)
    assert server.faults.drop(server.sessions[0]) == 1
    assert await first.closed_by_peer()
    await server.wait_until(lambda: len(server.sessions) == 1)
    assert server.faults.drop() == 1
    assert await second.closed_by_peer()
    third = await logged_in(server)  # still listening
    await third.close()


async def test_silent_server_keeps_the_socket_but_neither_answers_nor_sends_events(
    server: SimulatedAsterisk,
) -> None:
    client = await logged_in(server)
    await client.read_until(lambda m: m.event == "SuccessfulAuth")
    server.faults.go_silent()
    client.send(("Action", "Ping"), ("ActionID", "lost"))
    mark = server.mark()
    server.place_call("918005551212", "V1126101010000000110")
    await server.wait_for_event(lambda m: m.event == "Newchannel", since=mark)
    await server.wait_until(lambda: len(server.channels) == 4)  # every Newchannel of the call sent
    await server.wait_until(lambda: server.sessions[0].bytes_in > 0)
    assert server.sessions[0].events_sent == 2  # FullyBooted + SuccessfulAuth only
    assert not client.reader.at_eof() and not client.pending
    server.faults.resume()
    reply = await client.read_until(lambda m: m.action_id == "lost")
    assert reply[-1].get("Ping") == "Pong"
    assert all(m.event != "Newchannel" for m in reply)  # events while silent were lost
    await client.close()


async def test_slow_reader_still_answers_every_action(server: SimulatedAsterisk) -> None:
    server.faults.set_slow_read(chunk=7, delay=0.1)
    client = await logged_in(server, events="off")
    for index in range(3):
        client.send(("Action", "Ping"), ("ActionID", f"p{index}"))
    replies = await client.read_until(lambda m: m.action_id == "p2")
    assert [m.action_id for m in replies] == ["p0", "p1", "p2"]
    assert server.sessions[0].read_chunk == 7
    await client.close()


async def test_garbage_and_oversized_frames_reach_the_client(server: SimulatedAsterisk) -> None:
    client = await logged_in(server, events="off")
    framer = AmiFramer(expect_banner=False, max_message_bytes=1 << 16)
    server.faults.send_garbage()
    server.faults.send_oversized(200_000)
    client.send(("Action", "Ping"), ("ActionID", "after"))
    frames: list[bytes] = []
    while not any(b"ActionID: after" in frame for frame in frames):
        frames.extend(framer.feed(await client.reader.read(65536)))
    assert any(b"garbage" in frame for frame in frames)
    assert framer.errors == 1  # the oversized frame was discarded by a bounded framer
    await client.close()


async def test_restart_resets_counters_channels_and_accepts_logins_on_the_same_port(
    server: SimulatedAsterisk,
) -> None:
    client = await logged_in(server)
    port = server.port
    server.place_call("918005551212", "V1126101010000000110")
    await server.wait_until(lambda: len(server.channels) == 4)
    assert server.uniqueid_counter == 4 and server.sequence_counter == 2
    await server.faults.restart()
    assert await client.closed_by_peer()
    assert server.port == port and server.restarts == 1
    assert server.channels == {} and server.calls == [] and server.uniqueid_counter == 0
    again = await logged_in(server)
    server.place_call("918005551212", "V1126101010000000111")
    await server.wait_until(lambda: len(server.channels) == 4)
    first = next(iter(server.channels.values()))
    assert first.name.endswith("-00000000;1") and first.uniqueid.endswith(".0")
    await again.close()


async def test_a_sync_waiter_is_released_by_restart(server: SimulatedAsterisk) -> None:
    # a call cancelled by a restart still sets its "finished" hook
    call = server.place_call("918005559999", "V1126101010000000131")
    await server.wait_until(lambda: len(server.channels) == 4)
    await server.restart()
    await asyncio.wait_for(call.finished.wait(), 5)
