"""The leader lock: one dialing fillreactor per cluster (issue 9 point 5, spec 9.3.4).

Rules this module keeps:

* The lock is MySQL's ``GET_LOCK('fillreactor', 0)``, taken on a **dedicated** connection of its
  own (never a pooled one: the pool recycles connections, and a lock lives exactly as long as the
  session that took it). It is never waited for: 0 seconds, so a standby learns at once that it is
  one and tries again later.
* Fencing: every claim of hopper rows carries ``Fence.sql`` in its own ``WHERE``,
  ``IS_USED_LOCK('fillreactor') = <the lock connection's id>``. When the lock's session is gone
  (process killed, connection lost, server restarted) the server frees the lock, the condition is
  false for every row and the claim claims nothing, even before this process notices.
* ``still_held()`` is the cheap check (one ``SELECT`` on the lock connection): any error or a
  different holder means the lock is lost; the fence is dropped at once, so the dialer stops
  claiming, and the connection is closed so the server frees the lock if it still had it.
* Messages name the database without the password (``DatabaseAddress.__str__``).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import aiomysql
import pymysql

from fillreactor.store.database import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_STATEMENT_TIMEOUT,
    DatabaseAddress,
    StoreUnavailable,
)

log = logging.getLogger(__name__)

LOCK_NAME = "fillreactor"


@dataclass(frozen=True, slots=True)
class Fence:
    """The condition a claim puts in its WHERE: the lock is still held by this session."""

    lock_name: str
    connection_id: int

    @property
    def sql(self) -> str:
        return "IS_USED_LOCK(%s) = %s"

    @property
    def params(self) -> tuple[Any, ...]:
        return (self.lock_name, self.connection_id)


class LeaderLock:
    """``GET_LOCK`` on a connection of its own; ``fence`` is set while the lock is believed held."""

    def __init__(
        self,
        address: DatabaseAddress,
        name: str = LOCK_NAME,
        *,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        statement_timeout: float = DEFAULT_STATEMENT_TIMEOUT,
    ) -> None:
        if not name or len(name) > 64:
            raise ValueError("a lock name is 1-64 characters")
        self.address = address
        self.name = name
        self.connect_timeout = connect_timeout
        self.statement_timeout = statement_timeout
        self._connection: aiomysql.Connection | None = None
        self._fence: Fence | None = None

    @property
    def fence(self) -> Fence | None:
        """The fence of the held lock, or None when this instance is not (or no longer) the leader."""
        return self._fence

    @property
    def is_held(self) -> bool:
        return self._fence is not None

    async def acquire(self) -> bool:
        """Try once, without waiting. True when this instance now holds the lock."""
        if self._fence is not None and await self.still_held():
            return True
        try:
            conn = await self._open()
            row = await self._query(conn, "SELECT GET_LOCK(%s, 0), CONNECTION_ID()", (self.name,))
        except StoreUnavailable:
            await self._drop()
            raise
        got, connection_id = row if row else (None, None)
        if got == 1:
            self._fence = Fence(self.name, int(connection_id))
            log.info("leader lock %r taken (connection %s on %s)", self.name, connection_id, self.address)
            return True
        return False

    async def still_held(self) -> bool:
        """Is the lock still ours? Drops the fence (and the connection) when it is not."""
        conn = self._connection
        fence = self._fence
        if conn is None or fence is None:
            return False
        try:
            row = await self._query(conn, "SELECT IS_USED_LOCK(%s) = CONNECTION_ID()", (self.name,))
        except StoreUnavailable as error:
            log.warning("leader lock %r lost: %s", self.name, error)
            await self._drop()
            return False
        if not row or row[0] != 1:
            log.warning("leader lock %r is no longer held by connection %s", self.name, fence.connection_id)
            await self._drop()
            return False
        return True

    async def holder(self) -> int | None:
        """The connection id holding the lock now (any instance), None when it is free."""
        conn = await self._open()
        row = await self._query(conn, "SELECT IS_USED_LOCK(%s)", (self.name,))
        return int(row[0]) if row and row[0] is not None else None

    async def release(self) -> None:
        """Give the lock back and close the connection (closing alone would free it too)."""
        conn = self._connection
        if conn is not None and self._fence is not None:
            try:
                await self._query(conn, "SELECT RELEASE_LOCK(%s)", (self.name,))
            except StoreUnavailable as error:
                log.warning(
                    "leader lock %r: release failed (%s); closing the connection frees it", self.name, error
                )
        await self._drop()

    # -- mechanics ---------------------------------------------------------------------------
    async def _open(self) -> aiomysql.Connection:
        if self._connection is not None and not self._connection.closed:
            return self._connection
        address = self.address
        try:
            async with asyncio.timeout(self.connect_timeout * 2):
                self._connection = await aiomysql.connect(
                    host=address.host,
                    port=address.port,
                    user=address.user,
                    password=address.password,
                    db=address.database,
                    autocommit=True,
                    connect_timeout=self.connect_timeout,
                    charset="utf8mb4",
                )
        except (TimeoutError, pymysql.err.MySQLError, OSError) as error:
            raise StoreUnavailable(
                f"database {address} cannot be reached for the leader lock: {error}"
            ) from error
        return self._connection

    async def _query(
        self, conn: aiomysql.Connection, sql: str, params: tuple[Any, ...]
    ) -> tuple[Any, ...] | None:
        try:
            async with asyncio.timeout(self.statement_timeout):
                async with conn.cursor() as cursor:
                    await cursor.execute(sql, params)
                    row = await cursor.fetchone()
                    return tuple(row) if row is not None else None
        except (TimeoutError, pymysql.err.MySQLError, OSError, asyncio.IncompleteReadError) as error:
            raise StoreUnavailable(
                f"database {self.address}: leader lock statement failed: {error}"
            ) from error

    async def _drop(self) -> None:
        self._fence = None
        conn, self._connection = self._connection, None
        if conn is not None:
            conn.close()
