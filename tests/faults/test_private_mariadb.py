"""The private MariaDB launcher: started once for the module, then stopped, killed and restarted.

Expected values are the launcher's contract and MariaDB's own answers (``@@port``, ``@@datadir``),
and what the test wrote before a kill (a committed InnoDB row survives SIGKILL: MariaDB's default
``innodb_flush_log_at_trx_commit=1``).
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
from collections.abc import Iterator

import pymysql
import pytest

from fillreactor.testing.database import DatabaseUnavailable, Dsn, connect, connect_sync, create_database
from fillreactor.testing.faultproxy import TO_UPSTREAM, FaultProxy
from fillreactor.testing.mariadb import (
    MariaDBNotInstalled,
    MariaDBStartError,
    PrivateMariaDB,
    free_port,
    server_answers,
    server_or_private,
)

# pymysql's "the server went away" codes: lost during a query, gone away, can't connect
LOST_CONNECTION_CODES = {2006, 2013, 2003}


@pytest.fixture(scope="module")
def mariadb() -> Iterator[PrivateMariaDB]:
    with PrivateMariaDB() as server:
        yield server


def query(dsn: Dsn, sql: str, args: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    connection = connect_sync(dsn)
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql, args)
            return list(cursor.fetchall())
    finally:
        connection.close()


def is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_it_answers_on_loopback_on_its_own_port_and_datadir(mariadb: PrivateMariaDB) -> None:
    dsn = mariadb.dsn
    assert (dsn.host, dsn.user, dsn.password) == ("127.0.0.1", "root", "")
    [(port, datadir, bind)] = query(dsn, "SELECT @@port, @@datadir, @@bind_address")
    assert port == dsn.port != 3306
    assert datadir == f"{mariadb.datadir}/" and bind == "127.0.0.1"
    assert mariadb.running and mariadb.last_start_seconds is not None
    assert str(mariadb.base_dir) in repr(mariadb)


def test_the_vicidial_schema_loads(mariadb: PrivateMariaDB) -> None:
    dsn = create_database(mariadb.dsn)
    assert dsn.database is not None
    tables = query(
        dsn, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s", (dsn.database,)
    )
    assert tables[0][0] > 10
    query(mariadb.dsn, f"DROP DATABASE `{dsn.database}`")


async def test_killed_under_a_running_client_and_brought_back(mariadb: PrivateMariaDB) -> None:
    query(mariadb.dsn, "CREATE DATABASE IF NOT EXISTS crash")
    query(mariadb.dsn, "CREATE TABLE IF NOT EXISTS crash.kept (id INT PRIMARY KEY) ENGINE=InnoDB")
    query(mariadb.dsn, "REPLACE INTO crash.kept VALUES (42)")
    client = await connect(mariadb.dsn)
    old_pid, port = mariadb.pid, mariadb.port
    assert old_pid is not None
    assert await mariadb.akill() == -signal.SIGKILL
    assert not mariadb.running and not is_running(old_pid)
    with pytest.raises(pymysql.err.OperationalError) as lost:  # the running client sees it at once
        async with client.cursor() as cursor:
            await cursor.execute("SELECT 1")
    assert lost.value.args[0] in LOST_CONNECTION_CODES
    client.close()
    with pytest.raises(DatabaseUnavailable):  # nothing listens there now
        await connect(mariadb.dsn)
    await mariadb.astart()  # same data directory, same port
    assert mariadb.port == port and mariadb.pid != old_pid
    assert query(mariadb.dsn, "SELECT id FROM crash.kept") == [(42,)]


def test_sigterm_is_a_clean_stop_and_it_starts_again(mariadb: PrivateMariaDB) -> None:
    port, starts = mariadb.port, mariadb.starts
    assert mariadb.stop() == 0
    assert not mariadb.running and not server_answers(mariadb.dsn)
    assert "Shutdown complete" in mariadb.error_log.read_text(errors="replace")
    mariadb.restart()  # stop on a stopped server is a no-op, then start
    assert mariadb.port == port and server_answers(mariadb.dsn)
    mariadb.restart(kill=True)
    assert server_answers(mariadb.dsn) and mariadb.starts == starts + 2


async def test_through_the_fault_proxy_a_silenced_query_waits_and_a_cut_fails(
    mariadb: PrivateMariaDB,
) -> None:
    async with FaultProxy((mariadb.dsn.host, mariadb.dsn.port)) as proxy:
        via_proxy = Dsn("root", "", *proxy.address)
        client = await connect(via_proxy)
        connection = await proxy.connection(0)
        proxy.silence()
        before = connection.bytes_read(TO_UPSTREAM)

        async def answer() -> object:
            async with client.cursor() as cursor:
                await cursor.execute("SELECT 6 * 7")
                return (await cursor.fetchone())[0]

        pending = asyncio.create_task(answer())
        await proxy.wait_bytes(TO_UPSTREAM, before + 1, read=True)  # the query reached the proxy
        assert connection.held(TO_UPSTREAM) > 0 and not pending.done()
        proxy.resume()
        async with asyncio.timeout(5):
            assert await pending == 42
        proxy.cut()
        with pytest.raises(pymysql.err.OperationalError):
            async with client.cursor() as cursor:
                await cursor.execute("SELECT 1")
        client.close()
        again = await connect(via_proxy)  # the proxy still listens: a reconnect works
        async with again.cursor() as cursor:
            await cursor.execute("SELECT 1")
        again.close()
        assert proxy.stats.established == 2


async def test_a_connection_cut_inside_a_query_fails_that_query_only(mariadb: PrivateMariaDB) -> None:
    """The claim case: the database connection dies while a statement is on its way."""
    query(mariadb.dsn, "CREATE DATABASE IF NOT EXISTS cut")
    query(mariadb.dsn, "CREATE TABLE IF NOT EXISTS cut.claims (id INT PRIMARY KEY) ENGINE=InnoDB")
    query(mariadb.dsn, "DELETE FROM cut.claims")
    async with FaultProxy((mariadb.dsn.host, mariadb.dsn.port)) as proxy:
        client = await connect(Dsn("root", "", *proxy.address))
        connection = await proxy.connection(0)
        # let 10 bytes of the next statement through, then reset: the server gets half a packet
        proxy.cut_after(connection.bytes_written(TO_UPSTREAM) + 10, direction=TO_UPSTREAM)
        with pytest.raises(pymysql.err.OperationalError) as lost:
            async with client.cursor() as cursor:
                await cursor.execute("INSERT INTO cut.claims VALUES (1), (2), (3)")
        assert lost.value.args[0] in LOST_CONNECTION_CODES
        client.close()
        assert connection.closed_by == "cut-rst"
    assert query(mariadb.dsn, "SELECT COUNT(*) FROM cut.claims") == [(0,)]  # the half statement did nothing


def test_server_or_private_prefers_a_server_that_answers(mariadb: PrivateMariaDB) -> None:
    with server_or_private(mariadb.dsn) as (dsn, private):
        assert dsn == mariadb.dsn and private is None


def test_server_or_private_starts_one_when_nothing_answers() -> None:
    nothing = Dsn("root", "", "127.0.0.1", free_port())
    with server_or_private(nothing) as (dsn, private):
        assert private is not None and dsn == private.dsn and server_answers(dsn)
        base = private.base_dir
    assert not private.running and not base.exists()


def test_a_forgotten_server_is_killed_when_its_owner_goes() -> None:
    server = PrivateMariaDB()
    server.start()
    pid, base = server.pid, server.base_dir
    assert pid is not None and is_running(pid)
    del server
    gc.collect()
    assert not is_running(pid) and not base.exists()


def test_missing_programs_are_clear_errors(tmp_path) -> None:
    with pytest.raises(MariaDBNotInstalled, match="apt-get install mariadb-server") as missing:
        PrivateMariaDB(tmp_path, server_binary=str(tmp_path / "no-mariadbd"))
    assert isinstance(missing.value, DatabaseUnavailable)
    server = PrivateMariaDB(tmp_path, install_db=str(tmp_path / "no-install-db"))
    with pytest.raises(MariaDBNotInstalled, match="mariadb-install-db"):
        server.start()
    server.close()


def test_a_server_that_cannot_start_says_why(tmp_path) -> None:
    (tmp_path / "data" / "mysql").mkdir(parents=True)  # looks initialised: no install step
    server = PrivateMariaDB(tmp_path, extra_options=["--no-such-option-here"], start_timeout=10)
    with pytest.raises(MariaDBStartError, match="no-such-option-here") as failed:
        server.start()
    assert "exited with status" in str(failed.value) and not server.running
    server.close()
