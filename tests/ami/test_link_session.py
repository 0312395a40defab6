"""An AMI link's session against the simulator: login, resync, events, the handler contract.

Expected values come from the simulator's own records (the bytes it wrote to the session, the
actions it received, its channel table), never from what the link reports.
"""

from __future__ import annotations

import asyncio
import socket
import time
from dataclasses import replace

from ami_link_helpers import (
    FAST_SETTINGS,
    ModelRecorder,
    Recorder,
    TestAsterisk,
    originate_fields,
    sentinel,
    start_link,
    target_of,
)

from fillreactor.ami import LinkChangeKind as K
from fillreactor.ami import LinkState, LinkTarget, OriginateStatus
from fillreactor.core.events import (
    ChannelCreated,
    ChannelStateChanged,
    OriginateResult,
    SnapshotEnd,
    SnapshotRow,
)

IP = "10.0.0.1"


async def test_login_resync_and_every_event_exactly_once_in_wire_order(
    server: TestAsterisk, recorder: ModelRecorder, link_factory
) -> None:
    server.place_call("918005551212", "V1126101010000000001")  # a live call before the link exists
    await server.wait_until(lambda: len(server.channels) == 4)

    wrote = bytearray()  # what the link wrote, as seen at its transport
    written_at_resync_start: list[bool] = []

    def on_change(_server: str, change) -> None:
        if change.kind is K.LOGGED_IN:
            transport = link.protocol.transport
            real = transport.write

            def write(data: bytes) -> None:
                wrote.extend(data)
                real(data)

            transport.write = write
        elif change.kind is K.RESYNC_STARTED:
            written_at_resync_start.append(change.action_id.encode() in wrote)

    recorder.on_change = on_change
    link = link_factory(target_of(server))
    await recorder.wait_for(lambda: link.ready)

    assert recorder.kinds() == [K.CONNECTING, K.LOGGED_IN, K.RESYNC_STARTED, K.RESYNCED]
    started, resynced = recorder.changes(kind=K.RESYNC_STARTED)[0], recorder.changes(kind=K.RESYNCED)[0]
    assert resynced.accepted and resynced.action_id == started.action_id
    assert resynced.detail == "4 channels"  # the simulator's 4 Local halves of one call
    assert written_at_resync_start == [False]  # reported before its bytes were written
    # the CoreShowChannels the server received carried the reported ActionID
    [(_sid, listing)] = server.actions_named("CoreShowChannels")
    assert listing.get("ActionID") == started.action_id
    [(_sid, login)] = server.actions_named("Login")
    assert login.get("Events") == "call,system"
    assert link.state is LinkState.READY and recorder.model.dialable(IP)

    # three originates: answered, busy (Reason 5), congestion (Reason 8)
    calls = {
        "V1126101010000000002": "918005551212",
        "V1126101010000000003": "918005550000",
        "V1126101010000000004": "918005551111",
    }
    tickets = [
        link.send_originate(originate_fields(n, call_id), action_id=call_id) for call_id, n in calls.items()
    ]
    replies = [await ticket.reply for ticket in tickets]
    assert [r.status for r in replies] == [OriginateStatus.QUEUED] * 3
    assert all(r.message == "Originate successfully queued" for r in replies)
    assert all(
        t.written_at is not None and t.written_at <= r.at for t, r in zip(tickets, replies, strict=True)
    )
    for call_id, _n in calls.items():
        [(_sid, sent)] = [
            (s, a) for s, a in server.actions_named("Originate") if a.get("ActionID") == call_id
        ]
        assert sent.get("Async") == "true"

    def results() -> dict[str, OriginateResult]:
        return {e.action_id: e for e in recorder.events() if isinstance(e, OriginateResult) and e.action_id}

    await recorder.wait_for(lambda: set(results()) == set(calls))
    assert {cid: (r.success, r.reason) for cid, r in results().items()} == {
        "V1126101010000000002": (True, 4),
        "V1126101010000000003": (False, 5),
        "V1126101010000000004": (False, 8),
    }
    await server.wait_until(lambda: len(server.calls) == 2)  # the failed calls are gone
    server.emit(sentinel("sentinel.1"))
    await recorder.wait_for(
        lambda: any(
            isinstance(e, ChannelStateChanged) and e.uniqueid == "sentinel.1" for e in recorder.events()
        )
    )

    # every typed event the server wrote to the session reached the handler once, in order
    [session_id] = server.wire
    assert recorder.events(IP) == server.wire_events(session_id)
    frames = server.wire_frames(session_id)
    assert sum(f.event == "CoreShowChannel" for f in frames) == 4
    assert sum(isinstance(e, SnapshotRow) for e in recorder.events()) == 4
    assert [e for e in recorder.events() if isinstance(e, SnapshotEnd)] == [SnapshotEnd(started.action_id, 4)]
    assert sum(f.event == "OriginateResponse" and f.get("ActionID") in calls for f in frames) == 3
    # read_at: monotonic, never before the originate it answers was written, never in the future
    stamps = [seen.read_at for seen in recorder if seen.event is not None]
    assert stamps == sorted(stamps) and stamps[-1] <= time.monotonic()
    written = {t.action_id: t.written_at for t in tickets}
    for seen in recorder:
        if isinstance(seen.event, OriginateResult) and seen.event.action_id in written:
            assert seen.read_at >= written[seen.event.action_id]
    # the model driven as documented equals the simulator's own channel table (plus the sentinel,
    # which a Newstate of an unknown channel creates, as the model's rules say)
    expected = {ch.uniqueid for ch in server.channels.values()} | {"sentinel.1"}
    assert set(recorder.model.live_channels(IP)) == expected
    assert len(server.channels) == 8 and recorder.disagreements == []


async def test_listitems_mismatch_is_retried_and_nothing_is_sent_before(
    server: TestAsterisk, recorder: ModelRecorder, link_factory
) -> None:
    server.place_call("918005551212", "V1126101010000000011")
    await server.wait_until(lambda: len(server.channels) == 4)
    server.wrong_list_items = 2  # the first two listings claim 5 items for 4 rows
    tickets = []

    def on_change(_server: str, change) -> None:
        if change.kind is K.RESYNCED and not change.accepted:
            call_id = f"V11261010100000001{len(tickets):02d}"
            tickets.append(link.send_originate(originate_fields("918005551212", call_id), action_id=call_id))

    recorder.on_change = on_change
    link = link_factory(target_of(server))
    await recorder.wait_for(lambda: link.ready)

    resynced = recorder.changes(kind=K.RESYNCED)
    assert [(c.accepted, c.detail) for c in resynced] == [
        (False, "4 rows received, ListItems 5"),
        (False, "4 rows received, ListItems 5"),
        (True, "4 channels"),
    ]
    started = recorder.changes(kind=K.RESYNC_STARTED)
    assert [c.action_id for c in started] == [c.action_id for c in resynced]
    assert len({c.action_id for c in started}) == 3
    assert [s.ready for s in recorder if s.change and s.change.kind is K.RESYNCED] == [False, False, True]
    assert link.counters.resyncs == 3 and link.counters.resyncs_rejected == 2
    assert [(await t.reply).status for t in tickets] == [OriginateStatus.NOT_SENT] * 2
    assert all(t.written_at is None for t in tickets)
    assert server.actions_named("Originate") == []
    assert len(server.actions_named("CoreShowChannels")) == 3 and link.counters.connects == 1
    # the model rejected the same two snapshots and loaded the third
    assert recorder.disagreements == [] and recorder.model.dialable(IP)


async def test_without_coreshowchannels_the_link_lists_with_status(
    server: TestAsterisk, recorder: ModelRecorder, link_factory
) -> None:
    server.place_call("918005551212", "V1126101010000000015")
    await server.wait_until(lambda: len(server.channels) == 4)
    server.no_coreshowchannels = True  # as Asterisk 1.4
    link = link_factory(target_of(server))
    await recorder.wait_for(lambda: link.ready)
    resynced = recorder.changes(kind=K.RESYNCED)
    assert [c.accepted for c in resynced] == [False, True]
    assert resynced[0].detail.startswith("CoreShowChannels refused: Invalid/unknown command")
    [(_sid, status)] = server.actions_named("Status")
    assert status.get("ActionID") == resynced[1].action_id
    assert sum(isinstance(e, SnapshotRow) for e in recorder.events()) == 4  # Status rows
    assert set(recorder.model.live_channels(IP)) == {ch.uniqueid for ch in server.channels.values()}
    assert recorder.disagreements == []


async def test_a_handler_that_raises_does_not_break_the_link(server: TestAsterisk) -> None:
    class Exploding(Recorder):
        def on_event(self, server_ip: str, event, read_at: float) -> None:
            super().on_event(server_ip, event, read_at)
            raise RuntimeError("handler bug")

        def on_state(self, server_ip: str, change) -> None:
            super().on_state(server_ip, change)
            raise RuntimeError("handler bug")

    server.place_call("918005551212", "V1126101010000000021")
    await server.wait_until(lambda: len(server.channels) == 4)
    recorder = Exploding()
    link = start_link(recorder, target_of(server))
    try:
        await recorder.wait_for(lambda: link.ready)
        server.place_call("918005551234", "V1126101010000000022")
        await recorder.wait_for(lambda: sum(isinstance(e, ChannelCreated) for e in recorder.events()) == 4)
        # FullyBooted + 4 rows + SnapshotEnd during login/resync; every state change raised too
        assert link.counters.handler_errors == 6 + len(recorder.changes())
        assert link.protocol.sink_errors == len(recorder.events()) - 6
        assert link.counters.connects == 1 and link.ready
    finally:
        await link.stop()


async def test_login_refused_is_retried_and_never_ready(
    server: TestAsterisk, recorder: Recorder, link_factory
) -> None:
    link = link_factory(target_of(server, secret="wrong"))
    await recorder.wait_for(lambda: recorder.count(IP, K.DOWN) >= 2)
    downs = recorder.changes(kind=K.DOWN)
    assert downs[0].detail == "login as 'cron' refused: Authentication failed"
    assert [c.attempt for c in downs[:2]] == [1, 2]
    assert K.LOGGED_IN not in recorder.kinds() and not link.ready
    assert server.failed_logins >= 2


async def test_without_fully_booted_the_server_is_not_used_unless_configured(
    server: TestAsterisk, recorder: Recorder, link_factory
) -> None:
    # a session mask without 'system' never gets FullyBooted (spec/AMI.md B 1.2)
    link = link_factory(target_of(server), replace(FAST_SETTINGS, events="call"))
    await recorder.wait_for(lambda: recorder.count(IP, K.DOWN) >= 1)
    assert recorder.changes(kind=K.DOWN)[0].detail.startswith("no FullyBooted within 0.3 s of the login")
    assert not link.ready and K.RESYNC_STARTED not in recorder.kinds()

    other = Recorder()
    relaxed = start_link(
        other,
        target_of(server, "10.0.0.2"),
        replace(FAST_SETTINGS, events="call", require_fully_booted=False),
    )
    try:
        await other.wait_for(lambda: relaxed.ready)
    finally:
        await relaxed.stop()


async def test_a_host_that_drops_syns_times_out_and_is_retried(recorder: Recorder, link_factory) -> None:
    # listen(0) and one queued connection: Linux drops further SYNs, as a firewalled host does
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    _reader, filler = await asyncio.open_connection("127.0.0.1", port)
    try:
        target = LinkTarget("10.0.0.9", "127.0.0.1", port, "cron", "1234")
        link = link_factory(target, replace(FAST_SETTINGS, connect_timeout=0.1))
        await recorder.wait_for(lambda: recorder.count("10.0.0.9", K.DOWN) >= 2)
        details = {c.detail for c in recorder.changes(kind=K.DOWN)}
        assert details == {f"connect to 127.0.0.1:{port} timed out after 0.1 s"}
        assert link.state in (LinkState.DOWN, LinkState.CONNECTING)
        await link.stop()
        assert recorder.kinds()[-1] is K.STOPPED and link.state is LinkState.STOPPED
    finally:
        filler.close()
        listener.close()


async def test_stop_reports_down_then_stopped_and_closes_the_session(
    server: TestAsterisk, recorder: Recorder, link_factory
) -> None:
    link = link_factory(target_of(server))
    await recorder.wait_for(lambda: link.ready)
    await link.stop()
    assert recorder.kinds()[-2:] == [K.DOWN, K.STOPPED]
    assert recorder.changes(kind=K.DOWN)[-1].detail == "stopped"
    assert not link.ready and link.state is LinkState.STOPPED
    await server.wait_until(lambda: not server.sessions)  # the server saw the connection close
    assert link.counters.last_error == ""  # stopping is not an error
    stats = link.stats()
    assert stats["state"] == "stopped" and stats["logins"] == 1 and stats["events"]["SnapshotEnd"] == 1
