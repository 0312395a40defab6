"""Per-call event sequences, actions on live calls, and Callerid parsing, against the captures."""

from __future__ import annotations

import pytest
from ami_sim_helpers import RawAmiClient, call_sequences, captured_call

from fillreactor.simulator import CallTiming, SimulatedAsterisk, parse_callerid


def originate(
    client: RawAmiClient, action_id: str, channel: str, callerid: str, timeout_ms: int = 60000
) -> None:
    client.send(
        ("Action", "Originate"),
        ("ActionID", action_id),
        ("Channel", channel),
        ("Exten", "8365"),
        ("Context", "default"),
        ("Priority", "1"),
        ("Callerid", callerid),
        ("Timeout", str(timeout_ms)),
        ("Async", "true"),
        ("VDACnote", "ignored by Asterisk"),
    )


def call_of(server: SimulatedAsterisk, mark: int) -> list[tuple[str, str]]:
    sequences = call_sequences(server.events_since(mark))
    assert len(sequences) == 1
    return next(iter(sequences.values()))


@pytest.mark.parametrize(
    ("port", "channel", "callerid", "timeout_ms"),
    [
        (5038, "Local/918005551212@default", "V1126101010000000110", 60000),  # answered, 8365 hangs up first
        (5038, "Local/918005550000@default", "V1126101010000000111", 60000),  # busy
        (5039, "Local/918005551111@default", "V1126101010000000121", 60000),  # congestion
        (5040, "Local/918005559999@default", "V1126101010000000131", 4000),  # no answer
        (5040, "Local/123@nosuchcontext", "V1126101010000000132", 60000),  # bad context
    ],
)
async def test_each_outcome_sends_the_captured_call_class_sequence(
    server: SimulatedAsterisk, client: RawAmiClient, port: int, channel: str, callerid: str, timeout_ms: int
) -> None:
    await client.login()
    mark = server.mark()
    originate(client, "orig", channel, callerid, timeout_ms)
    await server.wait_until(lambda: server.calls_started == 1)
    await server.wait_calls_finished()
    assert call_of(server, mark) == captured_call(port, channel)


async def test_trunk_hanging_up_first_follows_the_other_captured_order(
    server: SimulatedAsterisk, client: RawAmiClient
) -> None:
    server.rules.timing_overrides["918005551234"] = CallTiming(ring=3.0, talk=2.5, vdad_wait=5.0)
    await client.login()
    mark = server.mark()
    originate(client, "cid", "Local/918005551234@default", '"V1126101010000000199" <8005551234>')
    await server.wait_until(lambda: server.calls_started == 1)
    await server.wait_calls_finished()
    assert call_of(server, mark) == captured_call(5038, "Local/918005551234@default")


async def test_originate_response_shapes_match_the_capture(
    server: SimulatedAsterisk, client: RawAmiClient
) -> None:
    await client.login(events="call")
    originate(client, "ok", "Local/918005551212@default", "V1126101010000000110")
    originate(client, "busy", "Local/918005550000@default", "V1126101010000000111")
    responses = {}
    while len(responses) < 2:
        message = await client.read()
        if message.event == "OriginateResponse":
            responses[message.action_id] = message
    assert list(responses["busy"].pairs) == [
        ("Event", "OriginateResponse"),
        ("Privilege", "call,all"),
        ("ActionID", "busy"),
        ("Response", "Failure"),
        ("Channel", "Local/918005550000@default"),
        ("Context", "default"),
        ("Exten", "8365"),
        ("Reason", "5"),
        ("Uniqueid", "<unknown>"),
        ("CallerIDNum", "<unknown>"),
        ("CallerIDName", "V1126101010000000111"),
    ]
    ok = responses["ok"]
    assert ok.get("Response") == "Success" and ok.get("Reason") == "4"
    assert ok.get("Channel") == "Local/918005551212@default-00000000;1"
    assert ok.get("Uniqueid").endswith(".0") and "Linkedid" not in ok.fields


async def test_four_channels_share_the_linkedid_of_the_first_leg(
    server: SimulatedAsterisk, client: RawAmiClient
) -> None:
    await client.login()
    originate(client, "ok", "Local/918005551212@default", "V1126101010000000110")
    await server.wait_until(lambda: len(server.channels) == 4)
    channels = list(server.channels.values())
    assert [c.name for c in channels] == [
        "Local/918005551212@default-00000000;1",
        "Local/918005551212@default-00000000;2",
        "Local/18005551212@trunk-00000001;1",
        "Local/18005551212@trunk-00000001;2",
    ]
    # the epoch part is the creation time; the counter part counts from 0 per server
    assert [c.uniqueid.split(".")[1] for c in channels] == ["0", "1", "2", "3"]
    assert {c.linkedid for c in channels} == {channels[0].uniqueid}


def test_callerid_parsing_as_captured() -> None:
    assert parse_callerid("V1126101010000000123") == ("V1126101010000000123", "<unknown>")
    assert parse_callerid('"V1126101010000000199" <8005551234>') == ("V1126101010000000199", "8005551234")
    assert parse_callerid("") == ("<unknown>", "<unknown>")
    assert parse_callerid("8005551234") == ("<unknown>", "8005551234")


async def test_core_show_channels_and_status_list_live_channels(
    server: SimulatedAsterisk, client: RawAmiClient
) -> None:
    await client.login(events="off")
    originate(client, "ok", "Local/918005551212@default", "V1126101010000000110")
    await server.wait_until(
        lambda: len(server.channels) == 4 and sum(1 for c in server.channels.values() if c.state == 5) == 2
    )
    client.send(("Action", "CoreShowChannels"), ("ActionID", "csc"))
    listing = await client.read_until(lambda m: m.event == "CoreShowChannelsComplete")
    listing = [m for m in listing if m.action_id == "csc"]
    assert [m.response or m.event for m in listing] == ["Success"] + ["CoreShowChannel"] * 4 + [
        "CoreShowChannelsComplete"
    ]
    assert listing[0].get("EventList") == "start" and listing[0].get("Message") == "Channels will follow"
    row = listing[1]
    assert [key for key, _ in row.pairs][:2] == ["Event", "ActionID"] and "Privilege" not in row.fields
    assert [key for key, _ in row.pairs][-4:] == ["Application", "ApplicationData", "Duration", "BridgeId"]
    assert row.get("Application") == "AppDial2" and row.get("ApplicationData") == "(Outgoing Line)"
    assert listing[2].get("ApplicationData") == "Local/18005551212@trunk,90"
    assert listing[-1].get("ListItems") == "4" and listing[-1].action_id == "csc"

    client.send(("Action", "Status"), ("ActionID", "st"))
    status = await client.read_until(lambda m: m.event == "StatusComplete")
    assert [m.response or m.event for m in status] == ["Success"] + ["Status"] * 4 + ["StatusComplete"]
    assert status[1].get("Privilege") == "Call" and status[1].pairs[-1] == ("ActionID", "st")
    assert status[-1].get("Items") == "4"


async def test_empty_core_show_channels_lists_zero(client: RawAmiClient) -> None:
    await client.login(events="off")
    client.send(("Action", "CoreShowChannels"), ("ActionID", "csc"))
    listing = await client.read_until(lambda m: m.event == "CoreShowChannelsComplete")
    assert len(listing) == 2 and listing[-1].get("ListItems") == "0"


async def test_hangup_action_ends_the_call(server: SimulatedAsterisk, client: RawAmiClient) -> None:
    server.rules.timing_overrides["918005551212"] = CallTiming(ring=1.0, talk=None, vdad_wait=None)
    await client.login(events="off")
    originate(client, "ok", "Local/918005551212@default", "V1126101010000000110")
    await server.wait_until(lambda: any(call.answered for call in server.calls))
    mark = server.mark()
    reply = await client.action(
        ("Action", "Hangup"),
        ("ActionID", "h"),
        ("Channel", "Local/918005551212@default-00000000;1"),
        ("Cause", "16"),
    )
    assert list(reply.pairs) == [("Response", "Success"), ("ActionID", "h"), ("Message", "Channel Hungup")]
    await server.wait_calls_finished()
    hangups = [m for m in server.events_since(mark) if m.event == "Hangup"]
    assert len(hangups) == 4 and {m.get("Cause") for m in hangups} == {"16"}
    missing = await client.action(("Action", "Hangup"), ("ActionID", "h2"), ("Channel", "Local/nothing-1;1"))
    assert missing.get("Response") == "Error" and missing.get("Message") == "No such channel"


async def test_originate_without_async_answers_when_the_call_is_decided(
    server: SimulatedAsterisk, client: RawAmiClient
) -> None:
    await client.login(events="off")
    client.send(
        ("Action", "Originate"),
        ("ActionID", "sync"),
        ("Channel", "Local/918005550000@default"),
        ("Exten", "8365"),
        ("Context", "default"),
        ("Callerid", "V1126101010000000111"),
    )
    reply = await client.read()
    assert reply.get("Response") == "Error" and reply.get("Message") == "Originate failed"
    assert server.calls_started == 1


async def test_command_core_show_channels_concise(server: SimulatedAsterisk, client: RawAmiClient) -> None:
    await client.login(events="off")
    originate(client, "ok", "Local/918005551212@default", "V1126101010000000110")
    await server.wait_until(lambda: len(server.channels) == 4)
    reply = await client.action(
        ("Action", "Command"), ("ActionID", "c"), ("Command", "core show channels concise")
    )
    outputs = reply.get_all("Output")
    assert len(outputs) == 4
    assert outputs[0].startswith("Local/918005551212@default-00000000;1!default!918005551212!1!")
    assert outputs[0].split("!")[-1] == server.channels[outputs[0].split("!")[0]].uniqueid
