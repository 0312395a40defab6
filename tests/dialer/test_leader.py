"""The leader lock (issue 9 point 5): one holder; claims fenced in their WHERE; a lost lock claims nothing."""

from __future__ import annotations

from dialer_helpers import B1, CAMPAIGN, HOST, NOW, fill_cluster, pass_at, ready

from fillreactor.core.planner import PlanEntry
from fillreactor.dialer import Dialer, ManagerOriginator
from fillreactor.store import DatabaseAddress
from fillreactor.store import calls as store
from fillreactor.store.leader import Fence, LeaderLock


async def test_only_one_instance_holds_the_lock(database_dsn, lock_name) -> None:
    address = DatabaseAddress.from_dsn(database_dsn)
    first, second = LeaderLock(address, lock_name), LeaderLock(address, lock_name)
    try:
        assert await first.acquire()
        assert first.fence is not None and await first.still_held()
        assert not await second.acquire()  # GET_LOCK(name, 0): no waiting
        assert second.fence is None
        assert await second.holder() == first.fence.connection_id
        await first.release()
        assert first.fence is None
        assert await second.acquire()  # the standby takes over at once
    finally:
        await first.release()
        await second.release()


async def test_a_claim_fenced_by_a_non_holder_claims_nothing(store_db, seed, database_dsn, lock_name) -> None:
    await fill_cluster(seed, leads=3)
    leader = LeaderLock(DatabaseAddress.from_dsn(database_dsn), lock_name)
    try:
        assert await leader.acquire()
        assert leader.fence is not None
        impostor = Fence(lock_name, leader.fence.connection_id + 1000)
        assert await store.claim(store_db, CAMPAIGN, B1, 3, impostor) == 0
        assert await seed.count("vicidial_hopper", status="READY") == 3
        assert await store.claim(store_db, CAMPAIGN, B1, 1, leader.fence) == 1
    finally:
        await leader.release()


async def test_a_lost_lock_fences_its_claims_before_the_holder_notices(
    store_db, seed, database_dsn, lock_name
) -> None:
    # the lock's session dies (KILL, as a network cut or a server restart would): the server frees the
    # lock, so a claim still carrying the old fence matches no row, though the instance has not checked yet
    await fill_cluster(seed, leads=3)
    address = DatabaseAddress.from_dsn(database_dsn)
    first, second = LeaderLock(address, lock_name), LeaderLock(address, lock_name)
    try:
        assert await first.acquire()
        old = first.fence
        assert old is not None
        await seed.execute(f"KILL {int(old.connection_id)}")
        assert await store.claim(store_db, CAMPAIGN, B1, 3, old) == 0
        assert first.is_held  # not noticed yet ...
        assert not await first.still_held()  # ... until the cheap check, which drops the fence
        assert first.fence is None
        assert await second.acquire()
        assert await store.claim(store_db, CAMPAIGN, B1, 3, old) == 0  # another holder now
        assert await store.claim(store_db, CAMPAIGN, B1, 1, second.fence) == 1
    finally:
        await first.release()
        await second.release()


async def test_a_dialer_that_is_not_the_leader_claims_nothing(
    store_db, seed, database_dsn, lock_name
) -> None:
    await fill_cluster(seed, leads=3)
    address = DatabaseAddress.from_dsn(database_dsn)
    holder, standby = LeaderLock(address, lock_name), LeaderLock(address, lock_name)
    try:
        assert await holder.acquire() and not await standby.acquire()
        dialer = Dialer(store_db, ManagerOriginator(), host_ip=HOST, leader=standby, pacing=False)
        report = await dialer.dial([PlanEntry(CAMPAIGN, B1, 3)], now=pass_at(NOW))
        assert report.placed == 0 and report.entries[0].error.startswith("not the leader")
        assert await seed.rows(
            "vicidial_hopper",
            columns=["hopper_id", "lead_id", "campaign_id", "status", "user"],
            order_by="hopper_id",
        ) == ready([1, 2, 3])
        assert await seed.count("vicidial_manager") == 0
    finally:
        await holder.release()
        await standby.release()


async def test_a_second_pass_while_another_holds_the_lock_does_nothing(
    one_pass, seed, database_dsn, lock_name
) -> None:
    await fill_cluster(seed)
    holder = LeaderLock(DatabaseAddress.from_dsn(database_dsn), lock_name)
    try:
        assert await holder.acquire()
        result = await one_pass.run()
        assert result.code == 3
        assert "another instance holds the leader lock" in result.text
        assert result.tables.manager == [] and result.tables.hopper == ready(range(1, 21))
    finally:
        await holder.release()
