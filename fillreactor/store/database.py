"""The database connection of the service: an aiomysql pool with the rules a dialer needs.

Rules this module keeps (DESIGN.md "Rules learned by measuring", spec/AMI.md B 3.1):

* Every connection is ``autocommit=True`` (a pooled connection otherwise reads a stale
  REPEATABLE-READ snapshot forever) with an explicit ``connect_timeout``.
* Every statement runs under ``asyncio.timeout(statement_timeout)``; aiomysql closes a connection
  whose query was cancelled, so the pool never hands out a connection with a half-read result.
* Connection errors (server gone, lost during query, can't connect) are retried with tenacity, full
  jitter, a few times, **for idempotent statements only**: reads, and writes the caller marks
  ``idempotent=True``. A write that may have reached the server is never sent twice; it raises
  ``StoreUnavailable`` and the caller decides. Getting a connection from the pool is always
  retried (nothing was sent yet). The first attempt runs outside tenacity's loop (a good part of
  a statement's own cost on a 2-core machine), so the retry machinery costs only when it retries.
* Errors are two kinds, so callers can act on them: ``StoreUnavailable`` (the database cannot be
  reached: stop dialing, keep running) and ``StoreError`` (the statement itself failed).
* All values are bound parameters; the only SQL text built here is what callers pass in.
* Statements are counted (reads, writes) for metrics and the statements-per-call figures.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiomysql
import pymysql
from pymysql.constants import CLIENT
from tenacity import (
    AsyncRetrying,
    RetryError,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

log = logging.getLogger(__name__)

DEFAULT_STATEMENT_TIMEOUT = 5.0
DEFAULT_CONNECT_TIMEOUT = 5.0
FIRST_RETRY_WAIT = 0.05  # seconds: full jitter up to this before the first retry, doubling after
# PyMySQL codes meaning "no usable connection": can't connect, gone away, lost during query,
# lost at handshake, server shutdown in progress, connection killed.
CONNECTION_ERROR_CODES = frozenset({2003, 2006, 2013, 2055, 1053, 1927})

Params = Sequence[Any]
_SQL_MODE = re.compile(r"^[A-Z_,]*$")


class StoreError(RuntimeError):
    """A statement failed for a reason other than the connection (bad SQL, a constraint, a value)."""


class StoreUnavailable(StoreError):
    """The database cannot be reached (after retries, where retrying was safe)."""


class BatchError(StoreError):
    """A statement of ``execute_batch`` failed: ``index`` is its place; those before it were applied,
    it and those after it were not."""

    def __init__(self, index: int, message: str, results: Sequence[Result] = ()) -> None:
        super().__init__(message)
        self.index = index
        self.results = list(results)
        """The results of the statements before it."""


class _ConnectionLost(Exception):
    """Internal: a connection-level failure after the statement may have reached the server."""


class _NotSent(_ConnectionLost):
    """Internal: no connection could be had, so nothing was sent: always safe to retry."""


def is_connection_error(error: BaseException) -> bool:
    if isinstance(error, (pymysql.err.OperationalError, pymysql.err.InterfaceError)):
        code = error.args[0] if error.args else None
        return isinstance(error, pymysql.err.InterfaceError) or code in CONNECTION_ERROR_CODES
    return isinstance(error, (ConnectionError, OSError, asyncio.IncompleteReadError))


@dataclass(frozen=True)
class DatabaseAddress:
    """Where the database is. ``password`` never appears in ``str``/``repr``."""

    host: str
    port: int
    user: str
    password: str = field(repr=False)
    database: str

    @classmethod
    def from_conf(cls, conf: Any) -> DatabaseAddress:
        """From an ``AstguiclientConf``."""
        return cls(conf.db_host, conf.db_port, conf.db_user, conf.db_password, conf.db_name)

    @classmethod
    def from_dsn(cls, dsn: Any) -> DatabaseAddress:
        """From a ``fillreactor.testing.database.Dsn`` (or anything with the same attributes)."""
        if not dsn.database:
            raise ValueError("the DSN must name a database")
        return cls(dsn.host, dsn.port, dsn.user, dsn.password, dsn.database)

    def __str__(self) -> str:
        return f"{self.user}@{self.host}:{self.port}/{self.database}"


@dataclass
class StatementCounts:
    reads: int = 0
    writes: int = 0
    errors: int = 0
    retries: int = 0

    @property
    def total(self) -> int:
        return self.reads + self.writes


@dataclass(frozen=True)
class Result:
    rowcount: int
    lastrowid: int


class Database:
    """An aiomysql pool behind the module's rules. Create with ``await Database.open(address)``."""

    def __init__(
        self,
        pool: aiomysql.Pool,
        address: DatabaseAddress,
        *,
        statement_timeout: float = DEFAULT_STATEMENT_TIMEOUT,
        retry_attempts: int = 4,
        retry_max_wait: float = 1.0,
    ) -> None:
        self.pool = pool
        self.address = address
        self.statement_timeout = statement_timeout
        self.retry_attempts = retry_attempts
        self.retry_max_wait = retry_max_wait
        self.counts = StatementCounts()

    @classmethod
    async def open(
        cls,
        address: DatabaseAddress,
        *,
        minsize: int = 1,
        maxsize: int = 4,
        statement_timeout: float = DEFAULT_STATEMENT_TIMEOUT,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        sql_mode: str | None = None,
        charset: str = "utf8mb4",
        retry_attempts: int = 4,
    ) -> Database:
        """Open the pool; ``StoreUnavailable`` when the server cannot be reached.

        ``sql_mode`` sets the session mode of every connection (tests run the same code in strict
        and non-strict mode; production leaves the server's own mode alone).
        """
        kwargs: dict[str, Any] = {
            "host": address.host,
            "port": address.port,
            "user": address.user,
            "password": address.password,
            "db": address.database,
            "autocommit": True,
            "connect_timeout": connect_timeout,
            "charset": charset,
            # execute_batch: several writes in one round trip (every value is still escaped by the
            # client; nothing here builds SQL from values)
            "client_flag": CLIENT.MULTI_STATEMENTS,
        }
        if sql_mode is not None:
            if not _SQL_MODE.match(sql_mode):
                raise ValueError(f"sql_mode {sql_mode!r}: only A-Z, _ and commas are allowed")
            kwargs["init_command"] = f"SET SESSION sql_mode='{sql_mode}'"  # checked just above
        try:
            async with asyncio.timeout(connect_timeout * 2):
                pool = await aiomysql.create_pool(
                    minsize=minsize, maxsize=maxsize, pool_recycle=3600, **kwargs
                )
        except (TimeoutError, pymysql.err.MySQLError, OSError) as error:
            if isinstance(error, pymysql.err.MySQLError) and not is_connection_error(error):
                raise StoreError(f"database {address}: {error}") from error
            raise StoreUnavailable(f"database {address} cannot be reached: {error}") from error
        return cls(pool, address, statement_timeout=statement_timeout, retry_attempts=retry_attempts)

    async def close(self) -> None:
        self.pool.close()
        await self.pool.wait_closed()

    # -- statements --------------------------------------------------------------------------
    async def fetch_all(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        """Rows of a read, as tuples. Retried on connection loss."""
        return await self._run(sql, params, read=True, idempotent=True, fetch="all")

    async def fetch_dicts(self, sql: str, params: Params = ()) -> list[dict[str, Any]]:
        """Rows of a read, as dicts keyed by column name. Retried on connection loss."""
        return await self._run(sql, params, read=True, idempotent=True, fetch="dicts")

    async def fetch_one(self, sql: str, params: Params = ()) -> tuple[Any, ...] | None:
        rows = await self.fetch_all(sql, params)
        return rows[0] if rows else None

    async def fetch_value(self, sql: str, params: Params = (), default: Any = None) -> Any:
        row = await self.fetch_one(sql, params)
        return row[0] if row else default

    async def execute(self, sql: str, params: Params = (), *, idempotent: bool = False) -> Result:
        """A write; (rowcount, lastrowid). Retried on connection loss only when ``idempotent``."""
        return await self._run(sql, params, read=False, idempotent=idempotent, fetch=None)

    async def execute_batch(self, statements: Sequence[tuple[str, Params]]) -> list[Result]:
        """Writes sent in one round trip (one multi-statement query) and run in order; their results.

        A failing statement stops the batch: ``BatchError`` says which. Never retried once sent
        (a write may have been applied); a lost connection raises ``StoreUnavailable``.
        """
        if not statements:
            return []
        results, _rows = await self._send_batch(statements, reads=0)
        return results

    async def write_then_read(
        self, writes: Sequence[tuple[str, Params]], sql: str, params: Params = ()
    ) -> tuple[list[Result], list[tuple[Any, ...]]]:
        """``execute_batch`` of ``writes`` with a read last, in the same round trip: the writes'
        results and the read's rows (``BatchError`` index ``len(writes)``: the read failed)."""
        return await self._send_batch([*writes, (sql, params)], reads=1)

    async def _send_batch(
        self, statements: Sequence[tuple[str, Params]], *, reads: int
    ) -> tuple[list[Result], list[tuple[Any, ...]]]:
        try:
            conn = await self._acquire_once()
        except _NotSent:
            conn = await self._acquire()
        try:
            return await self._batch(conn, statements, reads=reads)
        except _ConnectionLost as lost:
            self.counts.errors += 1
            raise StoreUnavailable(f"database {self.address}: {lost}") from lost
        finally:
            self.pool.release(conn)

    async def _batch(
        self, conn: aiomysql.Connection, statements: Sequence[tuple[str, Params]], *, reads: int
    ) -> tuple[list[Result], list[tuple[Any, ...]]]:
        self.counts.writes += len(statements) - reads
        self.counts.reads += reads
        results: list[Result] = []
        rows: list[tuple[Any, ...]] = []
        try:
            async with asyncio.timeout(self.statement_timeout):
                async with conn.cursor() as cursor:
                    text = ";\n".join(cursor.mogrify(sql, tuple(params)) for sql, params in statements)
                    await cursor.execute(text)
                    while True:
                        results.append(Result(cursor.rowcount, int(cursor.lastrowid or 0)))
                        if len(results) == len(statements):
                            rows = list(await cursor.fetchall()) if reads else []
                            break
                        if not await cursor.nextset():
                            break
        except (TimeoutError, pymysql.err.MySQLError, OSError, asyncio.IncompleteReadError) as error:
            self._raise_if_lost(conn, error)
            self.counts.errors += 1
            failed = statements[min(len(results), len(statements) - 1)][0]
            raise BatchError(len(results), f"{error} in: {_short(failed)}", results) from error
        return results, rows

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        """One pooled connection for statements that must share a session (locks, LAST_INSERT_ID)."""
        conn = await self._acquire()
        try:
            yield Connection(self, conn)
        finally:
            self.pool.release(conn)

    # -- mechanics ---------------------------------------------------------------------------
    def _retrying(self, *, idempotent: bool, attempts: int | None = None) -> AsyncRetrying:
        def worth_retrying(error: BaseException) -> bool:
            return isinstance(error, _NotSent) or (idempotent and isinstance(error, _ConnectionLost))

        return AsyncRetrying(
            retry=retry_if_exception(worth_retrying),
            wait=wait_random_exponential(multiplier=FIRST_RETRY_WAIT, max=self.retry_max_wait),
            stop=stop_after_attempt(self.retry_attempts if attempts is None else attempts),
            before_sleep=self._count_retry,
        )

    def _count_retry(self, retry_state: Any) -> None:
        self.counts.retries += 1

    async def _acquire_once(self) -> aiomysql.Connection:
        try:
            async with asyncio.timeout(self.statement_timeout):
                return await self.pool.acquire()
        except (TimeoutError, pymysql.err.MySQLError, OSError) as error:
            if isinstance(error, pymysql.err.MySQLError) and not is_connection_error(error):
                raise StoreError(f"database {self.address}: {error}") from error
            raise _NotSent(str(error)) from error

    async def _acquire(self) -> aiomysql.Connection:
        try:
            async for attempt in self._retrying(idempotent=False):
                with attempt:
                    return await self._acquire_once()
        except RetryError as gave_up:
            cause = gave_up.last_attempt.exception()
            self.counts.errors += 1
            raise StoreUnavailable(f"database {self.address}: {cause}") from cause
        except _ConnectionLost as lost:  # not worth retrying (a write that may have been applied)
            self.counts.errors += 1
            raise StoreUnavailable(f"database {self.address}: {lost}") from lost
        raise AssertionError("unreachable")  # pragma: no cover

    async def _run(self, sql: str, params: Params, *, read: bool, idempotent: bool, fetch: str | None) -> Any:
        # the first attempt runs without tenacity's machinery (a third of a statement's own cost
        # here); only a statement worth retrying enters the retry loop, after the first full-jitter wait
        try:
            return await self._attempt(sql, params, read=read, fetch=fetch)
        except _NotSent as error:
            failed: _ConnectionLost | _NotSent = error
        except _ConnectionLost as lost:
            if not idempotent:  # not worth retrying (a write that may have been applied)
                self.counts.errors += 1
                raise StoreUnavailable(f"database {self.address}: {lost}") from lost
            failed = lost
        if self.retry_attempts <= 1:
            self.counts.errors += 1
            raise StoreUnavailable(f"database {self.address}: {failed}") from failed
        self.counts.retries += 1
        await asyncio.sleep(random.uniform(0, min(FIRST_RETRY_WAIT, self.retry_max_wait)))
        try:
            async for attempt in self._retrying(idempotent=idempotent, attempts=self.retry_attempts - 1):
                with attempt:
                    return await self._attempt(sql, params, read=read, fetch=fetch)
        except RetryError as gave_up:
            cause = gave_up.last_attempt.exception()
            self.counts.errors += 1
            raise StoreUnavailable(f"database {self.address}: {cause}") from cause
        except _ConnectionLost as lost:  # not worth retrying (a write that may have been applied)
            self.counts.errors += 1
            raise StoreUnavailable(f"database {self.address}: {lost}") from lost
        raise AssertionError("unreachable")  # pragma: no cover

    async def _attempt(self, sql: str, params: Params, *, read: bool, fetch: str | None) -> Any:
        conn = await self._acquire_once()
        try:
            return await self._statement(conn, sql, params, read=read, fetch=fetch)
        finally:
            self.pool.release(conn)

    async def _statement(
        self, conn: aiomysql.Connection, sql: str, params: Params, *, read: bool, fetch: str | None
    ) -> Any:
        if read:
            self.counts.reads += 1
        else:
            self.counts.writes += 1
        cursor_class = aiomysql.DictCursor if fetch == "dicts" else aiomysql.Cursor
        try:
            async with asyncio.timeout(self.statement_timeout):
                async with conn.cursor(cursor_class) as cursor:
                    await cursor.execute(sql, tuple(params))
                    if fetch is None:
                        return Result(cursor.rowcount, int(cursor.lastrowid or 0))
                    return list(await cursor.fetchall())
        except (TimeoutError, pymysql.err.MySQLError, OSError, asyncio.IncompleteReadError) as error:
            self._raise_if_lost(conn, error)
            self.counts.errors += 1
            raise StoreError(f"{error} in: {_short(sql)}") from error

    def _raise_if_lost(self, conn: aiomysql.Connection, error: BaseException) -> None:
        """A timeout or a connection error: the connection is closed (a cancelled query leaves it
        unusable, never reuse it) and ``_ConnectionLost`` raised; any other error returns."""
        if isinstance(error, TimeoutError):
            conn.close()
            raise _ConnectionLost(f"statement timed out after {self.statement_timeout} s") from error
        if is_connection_error(error):
            conn.close()
            raise _ConnectionLost(str(error)) from error


class Connection:
    """One pooled connection with the same statement methods (no retries: the session matters)."""

    def __init__(self, database: Database, conn: aiomysql.Connection) -> None:
        self.database = database
        self.raw = conn

    async def fetch_all(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        return await self._once(sql, params, read=True, fetch="all")

    async def fetch_dicts(self, sql: str, params: Params = ()) -> list[dict[str, Any]]:
        return await self._once(sql, params, read=True, fetch="dicts")

    async def fetch_value(self, sql: str, params: Params = (), default: Any = None) -> Any:
        rows = await self.fetch_all(sql, params)
        return rows[0][0] if rows else default

    async def execute(self, sql: str, params: Params = ()) -> Result:
        return await self._once(sql, params, read=False, fetch=None)

    async def _once(self, sql: str, params: Params, *, read: bool, fetch: str | None) -> Any:
        try:
            return await self.database._statement(self.raw, sql, params, read=read, fetch=fetch)
        except _ConnectionLost as lost:
            self.database.counts.errors += 1
            raise StoreUnavailable(f"database {self.database.address}: {lost.__cause__ or lost}") from lost


def _short(sql: str, limit: int = 160) -> str:
    text = " ".join(sql.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
