"""Throwaway MariaDB databases holding the VICIdial schema, for tests and the demo.

Rules this module keeps:

* Where the server is comes from a DSN ``mysql://user:password@host:port[/database]``; tests take
  it from ``FILLREACTOR_TEST_DSN`` (default ``mysql://root@127.0.0.1:3306``).
* A server that cannot be reached raises ``DatabaseUnavailable`` whose message says how to start
  MariaDB or where to point the DSN. It is never turned into a skip: a test run without its
  database is a failed run.
* Every database made here has a fresh unique name (``fillreactor_test_<pid>_<random>``), so
  parallel runs and leftovers of a crashed run never collide; it is dropped by whoever made it.
* Database names are identifiers and cannot be bound as parameters, so they are checked against
  ``[A-Za-z0-9_]`` before they reach SQL; every value is parameterised.
* Every connection is ``autocommit=True`` with an explicit ``connect_timeout``: no test waits on
  an open transaction or on a dead server.
* Creating and clearing databases is synchronous (PyMySQL), so it runs outside any event loop
  (session fixtures); the async helpers (aiomysql) are for the code under test.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import unquote, urlsplit

import aiomysql
import pymysql

from fillreactor.astguiclient import AstguiclientConf
from fillreactor.schema import TABLES, schema_statements

DSN_ENVIRONMENT_VARIABLE = "FILLREACTOR_TEST_DSN"
DEFAULT_TEST_DSN = "mysql://root@127.0.0.1:3306"
DEFAULT_PORT = 3306
CONNECT_TIMEOUT_SECONDS = 5
TEST_DATABASE_PREFIX = "fillreactor_test"

START_MARIADB_HINT = (
    "Start MariaDB (Debian: start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd) "
    f"or set {DSN_ENVIRONMENT_VARIABLE}=mysql://user:password@host:port to a reachable server."
)

_DATABASE_NAME = re.compile(r"^[A-Za-z0-9_]{1,64}$")
# PyMySQL error codes for "no server there" (2003 can't connect, 2013 lost during handshake).
_UNREACHABLE_CODES = frozenset({2003, 2006, 2013})


class DsnError(ValueError):
    """A DSN that is not ``mysql://user[:password]@host[:port][/database]``."""


class DatabaseUnavailable(RuntimeError):
    """The MariaDB server cannot be reached (or refuses the login)."""


@dataclass(frozen=True)
class Dsn:
    user: str
    password: str
    host: str
    port: int
    database: str | None = None

    @classmethod
    def parse(cls, text: str) -> Dsn:
        parts = urlsplit(text)
        if parts.scheme not in ("mysql", "mariadb"):
            raise DsnError(f"DSN must start with mysql://, got {text!r}")
        if not parts.hostname:
            raise DsnError(f"DSN has no host: {text!r}")
        try:
            port = parts.port or DEFAULT_PORT
        except ValueError as error:
            raise DsnError(f"DSN has a bad port: {text!r}") from error
        database = unquote(parts.path.lstrip("/")) or None
        if database is not None:
            check_database_name(database)
        return cls(
            user=unquote(parts.username or "root"),
            password=unquote(parts.password or ""),
            host=parts.hostname,
            port=port,
            database=database,
        )

    def with_database(self, database: str | None) -> Dsn:
        if database is not None:
            check_database_name(database)
        return replace(self, database=database)

    def astguiclient_conf(self, server_ip: str, path: str = "(test)", **paths: str) -> AstguiclientConf:
        """The astguiclient.conf of a server of this database (``paths``: ``path_home``, ``path_logs``)."""
        if self.database is None:
            raise DsnError(f"DSN has no database: {self}")
        return AstguiclientConf(
            path=path, db_host=self.host, db_port=self.port, db_user=self.user,
            db_password=self.password, db_name=self.database, server_ip=server_ip, **paths,
        )

    def connect_kwargs(self) -> dict[str, Any]:
        """Keyword arguments shared by ``pymysql.connect`` and ``aiomysql.connect``."""
        kwargs: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "password": self.password,
            "autocommit": True,
            "connect_timeout": CONNECT_TIMEOUT_SECONDS,
            "charset": "utf8mb4",
        }
        if self.database:
            kwargs["db"] = self.database
        return kwargs

    def __str__(self) -> str:
        # Never print the password.
        credentials = self.user + (":***" if self.password else "")
        return f"mysql://{credentials}@{self.host}:{self.port}" + (
            f"/{self.database}" if self.database else ""
        )


def check_database_name(name: str) -> str:
    if not _DATABASE_NAME.match(name):
        raise DsnError(f"database name must be 1-64 characters of [A-Za-z0-9_], got {name!r}")
    return name


def test_dsn() -> Dsn:
    """The server tests run against: ``$FILLREACTOR_TEST_DSN`` or the local default."""
    return Dsn.parse(os.environ.get(DSN_ENVIRONMENT_VARIABLE) or DEFAULT_TEST_DSN)


test_dsn.__test__ = False  # type: ignore[attr-defined]  # not a pytest test despite its name


def unique_database_name(prefix: str = TEST_DATABASE_PREFIX) -> str:
    return check_database_name(f"{prefix}_{os.getpid()}_{secrets.token_hex(4)}")


def unavailable_error(dsn: Dsn, error: BaseException) -> DatabaseUnavailable:
    return DatabaseUnavailable(
        f"MariaDB is not reachable at {dsn.host}:{dsn.port} ({error}). {START_MARIADB_HINT}"
    )


def connect_sync(dsn: Dsn) -> pymysql.connections.Connection:
    """A PyMySQL connection; an unreachable server raises ``DatabaseUnavailable``."""
    kwargs = dsn.connect_kwargs()
    if "db" in kwargs:  # PyMySQL's name for it; aiomysql knows only "db"
        kwargs["database"] = kwargs.pop("db")
    try:
        return pymysql.connect(**kwargs)
    except pymysql.err.OperationalError as error:
        code = error.args[0] if error.args else None
        if code in _UNREACHABLE_CODES:
            raise unavailable_error(dsn, error) from error
        raise DatabaseUnavailable(
            f"MariaDB at {dsn.host}:{dsn.port} refused the connection: {error}"
        ) from error


def existing_tables(connection: pymysql.connections.Connection, database: str) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s ORDER BY TABLE_NAME",
            (database,),
        )
        return [row[0] for row in cursor.fetchall()]


def load_schema(connection: pymysql.connections.Connection, database: str) -> None:
    """Create every schema table in ``database`` (which must exist)."""
    with connection.cursor() as cursor:
        cursor.execute(f"USE `{check_database_name(database)}`")
        for statement in schema_statements():
            cursor.execute(statement)


def create_database(server: Dsn, name: str | None = None, *, with_schema: bool = True) -> Dsn:
    """Create a new database (unique name unless given), load the schema; its DSN."""
    name = check_database_name(name or unique_database_name())
    connection = connect_sync(server.with_database(None))
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        if with_schema:
            try:
                load_schema(connection, name)
            except BaseException:
                with connection.cursor() as cursor:
                    cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
                raise
    finally:
        connection.close()
    return server.with_database(name)


def drop_database(dsn: Dsn) -> None:
    if not dsn.database:
        raise DsnError("drop_database needs a DSN naming a database")
    connection = connect_sync(dsn.with_database(None))
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{check_database_name(dsn.database)}`")
    finally:
        connection.close()


def database_exists(server: Dsn, name: str) -> bool:
    connection = connect_sync(server.with_database(None))
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s", (name,))
            return cursor.fetchone() is not None
    finally:
        connection.close()


@contextmanager
def temporary_database(server: Dsn | None = None) -> Iterator[Dsn]:
    """A fresh database with the schema for the duration of the block, then dropped."""
    dsn = create_database(server or test_dsn())
    try:
        yield dsn
    finally:
        drop_database(dsn)


class TestDatabase:
    """One schema database for a whole test session, reset cheaply between tests.

    ``reset()`` truncates only the tables that hold rows or have advanced their auto-increment
    counter (MyISAM and MEMORY report both exactly in information_schema), so a test starts from
    empty tables and ids from 1 without paying for ~45 TRUNCATEs each time.
    """

    __test__ = False  # not a pytest test class despite its name

    def __init__(self, dsn: Dsn) -> None:
        if not dsn.database:
            raise DsnError("TestDatabase needs a DSN naming a database")
        self.dsn = dsn
        self._connection = connect_sync(dsn)

    @classmethod
    def create(cls, server: Dsn | None = None) -> TestDatabase:
        return cls(create_database(server or test_dsn()))

    def dirty_tables(self) -> list[str]:
        with self._connection.cursor() as cursor:
            cursor.execute(
                "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s"
                " AND (TABLE_ROWS > 0 OR AUTO_INCREMENT > 1)",
                (self.dsn.database,),
            )
            return [row[0] for row in cursor.fetchall()]

    def reset(self) -> None:
        try:
            self._connection.ping()
        except pymysql.MySQLError:  # the server dropped an idle session connection: open a new one
            with suppress(pymysql.MySQLError):
                self._connection.close()
            self._connection = connect_sync(self.dsn)
        with self._connection.cursor() as cursor:
            for table in self.dirty_tables():
                if table in TABLES:  # tables a test created itself are its own business
                    cursor.execute(f"TRUNCATE TABLE `{table}`")

    def close(self, *, drop: bool = True) -> None:
        self._connection.close()
        if drop:
            drop_database(self.dsn)


async def connect(dsn: Dsn, **overrides: Any) -> aiomysql.Connection:
    """An aiomysql connection (``autocommit=True``, ``connect_timeout`` set)."""
    try:
        return await aiomysql.connect(**{**dsn.connect_kwargs(), **overrides})
    except pymysql.err.OperationalError as error:
        raise unavailable_error(dsn, error) from error


async def create_pool(dsn: Dsn, *, minsize: int = 1, maxsize: int = 4, **overrides: Any) -> aiomysql.Pool:
    """An aiomysql pool of such connections; close with ``pool.close(); await pool.wait_closed()``."""
    try:
        return await aiomysql.create_pool(
            minsize=minsize, maxsize=maxsize, **{**dsn.connect_kwargs(), **overrides}
        )
    except pymysql.err.OperationalError as error:
        raise unavailable_error(dsn, error) from error
