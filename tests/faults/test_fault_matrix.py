"""The fault matrix (issue 12 point 2): each fault against the live service, four invariants each.

Harness, cluster and invariants: ``matrix_helpers`` (read its docstring first). By hand (spec 4.4,
2.3-2.4): A is short by ``NEED`` = 10 calls; B (rank 2) may carry 8 FILL calls, C (rank 1) 4; calls
stay up, so the settled cluster has exactly 10 FILL calls live. With ``n`` agents instead of 10 the
shortage is ``3 * n - 20`` (8 agents: 4, 9 agents: 7), all on B while B has room.

Every test states its recovery bound (``Verdict(bound=...)``, default ``RECOVERY_BOUND`` = 10 s)
and measures the time; the module prints the matrix at its end and, with
``FILLREACTOR_FAULT_MATRIX`` set to a path, writes it there as reStructuredText. A fault that shows
a product bug names the invariants the bug breaks (``Verdict(known=...)``) and is
``xfail(strict=True, raises=KnownBug)`` with a ``BUG_*`` text saying where the bug is (``known_bug``).
The eight bugs this matrix found are fixed (README "The fault matrix"); none is marked now.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest
from matrix_helpers import (
    CAMPAIGN,
    LIMITS,
    LIST_ID,
    MATRIX,
    NEED,
    A,
    B,
    C,
    FaultCluster,
    KnownBug,
    RunningService,
    SameSecondClock,
    Verdict,
    accepted,
    fault_cluster,
    fill_records,
    live_fill,
    render_matrix,
    render_notes,
    settings_for,
    start_run,
    write_run_configs,
)

from fillreactor.core.callid import build_call_id
from fillreactor.core.events import ChannelCreated
from fillreactor.reactor.service import ReactorService
from fillreactor.testing.database import Dsn, connect, create_database, drop_database
from fillreactor.testing.faultproxy import (
    AMI_END,
    BOTH,
    CUT_FIN,
    CUT_RESET,
    TO_CLIENT,
    FaultProxy,
    garbage,
    oversized_frame,
    split_inside_character,
)
from fillreactor.testing.mariadb import PrivateMariaDB
from fillreactor.testing.seed import Seeder

pytestmark = pytest.mark.timeout(60)
LOCK_NAME = settings_for().lock_name  # GET_LOCK is server-wide: the tests' own name (e2e_helpers)



def known_bug(reason: str) -> pytest.MarkDecorator:
    """The fault shows a known product bug: ``Verdict(known=...)`` raises ``KnownBug`` for exactly it."""
    return pytest.mark.xfail(reason=reason, raises=KnownBug, strict=True)


@pytest.fixture(scope="module", autouse=True)
def print_matrix(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if not MATRIX:
        return
    text = render_matrix(MATRIX) + "\n\n" + render_notes(MATRIX) + "\n"
    target = os.environ.get("FILLREACTOR_FAULT_MATRIX")
    if target:
        Path(target).write_text(text)
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line("")
        for line in text.splitlines():
            reporter.write_line(line)


def seen_live(service: ReactorService, ip: str, calls: int) -> bool:
    """The service's model holds ``calls`` live calls on ``ip`` and no reservation: it has seen them."""
    view = service.core.model.server_view(ip)
    return view.reservations == 0 and view.usage == calls


def steady_on_b(cluster: FaultCluster, service: ReactorService, calls: int) -> Callable[[], bool]:
    """B carries all ``calls`` FILL calls and the service has seen every one of them live."""
    return lambda: seen_live(service, B, calls) and live_fill(cluster.sim(B)) == cluster.live_total() == calls


async def hang_up(cluster: FaultCluster, ip: str, count: int) -> None:
    """``count`` of the FILL calls live on ``ip`` hang up (cause 16), as a callee would."""
    calls = cluster.live_calls(ip)[:count]
    assert len(calls) == count
    for call in calls:
        call.request_hangup(16)
    await cluster.eventually(lambda: live_fill(cluster.sim(ip)) == len(cluster.live_calls(ip)) and all(
        not c.live for c in calls
    ))


# == the AMI connection ==============================================================================
@pytest.mark.parametrize("mode", [CUT_RESET, CUT_FIN])
async def test_ami_cut_during_a_burst(database_dsn, seed, mode: str) -> None:
    # paced at 10 calls/s (bucket capacity 1: a call per 100 ms), so the cut right after B's 4th
    # Originate falls between two calls: B's 4 others find the link down, are refused and go back
    # to READY; C takes what it can, and B the rest once it has logged in and resynced
    async with fault_cluster(database_dsn, seed, cps=10) as cluster:
        sim, proxy = cluster.sim(B), cluster.proxies[B]
        await cluster.start_service(pacing=True)
        async with asyncio.timeout(10):
            await sim.wait_until(lambda: len(accepted(sim)) >= 4)
        proxy.cut(mode)
        cut_at = time.monotonic()
        verdict = Verdict(f"AMI cut ({mode}) during a burst", recovery_from="the cut")
        await verdict.recover(cluster.settled, cut_at)
        first = {r.session_id for r in accepted(sim)[:4]}
        assert len(first) == 1 and proxy.stats.established >= 2  # cut mid-burst, came back by itself
        assert sum(1 for r in accepted(sim) if r.session_id in first) == 4
        await cluster.judge(verdict)


async def test_half_open_silence(database_dsn, seed) -> None:
    # 8 agents: B carries the 4 calls. B's connection goes silent (nothing forwarded, sockets open);
    # 2 more agents make the shortage 10 and the service writes B's next Originate into the silent
    # link (C gets its 2). Each Originate waits for its reply: the first ends as TIMEOUT after
    # originate_timeout, the next as LINK_LOST when the missing Ping reply (ping_timeout) kills the
    # link, the rest are not sent (released). The partition never delivers what it held (the dead
    # connection is cut, as a real half-open peer's would be reset); then the network heals.
    settings = settings_for(ping_interval=1.0, ping_timeout=2.0)
    async with fault_cluster(database_dsn, seed, agents=8) as cluster:
        sim, proxy = cluster.sim(B), cluster.proxies[B]
        running = await cluster.start_service(settings=settings)
        service = running.service
        await cluster.eventually(steady_on_b(cluster, service, 4))
        proxy.silence()
        await seed.live_agents(2, A, CAMPAIGN)
        await cluster.eventually(lambda: not service.links.ready(B), timeout=8, what="B's link declared dead")
        await cluster.eventually(lambda: not service._dial_tasks, what="the dial given up")
        given_up = service.counters["originate_link_lost"] + service.counters["originate_timeout"]
        assert given_up >= 1 and len(accepted(sim)) == 4  # written into the silence, never arrived
        await proxy.wait_connections(2)  # the service reconnects by itself (that login is held too)
        proxy.connections[0].cut()  # the partitioned connection dies with what it held
        proxy.resume()
        healed = time.monotonic()
        verdict = Verdict("half-open silence", recovery_from="the network healing")
        verdict.notes.append(f"{given_up} Originates written into the silent link")
        await verdict.recover(cluster.settled, healed)
        await cluster.judge(verdict)


async def test_graceful_restart_with_uniqueids_reset(database_dsn, seed) -> None:
    # `core restart now` on B: every channel hangs up, Originates are refused ("Asterisk is shutting
    # down") and go back to READY, C takes 2 more (it has 4 lines); B reboots with its Uniqueid
    # counter at 0 and gets the remaining 4 once resynced
    async with fault_cluster(database_dsn, seed) as cluster:
        sim = cluster.sim(B)
        await cluster.start_service()
        await cluster.eventually(cluster.settled)
        outage = await sim.faults.graceful_shutdown(restart=True, down_for=10.0)  # 1 s of real time
        await outage.wait_up()
        up = time.monotonic()
        mark = sim.mark()
        verdict = Verdict("graceful restart, Uniqueids reset", recovery_from="the server back up")
        await verdict.recover(cluster.settled, up)
        assert sim.boots == 2
        first = next(m for m in sim.events_since(mark) if m.get("Event") == "Newchannel")
        epoch, counter = str(first.get("Uniqueid")).split(".")
        assert counter == "0" and int(epoch) >= sim.boot_epoch  # the counter restarted at 0
        assert live_fill(cluster.sim(C)) == LIMITS[C] and live_fill(sim) == NEED - LIMITS[C]
        await cluster.judge(verdict)


async def test_refused_originate_redialed_in_the_same_second(database_dsn, seed) -> None:
    # the graceful restart again, with the service's wall clock held in one second, so that a lead
    # whose Originate B refuses while shutting down is redialed on C under the same call id (in real
    # time the redial is a few ms later: the same second nearly always). Here the Originate rows are
    # also checked against the simulators: a row that is not DEAD names a server that got the call.
    async with fault_cluster(database_dsn, seed) as cluster:
        sim = cluster.sim(B)
        await cluster.start_service(clock=SameSecondClock())
        await cluster.eventually(cluster.settled)
        outage = await sim.faults.graceful_shutdown(restart=True, down_for=10.0)
        await outage.wait_up()
        up = time.monotonic()
        verdict = Verdict(
            "Originate refused on B, redialed on C in the same second", recovery_from="the server back up",
        )
        await verdict.recover(cluster.settled, up)
        refused = [r for r in fill_records(sim) if not r.accepted]
        assert refused  # B refused at least one Originate while shutting down
        await cluster.judge(verdict, rows_true=True)


async def test_crash_with_uniqueids_reset(database_dsn, seed) -> None:
    # SIGKILL of B's Asterisk: EOF, no Hangup, its 8 calls vanish. The model keeps counting them
    # (stale, not dialable) until the resync after the reboot shows none; then B gets its 8 again.
    async with fault_cluster(database_dsn, seed) as cluster:
        sim = cluster.sim(B)
        await cluster.start_service()
        await cluster.eventually(cluster.settled)
        outage = await sim.faults.crash(down_for=10.0)
        await outage.wait_up()
        up = time.monotonic()
        verdict = Verdict("crash, Uniqueids reset", recovery_from="the server back up")
        await verdict.recover(cluster.settled, up)
        assert sim.boots == 2 and all(r.boot == 2 for r in accepted(sim)[LIMITS[B]:])
        await cluster.judge(verdict)


async def test_slow_reader(database_dsn, seed) -> None:
    # B's events reach the service at 100 kB/s (a call is ~15 kB of events: B's 4 new calls lag
    # ~0.6 s behind, under ping_timeout): lines stay reserved until their channels are seen
    async with fault_cluster(database_dsn, seed, agents=8) as cluster:
        proxy = cluster.proxies[B]
        running = await cluster.start_service()
        await cluster.eventually(steady_on_b(cluster, running.service, 4))
        proxy.throttle(100_000, direction=TO_CLIENT)
        began = time.monotonic()
        await seed.live_agents(2, A, CAMPAIGN)
        verdict = Verdict("slow reader (100 kB/s to the service)", recovery_from="the new shortage")
        await verdict.recover(cluster.settled, began)
        assert proxy.stats.established == 1  # slow, not dead: no reconnect
        proxy.throttle(None, direction=TO_CLIENT)
        await cluster.judge(verdict)


async def test_events_later_than_the_reservation(database_dsn, seed) -> None:
    # 9 agents: shortage 3 * 9 - 20 = 7, all on B. Then B's replies and events reach the service
    # 2.5 s late (latency, nothing lost; ping_timeout 4 s and originate_timeout 3 s, so the link
    # stays up and the Originate is QUEUED), and a 10th agent makes the shortage 10: B +1 (its 8th
    # line), C +2. B's new call is up at once, but the service sees its channels only after its
    # reservation (2 s) expired. By hand B must stay at 8 FILL calls.
    settings = settings_for(ping_interval=1.0, ping_timeout=4.0, originate_timeout=3.0)
    async with fault_cluster(database_dsn, seed, agents=9) as cluster:
        sim, proxy = cluster.sim(B), cluster.proxies[B]
        running = await cluster.start_service(settings=settings)
        service = running.service
        await cluster.eventually(steady_on_b(cluster, service, 7))
        proxy.delay(2.5, direction=TO_CLIENT)
        began = time.monotonic()
        await seed.live_agents(1, A, CAMPAIGN)
        verdict = Verdict(
            "events 2.5 s late (reservation 2 s)", recovery_from="the new shortage"
        )
        await verdict.recover(lambda: cluster.live_total() >= NEED and not service._dial_tasks, began)
        proxy.delay(None, direction=TO_CLIENT)
        await cluster.eventually(
            lambda: seen_live(service, B, live_fill(sim)) and not service._dial_tasks, what="the lag drained"
        )
        await cluster.judge(verdict)


UTF8_NAME = "Zoë Müller"
UTF8_FRAMES = (
    "Event: Newchannel\r\nPrivilege: call,all\r\nChannel: SIP/zoe-00000001\r\nChannelState: 0\r\n"
    "ChannelStateDesc: Down\r\nCallerIDNum: 100\r\nCallerIDName: " + UTF8_NAME + "\r\n"
    "ConnectedLineNum: <unknown>\r\nConnectedLineName: <unknown>\r\nUniqueid: 1000000000.77\r\n"
    "Linkedid: 1000000000.77\r\n\r\n"
    "Event: Hangup\r\nPrivilege: call,all\r\nChannel: SIP/zoe-00000001\r\nChannelState: 0\r\n"
    "ChannelStateDesc: Down\r\nCallerIDNum: 100\r\nCallerIDName: " + UTF8_NAME + "\r\n"
    "ConnectedLineNum: <unknown>\r\nConnectedLineName: <unknown>\r\nUniqueid: 1000000000.77\r\n"
    "Linkedid: 1000000000.77\r\nCause: 16\r\nCause-txt: Normal Clearing\r\n\r\n"
).encode()


def frames(kind: str) -> list[bytes]:
    if kind == "garbage":
        return [garbage(2000, seed=12)]
    if kind == "oversized":  # over the default 1 MiB frame limit, in 64 kB writes
        frame = oversized_frame((1 << 20) + 4096)
        return [frame[i : i + 65536] for i in range(0, len(frame), 65536)]
    return split_inside_character(UTF8_FRAMES)


@pytest.mark.parametrize("kind", ["garbage", "oversized", "split-UTF-8"])
async def test_bad_frames(database_dsn, seed, kind: str) -> None:
    # the frames go into B's event stream between two messages, in the middle of the Hangups of 2
    # of B's calls; the session survives them and the same session refills B's 2 lines
    async with fault_cluster(database_dsn, seed) as cluster:
        sim, proxy = cluster.sim(B), cluster.proxies[B]
        running = await cluster.start_service()
        seen: list[ChannelCreated] = []

        def created(server: str, event: object, _at: float) -> None:
            if server == B and isinstance(event, ChannelCreated):
                seen.append(event)

        running.service.event_observers.append(created)
        await cluster.eventually(cluster.settled)
        payload = frames(kind)
        proxy.inject(payload, after=AMI_END)
        began = time.monotonic()
        await hang_up(cluster, B, 2)
        verdict = Verdict(f"{kind} frames", recovery_from="the hangups carrying them")
        await verdict.recover(cluster.settled, began)
        connection = proxy.connections[0]
        assert connection.counters(TO_CLIENT).bytes_injected == sum(map(len, payload))
        assert sim.logins == 1 and proxy.stats.established == 1  # never reconnected
        assert running.service.core.model.usage(B) == live_fill(sim) == LIMITS[B]
        if kind == "split-UTF-8":
            assert [e.caller_id_name for e in seen if e.channel == "SIP/zoe-00000001"] == [UTF8_NAME]
        await cluster.judge(verdict)


# == the database ====================================================================================
@pytest.fixture(scope="module")
def mariadb() -> Iterator[PrivateMariaDB]:
    with PrivateMariaDB() as server:
        yield server


@contextlib.asynccontextmanager
async def private_database(server: PrivateMariaDB) -> AsyncIterator[tuple[Dsn, Seeder]]:
    dsn = await asyncio.to_thread(create_database, server.dsn)
    connection = await connect(dsn)
    try:
        yield dsn, Seeder(connection)
    finally:
        connection.close()
        if server.running:
            await asyncio.to_thread(drop_database, dsn)


CLAIM_SQL = "UPDATE vicidial_hopper SET status = 'QUEUE'%"


async def test_database_connection_killed_during_a_claim(mariadb) -> None:
    # the claim waits on a table lock another session holds; its connection is KILLed there (before
    # the UPDATE ran): the claim fails, nothing was claimed, the service claims again on its own
    async with private_database(mariadb) as (dsn, seed), fault_cluster(dsn, seed) as cluster:
        await cluster.start_service()
        await cluster.eventually(cluster.settled)
        locker = await connect(dsn)
        try:
            async with locker.cursor() as cursor:
                await cursor.execute("LOCK TABLES vicidial_hopper WRITE")
            await hang_up(cluster, B, 2)
            thread = None

            async def claim_waiting() -> bool:
                nonlocal thread
                rows = await seed.fetch_all(
                    "SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE %s", (CLAIM_SQL,)
                )
                thread = rows[0]["ID"] if rows else None
                return thread is not None

            await cluster.eventually(claim_waiting, what="the claim waiting on the lock")
            await seed.execute("KILL CONNECTION %s", (thread,))
            killed = time.monotonic()
            async with locker.cursor() as cursor:
                await cursor.execute("UNLOCK TABLES")
        finally:
            locker.close()
        verdict = Verdict("DB connection killed during a claim", recovery_from="the kill")
        await verdict.recover(cluster.settled, killed)
        await cluster.judge(verdict)


async def test_database_connection_cut_after_the_claim_ran(mariadb) -> None:
    # the service's database connections go through a proxy that holds each reply 0.3 s; the claim
    # UPDATE runs (its QUEUE rows are visible to another session) and the connections are cut before
    # its reply arrives: the service cannot know the claim took 2 rows
    async with private_database(mariadb) as (dsn, seed), fault_cluster(dsn, seed) as cluster:
        running = await cluster.start_service(db_proxy=True)
        proxy = running.db_proxy
        assert proxy is not None
        await cluster.eventually(cluster.settled)
        proxy.delay(0.3, direction=TO_CLIENT)
        await hang_up(cluster, B, 2)

        async def claimed() -> bool:
            rows = await seed.fetch_all(
                "SELECT COUNT(*) AS n FROM vicidial_hopper WHERE status = 'QUEUE' AND user = %s",
                (f"VDFC_{B}",),
            )
            return rows[0]["n"] > 0

        await cluster.eventually(claimed, what="the claim's rows in QUEUE")
        proxy.cut()
        proxy.clear()
        cut_at = time.monotonic()
        verdict = Verdict("DB connection cut after the claim ran", recovery_from="the cut")
        await verdict.recover(cluster.settled, cut_at)
        await cluster.judge(verdict)


async def test_database_restart(mariadb) -> None:
    # mariadbd stops (SIGTERM) under the running service; meanwhile 3 of B's calls hang up, which
    # the service sees but cannot fill (no database: no claims). The MEMORY tables come back empty
    # (vicidial_hopper, vicidial_auto_calls, as on a real VICIdial database), so the test refills
    # the hopper as AST_VDhopper.pl would (leads never called), and the service fills B again.
    async with private_database(mariadb) as (dsn, seed), fault_cluster(dsn, seed) as cluster:
        running = await cluster.start_service()
        service = running.service
        await cluster.eventually(cluster.settled)
        await mariadb.astop()
        await hang_up(cluster, B, 3)
        await cluster.eventually(lambda: not service.core.dialing, what="the database seen gone")
        await mariadb.astart()
        up = time.monotonic()
        connection = await connect(dsn)
        try:
            loader = Seeder(connection)
            rows = await loader.fetch_all(
                "SELECT lead_id FROM vicidial_list WHERE list_id = %s AND called_count = 0 ORDER BY lead_id",
                (LIST_ID,),
            )
            await loader.hopper(CAMPAIGN, [r["lead_id"] for r in rows])
        finally:
            connection.close()
        verdict = Verdict("database restart", recovery_from="mariadbd answering again")
        await verdict.recover(cluster.settled, up)
        assert live_fill(cluster.sim(B)) == LIMITS[B]
        await cluster.judge(verdict)


# == two reactors ====================================================================================
USERS = {"r1": "cron", "r2": "cron2"}  # each instance logs in to AMI as its own user


async def two_reactors(cluster: FaultCluster, **settings: object) -> tuple[RunningService, RunningService]:
    await cluster.seed.execute("UPDATE servers SET ASTmgrUSERNAMEupdate = 'cron2'")
    first = await cluster.start_service("r1", db_proxy=True, wait=False, settings=settings_for(**settings))
    second = await cluster.start_service(
        "r2", db_proxy=True, wait=False, settings=settings_for(ami_user="update", **settings)
    )
    await asyncio.wait_for(asyncio.gather(first.service.started.wait(), second.service.started.wait()), 10)
    return first, second


def senders(cluster: FaultCluster) -> set[str | None]:
    """The AMI users whose sessions sent the accepted Originates (the simulators' records)."""
    names: dict[int | None, str | None] = {
        s.id: s.username for sim in cluster.balance_sims for s in sim.sessions
    }
    return {names.get(r.session_id) for sim in cluster.balance_sims for r in accepted(sim)}


async def cut_database(running: RunningService) -> float:
    """Every database connection of ``running`` reset, new ones refused: its leader lock dies."""
    assert running.db_proxy is not None
    await running.db_proxy.refuse()
    running.db_proxy.cut()
    return time.monotonic()


async def test_two_reactors_at_once(database_dsn, seed) -> None:
    # both start together against one cluster; exactly one takes the leader lock and dials. Once
    # the standby's snapshot holds the leader's rows, the leader's database connections are cut and
    # refused: it loses the lock and stops, the standby takes the lock within lock_check and fills
    # the 3 lines that B frees then.
    async with fault_cluster(database_dsn, seed, usernames={"cron2": "1234"}) as cluster:
        first, second = await two_reactors(cluster)
        await cluster.eventually(cluster.settled)
        leaders = [r for r in (first, second) if r.service.is_leader]
        assert len(leaders) == 1
        leader, standby = leaders[0], second if leaders[0] is first else first
        assert senders(cluster) == {USERS[leader.name]}
        await cluster.eventually(lambda: not leader.service._dial_tasks)

        def rows_seen() -> int:
            snapshot = standby.service.core.snapshot
            return 0 if snapshot is None else sum(len(ids) for ids in snapshot.outbalance_calls.values())

        await cluster.eventually(lambda: rows_seen() == NEED, what="the standby's snapshot with the rows")
        cut_at = await cut_database(leader)
        verdict = Verdict("two reactors at once, the leader's DB cut", recovery_from="the cut")
        await verdict.recover(lambda: standby.service.core.dialing, cut_at)
        verdict.notes.append("recovery = the standby dialing (the takeover)")
        await hang_up(cluster, B, 3)
        await cluster.eventually(cluster.settled)
        assert not leader.service.core.dialing and not leader.service.is_leader
        assert senders(cluster) == {USERS[leader.name], USERS[standby.name]}
        assert cluster.accepted_total() == NEED + 3
        await cluster.judge(verdict)


async def test_takeover_right_after_the_leaders_burst(database_dsn, seed) -> None:
    # the test holds the leader lock while both start (both read their first snapshot: no
    # OUTBALANCE rows yet), then lets it go: one takes it and places its 10 calls, and is cut off
    # the database at once. The other takes over well before its next timed snapshot (agents_refresh
    # 5 s): by hand it must place nothing (10 calls of 10 needed are up), and B must stay at 8.
    # (Found by this matrix; fixed by reading the snapshot again when the lock is taken.)
    async with fault_cluster(database_dsn, seed, usernames={"cron2": "1234"}) as cluster:
        holder = await connect(database_dsn)
        try:
            async with holder.cursor() as cursor:
                await cursor.execute("SELECT GET_LOCK(%s, 0)", (LOCK_NAME,))
            first, second = await two_reactors(cluster, agents_refresh=5.0)
            await cluster.eventually(
                lambda: all(ip in r.service.core.dialable_servers() for r in (first, second) for ip in LIMITS)
            )
        finally:
            holder.close()  # the lock goes with the session
        await cluster.eventually(cluster.settled)
        leader = first if first.service.is_leader else second
        standby = second if leader is first else first
        await cluster.eventually(lambda: not leader.service._dial_tasks)
        cut_at = await cut_database(leader)
        verdict = Verdict("two reactors, takeover right after the leader's burst", recovery_from="the cut")
        await verdict.recover(lambda: standby.service.core.dialing, cut_at)
        verdict.notes.append("recovery = the standby dialing (the takeover)")
        await cluster.eventually(lambda: not standby.service._dial_tasks)
        await cluster.judge(verdict)


# == the process killed between claim and originate ==================================================
KILL_POINTS = {
    # kill point: what another session sees of the dial when the process is frozen and killed;
    # "sent": the first Originate reached B (the simulator's record), its row not marked SENT yet
    "claimed": "SELECT COUNT(*) FROM vicidial_hopper WHERE status = 'QUEUE' AND user LIKE 'VDFC\\_%%'",
    "incall": "SELECT COUNT(*) FROM vicidial_hopper WHERE status = 'INCALL' AND user LIKE 'VDFC\\_%%'",
    "rows written": "SELECT COUNT(*) FROM vicidial_manager WHERE action = 'Originate'",
}


@pytest.mark.parametrize(
    "point",
    [
        "claimed",
        "incall",
        "rows written",
        "sent",
    ],
)
async def test_process_killed_between_claim_and_originate(
    database_dsn, seed, tmp_path: Path, point: str
) -> None:
    # `fillreactor run` with its database through a proxy. Agents paused (no shortage) until it is
    # up and leading; then every statement and reply is held 0.08 s each way, the agents get READY
    # and, when the dial has reached the kill point, the proxy freezes the process's database
    # traffic and the process is SIGKILLed; what it had not sent dies with it (the proxy's
    # connections are cut). A new process on the same configuration must recover the claims and
    # fill the cluster. For "incall", lead 1 (the first claimed) also has a DEAD Originate row of an
    # earlier refused call, as store.calls.undo_unsent leaves it: not a proof that it was placed.
    async with fault_cluster(database_dsn, seed) as cluster:
        proxy = await cluster.stack.enter_async_context(FaultProxy((database_dsn.host, database_dsn.port)))
        conf, ini = write_run_configs(tmp_path, database_dsn, proxy.address[1])
        await seed.execute("UPDATE vicidial_live_agents SET status = 'PAUSED'")
        if point == "incall":
            call_id = build_call_id(datetime.now().replace(microsecond=0), 1)
            await seed.insert(
                "vicidial_manager", entry_date=seed.now(), status="DEAD", response="N", server_ip=C,
                action="Originate", callerid=call_id, cmd_line_b="Exten: 138368",
                cmd_line_k=f"VDACnote: {CAMPAIGN}|1|1|3125000001|OUTBALANCE|MAIN|50|{A}|CAMPAIGN_CID",
            )
        sim = cluster.sim(B)
        processes: list[asyncio.subprocess.Process] = []
        verdict = Verdict(
            f"process killed between claim and originate ({point})", recovery_from="the new process's start",
            bound=5.0,
        )
        verdict.notes.append("the model is the other process's: only the simulators' live calls are sampled")
        try:
            first = await start_run(conf, ini, tmp_path / "first.log")
            processes.append(first)
            await cluster.eventually(
                lambda: any(m.get("Action") == "CoreShowChannels" for s in sim.sessions for m in s.actions),
                what="the first process resynced B",
            )
            await cluster.eventually(
                lambda: cluster.database.fetch_value("SELECT IS_USED_LOCK(%s) IS NOT NULL", (LOCK_NAME,)),
                what="the first process leading",
            )
            proxy.delay(0.08, direction=BOTH)
            await seed.execute("UPDATE vicidial_live_agents SET status = 'READY'")
            if point == "sent":
                async with asyncio.timeout(10):
                    await sim.wait_until(lambda: len(accepted(sim)) > 0)
            else:
                sql = KILL_POINTS[point]
                await cluster.eventually(lambda: cluster.database.fetch_value(sql), what=f"the dial {point}")
            proxy.silence()
            first.send_signal(signal.SIGKILL)
            await first.wait()
            proxy.cut()
            proxy.clear()
            proxy.resume()
            if point == "sent":
                record = accepted(sim)[0]
                status = await cluster.database.fetch_value(
                    "SELECT status FROM vicidial_manager WHERE callerid = %s", (record.action_id,)
                )
                # out, its row not marked (a chunk's SENT marks follow its Originates); the rest of
                # the chunk and C's entry of the same plan (Dialer.concurrent_entries) may be out too
                assert status == "DEAD" and cluster.accepted_total() >= 1
            else:
                assert cluster.accepted_total() == 0  # killed before any Originate left
            second = await start_run(conf, ini, tmp_path / "second.log")
            processes.append(second)
            started = time.monotonic()
            await verdict.recover(lambda: cluster.live_total() >= NEED, started)
            await cluster.settle()
            verdict.limits(cluster.watch)
            verdict.leads(await cluster.books())
        finally:
            for process in processes:
                if process.returncode is None:
                    process.send_signal(signal.SIGTERM)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(process.wait(), 20)
        assert processes[-1].returncode == 0, (tmp_path / "second.log").read_text()[-2000:]
        verdict.finish()
