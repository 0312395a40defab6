"""All SQL of fillreactor: the connection pool, snapshot reads, lookups, the row writes of a placed call.

Nothing outside this package builds SQL. Each module opens with the rules it keeps.
"""

from fillreactor.store.database import (
    BatchError,
    Database,
    DatabaseAddress,
    Result,
    StatementCounts,
    StoreError,
    StoreUnavailable,
)

__all__ = [
    "BatchError",
    "Database",
    "DatabaseAddress",
    "Result",
    "StatementCounts",
    "StoreError",
    "StoreUnavailable",
]
