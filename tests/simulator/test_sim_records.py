"""What the simulator records, for end-to-end tests to check fillreactor against.

Every Originate (accepted, refused, or placed by the server's own dialer) with its ActionID and the
answer it got; every call with its outcome, Reason, OriginateResponse, how it ended and its channels;
the live calls and channels at any moment.
"""

from __future__ import annotations

from ami_sim_helpers import RawAmiClient, originate_pairs

from fillreactor.simulator import CallTiming, Outcome, OutcomeRules, ServerConfig, SimulatedAsterisk, TimeBase


async def test_originates_and_calls_are_recorded_with_what_happened() -> None:
    rules = OutcomeRules(timing=CallTiming(ring=5.0, talk=2.0, vdad_wait=5.0))  # 50 ms of ringing
    async with SimulatedAsterisk(ServerConfig(name="dialer1"), time=TimeBase(0.01), rules=rules) as server:
        client = await RawAmiClient.connect(*server.address)
        await client.login(events="call")
        client.send(
            *originate_pairs("V1126101010000001500", "Local/918005551212@default", "V1126101010000001500")
        )
        client.send(
            *originate_pairs("V1126101010000001501", "Local/918005550000@default", "V1126101010000001501")
        )
        refused = await client.action(("Action", "Originate"), ("ActionID", "no-channel"), ("Async", "true"))
        assert refused.get("Message") == "Channel not specified"
        own = server.place_call("918005551111", "V1126101010000001502", action_id="V1126101010000001502")
        await server.wait_until(lambda: len(server.live_channel_names()) == 12)
        assert server.live_call_ids() == {f"V112610101000000150{i}" for i in range(3)}
        assert len(server.live_calls()) == 3
        await server.wait_calls_finished()
        responses = await client.read_until(
            lambda m: m.event == "OriginateResponse" and m.action_id == "V1126101010000001500"
        )
        await client.close()

    assert [(r.action_id, r.answer, r.session_id is None) for r in server.originates] == [
        ("V1126101010000001500", "queued", False),
        ("V1126101010000001501", "queued", False),
        ("no-channel", "Channel not specified", False),
        ("V1126101010000001502", "placed", True),
    ]
    assert server.originates[2].call is None and not server.originates[2].accepted
    assert [r.reason for r in server.originates] == [4, 5, None, 8]
    answered = server.call_by_id("V1126101010000001500")
    assert answered is not None and answered.outcome is Outcome.ANSWER and answered.ended_by == "dialplan"
    assert answered.response == next(m for m in responses if m.action_id == "V1126101010000001500")
    assert len(answered.channel_names) == 4 and answered.linkedid == answered.uniqueids[0]
    assert own.reason == 8 and own.placed_by_dialer and own.hangups_before_response is not None
    assert server.live_call_ids() == set() and server.live_channel_names() == set()
    assert {call.call_id for call in server.history} == {f"V112610101000000150{i}" for i in range(3)}
