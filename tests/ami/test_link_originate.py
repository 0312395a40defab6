"""Originate over an AMI link: always Async, once only, every outcome reported, nothing re-sent."""

from __future__ import annotations

from ami_link_helpers import ModelRecorder, TestAsterisk, originate_fields, target_of

from fillreactor.ami import LinkChangeKind as K
from fillreactor.ami import OriginateStatus

IP = "10.0.0.1"
CALL = "V1126101010000000{:03d}"


async def test_an_originate_asked_for_during_an_outage_is_refused_and_never_sent_later(
    server: TestAsterisk, recorder: ModelRecorder, link_factory
) -> None:
    link = link_factory(target_of(server))
    await recorder.wait_for(lambda: link.ready)
    await server.stop()
    await recorder.wait_for(lambda: recorder.count(IP, K.DOWN) >= 1)
    ticket = link.send_originate(originate_fields("918005551212", CALL.format(1)), action_id=CALL.format(1))
    assert ticket.written_at is None and ticket.reply.done()
    reply = ticket.reply.result()
    assert reply.status is OriginateStatus.NOT_SENT and reply.message.startswith("link not ready")
    await server.start()
    await recorder.wait_for(lambda: recorder.count(IP, K.RESYNCED, accepted=True) == 2)
    # panoramisk would have re-sent it after the new session's FullyBooted, before our resync
    assert server.actions_named("Originate") == []
    assert link.counters.originates == 0 and link.counters.originates_not_sent == 1


async def test_an_originate_written_into_a_dead_link_ends_link_lost_and_is_never_resent(
    server: TestAsterisk, recorder: ModelRecorder, link_factory
) -> None:
    link = link_factory(target_of(server))
    await recorder.wait_for(lambda: link.ready)
    [first_session] = server.wire
    server.faults.go_silent()  # the link cannot know yet: it still looks ready
    assert link.ready
    ticket = link.send_originate(
        originate_fields("918005551212", CALL.format(2)), action_id=CALL.format(2), timeout=2.0
    )
    assert ticket.written_at is not None
    reply = await ticket.reply  # the Ping timeout (0.3 s) ends the session before the 2 s timeout
    assert reply.status is OriginateStatus.LINK_LOST
    assert reply.message == "no reply to Ping within 0.3 s" and reply.written_at == ticket.written_at
    server.faults.resume()
    await recorder.wait_for(lambda: recorder.count(IP, K.RESYNCED, accepted=True) == 2)
    # at most the one write, in the old session; nothing in any later session
    sent = server.actions_named("Originate")
    assert len(sent) <= 1 and all(session == first_session for session, _a in sent)
    assert link.counters.originates_lost == 1


async def test_an_originate_without_a_reply_times_out(
    server: TestAsterisk, recorder: ModelRecorder, link_factory
) -> None:
    link = link_factory(target_of(server))
    await recorder.wait_for(lambda: link.ready)
    server.faults.go_silent()
    ticket = link.send_originate(
        originate_fields("918005551212", CALL.format(3)), action_id=CALL.format(3), timeout=0.01
    )
    reply = await ticket.reply
    assert reply.status is OriginateStatus.TIMEOUT and reply.message == "no reply to Originate within 0.01 s"
    assert link.counters.originate_timeouts == 1


async def test_error_replies_bad_fields_and_before_write(
    server: TestAsterisk, recorder: ModelRecorder, link_factory
) -> None:
    link = link_factory(target_of(server))
    await recorder.wait_for(lambda: link.ready)

    # Asterisk's own error reply (the simulator checks the channel as Asterisk does)
    fields = originate_fields("918005551212", CALL.format(4)) | {"Channel": "NoTechnology"}
    reply = await link.originate(fields, action_id=CALL.format(4))
    assert (reply.status, reply.message) == (OriginateStatus.ERROR, "Invalid channel")
    assert link.ready and link.counters.originate_errors == 1

    # a line break in a value would inject headers: refused before anything is written
    injected = originate_fields("918005551212", CALL.format(5)) | {"Exten": "8365\r\nAction: Hangup"}
    bad = link.send_originate(injected, action_id=CALL.format(5))
    assert bad.written_at is None and bad.reply.result().status is OriginateStatus.NOT_SENT
    assert "line break" in bad.reply.result().message

    # before_write runs once, just before the bytes leave, only when they will leave
    calls: list[bool] = []
    good = link.send_originate(
        originate_fields("918005551212", CALL.format(6)),
        action_id=CALL.format(6),
        before_write=lambda: calls.append(link.ready),
    )
    assert calls == [True] and (await good.reply).status is OriginateStatus.QUEUED

    def explode() -> None:
        raise RuntimeError("reservation failed")

    refused = link.send_originate(
        originate_fields("918005551212", CALL.format(7)), action_id=CALL.format(7), before_write=explode
    )
    assert refused.reply.result().status is OriginateStatus.NOT_SENT
    assert "reservation failed" in refused.reply.result().message

    # the caller's Action/ActionID/Async cannot override ours; a second id while the first waits is refused
    sneaky = originate_fields("918005551212", CALL.format(8)) | {"Async": "false", "ActionID": "other"}
    first = link.send_originate(sneaky, action_id=CALL.format(8))
    twice = link.send_originate(sneaky, action_id=CALL.format(8))
    assert (
        twice.reply.result().status is OriginateStatus.NOT_SENT
        and "already waiting" in twice.reply.result().message
    )
    assert (await first.reply).status is OriginateStatus.QUEUED

    # what reached the server: exactly the three written originates, each once, always Async
    sent = [(a.get("ActionID"), a.get("Async")) for _s, a in server.actions_named("Originate")]
    assert sent == [(CALL.format(4), "true"), (CALL.format(6), "true"), (CALL.format(8), "true")]

    await link.stop()
    late: list[bool] = []
    after = link.send_originate(
        originate_fields("918005551212", CALL.format(9)),
        action_id=CALL.format(9),
        before_write=lambda: late.append(True),
    )
    assert after.reply.result().status is OriginateStatus.NOT_SENT and late == []
