"""``fillreactor schema``: print the VICIdial DDL, or load it into a database.

Rules this module keeps:

* Without ``--load`` it only prints ``vicidial.sql``; it never connects anywhere.
* ``--load`` creates the database if missing and refuses (exit 1) when any schema table already
  exists there: it never alters or drops a table, so it cannot damage a live VICIdial database.
* Every failure is one clear line on stderr and exit code 1, never a traceback.
"""

from __future__ import annotations

import argparse
import sys

import pymysql

from fillreactor.schema import TABLES, schema_sql
from fillreactor.testing.database import (
    DatabaseUnavailable,
    Dsn,
    DsnError,
    connect_sync,
    existing_tables,
    load_schema,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--load",
        action="store_true",
        help="create the database named in --dsn (if missing) and load the schema into it",
    )
    parser.add_argument(
        "--dsn",
        metavar="DSN",
        help="mysql://user[:password]@host[:port]/database (required with --load)",
    )


def run(args: argparse.Namespace) -> int:
    if not args.load:
        sys.stdout.write(schema_sql())
        return 0
    try:
        return _load(args.dsn)
    except (DsnError, DatabaseUnavailable) as error:
        return _fail(str(error))
    except pymysql.MySQLError as error:
        return _fail(f"loading the schema failed: {error}")


def _load(dsn_text: str | None) -> int:
    if not dsn_text:
        return _fail("--load needs --dsn mysql://user@host:port/database")
    dsn = Dsn.parse(dsn_text)
    if not dsn.database:
        return _fail(f"the DSN must name a database: {dsn}/<database>")
    connection = connect_sync(dsn.with_database(None))
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE IF NOT EXISTS `{dsn.database}` CHARACTER SET utf8mb4")
        clashing = sorted(set(existing_tables(connection, dsn.database)) & set(TABLES))
        if clashing:
            return _fail(
                f"refusing to load: database {dsn.database} already has {len(clashing)} schema tables "
                f"({', '.join(clashing[:5])}{', ...' if len(clashing) > 5 else ''}); use an empty database"
            )
        load_schema(connection, dsn.database)
    finally:
        connection.close()
    print(f"loaded {len(TABLES)} tables into {dsn}")
    return 0


def _fail(message: str) -> int:
    print(f"fillreactor schema: {message}", file=sys.stderr)
    return 1
