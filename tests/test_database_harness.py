"""The test-database harness and the ``fillreactor schema`` command, against the real MariaDB."""

from __future__ import annotations

import pytest

from fillreactor.cli import main
from fillreactor.schema import TABLES, schema_sql
from fillreactor.testing.database import (
    DEFAULT_TEST_DSN,
    DSN_ENVIRONMENT_VARIABLE,
    DatabaseUnavailable,
    Dsn,
    DsnError,
    TestDatabase,
    connect,
    connect_sync,
    create_database,
    database_exists,
    drop_database,
    existing_tables,
    temporary_database,
    test_dsn,
    unique_database_name,
)

CLOSED_PORT_DSN = "mysql://root@127.0.0.1:1"


# -- DSN parsing (no database) -------------------------------------------------------------------


def test_dsn_parse_full() -> None:
    assert Dsn.parse("mysql://cron:s%40cret@db.example:3307/asterisk") == Dsn(
        user="cron", password="s@cret", host="db.example", port=3307, database="asterisk"
    )


def test_dsn_parse_defaults() -> None:
    assert Dsn.parse("mysql://root@127.0.0.1") == Dsn(user="root", password="", host="127.0.0.1", port=3306)
    assert Dsn.parse(DEFAULT_TEST_DSN).database is None


@pytest.mark.parametrize(
    "text", ["postgres://root@h/db", "mysql:///db", "mysql://root@h:notaport", "mysql://root@h/bad-name;"]
)
def test_dsn_parse_rejects(text: str) -> None:
    with pytest.raises(DsnError):
        Dsn.parse(text)


def test_dsn_hides_password_and_builds_connect_arguments() -> None:
    dsn = Dsn.parse("mysql://u:pw@h:1234/d")
    assert str(dsn) == "mysql://u:***@h:1234/d"
    kwargs = dsn.connect_kwargs()
    assert kwargs["autocommit"] is True and kwargs["connect_timeout"] > 0
    assert (kwargs["host"], kwargs["port"], kwargs["user"], kwargs["password"], kwargs["db"]) == (
        "h",
        1234,
        "u",
        "pw",
        "d",
    )
    assert "db" not in dsn.with_database(None).connect_kwargs()


def test_test_dsn_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DSN_ENVIRONMENT_VARIABLE, "mysql://x@db9:3310")
    assert test_dsn() == Dsn(user="x", password="", host="db9", port=3310)
    monkeypatch.delenv(DSN_ENVIRONMENT_VARIABLE)
    assert test_dsn() == Dsn.parse(DEFAULT_TEST_DSN)


def test_unique_database_names() -> None:
    names = {unique_database_name() for _ in range(200)}
    assert len(names) == 200
    assert all(name.startswith("fillreactor_test_") for name in names)


# -- an unreachable server -----------------------------------------------------------------------


def test_unreachable_server_says_how_to_start_mariadb() -> None:
    with pytest.raises(DatabaseUnavailable) as caught:
        create_database(Dsn.parse(CLOSED_PORT_DSN))
    message = str(caught.value)
    assert "127.0.0.1:1" in message
    assert "start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd" in message
    assert DSN_ENVIRONMENT_VARIABLE in message


async def test_unreachable_server_async_helpers_say_the_same() -> None:
    with pytest.raises(DatabaseUnavailable, match="mariadbd"):
        await connect(Dsn.parse(CLOSED_PORT_DSN))


# -- creating and dropping -----------------------------------------------------------------------


def test_create_and_drop_a_throwaway_database() -> None:
    server = test_dsn()
    dsn = create_database(server)
    try:
        assert database_exists(server, dsn.database or "")
        connection = connect_sync(dsn)
        try:
            assert sorted(existing_tables(connection, dsn.database or "")) == sorted(TABLES)
        finally:
            connection.close()
    finally:
        drop_database(dsn)
    assert not database_exists(server, dsn.database or "")


def test_temporary_database_is_dropped_even_on_error() -> None:
    with pytest.raises(RuntimeError, match="boom"), temporary_database() as dsn:
        name = dsn.database or ""
        assert database_exists(test_dsn(), name)
        raise RuntimeError("boom")
    assert not database_exists(test_dsn(), name)


def test_test_database_reset_truncates_only_what_changed() -> None:
    database = TestDatabase.create()
    try:
        connection = connect_sync(database.dsn)
        try:
            with connection.cursor() as cursor:
                cursor.execute("INSERT INTO vicidial_hopper (lead_id, list_id) VALUES (1, 1)")
                cursor.execute("INSERT INTO vicidial_list (phone_number) VALUES ('3125550000')")
                cursor.execute("DELETE FROM vicidial_list")  # empty, but the counter moved on
                assert sorted(database.dirty_tables()) == ["vicidial_hopper", "vicidial_list"]
                database.reset()
                assert database.dirty_tables() == []
                cursor.execute("INSERT INTO vicidial_list (phone_number) VALUES ('3125550000')")
                assert cursor.lastrowid == 1
        finally:
            connection.close()
    finally:
        database.close(drop=True)
    assert not database_exists(test_dsn(), database.dsn.database or "")


def test_session_database_is_clean_for_each_test(database_dsn: Dsn) -> None:
    connection = connect_sync(database_dsn)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT COUNT(*) FROM vicidial_auto_calls")
            assert cursor.fetchone() == (0,)
            cursor.execute("INSERT INTO vicidial_auto_calls (server_ip, lead_id) VALUES ('10.0.0.1', 1)")
    finally:
        connection.close()


def test_session_database_is_clean_again(database_dsn: Dsn) -> None:
    test_session_database_is_clean_for_each_test(database_dsn)


async def test_db_fixture_is_autocommit(db) -> None:  # type: ignore[no-untyped-def]
    async with db.cursor() as cursor:
        await cursor.execute("SELECT @@autocommit, DATABASE()")
        autocommit, name = await cursor.fetchone()
    assert autocommit == 1 and name.startswith("fillreactor_test_")


# -- the schema command --------------------------------------------------------------------------


def test_schema_command_prints_the_ddl(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    assert capsys.readouterr().out == schema_sql()


def test_schema_command_loads_a_fresh_database_and_refuses_twice(capsys: pytest.CaptureFixture[str]) -> None:
    server = test_dsn()
    target = server.with_database(unique_database_name("fillreactor_cli"))
    url = (
        f"mysql://{server.user}{':' + server.password if server.password else ''}@{server.host}:{server.port}"
    )
    try:
        assert main(["schema", "--load", "--dsn", f"{url}/{target.database}"]) == 0
        assert f"loaded {len(TABLES)} tables" in capsys.readouterr().out
        connection = connect_sync(target)
        try:
            assert sorted(existing_tables(connection, target.database or "")) == sorted(TABLES)
        finally:
            connection.close()

        assert main(["schema", "--load", "--dsn", f"{url}/{target.database}"]) == 1
        error = capsys.readouterr().err
        assert "refusing to load" in error and "Traceback" not in error
    finally:
        drop_database(target)


def test_schema_command_unreachable_database(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema", "--load", "--dsn", f"{CLOSED_PORT_DSN}/x"]) == 1
    error = capsys.readouterr().err
    assert "not reachable" in error and "mariadbd" in error and "Traceback" not in error


@pytest.mark.parametrize("arguments", [["--load"], ["--load", "--dsn", "mysql://root@127.0.0.1:3306"]])
def test_schema_command_load_needs_a_database(
    arguments: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["schema", *arguments]) == 1
    assert "database" in capsys.readouterr().err
