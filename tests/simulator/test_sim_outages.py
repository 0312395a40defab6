"""Graceful shutdown/restart and crash, as spec/AMI.md 6a.1-2 measured them (issue 8 points 1, 2, 10).

Durations are simulated seconds on a fast time base (TimeBase(0.01): a 2 s outage lasts 20 ms), so
the checks on them are lower bounds read from the simulator's own clock, never timed assertions.
"""

from __future__ import annotations

import asyncio

import panoramisk
import pytest
from ami_sim_helpers import RawAmiClient, originate_pairs
from panoramisk.message import Message

from fillreactor.simulator import (
    CallTiming,
    DialLevelLoad,
    OutcomeRules,
    ServerConfig,
    SimulatedAsterisk,
    TimeBase,
)

ENDLESS = CallTiming(ring=1.0, talk=None, vdad_wait=None)  # answered calls that never end by themselves


def endless_server(**config: object) -> SimulatedAsterisk:
    rules = OutcomeRules(timing=ENDLESS)
    rules.timing_overrides["918005559999"] = CallTiming(ring=1.0, talk=None, vdad_wait=None)
    return SimulatedAsterisk(ServerConfig(name="dialer1", **config), time=TimeBase(0.01), rules=rules)  # type: ignore[arg-type]


async def answered_and_ringing(server: SimulatedAsterisk, answered: int, ringing: int):
    calls = [server.place_call("918005551212", f"V11261010100000006{i:02d}") for i in range(answered)]
    calls += [
        server.place_call("918005559999", f"V11261010100000007{i:02d}", timeout=1000.0)
        for i in range(ringing)
    ]
    await server.wait_until(
        lambda: (
            sum(c.answered for c in calls) == answered
            and sum(1 for ch in server.channels.values() if ch.state == 5) == 2 * ringing
        )
    )
    await server.wait_until(lambda: len(server.channels) == 4 * (answered + ringing))
    return calls[:answered], calls[answered:]


async def read_to_eof(client: RawAmiClient) -> list:
    messages = []
    try:
        while True:
            messages.append(await asyncio.wait_for(client.read(), 10))
    except (EOFError, ConnectionError):
        return messages


async def test_graceful_restart_hangs_up_everything_sends_shutdown_refuses_then_boots_afresh() -> None:
    async with endless_server() as server:
        watcher, actor = (
            await RawAmiClient.connect(*server.address),
            await RawAmiClient.connect(*server.address),
        )
        await watcher.login(events="call,system")
        await actor.login(events="off")
        answered, ringing = await answered_and_ringing(server, answered=3, ringing=2)
        live_uniqueids = {channel.uniqueid for channel in server.channels.values()}

        outage = await server.faults.graceful_shutdown(restart=True, wait=False)
        assert server.state == "shutting_down"
        refused = await actor.action(
            *originate_pairs("late", "Local/918005551212@default", "V1126101010000000799")
        )
        listing = await actor.action(("Action", "CoreShowChannels"), ("ActionID", "csc"))
        ping = await actor.action(("Action", "Ping"), ("ActionID", "ping"))
        for reply in (refused, listing, ping):
            assert reply.pairs[0] == ("Response", "Error")
            assert reply.get("Message") == "Asterisk is shutting down"

        seen = await read_to_eof(watcher)
        await outage.wait_down()
        assert server.state == "down"
        # every live channel got its Hangup: cause 16 when Up (answered calls), 0 when ringing
        hangups = {m.get("Uniqueid"): m for m in seen if m.event == "Hangup"}
        assert set(hangups) == live_uniqueids
        for call in answered:
            assert {hangups[uid].get("Cause") for uid in call.uniqueids} == {"16"}
        for call in ringing:
            assert {hangups[uid].get("Cause") for uid in call.uniqueids} == {"0"}
        # a Failure OriginateResponse with Reason 0 for each call still ringing, none for the refused one
        failures = [m for m in seen if m.event == "OriginateResponse" and m.get("Response") == "Failure"]
        assert sorted(m.get("CallerIDName") for m in failures) == sorted(c.call_id for c in ringing)
        assert {m.get("Reason") for m in failures} == {"0"}
        assert not [m for m in seen if m.action_id == "late"]
        # then Shutdown, the last thing on the wire
        assert list(seen[-1].pairs) == [
            ("Event", "Shutdown"),
            ("Privilege", "system,all"),
            ("Shutdown", "Cleanly"),
            ("Restart", "True"),
        ]
        with pytest.raises(ConnectionRefusedError):
            await RawAmiClient.connect(*server.address)

        await outage.wait_up()
        assert server.state == "up" and server.boots == 2
        assert outage.down_at - outage.shutdown_sent_at >= server.config.shutdown_close_delay
        assert outage.up_at - outage.down_at >= server.config.restart_down_for
        assert {call.ended_by for call in answered + ringing} == {"shutdown"}
        record = next(r for r in server.originates if r.action_id == "late")
        assert record.answer == "Asterisk is shutting down" and record.call is None

        again = await RawAmiClient.connect(*server.address)
        assert (await again.login()).get("Message") == "Authentication accepted"
        server.place_call("918005551212", "V1126101010000000800")
        await server.wait_until(lambda: len(server.channels) == 4)
        first = next(iter(server.channels.values()))
        # the counter starts again at 0 (the epoch part is the creation second, at or after the boot)
        epoch, _, counter = first.uniqueid.partition(".")
        assert counter == "0" and int(epoch) >= server.boot_epoch and first.name.endswith("-00000000;1")
        assert first.name in {name for call in answered for name in call.channel_names}  # names repeat
        await again.close()
        await actor.close()


async def test_core_stop_now_stays_down_until_booted() -> None:
    async with endless_server() as server:
        watcher = await RawAmiClient.connect(*server.address)
        await watcher.login(events="system")
        outage = await server.faults.graceful_shutdown(restart=False)
        assert server.state == "down" and outage.down.is_set()
        seen = await read_to_eof(watcher)
        assert seen[-1].event == "Shutdown" and seen[-1].get("Restart") == "False"
        assert outage.task is not None and outage.task.done() and not outage.up.is_set()
        with pytest.raises(ConnectionRefusedError):
            await RawAmiClient.connect(*server.address)
        await server.faults.boot()
        assert server.state == "up" and outage.up.is_set()


async def test_crash_is_eof_and_nothing_else_then_a_login_during_boot_sees_fully_booted_later() -> None:
    async with endless_server() as server:
        watcher = await RawAmiClient.connect(*server.address)
        await watcher.login(events="on")
        answered, ringing = await answered_and_ringing(server, answered=2, ringing=1)
        await watcher.read_until(lambda m: m.event == "OriginateResponse")  # read what came so far
        mark = server.mark()

        outage = await server.faults.crash(boot_time=30.0)  # 30 simulated s = 0.3 s to log in meanwhile
        assert server.state == "down"
        rest = await read_to_eof(watcher)
        assert not [m for m in rest if m.event in ("Hangup", "Shutdown", "OriginateResponse")]
        assert server.events_since(mark) == []  # the server itself sent nothing
        assert {call.ended_by for call in answered + ringing} == {"crash"}
        assert server.channels == {} and server.live_calls() == []
        with pytest.raises(ConnectionRefusedError):
            await RawAmiClient.connect(*server.address)

        await server.wait_state("booting")
        early = await RawAmiClient.connect(*server.address)
        await early.login(events="system")
        booted = await asyncio.wait_for(early.read(), 10)  # not at login: when the boot ends
        assert server.state == "up"
        # the boot's own FullyBooted (a broadcast): Status first, unlike the login-time one
        assert [key for key, _ in booted.pairs] == ["Event", "Privilege", "Status", "Uptime", "LastReload"]
        assert outage.up_at is not None and outage.down_at is not None
        assert outage.up_at - outage.down_at >= server.config.crash_down_for
        late = await RawAmiClient.connect(*server.address)
        await late.login(events="system")
        assert [key for key, _ in (await late.read()).pairs][2:] == ["Uptime", "LastReload", "Status"]
        await early.close()
        await late.close()


async def test_the_outage_durations_are_configurable() -> None:
    async with endless_server(crash_down_for=20.0, boot_time=0.0) as server:
        outage = await server.faults.crash()
        await outage.wait_up()
        assert outage.up_at - outage.down_at >= 20.0
        outage = await server.faults.graceful_shutdown(hangup_spread=0.0, close_delay=0.0, down_for=10.0)
        await outage.wait_up()
        assert outage.up_at - outage.down_at >= 10.0 and server.boots == 3


async def test_the_servers_own_dialer_places_nothing_while_the_server_is_out() -> None:
    async with endless_server() as server:
        load = DialLevelLoad(server, calls_per_second=50, max_concurrent=3)
        load.start()
        try:
            await server.wait_until(lambda: len(load.live) == 3)
            outage = await server.faults.crash()
            await server.wait_until(lambda: load.down_ticks >= 3)
            assert server.calls == []
            await outage.wait_up()
            await server.wait_until(lambda: len(server.live_calls()) == 3)
        finally:
            await load.stop()


async def test_panoramisk_reconnects_and_logs_in_again_after_a_graceful_restart() -> None:
    async with endless_server() as server:
        logins: list[float] = []
        shutdowns: list[Message] = []
        logged_in = asyncio.Event()

        def on_login(_manager: panoramisk.Manager) -> None:
            logins.append(server.time.now())
            logged_in.set()

        manager = panoramisk.Manager(
            host=server.host,
            port=server.port,
            username="cron",
            secret="1234",
            events="call,system",
            ping_delay=3600,
            reconnect_timeout=0.02,
            on_login=on_login,
        )
        manager.register_event("Shutdown", lambda _m, message: shutdowns.append(message))
        await manager.connect()
        try:
            await asyncio.wait_for(logged_in.wait(), 10)
            logged_in.clear()
            outage = await server.faults.graceful_shutdown(restart=True)
            await outage.wait_up()
            await asyncio.wait_for(logged_in.wait(), 10)
            assert len(logins) == 2 and outage.down_at is not None and logins[1] > outage.down_at
            assert [m["Restart"] for m in shutdowns] == ["True"]
            pong = await asyncio.wait_for(manager.send_action({"Action": "Ping"}), 5)
            assert pong.ping == "Pong"
        finally:
            manager.close()


async def test_panoramisk_comes_back_after_a_crash_and_gets_the_late_fully_booted() -> None:
    async with endless_server() as server:
        booted: list[Message] = []
        logged_in = asyncio.Event()
        manager = panoramisk.Manager(
            host=server.host,
            port=server.port,
            username="cron",
            secret="1234",
            events="call,system",
            ping_delay=3600,
            reconnect_timeout=0.02,
            on_login=lambda _manager: logged_in.set(),
        )
        manager.register_event("FullyBooted", lambda _m, message: booted.append(message))
        await manager.connect()
        try:
            await asyncio.wait_for(logged_in.wait(), 10)
            logged_in.clear()
            outage = await server.faults.crash(boot_time=20.0)  # 0.2 s of boot to log in during
            await asyncio.wait_for(logged_in.wait(), 10)  # panoramisk retried until the port answered
            assert server.state == "booting"
            await outage.wait_up()
            pong = await asyncio.wait_for(manager.send_action({"Action": "Ping"}), 5)
            assert pong.ping == "Pong"
            assert list(booted[-1].keys())[:3] == ["Event", "Privilege", "Status"]  # the boot's own
        finally:
            manager.close()
