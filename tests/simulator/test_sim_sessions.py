"""Login, the session actions and event masks, as the captures and spec/AMI.md A§6 describe."""

from __future__ import annotations

import hashlib

from ami_sim_helpers import RawAmiClient, captured_messages

from fillreactor.simulator import SimulatedAsterisk


async def test_banner_and_plain_login_then_fully_booted_and_successful_auth(
    server: SimulatedAsterisk,
) -> None:
    client = await RawAmiClient.connect(*server.address)
    reply = await client.login()
    assert client.framer.banner == "Asterisk Call Manager/11.0.0"
    assert list(reply.pairs) == [
        ("Response", "Success"),
        ("ActionID", "login"),
        ("Message", "Authentication accepted"),
    ]
    booted, auth = await client.read(), await client.read()
    captured = captured_messages(5038)
    assert [k for k, _ in booted.pairs] == [k for k, _ in captured[1].pairs]  # FullyBooted
    assert booted.get("Privilege") == "system,all" and booted.get("Status") == "Fully Booted"
    assert [k for k, _ in auth.pairs] == [k for k, _ in captured[2].pairs]  # SuccessfulAuth
    assert auth.get("AccountID") == "cron" and auth.get("LocalAddress").endswith(f"/{server.port}")
    await client.close()


async def test_md5_challenge_login(client: RawAmiClient) -> None:
    challenge = await client.action(("Action", "Challenge"), ("ActionID", "c"), ("AuthType", "MD5"))
    key = hashlib.md5((challenge.get("Challenge") + "1234").encode()).hexdigest()
    reply = await client.action(
        ("Action", "Login"), ("ActionID", "l"), ("AuthType", "MD5"), ("Username", "cron"), ("Key", key)
    )
    assert reply.get("Message") == "Authentication accepted"


async def test_wrong_secret_is_refused_and_the_socket_closed(
    server: SimulatedAsterisk, client: RawAmiClient
) -> None:
    reply = await client.login(secret="wrong")
    assert list(reply.pairs) == [
        ("Response", "Error"),
        ("ActionID", "login"),
        ("Message", "Authentication failed"),
    ]
    assert await client.closed_by_peer()
    assert server.failed_logins == 1


async def test_actions_before_login_are_refused(client: RawAmiClient) -> None:
    reply = await client.action(("Action", "Ping"), ("ActionID", "p"))
    assert reply.get("Response") == "Error" and reply.get("Message") == "Permission denied"


async def test_unknown_action_ping_events_and_logoff(client: RawAmiClient) -> None:
    await client.login(events="off")
    unknown = await client.action(("Action", "Frobnicate"), ("ActionID", "u"))
    assert unknown.get("Response") == "Error"
    assert unknown.get("Message").startswith("Invalid/unknown command: Frobnicate")
    ping = await client.action(("Action", "Ping"), ("ActionID", "p"))
    assert [k for k, _ in ping.pairs] == ["Response", "ActionID", "Ping", "Timestamp"] and ping.get(
        "Ping"
    ) == "Pong"
    seconds, _, micro = ping.get("Timestamp").partition(".")
    assert seconds.isdigit() and len(micro) == 6
    on = await client.action(("Action", "Events"), ("ActionID", "e"), ("EventMask", "call,system"))
    assert on.get("Events") == "On"
    off = await client.action(("Action", "Events"), ("ActionID", "e2"), ("EventMask", "off"))
    assert off.get("Events") == "Off"
    bye = await client.action(("Action", "Logoff"), ("ActionID", "bye"))
    assert list(bye.pairs) == [
        ("Response", "Goodbye"),
        ("ActionID", "bye"),
        ("Message", "Thanks for all the fish."),
    ]
    assert await client.closed_by_peer()


async def test_event_masks_decide_what_each_session_receives(server: SimulatedAsterisk) -> None:
    sessions = {
        mask: await RawAmiClient.connect(*server.address) for mask in ("on", "call,system", "off", "system")
    }
    for mask, client in sessions.items():
        await client.login(events=mask)
    # an originate from a session with no events at all still runs and broadcasts
    await sessions["off"].action(
        ("Action", "Originate"),
        ("ActionID", "o"),
        ("Channel", "Local/918005551212@default"),
        ("Exten", "8365"),
        ("Context", "default"),
        ("Callerid", "V1126101010000000110"),
        ("Async", "true"),
    )
    await server.wait_until(lambda: server.calls_started == 1)
    await server.wait_calls_finished()
    expected = len(server.event_log)
    ping = [("Action", "Ping"), ("ActionID", "sync")]
    received: dict[str, list[str]] = {}
    for mask, client in sessions.items():
        client.send(*ping)  # its reply comes after every event already sent to that session
        messages = await client.read_until(lambda m: m.action_id == "sync")
        received[mask] = [m.event for m in messages if m.event]
        await client.close()
    classes_on = {m.get("Privilege").split(",")[0] for m in server.events_since(0)}
    assert classes_on == {"call", "dialplan", "user", "security"}  # SuccessfulAuth is a broadcast
    assert len([e for e in received["on"] if e != "FullyBooted"]) == expected
    # the first session to log in saw the SuccessfulAuth of all four logins (AMI.md 6a, issue 8.9)
    assert received["on"].count("SuccessfulAuth") == 4
    assert received["off"] == []
    assert received["system"] == ["FullyBooted"]
    call_only = received["call,system"]
    assert call_only[0] == "FullyBooted" and "SuccessfulAuth" not in call_only
    assert "Newexten" not in call_only and "VarSet" not in call_only and "UserEvent" not in call_only
    assert "Newchannel" in call_only and "OriginateResponse" in call_only
