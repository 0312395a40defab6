"""Snapshot reads against seeded VICIdial rows: every part, reuse, stats demand, call lookups."""

from __future__ import annotations

from datetime import timedelta

import pytest

from fillreactor.core.cluster import AgentTally, TrunkRestriction
from fillreactor.core.origin import CallOrigin
from fillreactor.store import Database, DatabaseAddress
from fillreactor.store.snapshot import (
    SnapshotLoader,
    load_snapshot,
    lookup_call_origins,
    read_stats_demand,
)
from fillreactor.testing.database import Dsn


@pytest.fixture
async def database(database_dsn: Dsn):
    db = await Database.open(DatabaseAddress.from_dsn(database_dsn))
    try:
        yield db
    finally:
        await db.close()


async def test_every_part_of_a_seeded_cluster(database: Database, seed) -> None:
    cluster = await seed.cluster(agents=4, local_trunk_shortage=6)
    await seed.server_trunk(cluster.balance_server_ips[0], cluster.campaign_id, 5, "MAXIMUM_LIMIT")
    await seed.live_agent(cluster.agent_server_ip, cluster.campaign_id, status="PAUSED")
    await seed.live_agent(cluster.agent_server_ip, cluster.campaign_id, status="INCALL", callerid="M1")
    await seed.auto_call(
        cluster.balance_server_ips[0], cluster.campaign_id, call_type="OUTBALANCE", lead_id=7
    )
    snapshot = await load_snapshot(database)

    assert snapshot.system.outbound_calls_per_second == 10 and snapshot.system.autodial_enabled
    assert set(snapshot.servers) == set(cluster.server_ips)
    agent_server = snapshot.servers[cluster.agent_server_ip]
    assert (agent_server.max_vicidial_trunks, agent_server.balance_active) == (6, False)
    assert [s.server_ip for s in snapshot.balance_order] == list(cluster.balance_server_ips)  # rank 2 then 1
    assert snapshot.campaigns[cluster.campaign_id].auto_dial_level == 3.0
    trunk = snapshot.trunk(cluster.campaign_id, cluster.balance_server_ips[0])
    assert trunk is not None and (trunk.dedicated_trunks, trunk.restriction) == (
        5,
        TrunkRestriction.MAXIMUM_LIMIT,
    )
    # 4 READY counted; the PAUSED one is not; the INCALL one has no vicidial_auto_calls row: DEAD (spec 4.1)
    assert snapshot.agents[(cluster.campaign_id, cluster.agent_server_ip)] == AgentTally(
        ready=4, incall=0, dead=1
    )
    assert snapshot.logged_in_agents[cluster.agent_server_ip] == 5
    # FILL's gate counts every non-PAUSED agent (spec 2.5): 4 READY + 1 INCALL
    assert snapshot.fill_agents[cluster.campaign_id] == 5
    assert snapshot.auto_calls.outbalance[(cluster.campaign_id, cluster.balance_server_ips[0])] == 1
    assert snapshot.auto_calls.rows_on_server[cluster.balance_server_ips[0]] == 1


async def test_stale_agents_are_not_counted(database: Database, seed) -> None:
    await seed.server("a1", "10.0.0.1")
    await seed.campaign("C1")
    await seed.live_agent("10.0.0.1", "C1", last_update_time=seed.now() - timedelta(seconds=30))
    snapshot = await load_snapshot(database)
    assert ("C1", "10.0.0.1") not in snapshot.agents


async def test_unchanged_reload_returns_the_same_object(database: Database, seed) -> None:
    await seed.cluster()
    loader = SnapshotLoader(database)
    first = await loader.load()
    assert await loader.load() is first
    await seed.execute("UPDATE servers SET max_vicidial_trunks = 40 WHERE server_ip = '10.10.10.13'")
    third = await loader.load()
    assert third is not first and third.servers["10.10.10.13"].max_vicidial_trunks == 40
    assert third.campaigns is first.campaigns  # an unchanged part is reused
    assert (loader.loads, loader.unchanged_loads) == (3, 1)


async def test_stats_demand_is_the_perl_read(database: Database, seed) -> None:
    now = seed.now()
    await seed.campaign_server_stats("B", "10.0.0.1", 4, update_time=now)
    await seed.campaign_server_stats("B", "10.0.0.1", 2, update_time=now)  # no unique key: summed
    await seed.campaign_server_stats("a", "10.0.0.2", 3, update_time=now - timedelta(seconds=1199))
    await seed.campaign_server_stats("A", "10.0.0.3", 5, update_time=now - timedelta(seconds=1201))  # stale
    await seed.campaign_server_stats("C", "10.0.0.3", 0, update_time=now)  # not short
    demand = await read_stats_demand(database, now)
    assert dict(demand.full_servers("B")) == {"10.0.0.1": 6}
    assert dict(demand.full_servers("a")) == {"10.0.0.2": 3}
    assert demand.total("A") == 0 and demand.total("C") == 0


async def test_call_origin_lookup(database: Database, seed) -> None:
    await seed.auto_call("10.0.0.2", "C1", callerid="V1126101010000000001", call_type="OUTBALANCE")
    await seed.auto_call("10.0.0.1", "C1", callerid="V1126101010000000002")
    await seed.auto_call("10.0.0.3", "C2", callerid="V1126101010000000002")  # re-inserted: newest wins
    found = await lookup_call_origins(
        database, ["V1126101010000000001", "V1126101010000000002", "V1126101010000000003"]
    )
    assert found == {
        "V1126101010000000001": CallOrigin("C1", "10.0.0.2", "OUTBALANCE"),
        "V1126101010000000002": CallOrigin("C2", "10.0.0.3", "OUT"),
        "V1126101010000000003": None,
    }
