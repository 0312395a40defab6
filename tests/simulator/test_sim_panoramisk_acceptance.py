"""Acceptance: panoramisk 1.4 against the simulator sees what it would see from Asterisk 22.

Three async originates (answered …1212, busy …0000, no answer …9999 with a short Timeout), a
CoreShowChannels while they are up, then the per-call event sequences compared with the captures.
panoramisk's ``testing`` module is never imported (it rewrites ``panoramisk.utils.EOL``).
"""

from __future__ import annotations

import asyncio

import panoramisk
from ami_sim_helpers import call_sequences, captured_call
from panoramisk.message import Message

from fillreactor.core.message import AmiMessage
from fillreactor.simulator import (
    CallTiming,
    OrderRules,
    OutcomeRules,
    ServerConfig,
    SimulatedAsterisk,
    TimeBase,
)

CALLS = {
    "Local/918005551212@default": ("V1126101010000000110", "60000", 5038, "4"),
    "Local/918005550000@default": ("V1126101010000000111", "60000", 5038, "5"),
    "Local/918005559999@default": ("V1126101010000000131", "4000", 5040, "3"),
}


def as_ami_message(message: Message) -> AmiMessage:
    return AmiMessage.from_pairs((str(key), str(value)) for key, value in message.items())


async def test_panoramisk_session_matches_the_captures() -> None:
    # scale 0.2: the calls ring for 600 ms of real time, a wide margin for the CoreShowChannels
    # that must list all twelve channels while they ring, even on a loaded CI machine
    rules = OutcomeRules(timing=CallTiming(ring=3.0, talk=6.0, vdad_wait=5.0), orders=OrderRules("captured"))
    async with SimulatedAsterisk(ServerConfig(name="dialer1"), time=TimeBase(0.2), rules=rules) as server:
        manager = panoramisk.Manager(
            host=server.host, port=server.port, username="cron", secret="1234", events="on", ping_delay=3600
        )
        dispatched: list[AmiMessage] = []
        all_hung_up = asyncio.Event()  # 4 Hangup events per call reached the client

        def collect(_manager: panoramisk.Manager, message: Message) -> None:
            dispatched.append(as_ami_message(message))
            if sum(1 for m in dispatched if m.event == "Hangup") == 4 * len(CALLS):
                all_hung_up.set()

        manager.register_event("*", collect)
        await manager.connect()
        try:
            login = await asyncio.wait_for(manager.authenticated_future, 5)
            assert login.success is True or login["Response"] == "Success"

            originates = {
                channel: asyncio.ensure_future(
                    manager.send_action(
                        {
                            "Action": "Originate",
                            "ActionID": f"orig-{channel[7:19]}",
                            "Channel": channel,
                            "Exten": "8365",
                            "Context": "default",
                            "Priority": "1",
                            "Callerid": callerid,
                            "Timeout": timeout,
                            "Async": "true",
                        }
                    )
                )
                for channel, (callerid, timeout, _port, _reason) in CALLS.items()
            }
            # all three calls ringing: 12 channels up
            await server.wait_until(lambda: sum(1 for c in server.channels.values() if c.state == 5) == 6)
            listing = await asyncio.wait_for(manager.send_action({"Action": "CoreShowChannels"}), 5)
            assert [m.get("Response") or m.get("Event") for m in listing] == (
                ["Success"] + ["CoreShowChannel"] * 12 + ["CoreShowChannelsComplete"]
            )
            assert listing[-1]["ListItems"] == "12"

            responses = {
                channel: await asyncio.wait_for(future, 10) for channel, future in originates.items()
            }
            await server.wait_calls_finished()
            await asyncio.wait_for(all_hung_up.wait(), 5)
        finally:
            manager.close()

    # the OriginateResponses panoramisk resolved each future with
    for channel, (callerid, _timeout, _port, reason) in CALLS.items():
        queued, final = responses[channel]
        assert queued["Message"] == "Originate successfully queued"
        assert final["Event"] == "OriginateResponse" and final["Reason"] == reason
        assert final["CallerIDName"] == callerid and final["CallerIDNum"] == "<unknown>"
        if reason == "4":
            assert final["Channel"] == f"{channel}-00000000;1" and final["Uniqueid"].endswith(".0")
        else:
            assert final["Response"] == "Failure"
            assert final["Channel"] == channel and final["Uniqueid"] == "<unknown>"

    # what panoramisk dispatched, per call, equals the capture without the OriginateResponse it consumed
    received = call_sequences(dispatched)
    assert len(received) == 3
    by_first_channel = {}
    for message in dispatched:
        if message.event == "Newchannel" and message.get("Uniqueid") == message.get("Linkedid"):
            by_first_channel[message.get("Channel").rsplit("-", 1)[0]] = message.get("Linkedid")
    for channel, (_callerid, _timeout, port, _reason) in CALLS.items():
        captured = captured_call(port, channel)
        without_response = [shape for shape in captured if shape[0] != "OriginateResponse"]
        linkedid = by_first_channel[channel]
        assert received[linkedid] == without_response
        channels = {
            m.get("Channel") for m in dispatched if m.get("Linkedid") == linkedid and m.get("Channel")
        }
        assert len(channels) == 4 and all(c.startswith("Local/") for c in channels)

    # and what the server broadcast, OriginateResponse included, equals the capture exactly
    broadcast = call_sequences(server.events_since(0))
    for channel, (_callerid, _timeout, port, _reason) in CALLS.items():
        assert broadcast[by_first_channel[channel]] == captured_call(port, channel)
