"""Every event of a call, and how many per call, against the captures and spec/AMI.md 6a.5.

Issue 8 points 5 and 10. In the captured order (``OrderRules("captured")``) each of the six captured
calls is reproduced message for message, keys and values (ids, timers and ``Wait`` lengths masked:
``comparable``), every class of event included: call, dialplan (Newexten, VarSet), user (the
UserEvent of 8365) and the DeviceStateChange events. The volumes then follow; the mix test counts
what two real sessions (``Events: call,system`` and ``Events: on``) receive per originated call.
"""

from __future__ import annotations

import asyncio

import panoramisk
import pytest
from ami_sim_helpers import (
    RawAmiClient,
    captured_whole_call,
    comparable_call,
    count_by_class,
    messages_of_call,
    originate_pairs,
)

from fillreactor.simulator import (
    CallTiming,
    OrderRules,
    OutcomeRules,
    ServerConfig,
    SimulatedAsterisk,
    TimeBase,
)

# (capture port, server name, dial string, Callerid, Timeout ms, timing that gives the captured path)
CAPTURED_CALLS = {
    "answered, 8365 hangs up first (dialer1 .0)": (
        5038, "dialer1", "Local/918005551212@default", "V1126101010000000110", 60000,
        CallTiming(ring=3.0, talk=8.0, vdad_wait=5.0),
    ),
    "answered, the trunk hangs up first (dialer1 .8)": (
        5038, "dialer1", "Local/918005551234@default", '"V1126101010000000199" <8005551234>', 60000,
        CallTiming(ring=3.0, talk=2.5, vdad_wait=5.0),
    ),
    "busy (dialer1 .4)": (
        5038, "dialer1", "Local/918005550000@default", "V1126101010000000111", 60000, CallTiming(ring=1.0),
    ),
    "congestion (dialer2 .4)": (
        5039, "dialer2", "Local/918005551111@default", "V1126101010000000121", 60000, CallTiming(ring=1.0),
    ),
    "no answer (dialer3 .4)": (
        5040, "dialer3", "Local/918005559999@default", "V1126101010000000131", 4000, CallTiming(ring=2.0),
    ),
    "bad context (dialer3 .8)": (
        5040, "dialer3", "Local/123@nosuchcontext", "V1126101010000000132", 60000, CallTiming(),
    ),
}  # fmt: skip

# Events per class of each captured call, counted by hand in fixtures/asterisk22/asterisk22-sample.txt
# (spec/AMI.md A§4: "call class 39 (+1 UserEvent), dialplan 40-43" for answered calls, on top of which
# come about 10 DeviceStateChange, BridgeCreate, BridgeDestroy and the OriginateResponse: 52 call).
CAPTURED_VOLUMES = {
    "answered, 8365 hangs up first (dialer1 .0)": {"call": 52, "dialplan": 42, "user": 1},
    "answered, the trunk hangs up first (dialer1 .8)": {"call": 52, "dialplan": 43, "user": 1},
    "busy (dialer1 .4)": {"call": 41, "dialplan": 26},
    "congestion (dialer2 .4)": {"call": 35, "dialplan": 24},
    "no answer (dialer3 .4)": {"call": 36, "dialplan": 22},
    "bad context (dialer3 .8)": {"call": 11, "dialplan": 1},
}


async def run_one_call(name: str, channel: str, callerid: str, timeout_ms: int, timing: CallTiming):
    rules = OutcomeRules(timing=timing, orders=OrderRules("captured"))
    async with SimulatedAsterisk(ServerConfig(name=name), time=TimeBase(0.01), rules=rules) as server:
        client = await RawAmiClient.connect(*server.address)
        await client.login()
        mark = server.mark()
        client.send(*originate_pairs("orig", channel, callerid, timeout_ms=timeout_ms))
        await server.wait_until(lambda: server.calls_started == 1)
        await server.wait_calls_finished()
        await client.close()
        call = server.history[-1]
        return messages_of_call(server.events_since(mark), call.linkedid or ""), call


@pytest.mark.parametrize("case", list(CAPTURED_CALLS))
async def test_each_captured_call_is_reproduced_message_for_message(case: str) -> None:
    port, name, channel, callerid, timeout_ms, timing = CAPTURED_CALLS[case]
    captured = captured_whole_call(port, channel)
    simulated, _call = await run_one_call(name, channel, callerid, timeout_ms, timing)
    assert count_by_class(captured) == CAPTURED_VOLUMES[case]  # the capture is what the table says
    assert comparable_call(simulated) == comparable_call(captured)


async def test_answered_call_carries_about_ten_device_state_changes_and_27_varsets() -> None:
    # spec/AMI.md 6a.5: "about 10 DeviceStateChange and ~27 VarSet per answered call"
    simulated, _call = await run_one_call(
        "dialer1", "Local/918005551212@default", "V1126101010000000110", 60000, CallTiming(ring=3.0, talk=8.0)
    )
    events = [message.event for message in simulated]
    assert events.count("DeviceStateChange") == 10
    assert events.count("VarSet") == 27


async def test_a_realistic_mix_sends_the_measured_volumes_per_originated_call() -> None:
    """spec/AMI.md 6a.5: ~47.5 events per originated call with Events: call,system, ~85 with Events: on.

    The mix: 70% answered (half of them hung up by the trunk first), 10% each busy, congestion and
    no answer. Hand calculation from the per-call volumes above: call,system 0.7 x 52 + 0.1 x (41 +
    35 + 36) = 47.6; on 0.7 x 95.5 + 0.1 x (67 + 59 + 58) = 85.25. That one mix lands on both
    measured figures is the check that the per-outcome volumes are right together.
    """
    numbers = (
        ["918005551212"] * 7 + ["918005551234"] * 7 + ["918005550000", "918005551111", "918005559999"] * 2
    )
    rules = OutcomeRules(timing=CallTiming(ring=1.0, talk=8.0, vdad_wait=5.0))  # varied orders
    rules.timing_overrides["918005551234"] = CallTiming(ring=1.0, talk=2.0, vdad_wait=5.0)
    async with SimulatedAsterisk(ServerConfig(name="dialer1"), time=TimeBase(0.002), rules=rules) as server:
        sessions = {events: await RawAmiClient.connect(*server.address) for events in ("call,system", "on")}
        for events, client in sessions.items():
            await client.login(events=events)
        before = {events: server.sessions[index].events_sent for index, events in enumerate(sessions)}
        # and what panoramisk dispatches to a handler of every event on a third session
        dispatched: list[str] = []
        manager = panoramisk.Manager(
            host=server.host, port=server.port, username="cron", secret="1234", events="call,system",
            ping_delay=3600,
        )  # fmt: skip
        await manager.connect()
        await asyncio.wait_for(manager.authenticated_future, 5)
        manager.register_event("*", lambda _manager, message: dispatched.append(message.event))
        await asyncio.wait_for(manager.send_action({"Action": "Ping"}), 5)
        for index, number in enumerate(numbers):
            sessions["on"].send(
                *originate_pairs(f"o{index}", f"Local/{number}@default", f"V11261010100000002{index:02d}",
                                 timeout_ms=3000)
            )  # fmt: skip
        await server.wait_until(lambda: server.calls_started == len(numbers))
        await server.wait_calls_finished()
        per_call = {
            events: (server.sessions[index].events_sent - before[events]) / len(numbers)
            for index, events in enumerate(sessions)
        }
        await asyncio.wait_for(manager.send_action({"Action": "Ping"}), 5)  # all read
        manager.close()
        per_call["panoramisk"] = len(dispatched) / len(numbers)
        for client in sessions.values():
            await client.close()
    assert per_call["call,system"] == pytest.approx(47.5, abs=1.0)
    assert per_call["panoramisk"] == per_call["call,system"]
    assert per_call["on"] == pytest.approx(85, abs=2.0)
