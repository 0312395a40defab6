"""The smaller facts of issue 8 point 9 (spec/AMI.md 6a.9 and the lab dialplan, shared/asterisk/cluster.sh).

Uniqueids within a call are not always consecutive; every login shows a SuccessfulAuth on every
``Events: on`` session; 8369 sends no VDADTransfer UserEvent and keeps ``;1`` at Priority 2; the trunk
``;2`` of a busy/congestion/no-answer 10-digit number runs ``1<number>`` (after a Goto) at Priority 2.
"""

from __future__ import annotations

import pytest
from ami_sim_helpers import RawAmiClient, originate_pairs

from fillreactor.simulator import (
    CallTiming,
    OrderRules,
    OutcomeRules,
    ServerConfig,
    SimulatedAsterisk,
    TimeBase,
)


def make_server(orders: OrderRules | None = None, timing: CallTiming | None = None) -> SimulatedAsterisk:
    rules = OutcomeRules(timing=timing or CallTiming(ring=1.0, talk=3.0, vdad_wait=5.0))
    if orders is not None:
        rules.orders = orders
    return SimulatedAsterisk(ServerConfig(name="dialer1"), time=TimeBase(0.01), rules=rules)


def counters(call) -> list[int]:  # type: ignore[no-untyped-def]
    return [int(uniqueid.split(".")[1]) for uniqueid in call.uniqueids]


async def test_uniqueids_of_a_call_are_not_always_consecutive() -> None:
    async with make_server(OrderRules("varied", uniqueid_gap=1.0)) as server:
        call = server.place_call("918005551212", "V1126101010000001100")
        await server.wait_until(lambda: len(server.channels) == 4)
        # another pair was allocated between the two pairs of this call: 2 Uniqueids, 1 sequence number
        assert counters(call) == [0, 1, 4, 5]
        assert call.legs["t1"].name == "Local/18005551212@trunk-00000002;1"
    async with make_server(OrderRules("varied")) as server:  # the default: a few percent of the calls
        gaps = 0
        for index in range(60):
            call = server.place_call("918005551212", f"V11261010100000011{index:02d}")
            await server.wait_until(lambda call=call: len(call.channels) == 4)
            first = counters(call)[0]
            gaps += counters(call) != [first, first + 1, first + 2, first + 3]
        assert 1 <= gaps <= 8  # 6a.9 measured 1-9% of calls


async def test_every_login_shows_a_successful_auth_on_every_events_on_session() -> None:
    async with make_server() as server:
        clients = [await RawAmiClient.connect(*server.address) for _ in range(3)]
        for client in clients:
            await client.login(events="on")
        for index, client in enumerate(clients):
            client.send(("Action", "Ping"), ("ActionID", "sync"))
            seen = await client.read_until(lambda m: m.action_id == "sync")
            auths = [m for m in seen if m.event == "SuccessfulAuth"]
            assert len(auths) == 3 - index  # its own login and every later one
            assert len({m.get("RemoteAddress") for m in auths}) == len(auths)
            await client.close()


async def run_vdad(exten: str) -> tuple[list, list]:
    timing = CallTiming(ring=1.0, talk=None, vdad_wait=5.0)
    async with make_server(OrderRules("captured"), timing) as server:
        client = await RawAmiClient.connect(*server.address)
        await client.login(events="on")
        mark = server.mark()
        client.send(*originate_pairs("v", "Local/918005551212@default", "V1126101010000001200", exten=exten))
        await server.wait_until(lambda: server.calls_started == 1)
        call = server.calls[0]
        await server.wait_until(lambda: call.answered and call.legs["d1"].application == "Wait")
        client.send(("Action", "CoreShowChannels"), ("ActionID", "csc"))
        rows = [
            m
            for m in await client.read_until(lambda m: m.event == "CoreShowChannelsComplete")
            if m.event == "CoreShowChannel"
        ]
        await client.close()
        return server.events_since(mark), rows


async def test_extension_8369_sends_no_user_event_and_waits_at_priority_2() -> None:
    events, rows = await run_vdad("8369")
    d1 = [m for m in events if m.event == "Newexten" and m.get("Exten") == "8369"]
    assert [(m.get("Priority"), m.get("Application"), m.get("AppData")) for m in d1] == [
        ("1", "Answer", ""),
        ("2", "Wait", "60"),
    ]
    assert not [m for m in events if m.event == "UserEvent"]
    row = next(m for m in rows if m.get("Channel").endswith("@default-00000000;1"))
    assert (row.get("Exten"), row.get("Priority"), row.get("Application")) == ("8369", "2", "Wait")


@pytest.mark.parametrize(
    ("exten", "expected"),
    [
        ("8365", [("8365", "NoOp"), ("8365", "Answer"), ("8365", "UserEvent"), ("8365", "Wait")]),
        ("8368", [("8368", "NoOp"), ("8368", "Answer"), ("8368", "Wait")]),
        ("138368", [("138368", "Goto"), ("8368", "NoOp"), ("8368", "Answer"), ("8368", "Wait")]),
    ],
)
async def test_vdad_extensions_run_the_lab_dialplan(exten: str, expected: list[tuple[str, str]]) -> None:
    events, _rows = await run_vdad(exten)
    d1 = [
        (m.get("Exten"), m.get("Application"))
        for m in events
        if m.event == "Newexten"
        and m.get("Channel").endswith("@default-00000000;1")
        and m.get("Context") == "default"
        if m.get("Application") not in ("AppDial2",)
    ]
    assert d1 == expected
    assert sum(m.event == "UserEvent" for m in events) == (exten == "8365")


@pytest.mark.parametrize("suffix", ["0000", "1111", "9999"])
async def test_the_trunk_leg_of_a_failing_10_digit_number_runs_1_number_at_priority_2(suffix: str) -> None:
    number = f"9800555{suffix}"  # a VICIdial-style 9 + 10 digits: the trunk gets 800555xxxx
    timing = CallTiming(ring=50.0, talk=None, vdad_wait=None)  # rings long enough to list it
    async with make_server(OrderRules("captured"), timing) as server:
        client = await RawAmiClient.connect(*server.address)
        await client.login(events="on")
        mark = server.mark()
        client.send(
            *originate_pairs("t", f"Local/{number}@default", "V1126101010000001300", timeout_ms=600_000)
        )
        await server.wait_until(
            lambda: any(ch.name.endswith("01;2") and ch.priority for ch in server.channels.values())
        )
        call = next(iter(server.calls))
        await server.wait_until(lambda: call.legs["t2"].application in ("Wait", "Congestion"))
        client.send(("Action", "CoreShowChannels"), ("ActionID", "csc"))
        listing = await client.read_until(lambda m: m.event == "CoreShowChannelsComplete")
        await client.action(("Action", "Hangup"), ("ActionID", "h"), ("Channel", call.legs["d1"].name))
        await server.wait_calls_finished()
        await client.close()
    trunk = f"1800555{suffix}"
    gotos = [m for m in server.events_since(mark) if m.event == "Newexten" and m.get("Application") == "Goto"]
    assert [(m.get("Exten"), m.get("Priority"), m.get("AppData")) for m in gotos] == [
        (trunk[1:], "1", f"{trunk},1")
    ]
    row = next(
        m
        for m in listing
        if m.event == "CoreShowChannel" and m.get("Channel").endswith(";2") and "trunk" in m.get("Channel")
    )
    # ringing (busy, no answer) or waiting before the Congestion: Exten 1<number>
    assert row.get("Exten") == trunk
    assert row.get("Priority") == ("1" if suffix == "1111" else "2")


@pytest.mark.parametrize(("suffix", "priority"), [("0000", "3"), ("1111", "2"), ("9999", "2")])
async def test_the_trunk_leg_hangs_up_at_the_lab_priority(suffix: str, priority: str) -> None:
    async with make_server(OrderRules("captured"), CallTiming(ring=1.0)) as server:
        client = await RawAmiClient.connect(*server.address)
        await client.login(events="call")
        client.send(
            *originate_pairs("t", f"Local/9800555{suffix}@default", "V1126101010000001400", timeout_ms=3000)
        )
        await server.wait_until(lambda: server.calls_started == 1)
        await server.wait_calls_finished()
        await client.close()
    trunk_hangup = next(
        m
        for m in server.events_since(0)
        if m.event == "Hangup"
        and m.get("Channel").startswith("Local/800555")
        and m.get("Channel").endswith(";2")
    )
    # Busy(10) is priority 3 of _1NXXNXX0000 (captured: dialer1 .4), Congestion(10) and Wait(300) are 2
    assert (trunk_hangup.get("Exten"), trunk_hangup.get("Priority")) == (f"1800555{suffix}", priority)
