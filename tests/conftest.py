"""Shared fixtures: one real MariaDB test database per session, reset before each test that asks.

Fixtures (request them by name; nothing here is autouse, so pure unit tests never touch MariaDB):

* ``test_database`` (session): the ``TestDatabase`` holding the schema, created on first request
  in a uniquely named database and dropped at the end of the session.
* ``database_dsn``: the ``Dsn`` of that database, every schema table emptied and its
  auto-increment counters reset before the test (so ids start at 1).
* ``db``: an aiomysql connection (autocommit) to that clean database.
* ``db_pool``: an aiomysql pool (1-4 connections) to that clean database.
* ``seed``: a ``fillreactor.testing.Seeder`` on ``db``; also has ``rows``/``fetch_all``/``count``.

The server is ``$FILLREACTOR_TEST_DSN`` (default ``mysql://root@127.0.0.1:3306``). When it cannot be
reached the whole run stops with a failure that says how to start MariaDB: never a skip.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import aiomysql
import pytest
from hypothesis import HealthCheck, settings

from fillreactor.testing.database import DatabaseUnavailable, Dsn, TestDatabase, connect, create_pool
from fillreactor.testing.seed import Seeder

# Hypothesis: no per-example deadline (a loaded CI machine is not a failing test); on CI a fixed
# seed, so a red run can be reproduced exactly and a green one does not depend on luck.
settings.register_profile("dev", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", parent=settings.get_profile("dev"), derandomize=True)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

# Exit status when the database is missing: "tests failed", so CI goes red rather than green.
DATABASE_UNAVAILABLE_EXIT_STATUS = 1


@pytest.fixture(scope="session")
def test_database() -> Iterator[TestDatabase]:
    try:
        database = TestDatabase.create()
    except DatabaseUnavailable as error:
        pytest.exit(str(error), returncode=DATABASE_UNAVAILABLE_EXIT_STATUS)
    yield database
    database.close(drop=True)


@pytest.fixture
def database_dsn(test_database: TestDatabase) -> Dsn:
    test_database.reset()
    return test_database.dsn


@pytest.fixture
async def db(database_dsn: Dsn) -> AsyncIterator[aiomysql.Connection]:
    connection = await connect(database_dsn)
    try:
        yield connection
    finally:
        connection.close()


@pytest.fixture
async def db_pool(database_dsn: Dsn) -> AsyncIterator[aiomysql.Pool]:
    pool = await create_pool(database_dsn)
    try:
        yield pool
    finally:
        pool.close()
        await pool.wait_closed()


@pytest.fixture
async def seed(db: aiomysql.Connection) -> Seeder:
    return Seeder(db)
