"""The link through the simulator's own outages: a graceful restart and a crash (spec/AMI.md A 6a.1-2).

These use ``FaultInjector.graceful_shutdown`` / ``crash`` of the simulator (not emulations).
"""

from __future__ import annotations

from ami_link_helpers import ModelRecorder, TestAsterisk, originate_fields, start_link, target_of

from fillreactor.ami import LinkChangeKind as K
from fillreactor.ami import OriginateStatus
from fillreactor.core.events import ChannelHungUp, Shutdown

IP = "10.0.0.1"


class RedialingRecorder(ModelRecorder):
    """Originates on every Hangup, as the reactor would for a freed line."""

    def __init__(self) -> None:
        super().__init__()
        self.tickets: list = []

    def on_event(self, server: str, event, read_at: float) -> None:
        super().on_event(server, event, read_at)
        link = self.links.get(server)
        if isinstance(event, ChannelHungUp) and link is not None:
            call_id = f"V11261010100000003{len(self.tickets):02d}"
            self.tickets.append(
                link.send_originate(originate_fields("918005551299", call_id), action_id=call_id)
            )


async def test_a_graceful_restart_the_way_it_was_seen_on_a_real_cluster(server: TestAsterisk) -> None:
    """Hangups free lines ~1 s before the Shutdown event and draw originates: the first
    "Asterisk is shutting down" reply makes the server not dialable at once, nothing after it is
    sent, and after the restart the link logs in, resyncs and is ready again."""
    for n in range(3):
        server.place_call(f"91800555123{n}", f"V11261010100000002{n:02d}")
    await server.wait_until(lambda: len(server.channels) == 12)
    recorder = RedialingRecorder()
    link = start_link(recorder, target_of(server))
    try:
        await recorder.wait_for(lambda: link.ready)
        await graceful_restart(server, recorder, link)
    finally:
        await link.stop()


async def graceful_restart(server: TestAsterisk, recorder: RedialingRecorder, link) -> None:
    tickets = recorder.tickets
    mark = len(recorder.seen)
    outage = await server.faults.graceful_shutdown(restart=True, wait=False)
    await outage.wait_down()
    await recorder.wait_for(lambda: recorder.count(IP, K.DOWN) >= 1)
    replies = [ticket.reply.result() for ticket in tickets if ticket.reply.done()]
    assert len(replies) == len(tickets) == 12  # a Hangup per channel
    written = [r for r in replies if r.written_at is not None]
    assert written and all(
        (r.status, r.message) == (OriginateStatus.ERROR, "Asterisk is shutting down") for r in written
    )
    # written while the link was ready, i.e. before the first refusal was read; refused after it
    first_refusal = min(r.at for r in written)
    not_sent = [r for r in replies if r.written_at is None]
    assert all(r.written_at <= first_refusal for r in written)
    assert all(r.status is OriginateStatus.NOT_SENT and r.at >= first_refusal for r in not_sent)
    assert len(written) + len(not_sent) == 12
    [shutting_down] = recorder.changes(kind=K.SHUTTING_DOWN)
    assert shutting_down.detail == "reply: Asterisk is shutting down"  # before the Shutdown event
    after = [s.event if s.event is not None else s.change.kind for s in recorder.seen[mark:]]
    assert after.index(K.SHUTTING_DOWN) < after.index(Shutdown(restart=True)) < after.index(K.DOWN)
    assert after.count(K.SHUTTING_DOWN) == 1
    assert not [s for s in recorder.seen[mark:] if s.change and s.change.kind is K.SHUTTING_DOWN and s.ready]

    await outage.up.wait()
    await recorder.wait_for(lambda: recorder.count(IP, K.RESYNCED, accepted=True) == 2)
    assert link.ready and recorder.model.dialable(IP) and recorder.disagreements == []
    assert recorder.model.live_channels(IP) == {}  # the restarted server has no channels
    assert [a.get("ActionID") for _s, a in server.actions_named("Originate")] == [
        r.action_id for r in written
    ]


async def test_a_crash_ends_the_session_and_the_link_comes_back_after_the_boot(
    server: TestAsterisk, recorder: ModelRecorder, link_factory
) -> None:
    server.place_call("918005551212", "V1126101010000000401")
    await server.wait_until(lambda: len(server.channels) == 4)
    link = link_factory(target_of(server))
    await recorder.wait_for(lambda: link.ready)
    outage = await server.faults.crash()
    await recorder.wait_for(lambda: recorder.count(IP, K.DOWN) >= 1)
    assert recorder.changes(kind=K.DOWN)[0].detail == "connection closed by the server"
    assert K.SHUTTING_DOWN not in recorder.kinds()  # a crash says nothing
    await outage.up.wait()
    await recorder.wait_for(lambda: recorder.count(IP, K.RESYNCED, accepted=True) == 2)
    assert link.ready and recorder.model.live_channels(IP) == {} and recorder.disagreements == []
    assert link.counters.connects >= 2
