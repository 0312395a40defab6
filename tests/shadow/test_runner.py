"""The shadow runner's poller against a scripted database: a failed read loses no Perl call.

The database is a stand-in that answers observe's statements from lists and fails when told to
(the real reads are tested against MariaDB in test_observe.py and end to end).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from fillreactor.astguiclient import AstguiclientConf
from fillreactor.reactor.service import ReactorService
from fillreactor.service.settings import Settings
from fillreactor.shadow.runner import attach
from fillreactor.store import observe
from fillreactor.store.database import StoreUnavailable

B = "10.10.10.12"
WHEN = datetime(2026, 11, 26, 10, 0, 0)


class ScriptedDatabase:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []  # auto_call_id, server, campaign, callerid, call_time, status
        self.fail_present = 0

    async def fetch_all(self, sql: str, params: Any = ()) -> list[tuple[Any, ...]]:
        if sql == observe.NEW_BALANCE_CALLS_SQL:
            after, limit = params
            return [c for c in self.calls if c[0] > after][:limit]
        if sql.startswith("SELECT auto_call_id FROM vicidial_auto_calls WHERE auto_call_id IN"):
            if self.fail_present:
                self.fail_present -= 1
                raise StoreUnavailable("database 127.0.0.1: lost connection")
            return [(c[0],) for c in self.calls if c[0] in set(params)]
        if sql in (observe.BALANCE_CALLS_SQL, observe.NEW_ORIGINATES_SQL, observe.SHORTAGE_ROWS_SQL):
            return []
        if sql == observe.BALANCE_FILL_SQL:
            return [("CAMP", 0)]
        raise AssertionError(sql)

    async def fetch_value(self, sql: str, params: Any = (), default: Any = None) -> Any:
        return 0


def conf() -> AstguiclientConf:
    return AstguiclientConf(path="(test)", db_host="127.0.0.1", db_port=3306, db_user="root", db_password="",
                            db_name="none", server_ip="10.10.10.11")  # fmt: skip


def call(auto_call_id: int) -> tuple[Any, ...]:
    return (auto_call_id, B, "CAMP", f"V126100000{auto_call_id:010d}", WHEN, "SENT")


async def test_a_failed_poll_reads_the_same_rows_again(tmp_path) -> None:
    service = ReactorService(conf(), Settings(), shadow=True)
    runner = attach(service, report_path=tmp_path / "r.jsonl")
    database = ScriptedDatabase()
    await runner._start(database)  # type: ignore[arg-type]
    database.calls = [call(1), call(2)]
    database.fail_present = 1
    with pytest.raises(StoreUnavailable):
        await runner._poll(database, True)  # type: ignore[arg-type]
    assert runner.after_id == 0 and runner.comparison.totals.overall.perl_placed == 0
    await runner._poll(database, True)  # type: ignore[arg-type]
    assert runner.after_id == 2
    only = runner.comparison.totals.pairs[("CAMP", B)]
    assert (only.perl_placed, dict(only.perl_only)) == (2, {"link down": 2})  # no AMI link at all here
    database.calls = [call(2)]  # call 1 ended, its row cleaned up
    await runner._poll(database, False)  # type: ignore[arg-type]
    assert runner.comparison.perl_calls_live() == {B: 1}
    runner.finish()
