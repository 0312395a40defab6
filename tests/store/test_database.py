"""The store's pool wrapper against the real MariaDB: autocommit, timeouts, retries, errors, counts."""

from __future__ import annotations

import pytest

from fillreactor.store import BatchError, Database, DatabaseAddress, StoreError, StoreUnavailable
from fillreactor.testing.database import Dsn


@pytest.fixture
async def database(database_dsn: Dsn):
    db = await Database.open(DatabaseAddress.from_dsn(database_dsn), statement_timeout=2.0)
    try:
        yield db
    finally:
        await db.close()


async def test_reads_writes_and_counts(database: Database) -> None:
    result = await database.execute(
        "INSERT INTO servers (server_id, server_ip) VALUES (%s, %s)", ("s1", "10.0.0.1")
    )
    assert result.rowcount == 1
    assert (
        await database.fetch_value("SELECT server_ip FROM servers WHERE server_id = %s", ("s1",))
        == "10.0.0.1"
    )
    assert await database.fetch_dicts("SELECT server_id FROM servers") == [{"server_id": "s1"}]
    assert (database.counts.reads, database.counts.writes) == (2, 1)


async def test_a_batch_runs_in_order_in_one_round_trip(database: Database) -> None:
    # three writes, one query: each result in order; a value with quotes and a % is still escaped
    results = await database.execute_batch([
        ("INSERT INTO servers (server_id, server_ip) VALUES (%s, %s)", ("s1", "10.0.0.1")),
        ("INSERT INTO servers (server_id, server_ip) VALUES (%s, %s), (%s, %s)", ("s2", "x", "s3", "y")),
        ("UPDATE servers SET server_description = %s WHERE server_id <> %s", ("it's 100%; DROP", "s1")),
    ])
    assert [r.rowcount for r in results] == [1, 2, 2]
    rows = await database.fetch_all("SELECT server_id, server_description FROM servers ORDER BY server_id")
    assert [tuple(r) for r in rows] == [("s1", None), ("s2", "it's 100%; DROP"), ("s3", "it's 100%; DROP")]
    assert (database.counts.writes, database.counts.reads) == (3, 1)


async def test_a_failing_statement_stops_the_batch_and_says_which(database: Database) -> None:
    # the second fails (duplicate key): the first is applied, the third never runs; the connection
    # is clean for the next statement
    with pytest.raises(BatchError) as raised:
        await database.execute_batch([
            ("INSERT INTO servers (server_id, server_ip) VALUES (%s, %s)", ("s1", "10.0.0.1")),
            ("INSERT INTO servers (server_id, server_ip) VALUES (%s, %s)", ("s1", "10.0.0.2")),
            ("INSERT INTO servers (server_id, server_ip) VALUES (%s, %s)", ("s3", "10.0.0.3")),
        ])
    assert raised.value.index == 1 and not isinstance(raised.value, StoreUnavailable)
    assert await database.fetch_all("SELECT server_id FROM servers") == [("s1",)]
    assert await database.execute_batch([("DELETE FROM servers WHERE server_id = %s", ("s1",))]) != []
    assert await database.fetch_value("SELECT COUNT(*) FROM servers") == 0


async def test_autocommit_makes_other_sessions_see_writes_at_once(database: Database, seed) -> None:
    assert await database.fetch_value("SELECT COUNT(*) FROM servers") == 0
    await seed.server("s2", "10.0.0.2")
    assert await database.fetch_value("SELECT COUNT(*) FROM servers") == 1


async def test_statement_error_is_store_error_not_unavailable(database: Database) -> None:
    with pytest.raises(StoreError) as raised:
        await database.fetch_all("SELECT no_such_column FROM servers")
    assert not isinstance(raised.value, StoreUnavailable)


async def test_a_slow_statement_times_out_and_the_pool_recovers(database_dsn: Dsn) -> None:
    db = await Database.open(DatabaseAddress.from_dsn(database_dsn), statement_timeout=0.2, maxsize=1)
    try:
        with pytest.raises(StoreUnavailable):
            await db.execute("SELECT SLEEP(2)")  # not idempotent: never retried
        assert await db.fetch_value("SELECT 1") == 1
    finally:
        await db.close()


async def test_a_killed_connection_is_retried_for_reads(database_dsn: Dsn, db) -> None:
    database = await Database.open(DatabaseAddress.from_dsn(database_dsn), maxsize=1)
    try:
        connection_id = await database.fetch_value("SELECT CONNECTION_ID()")
        async with db.cursor() as cursor:  # another session kills the pool's only connection
            await cursor.execute("KILL %s", (int(connection_id),))
        assert await database.fetch_value("SELECT CONNECTION_ID()") != connection_id
    finally:
        await database.close()


async def test_unreachable_server_is_store_unavailable() -> None:
    address = DatabaseAddress("127.0.0.1", 1, "root", "", "nothing")
    with pytest.raises(StoreUnavailable, match="cannot be reached"):
        await Database.open(address, connect_timeout=0.5)


async def test_strict_and_non_strict_sessions(database_dsn: Dsn) -> None:
    loose = await Database.open(DatabaseAddress.from_dsn(database_dsn), sql_mode="")
    strict = await Database.open(DatabaseAddress.from_dsn(database_dsn), sql_mode="STRICT_ALL_TABLES")
    try:
        # a negative value into SMALLINT UNSIGNED: non-strict MySQL stores 0, strict refuses (DESIGN.md)
        await loose.execute(
            "INSERT INTO vicidial_campaign_stats (campaign_id, balance_trunk_fill) VALUES ('A', -3)"
        )
        assert await loose.fetch_value("SELECT balance_trunk_fill FROM vicidial_campaign_stats") == 0
        with pytest.raises(StoreError):
            await strict.execute(
                "INSERT INTO vicidial_campaign_stats (campaign_id, balance_trunk_fill) VALUES ('B', -3)"
            )
    finally:
        await loose.close()
        await strict.close()
