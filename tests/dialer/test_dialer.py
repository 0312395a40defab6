"""The dialer's guarantees: one interface for both ways to send, nothing lost, nothing twice."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from dialer_helpers import (
    B1,
    B2,
    CAMPAIGN,
    HOST,
    NOW,
    Call,
    Window,
    assert_calls,
    db_now,
    fill_cluster,
    hopper_rows,
    pass_at,
    read_tables,
)

from fillreactor.clock import VirtualClock
from fillreactor.core.outbound_call import OutboundCall
from fillreactor.core.planner import PlanEntry
from fillreactor.dialer import CallOutcome, Dialer, ManagerOriginator, SendResult, recover_stale_claims

pytestmark = pytest.mark.timeout(30)
COLUMNS = ["hopper_id", "lead_id", "campaign_id", "status", "user"]


def number(lead: int) -> str:
    return f"312555{lead - 1:04d}"


class AmiDouble:
    """Stands in for the AMI sender the reactor wires: the row is the audit trail (SENT); it checks the
    vicidial_auto_calls row is committed before the Originate leaves; it refuses or fails some calls."""

    manager_status = "DEAD"  # as the reactor's AMI originator: not sent yet, SENT once written
    sent_status = "SENT"

    def __init__(
        self,
        seed,
        *,
        refuse: set[int] = frozenset(),
        fail: set[int] = frozenset(),
        down: set[str] = frozenset(),
    ) -> None:
        self.seed = seed
        self.refuse, self.fail, self.down = refuse, fail, down
        self.sent: list[tuple[tuple[str, str], ...]] = []
        self.vac_seen: list[bool] = []

    def admit(self, server_ip: str) -> bool:
        return server_ip not in self.down

    async def originate(self, call: OutboundCall) -> SendResult:
        self.vac_seen.append(await self.seed.count("vicidial_auto_calls", callerid=call.call_id) == 1)
        if call.lead_id in self.refuse:
            return SendResult(CallOutcome.REFUSED, "Asterisk is shutting down")
        if call.lead_id in self.fail:
            raise ConnectionResetError("AMI link dropped")  # an originator must not raise; the dialer copes
        self.sent.append(call.ami_action())
        return SendResult(CallOutcome.SENT)


async def test_ami_sends_after_the_rows_and_undoes_what_did_not_leave(store_db, seed) -> None:
    # leads 1..4 on .12: 2 is refused, 3 fails; .13's link is down: its calls are refused unwritten
    await fill_cluster(seed, leads=6, local_trunk_shortage=6)
    ami = AmiDouble(seed, refuse={2}, fail={3}, down={B2})
    dialer = Dialer(store_db, ami, host_ip=HOST, pacing=False)
    start = await db_now(seed)
    report = await dialer.dial([PlanEntry(CAMPAIGN, B1, 4), PlanEntry(CAMPAIGN, B2, 2)], now=pass_at(NOW))
    tables = await read_tables(seed)
    window = Window(start, await db_now(seed))
    # .13's claim takes the next READY rows: leads 2 and 3, just released by .12's entry
    outcomes = [[(r.call.lead_id, r.outcome) for r in e.calls] for e in report.entries]
    assert outcomes == [
        [(1, CallOutcome.SENT), (2, CallOutcome.REFUSED), (3, CallOutcome.FAILED), (4, CallOutcome.SENT)],
        [(2, CallOutcome.REFUSED), (3, CallOutcome.REFUSED)],
    ]
    assert [e.placed for e in report.entries] == [2, 0]
    assert ami.vac_seen == [True, True, True, True]  # the vac row was there before each Originate
    assert [dict(action)["ActionID"] for action in ami.sent] == [
        Call(1, B1, "").id(NOW),
        Call(4, B1, "").id(NOW),
    ]
    assert dict(ami.sent[0])["Async"] == "true"
    # the audit rows: vm SENT for the two sent; DEAD for the two written but not sent; their vac rows gone
    sent = [Call(1, B1, number(1)), Call(4, B1, number(4))]
    assert [(r["callerid"][-1], r["status"]) for r in tables.manager] == [
        ("1", "SENT"),
        ("2", "DEAD"),
        ("3", "DEAD"),
        ("4", "SENT"),
    ]
    assert [r["lead_id"] for r in tables.auto_calls] == [1, 4]
    # leads 2 and 3 (written, not sent; then claimed by .13, not written) are READY again; 1 and 4 deleted
    assert tables.hopper == hopper_rows(
        (2, 2, "READY", ""), (3, 3, "READY", ""), (5, 5, "READY", None), (6, 6, "READY", None)
    )
    assert [r["lead_id"] for r in tables.dial_log] == [1, 2, 3, 4]  # the attempts stay in the logs
    tables.manager = [r for r in tables.manager if r["status"] == "SENT"]
    for n, row in enumerate(tables.manager, start=1):
        row["man_id"] = n
    tables.dial_log = [r for r in tables.dial_log if r["lead_id"] in (1, 4)]
    tables.dial_cid_log = [r for r in tables.dial_cid_log if r["caller_code"][-1] in "14"]
    tables.lead_24hour = [r for r in tables.lead_24hour if r["lead_id"] in (1, 4)]
    tables.daily_leads = [r for r in tables.daily_leads if r["lead_id"] in (1, 4)]
    tables.daily_phones = [r for r in tables.daily_phones if r["phone_number"] in (number(1), number(4))]
    for n, row in enumerate(tables.auto_calls):
        row["auto_call_id"] = n + 1
    assert_calls(tables, sent, NOW, window, manager_status="SENT")


async def test_two_tasks_for_one_server_never_share_a_claim(store_db, seed) -> None:
    # the Perl's claim-then-select by user='VDFC_<ip>' would let two concurrent tasks read each other's
    # QUEUE rows; one lock per server keeps them apart: 3 + 3 calls, 6 different leads, each once
    await fill_cluster(seed, leads=10, local_trunk_shortage=6)
    dialer = Dialer(store_db, ManagerOriginator(), host_ip=HOST, pacing=False)
    reports = await asyncio.gather(
        dialer.dial([PlanEntry(CAMPAIGN, B1, 3)], now=pass_at(NOW)),
        dialer.dial([PlanEntry(CAMPAIGN, B1, 3)], now=pass_at(NOW)),
    )
    assert [r.placed for r in reports] == [3, 3]
    leads = [row["lead_id"] for row in await seed.rows("vicidial_auto_calls", order_by="auto_call_id")]
    assert sorted(leads) == [1, 2, 3, 4, 5, 6]
    assert await seed.count("vicidial_hopper") == 4


class HeldOriginator(ManagerOriginator):
    """ManagerOriginator whose first call to ``held`` waits until ``go`` is set (a slow reply)."""

    def __init__(self, held: str) -> None:
        super().__init__()
        self.held = held
        self.waiting = asyncio.Event()
        self.go = asyncio.Event()
        self.order: list[tuple[str, int]] = []
        self.called = asyncio.Event()

    async def originate(self, call: OutboundCall) -> SendResult:
        self.order.append((call.server_ip, call.lead_id))
        self.called.set()
        if call.server_ip == self.held and not self.waiting.is_set():
            self.waiting.set()
            await self.go.wait()
        return await super().originate(call)


async def test_entries_of_one_plan_dial_at_once_with_concurrent_entries(store_db, seed) -> None:
    # the live service (concurrent_entries): .13's entry does not wait for .12's Originate reply;
    # .12's first call is held until .13's two calls are out. 2 + 2 calls, 4 different leads.
    await fill_cluster(seed, leads=6, local_trunk_shortage=4)
    originator = HeldOriginator(B1)
    dialer = Dialer(store_db, originator, host_ip=HOST, pacing=False, concurrent_entries=True)
    task = asyncio.ensure_future(
        dialer.dial([PlanEntry(CAMPAIGN, B1, 2), PlanEntry(CAMPAIGN, B2, 2)], now=pass_at(NOW))
    )
    await asyncio.wait_for(originator.waiting.wait(), 10)
    while sum(1 for server, _lead in originator.order if server == B2) < 2:
        originator.called.clear()
        await asyncio.wait_for(originator.called.wait(), 10)
    assert not task.done()
    originator.go.set()
    report = await asyncio.wait_for(task, 10)
    assert [(r.entry.server, r.placed) for r in report.entries] == [(B1, 2), (B2, 2)]  # the plan's order
    rows = await seed.rows("vicidial_auto_calls", columns=["lead_id", "server_ip"], order_by="auto_call_id")
    assert sorted(r["lead_id"] for r in rows) == [1, 2, 3, 4]
    assert sorted(r["server_ip"] for r in rows) == [B1, B1, B2, B2]
    assert await seed.rows("vicidial_hopper", columns=COLUMNS, order_by="hopper_id") == hopper_rows(
        (5, 5, "READY", None), (6, 6, "READY", None)
    )


async def test_one_pass_dials_entries_in_order(store_db, seed) -> None:
    # without concurrent_entries (run --once, like the Perl's loop) .13 starts when .12's entry is
    # over: .12 takes the first leads of the hopper
    await fill_cluster(seed, leads=4, local_trunk_shortage=4)
    originator = HeldOriginator(B1)
    originator.go.set()
    dialer = Dialer(store_db, originator, host_ip=HOST, pacing=False)
    await dialer.dial([PlanEntry(CAMPAIGN, B1, 2), PlanEntry(CAMPAIGN, B2, 2)], now=pass_at(NOW))
    assert originator.order == [(B1, 1), (B1, 2), (B2, 3), (B2, 4)]


async def test_a_second_task_for_a_server_claims_while_the_first_waits_for_its_reply(store_db, seed) -> None:
    # the server's lock covers the claim until its rows are INCALL (the claim tag is then free): a
    # second task places its calls while the first one's Originate reply is still awaited
    await fill_cluster(seed, leads=4, local_trunk_shortage=4)
    originator = HeldOriginator(B1)
    dialer = Dialer(store_db, originator, host_ip=HOST, pacing=False)
    first = asyncio.ensure_future(dialer.dial([PlanEntry(CAMPAIGN, B1, 1)], now=pass_at(NOW)))
    await asyncio.wait_for(originator.waiting.wait(), 10)
    second = await asyncio.wait_for(dialer.dial([PlanEntry(CAMPAIGN, B1, 2)], now=pass_at(NOW)), 10)
    assert second.placed == 2 and not first.done()
    originator.go.set()
    assert (await asyncio.wait_for(first, 10)).placed == 1
    assert originator.order == [(B1, 1), (B1, 2), (B1, 3)]
    assert await seed.rows("vicidial_hopper", columns=COLUMNS, order_by="hopper_id") == hopper_rows(
        (4, 4, "READY", None)
    )


async def test_a_duplicate_keeps_the_server_lock_until_its_lead_is_dialed(store_db, seed) -> None:
    # the first task's claim holds lead 1 twice: the duplicate row stays QUEUE under the tag until
    # lead 1's call is done, so the tag stays the first task's; the second task, started while the
    # first's Originate waits, claims only after it: lead 1 once, then leads 2 and 3
    await fill_cluster(seed, leads=3, local_trunk_shortage=3)
    await seed.hopper(CAMPAIGN, [1], priority=5)  # a second row of lead 1, first in claim order
    await seed.execute("UPDATE vicidial_hopper SET priority = 5 WHERE hopper_id = 1")
    originator = HeldOriginator(B1)
    dialer = Dialer(store_db, originator, host_ip=HOST, pacing=False)
    first = asyncio.ensure_future(dialer.dial([PlanEntry(CAMPAIGN, B1, 2)], now=pass_at(NOW)))
    await asyncio.wait_for(originator.waiting.wait(), 10)
    second = asyncio.ensure_future(dialer.dial([PlanEntry(CAMPAIGN, B1, 2)], now=pass_at(NOW)))
    for _ in range(3):  # database round trips in which an unlocked second task would have claimed
        assert await seed.count("vicidial_hopper", status="QUEUE") == 1  # only the duplicate
    originator.go.set()
    reports = await asyncio.wait_for(asyncio.gather(first, second), 10)
    assert [r.placed for r in reports] == [1, 2]
    assert originator.order == [(B1, 1), (B1, 2), (B1, 3)]
    assert await seed.count("vicidial_hopper") == 0


async def test_a_lead_in_two_campaigns_is_dialed_once_by_concurrent_tasks(store_db, seed) -> None:
    await fill_cluster(seed, leads=1, local_trunk_shortage=1)
    await seed.campaign("OTHERC")
    await seed.hopper("OTHERC", [1])  # the same lead in another campaign's hopper
    dialer = Dialer(store_db, ManagerOriginator(), host_ip=HOST, pacing=False)
    reports = await asyncio.gather(
        dialer.dial([PlanEntry(CAMPAIGN, B1, 1)], now=pass_at(NOW)),
        dialer.dial([PlanEntry("OTHERC", B2, 1)], now=pass_at(NOW)),
    )
    assert sum(r.placed for r in reports) == 1
    assert await seed.count("vicidial_auto_calls", lead_id=1) == 1
    assert await seed.count("vicidial_hopper", lead_id=1) == 0  # the DELETE by lead_id takes both rows


async def test_cancellation_releases_the_claimed_leads_not_yet_dialed(store_db, seed) -> None:
    # 10 calls/s: a burst of 1, then pacing waits; the task is cancelled in that wait (shutdown): the
    # first call is out and its row deleted, the other four claimed rows go back to READY
    await fill_cluster(seed, leads=5, local_trunk_shortage=5)
    clock = VirtualClock(NOW)
    waiting = asyncio.Event()

    async def forever(seconds: float) -> None:
        waiting.set()
        await asyncio.Event().wait()

    dialer = Dialer(store_db, ManagerOriginator(), host_ip=HOST, clock=clock, sleep=forever)
    task = asyncio.ensure_future(dialer.dial([PlanEntry(CAMPAIGN, B1, 5)], now=pass_at(NOW)))
    await asyncio.wait_for(waiting.wait(), 10)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    managed = await seed.rows("vicidial_manager", columns=["callerid", "status"], order_by="man_id")
    assert managed == [{"callerid": Call(1, B1, "").id(NOW), "status": "NEW"}]
    assert await seed.count("vicidial_auto_calls") == 1
    assert await seed.rows("vicidial_hopper", columns=COLUMNS, order_by="hopper_id") == hopper_rows(
        *((n, n, "READY", "") for n in (2, 3, 4, 5))
    )
    calldate = await seed.rows("vicidial_campaigns", columns=["campaign_calldate"])
    assert calldate == [{"campaign_calldate": NOW}]  # what was placed is still accounted for


async def test_a_failed_write_releases_the_chunk(store_db, seed) -> None:
    # vicidial_auto_calls cannot be written (hidden for the test): no Originate leaves, the claimed rows go
    # back to READY, and the pass reports the calls failed. (The lead counters written just before stay:
    # the Perl has no failure path to compare with; the leads are dialable again.)
    await fill_cluster(seed, leads=3, local_trunk_shortage=3)
    await seed.execute("RENAME TABLE vicidial_auto_calls TO vac_hidden_for_test")
    try:
        dialer = Dialer(store_db, ManagerOriginator(), host_ip=HOST, pacing=False)
        report = await dialer.dial([PlanEntry(CAMPAIGN, B1, 3)], now=pass_at(NOW))
    finally:
        await seed.execute("RENAME TABLE vac_hidden_for_test TO vicidial_auto_calls")
    entry = report.entries[0]
    assert entry.placed == 0 and {r.outcome for r in entry.calls} == {CallOutcome.FAILED}
    assert "vicidial_auto_calls not written" in entry.error
    assert await seed.count("vicidial_manager") == 0
    assert await seed.rows("vicidial_hopper", columns=COLUMNS, order_by="hopper_id") == hopper_rows(
        *((n, n, "READY", "") for n in (1, 2, 3))
    )


async def test_a_claim_whose_rows_cannot_be_read_is_put_back(store_db, seed) -> None:
    # the claim takes the rows, the read (which joins vicidial_lists) fails: the claim goes back at once
    await fill_cluster(seed, leads=3, local_trunk_shortage=3)
    await seed.execute("RENAME TABLE vicidial_lists TO lists_hidden_for_test")
    try:
        dialer = Dialer(store_db, ManagerOriginator(), host_ip=HOST, pacing=False)
        report = await dialer.dial([PlanEntry(CAMPAIGN, B1, 3)], now=pass_at(NOW))
    finally:
        await seed.execute("RENAME TABLE lists_hidden_for_test TO vicidial_lists")
    entry = report.entries[0]
    assert (entry.claimed, entry.placed, entry.released) == (3, 0, 3)
    assert entry.error.startswith("claim failed")
    assert await seed.rows("vicidial_hopper", columns=COLUMNS, order_by="hopper_id") == hopper_rows(
        *((n, n, "READY", "") for n in (1, 2, 3))
    )


async def test_losing_the_leader_lock_stops_the_entry_between_chunks(
    store_db, seed, database_dsn, lock_name
) -> None:
    # 10 calls/s: one call per chunk. While pacing waits after the first, the lock's session dies and
    # the check notices: the rest of the claim is released, nothing more is written.
    from fillreactor.store import DatabaseAddress
    from fillreactor.store.leader import LeaderLock

    await fill_cluster(seed, leads=3, local_trunk_shortage=3)
    leader = LeaderLock(DatabaseAddress.from_dsn(database_dsn), lock_name)
    assert await leader.acquire()
    assert leader.fence is not None
    clock = VirtualClock(NOW)

    async def lose_the_lock(seconds: float) -> None:
        if leader.fence is not None:
            await seed.execute(f"KILL {int(leader.fence.connection_id)}")
            assert not await leader.still_held()
        clock.advance(seconds)

    try:
        dialer = Dialer(
            store_db, ManagerOriginator(), host_ip=HOST, leader=leader, clock=clock, sleep=lose_the_lock
        )
        report = await dialer.dial([PlanEntry(CAMPAIGN, B1, 3)], now=pass_at(NOW))
    finally:
        await leader.release()
    entry = report.entries[0]
    assert entry.placed == 1 and entry.error.startswith("leader lock lost")
    assert await seed.count("vicidial_manager") == 1
    assert await seed.rows("vicidial_hopper", columns=COLUMNS, order_by="hopper_id") == hopper_rows(
        (2, 2, "READY", ""), (3, 3, "READY", "")
    )


async def test_the_recovery_leaves_alone_the_claims_a_running_entry_holds(store_db, seed) -> None:
    # the service's periodic recovery (min_age 0 here: every claim found is stale) runs while an
    # entry (paced: a chunk per call) waits for its first Originate reply, leads 2 and 3 INCALL under
    # the tag and not written yet (without the guard they are released, then dialed twice): with
    # the dialer's guard it releases only a claim nobody holds (lead 4's, left by a crash), so no
    # lead goes back to READY to be dialed a second time
    await fill_cluster(seed, leads=4, local_trunk_shortage=3)
    await seed.execute("UPDATE system_settings SET outbound_calls_per_second = 1")  # a chunk per call
    await seed.execute(
        "UPDATE vicidial_hopper SET status = 'INCALL', user = %s WHERE lead_id = 4", (f"VDFC_{B1}",)
    )
    originator = HeldOriginator(B1)
    clock = VirtualClock(NOW)

    async def advance(seconds: float) -> None:  # the pacing waits, on the virtual clock
        clock.advance(seconds)

    dialer = Dialer(store_db, originator, host_ip=HOST, clock=clock, sleep=advance)
    task = asyncio.ensure_future(dialer.dial([PlanEntry(CAMPAIGN, B1, 3)], now=pass_at(NOW)))
    await asyncio.wait_for(originator.waiting.wait(), 10)
    recovery = await recover_stale_claims(store_db, now=NOW, min_age=0, guard=dialer.holding)
    assert [c.lead_id for c in recovery.released] == [4]
    originator.go.set()
    report = await asyncio.wait_for(task, 10)
    assert report.placed == 3
    leads = [row["lead_id"] for row in await seed.rows("vicidial_auto_calls", order_by="auto_call_id")]
    assert leads == [1, 2, 3]
    assert await seed.rows("vicidial_hopper", columns=COLUMNS, order_by="hopper_id") == hopper_rows(
        (4, 4, "READY", "")
    )


async def test_a_paced_entry_marks_each_chunk_sent_before_the_next_one(store_db, seed) -> None:
    # 1 call/s: a chunk per call. The SENT mark of a chunk's calls goes out before the pacing wait
    # for the next chunk (a crash in that wait finds them SENT, placed); the last chunk's marks go
    # with the entry's late rows. Seen from the database when each Originate leaves:
    await fill_cluster(seed, leads=3, local_trunk_shortage=3)
    await seed.execute("UPDATE system_settings SET outbound_calls_per_second = 1")
    seen: list[list[str]] = []

    class Watching(AmiDouble):
        async def originate(self, call: OutboundCall) -> SendResult:
            rows = await seed.rows("vicidial_manager", columns=["status"], order_by="man_id")
            seen.append([r["status"] for r in rows])
            return await super().originate(call)

    clock = VirtualClock(NOW)

    async def advance(seconds: float) -> None:
        clock.advance(seconds)

    dialer = Dialer(store_db, Watching(seed), host_ip=HOST, clock=clock, sleep=advance)
    report = await dialer.dial([PlanEntry(CAMPAIGN, B1, 3)], now=pass_at(NOW))
    assert report.placed == 3
    assert seen == [["DEAD"], ["SENT", "DEAD"], ["SENT", "SENT", "DEAD"]]
    rows = await seed.rows("vicidial_manager", columns=["status"], order_by="man_id")
    assert [r["status"] for r in rows] == ["SENT"] * 3
    assert await seed.count("vicidial_hopper") == 0


async def test_a_failing_late_row_leaves_the_sent_marks_and_the_hopper_delete_written(store_db, seed) -> None:
    # the CID log insert (the late rows' fourth statement) fails: the SENT marks before it are
    # written, and the hopper delete after it is sent again on its own (spec 2.7m: the dialed
    # leads leave the hopper); the daily counts before it are written too
    await fill_cluster(seed, leads=2, local_trunk_shortage=2)
    await seed.execute("RENAME TABLE vicidial_dial_cid_log TO cid_log_hidden_for_test")
    try:
        dialer = Dialer(store_db, AmiDouble(seed), host_ip=HOST, pacing=False)
        report = await dialer.dial([PlanEntry(CAMPAIGN, B1, 2)], now=pass_at(NOW))
    finally:
        await seed.execute("RENAME TABLE cid_log_hidden_for_test TO vicidial_dial_cid_log")
    assert report.placed == 2
    rows = await seed.rows("vicidial_manager", columns=["status"], order_by="man_id")
    assert [r["status"] for r in rows] == ["SENT", "SENT"]
    assert await seed.count("vicidial_hopper") == 0
    assert await seed.count("vicidial_lead_call_daily_counts") == 2
    assert await seed.count("vicidial_dial_cid_log") == 0
