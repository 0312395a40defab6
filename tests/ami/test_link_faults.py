"""An AMI link under faults: dead links, drops, restarts, bad bytes, graceful shutdown, filters.

Emulated here (``ami_link_helpers.TestAsterisk``) until the simulator has them: the Shutdown
event, "Asterisk is shutting down" replies, ``Action: Filter``.
"""

from __future__ import annotations

import logging
import re
from dataclasses import replace

import pytest
from ami_link_helpers import (
    FAST_SETTINGS,
    SHUTDOWN_EVENT,
    ModelRecorder,
    TestAsterisk,
    make_server,
    originate_fields,
    sentinel,
    start_link,
    target_of,
)

from fillreactor.ami import DEFAULT_FILTER_EVENTS, OriginateStatus
from fillreactor.ami import LinkChangeKind as K
from fillreactor.ami.config import filter_pattern
from fillreactor.core.events import ChannelCreated, ChannelStateChanged, Shutdown

IP = "10.0.0.1"


def saw_sentinel(recorder: ModelRecorder, uniqueid: str) -> bool:
    return any(isinstance(e, ChannelStateChanged) and e.uniqueid == uniqueid for e in recorder.events())


async def test_a_silent_server_is_detected_by_ping_and_the_link_comes_back(
    server: TestAsterisk, recorder: ModelRecorder, link_factory
) -> None:
    link = link_factory(target_of(server))
    await recorder.wait_for(lambda: link.ready)
    server.faults.go_silent()  # half-open: the socket stays up, nothing is answered
    await recorder.wait_for(lambda: recorder.count(IP, K.DOWN) == 1)
    assert recorder.changes(kind=K.DOWN)[0].detail == "no reply to Ping within 0.3 s"
    assert not link.ready and link.counters.ping_timeouts == 1
    server.faults.resume()
    await recorder.wait_for(lambda: recorder.count(IP, K.RESYNCED, accepted=True) == 2)
    assert link.ready and recorder.model.dialable(IP) and recorder.disagreements == []


async def test_a_dropped_connection_reconnects_and_resyncs(
    server: TestAsterisk, recorder: ModelRecorder, link_factory
) -> None:
    link = link_factory(target_of(server))
    await recorder.wait_for(lambda: link.ready)
    assert server.faults.drop() == 1
    await recorder.wait_for(lambda: recorder.count(IP, K.RESYNCED, accepted=True) == 2)
    down = recorder.changes(kind=K.DOWN)[0].detail
    assert down.startswith(("connection lost: ConnectionResetError", "connection closed by the server"))
    assert link.counters.connects == 2 and link.counters.sessions_lost == 1 and link.counters.logins == 2
    assert len(server.actions_named("CoreShowChannels")) == 2  # a resync after every login
    assert [s for s, _a in server.actions_named("Login")] == sorted(server.wire)  # one per session


async def test_after_a_restart_the_resync_replaces_the_channels_the_link_missed(
    server: TestAsterisk, recorder: ModelRecorder, link_factory
) -> None:
    server.place_call("918005551212", "V1126101010000000031")
    await server.wait_until(lambda: len(server.channels) == 4)
    link = link_factory(target_of(server))
    await recorder.wait_for(lambda: link.ready)
    assert len(recorder.model.live_channels(IP)) == 4
    await server.faults.restart()  # channels vanish without a Hangup, counters restart
    await recorder.wait_for(lambda: recorder.count(IP, K.RESYNCED, accepted=True) == 2)
    assert recorder.model.live_channels(IP) == {} and server.channels == {}
    # A real restart takes >= 2 s, so new Uniqueids (<epoch>.<n>) never repeat the ended calls'
    # ones (spec/AMI.md A 6a.1); the fast test clock can put both in one simulated second, where
    # the model's tombstones would rightly hide the repeats: move the counter past them.
    server.uniqueid_counter = 4
    server.place_call("918005551234", "V1126101010000000032")
    await server.wait_until(lambda: len(server.channels) == 4)
    server.emit(sentinel("sentinel.2"))
    await recorder.wait_for(lambda: saw_sentinel(recorder, "sentinel.2"))
    assert set(recorder.model.live_channels(IP)) - {"sentinel.2"} == {
        ch.uniqueid for ch in server.channels.values()
    }


async def test_garbage_oversized_unknown_and_malformed_frames_do_not_hurt_the_link(
    server: TestAsterisk, recorder: ModelRecorder, link_factory
) -> None:
    link = link_factory(target_of(server), replace(FAST_SETTINGS, max_message_bytes=65536))
    await recorder.wait_for(lambda: link.ready)
    server.faults.send_garbage()
    server.faults.send_oversized(size=200_000)
    server.emit([("Event", "BrandNewEvent"), ("Privilege", "call,all"), ("Thing", "x")])
    server.emit(
        [("Event", "Newchannel"), ("Privilege", "call,all"), ("Channel", "SIP/x-1"), ("ChannelState", "0")]
    )
    server.place_call("918005551212", "V1126101010000000041")
    await server.wait_until(lambda: len(server.channels) == 4)
    server.emit(sentinel("sentinel.3"))
    await recorder.wait_for(lambda: saw_sentinel(recorder, "sentinel.3"))
    assert sum(isinstance(e, ChannelCreated) for e in recorder.events()) == 4
    stats = link.stats()
    assert stats["oversized_frames"] == 1 and stats["malformed_events"] == 1  # Newchannel without Uniqueid
    assert link.ready and link.counters.connects == 1
    # and a read cut inside a UTF-8 character keeps the name whole (decoded per message)
    frame = (
        "Event: Newchannel\r\nPrivilege: call,all\r\nChannel: SIP/zoe-1\r\nChannelState: 0\r\n"
        "ChannelStateDesc: Down\r\nCallerIDNum: 100\r\nCallerIDName: Zoë Müller\r\n"
        "ConnectedLineNum: <unknown>\r\nConnectedLineName: <unknown>\r\n"
        "Uniqueid: 42.1\r\nLinkedid: 42.1\r\n\r\n"
    ).encode()
    cut = frame.index("ë".encode()) + 1
    link.protocol.data_received(frame[:cut])
    link.protocol.data_received(frame[cut:])
    assert recorder.events()[-1] == ChannelCreated("SIP/zoe-1", "42.1", "42.1", 0, "Zoë Müller", "")


async def test_a_shutdown_event_makes_the_link_not_ready_at_once(
    server: TestAsterisk, recorder: ModelRecorder, link_factory
) -> None:
    link = link_factory(target_of(server))
    await recorder.wait_for(lambda: link.ready)
    at_shutdown = []

    def on_change(_server: str, change) -> None:
        if change.kind is K.SHUTTING_DOWN:
            ticket = link.send_originate(
                originate_fields("918005551212", "V1126101010000000051"), action_id="V1126101010000000051"
            )
            at_shutdown.append((link.ready, ticket.written_at, ticket.reply.result().status))

    recorder.on_change = on_change
    mark = len(recorder.seen)
    server.emit(SHUTDOWN_EVENT)
    await recorder.wait_for(lambda: recorder.count(IP, K.SHUTTING_DOWN) == 1)
    await server.stop()  # then Asterisk goes away (emulated: the simulator has no graceful stop yet)
    await recorder.wait_for(lambda: recorder.count(IP, K.DOWN) >= 1)
    after = [s.event if s.event is not None else s.change.kind for s in recorder.seen[mark:]]
    assert after[:3] == [Shutdown(restart=True), K.SHUTTING_DOWN, K.DOWN]
    assert at_shutdown == [(False, None, OriginateStatus.NOT_SENT)]
    await server.start()  # back on the same port
    await recorder.wait_for(lambda: recorder.count(IP, K.RESYNCED, accepted=True) == 2)
    assert link.ready and server.actions_named("Originate") == []
    assert link.counters.shutdowns == 1 and recorder.disagreements == []


async def test_shutting_down_replies_make_the_link_not_ready_until_a_resync_succeeds(
    server: TestAsterisk, recorder: ModelRecorder, link_factory
) -> None:
    link = link_factory(target_of(server))
    await recorder.wait_for(lambda: link.ready)
    tickets = []
    order = []
    recorder.on_change = lambda _s, change: (
        order.append((change.kind, link.ready, tickets[0].reply.done()))
        if change.kind is K.SHUTTING_DOWN
        else None
    )
    server.shutting_down = True  # a graceful stop began: every action is refused
    tickets.append(
        link.send_originate(
            originate_fields("918005551212", "V1126101010000000061"), action_id="V1126101010000000061"
        )
    )
    reply = await tickets[0].reply
    assert (reply.status, reply.message) == (OriginateStatus.ERROR, "Asterisk is shutting down")
    # not ready at the moment the reply was read, before the originate's caller heard of it
    assert order == [(K.SHUTTING_DOWN, False, False)]
    assert not link.ready
    second = link.send_originate(
        originate_fields("918005551212", "V1126101010000000062"), action_id="V1126101010000000062"
    )
    assert (await second.reply).status is OriginateStatus.NOT_SENT
    await recorder.wait_for(
        lambda: any(not c.accepted and "shutting down" in c.detail for c in recorder.changes(kind=K.RESYNCED))
    )
    assert recorder.count(IP, K.DOWN) == 0  # the session stays: its calls still send events
    server.shutting_down = False  # the stop was aborted
    await recorder.wait_for(lambda: link.ready)
    assert recorder.count(IP, K.RESYNCED, accepted=True) == 2 and link.counters.connects == 1
    assert link.counters.shutdowns == 1 and recorder.model.dialable(IP) and recorder.disagreements == []
    assert [a.get("ActionID") for _s, a in server.actions_named("Originate")] == ["V1126101010000000061"]


async def test_a_refused_filter_is_logged_once_and_is_not_fatal(
    server: TestAsterisk, recorder: ModelRecorder, link_factory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="fillreactor.ami.link")
    link = link_factory(target_of(server), replace(FAST_SETTINGS, filter_events=DEFAULT_FILTER_EVENTS))
    await recorder.wait_for(lambda: link.ready)
    server.faults.drop()
    await recorder.wait_for(lambda: recorder.count(IP, K.RESYNCED, accepted=True) == 2)
    assert link.counters.filter_refused == 2
    refused = [r for r in caplog.records if "Filter refused" in r.getMessage()]
    assert [r.levelno for r in refused] == [logging.WARNING, logging.DEBUG]
    assert len(server.actions_named("Filter")) == 2


async def test_the_filter_is_applied_after_every_login_and_passes_what_the_model_needs(
    recorder: ModelRecorder, link_factory
) -> None:
    async with make_server(filter_supported=True) as server:
        link = link_factory(target_of(server), replace(FAST_SETTINGS, filter_events=DEFAULT_FILTER_EVENTS))
        await recorder.wait_for(lambda: link.ready)
        server.faults.drop()
        await recorder.wait_for(lambda: recorder.count(IP, K.RESYNCED, accepted=True) == 2)
        filters = server.actions_named("Filter")
        assert [s for s, _a in filters] == sorted(server.wire)  # once per session
        assert {a.get("Operation") for _s, a in filters} == {"Add"}
        server.place_call("918005551212", "V1126101010000000071")
        await server.wait_until(lambda: len(server.channels) == 4)
        server.emit(sentinel("sentinel.4"))
        await recorder.wait_for(lambda: saw_sentinel(recorder, "sentinel.4"))
        assert len(recorder.model.live_channels(IP)) == 5  # the call's 4 channels and the sentinel
        # the filtered session got the call events, and none of the dialplan/device noise
        session = max(server.wire)
        names = {f.event for f in server.wire_frames(session) if f.event}
        assert {"Newchannel", "Newstate", "NewCallerid", "NewConnectedLine"} <= names
        assert not names & {"VarSet", "Newexten", "DeviceStateChange", "DialBegin", "LocalBridge"}


def test_the_filter_pattern_matches_whole_event_names_only() -> None:
    pattern = re.compile(filter_pattern(["Hangup", "Status", "Shutdown"]).encode())
    assert pattern.pattern == rb"^Event: (Hangup|Shutdown|Status)[^A-Za-z0-9_]"
    assert pattern.search(b"Event: Hangup\r\nPrivilege: call,all\r\n")
    assert pattern.search(b"Event: Status\r\nPrivilege: Call\r\n")
    assert not pattern.search(b"Event: HangupRequest\r\nPrivilege: call,all\r\n")
    assert not pattern.search(b"Event: StatusComplete\r\n")
    assert not pattern.search(b"Event: UserEvent\r\nUserEvent: Hangup\r\n")
    with pytest.raises(ValueError):
        filter_pattern(["Hangup|.*"])
    # every name the normaliser keeps is in the default filter, FullyBooted and Shutdown included
    assert {"FullyBooted", "Shutdown", "Newchannel", "Hangup", "OriginateResponse"} <= set(
        DEFAULT_FILTER_EVENTS
    )


async def drop_twice(server: TestAsterisk, reset_after: float) -> list[object]:
    """The consecutive-failure count of a link after each of two drops."""
    recorder = ModelRecorder()
    link = start_link(recorder, target_of(server), replace(FAST_SETTINGS, reconnect_reset_after=reset_after))
    failures = []
    try:
        for n in (1, 2):
            await recorder.wait_for(lambda n=n: recorder.count(IP, K.RESYNCED, accepted=True) == n)
            server.faults.drop()
            await recorder.wait_for(lambda n=n: recorder.count(IP, K.CONNECTING) == n + 1)
            failures.append(link.stats()["consecutive_failures"])
    finally:
        await link.stop()
    return failures


async def test_backoff_restarts_only_after_a_session_that_stayed_ready(server: TestAsterisk) -> None:
    """Two drops in a row: with a long reset period the attempts add up, with a short one they restart."""
    assert await drop_twice(server, 60.0) == [1, 2]
    assert await drop_twice(server, 1e-6) == [1, 1]
