"""An AMI Hangup before answer (issue 8 point 3, spec/AMI.md 6a.3), over the raw socket and panoramisk.

Measured: the OriginateResponse is Failure with Reason 0 or 8, never 1; without ``Cause`` the legs
hang up with cause 0 or 34; the targeted leg is usually the first to hang up; ``;1`` gets a DialEnd
with DialStatus NOANSWER. Which target gives which Reason is the simulator's model (calls.py).
"""

from __future__ import annotations

import asyncio

import panoramisk
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

RINGING = "918005559999"  # rings until the Originate Timeout
ROLES = ("d1", "d2", "t1", "t2")


def ringing_server(order: str = "captured", seed: int = 0) -> SimulatedAsterisk:
    rules = OutcomeRules(timing=CallTiming(ring=1.0, talk=None, vdad_wait=None), orders=OrderRules(order))
    return SimulatedAsterisk(ServerConfig(name="dialer1", seed=seed), time=TimeBase(0.01), rules=rules)


async def ring_one(server: SimulatedAsterisk, client: RawAmiClient, action_id: str, callerid: str):
    client.send(*originate_pairs(action_id, f"Local/{RINGING}@default", callerid, timeout_ms=600_000))
    await server.wait_until(lambda: any(c.request.action_id == action_id for c in server.calls))
    call = next(c for c in server.calls if c.request.action_id == action_id)
    await server.wait_until(lambda: sum(1 for ch in call.channels if ch.state == 5) == 2)  # ringing
    return call


@pytest.mark.parametrize("cause", [None, 16])
@pytest.mark.parametrize("target", ROLES)
async def test_hangup_while_ringing(target: str, cause: int | None) -> None:
    async with ringing_server() as server:
        client = await RawAmiClient.connect(*server.address)
        await client.login(events="call")
        call = await ring_one(server, client, "orig", "V1126101010000000900")
        mark = server.mark()
        action = [("Action", "Hangup"), ("ActionID", "h"), ("Channel", call.legs[target].name)]
        if cause is not None:
            action.append(("Cause", str(cause)))
        reply = await client.action(*action)
        assert reply.get("Message") == "Channel Hungup"
        await server.wait_calls_finished()
        events = server.events_since(mark)
        await client.close()

    response = next(m for m in events if m.event == "OriginateResponse")
    assert response.get("Response") == "Failure" and response.action_id == "orig"
    assert response.get("Reason") == ("8" if target in ("t1", "t2") else "0")  # never 1
    role_of = {channel.uniqueid: role for role, channel in call.legs.items()}
    hangups = [(role_of[m.get("Uniqueid")], int(m.get("Cause"))) for m in events if m.event == "Hangup"]
    assert sorted(role for role, _ in hangups) == list(ROLES)
    assert hangups[0][0] == target  # the targeted leg first (always, in the captured order)
    if cause is None:
        assert {c for _, c in hangups} <= {0, 34}
    else:
        assert dict(hangups)[target] == cause
    dial_ends_of_d1 = [m.get("DialStatus") for m in events if m.event == "DialEnd" and not m.get("Channel")]
    assert dial_ends_of_d1 == (["NOANSWER"] if target in ("d1", "d2") else ["CONGESTION"])
    assert call.ended_by == "hangup_action" and call.reason == int(response.get("Reason"))


async def test_the_targeted_leg_is_usually_but_not_always_first_in_varied_orders() -> None:
    async with ringing_server(order="varied", seed=3) as server:
        client = await RawAmiClient.connect(*server.address)
        await client.login(events="off")
        calls = [await ring_one(server, client, f"o{i}", f"V11261010100000009{i:02d}") for i in range(40)]
        for index, call in enumerate(calls):
            await client.action(
                ("Action", "Hangup"), ("ActionID", f"h{index}"), ("Channel", call.legs["d1"].name)
            )
        await server.wait_calls_finished()
        stream = server.events_since(0)
        await client.close()
    first_hangup = {}
    for message in stream:
        if message.event == "Hangup" and message.get("Linkedid") not in first_hangup:
            first_hangup[message.get("Linkedid")] = message.get("Uniqueid")
    firsts = sum(first_hangup[call.linkedid] == call.legs["d1"].uniqueid for call in calls)
    assert 0.6 * len(calls) <= firsts < len(calls)  # "usually" (6a.3)
    assert {call.reason for call in calls} == {0}


async def test_hangup_without_cause_on_an_answered_call_ends_it_from_the_targeted_side() -> None:
    async with ringing_server() as server:
        server.rules.timing_overrides["918005551212"] = CallTiming(ring=1.0, talk=None, vdad_wait=None)
        client = await RawAmiClient.connect(*server.address)
        await client.login(events="off")
        client.send(*originate_pairs("ans", "Local/918005551212@default", "V1126101010000000950"))
        await server.wait_until(lambda: any(call.answered for call in server.calls))
        await server.wait_until(lambda: sum(1 for ch in server.channels.values() if ch.bridge_id) == 2)
        call = server.calls[0]
        mark = server.mark()
        await client.action(("Action", "Hangup"), ("ActionID", "h"), ("Channel", call.legs["t1"].name))
        await server.wait_calls_finished()
        await client.close()
    hangups = [m for m in server.events_since(mark) if m.event == "Hangup"]
    assert [m.get("Channel").split("@")[1][:5] for m in hangups[:2]] == ["trunk", "trunk"]
    assert {m.get("Cause") for m in hangups} == {"16"} and call.reason == 4


async def test_panoramisk_sees_the_failure_of_an_originate_it_hung_up() -> None:
    async with ringing_server() as server:
        manager = panoramisk.Manager(
            host=server.host, port=server.port, username="cron", secret="1234", events="call", ping_delay=3600
        )
        await manager.connect()
        try:
            await asyncio.wait_for(manager.authenticated_future, 5)
            originate = asyncio.ensure_future(
                manager.send_action(
                    {
                        "Action": "Originate",
                        "ActionID": "pano-1",
                        "Channel": f"Local/{RINGING}@default",
                        "Exten": "8365",
                        "Context": "default",
                        "Priority": "1",
                        "Callerid": "V1126101010000000960",
                        "Timeout": "600000",
                        "Async": "true",
                    }
                )
            )
            await server.wait_until(lambda: sum(1 for ch in server.channels.values() if ch.state == 5) == 2)
            ringing_leg = next(name for name in server.channels if name.endswith(";1") and "@default" in name)
            hung = await asyncio.wait_for(
                manager.send_action({"Action": "Hangup", "Channel": ringing_leg}), 5
            )
            assert hung["Message"] == "Channel Hungup"
            queued, final = await asyncio.wait_for(originate, 5)
            assert queued["Message"] == "Originate successfully queued"
            assert final["Event"] == "OriginateResponse" and final["Response"] == "Failure"
            assert final["Reason"] == "0" and final["Channel"] == f"Local/{RINGING}@default"
        finally:
            manager.close()
