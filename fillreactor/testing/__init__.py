"""Test support shipped with the package: throwaway schema databases and the seeding API.

Rules this package keeps: nothing here runs in production; it is imported by ``tests/`` and by the
demo. ``database`` makes and drops databases (synchronous, PyMySQL); ``seed`` writes and reads rows
(asynchronous, aiomysql), exactly as the tests ask and nothing more.
"""

from fillreactor.testing.database import (
    DatabaseUnavailable,
    Dsn,
    TestDatabase,
    create_database,
    drop_database,
    temporary_database,
    test_dsn,
)
from fillreactor.testing.seed import Cluster, Seeder

__all__ = [
    "Cluster",
    "DatabaseUnavailable",
    "Dsn",
    "Seeder",
    "TestDatabase",
    "create_database",
    "drop_database",
    "temporary_database",
    "test_dsn",
]
