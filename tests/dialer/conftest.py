"""Fixtures of the dialer tests: a conf file on the test database, a pass runner, both SQL modes."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from dialer_helpers import NON_STRICT, NOW, STRICT, Tables, Window, conf_text, db_now, pass_at, read_tables

from fillreactor.clock import VirtualClock
from fillreactor.once import OnceOptions, run_once
from fillreactor.store import Database, DatabaseAddress
from fillreactor.testing.database import Dsn
from fillreactor.testing.seed import Seeder


@pytest.fixture(params=["strict", "non-strict"])
def sql_mode(request: pytest.FixtureRequest) -> str:
    """Every pass runs in both modes: STRICT_ALL_TABLES (stricter than MariaDB's default
    STRICT_TRANS_TABLES: every row of a multi-row insert is checked), and VICIdial's usual ''."""
    return STRICT if request.param == "strict" else NON_STRICT


@pytest.fixture
def lock_name() -> str:
    return f"fillreactor-test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def logs_dir(tmp_path: Path) -> Path:
    path = tmp_path / "logs"
    path.mkdir()
    return path


@pytest.fixture
def conf_path(database_dsn: Dsn, tmp_path: Path, logs_dir: Path) -> str:
    path = tmp_path / "astguiclient.conf"
    path.write_text(conf_text(database_dsn, logs=str(logs_dir)))
    return str(path)


@dataclass
class PassResult:
    code: int
    output: list[str]
    tables: Tables
    window: Window
    now: datetime

    @property
    def text(self) -> str:
        return "\n".join(self.output)


@dataclass
class PassRunner:
    """Runs ``fillreactor.once.run_once`` on the seeded database and reads every table back."""

    seed: Seeder
    conf_path: str
    sql_mode: str
    lock_name: str
    options: dict[str, Any] = field(default_factory=dict)

    async def run(self, now: datetime = NOW, zone: str = "UTC", **options: Any) -> PassResult:
        start = await db_now(self.seed)
        moment = pass_at(now, zone)
        out: list[str] = []
        once = OnceOptions(
            conf_path=self.conf_path,
            sql_mode=self.sql_mode,
            stale_claim_age=0,
            lock_name=self.lock_name,
            **{**self.options, **options},
        )
        code = await run_once(
            once,
            clock=VirtualClock(now),
            now=moment,
            localtime=moment.localtime,
            pacing=False,
            out=out.append,
        )
        end = await db_now(self.seed)
        return PassResult(code, out, await read_tables(self.seed), Window(start, end), now)


@pytest.fixture
def one_pass(seed: Seeder, conf_path: str, sql_mode: str, lock_name: str) -> PassRunner:
    return PassRunner(seed, conf_path, sql_mode, lock_name)


@pytest.fixture
async def store_db(database_dsn: Dsn) -> AsyncIterator[Database]:
    db = await Database.open(DatabaseAddress.from_dsn(database_dsn))
    try:
        yield db
    finally:
        await db.close()
