"""``fillreactor run``: --dry-run writes nothing; the CLI takes everything from --conf; its refusals."""

from __future__ import annotations

import argparse
import asyncio
import re
from datetime import datetime
from pathlib import Path

import pytest
from dialer_helpers import B1, CAMPAIGN, HOST, NOW, call_id, conf_text, fill_cluster

from fillreactor import astguiclient
from fillreactor.schema import TABLES
from fillreactor.service import run as run_module

pytestmark = pytest.mark.timeout(60)


async def row_counts(seed) -> dict[str, int]:
    return {table: await seed.count(table) for table in sorted(TABLES)}


async def test_dry_run_prints_the_calls_and_writes_nothing(one_pass, seed) -> None:
    await fill_cluster(seed)
    before = await row_counts(seed)
    hopper = await seed.rows("vicidial_hopper")
    result = await one_pass.run(dry_run=True)
    assert result.code == 0, result.text
    assert await row_counts(seed) == before
    assert await seed.rows("vicidial_hopper") == hopper  # not even a claim
    assert result.tables.balance_fill == {CAMPAIGN: 0}
    assert "calls that would be placed: 6" in result.text
    # the first call as it would go out (spec 5.4): lead 1 on .12
    assert f"lead 1 {call_id(NOW, 1)} Local/913125550000@default Exten 138368" in result.text
    assert "dry run: nothing was written" in result.text


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="fillreactor run")
    run_module.add_arguments(parser)
    return parser.parse_args(list(argv))


async def test_the_cli_runs_one_pass_from_the_given_conf(
    seed, conf_path, monkeypatch, tmp_path, capsys
) -> None:
    # the default path points at a conf for a database that does not exist: were it read, the pass
    # would fail (exit 1). --conf FILE is the only file read.
    poison = tmp_path / "poison.conf"
    poison.write_text(
        conf_text(
            type(
                "D",
                (),
                {
                    "host": "127.0.0.1",
                    "port": 1,
                    "user": "nobody",
                    "password": "x",
                    "database": "nothing_here",
                },
            )()
        )
    )
    monkeypatch.setattr(astguiclient, "DEFAULT_PATH", poison)
    monkeypatch.setattr(run_module, "DEFAULT_PATH", poison)
    await fill_cluster(seed, now=datetime.now().replace(microsecond=0))
    args = parse(
        "--once",
        "--conf",
        conf_path,
        "--shortage-source",
        "stats",
        "--dial-via",
        "manager",
        "--stale-claim-age",
        "0",
        "--log-level",
        "WARNING",
    )
    before = datetime.now().replace(microsecond=0)
    code = await asyncio.to_thread(run_module.run, args)
    after = datetime.now().replace(microsecond=0)
    out = capsys.readouterr().out
    assert code == 0, out
    assert "calls placed: 6 of 6 planned" in out
    rows = await seed.rows("vicidial_manager", order_by="man_id")
    assert [r["status"] for r in rows] == ["NEW"] * 6
    # now taken once: every row carries the same moment, and the call ids its date part (spec 5.3)
    moments = {r["entry_date"] for r in rows}
    assert len(moments) == 1 and before <= next(iter(moments)) <= after
    moment = next(iter(moments))
    assert [r["callerid"] for r in rows] == [call_id(moment, n) for n in range(1, 7)]
    assert {r["server_ip"] for r in rows} == {B1}
    assert all(r["cmd_line_k"].endswith(f"|{HOST}|CAMPAIGN_CID") for r in rows)
    calls = await seed.rows("vicidial_auto_calls", columns=["call_time", "callerid"], order_by="auto_call_id")
    assert {r["call_time"] for r in calls} == {moment}


def test_the_service_with_a_missing_conf_is_one_clear_error(tmp_path, capsys) -> None:
    missing = tmp_path / "nowhere.conf"
    assert run_module.run(parse("--conf", str(missing))) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{missing}: no such file" in err


def test_a_missing_conf_names_the_file(tmp_path, capsys) -> None:
    missing = tmp_path / "nowhere.conf"
    assert run_module.run(parse("--once", "--conf", str(missing))) == 2
    assert f"{missing}: no such file" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (("--shortage-source", "live"), "--shortage-source live needs the live line counts"),
        (("--dial-via", "ami"), "--dial-via ami needs the AMI sender"),
    ],
)
def test_once_refuses_what_needs_the_service(conf_path, capsys, option, message) -> None:
    assert run_module.run(parse("--once", "--conf", conf_path, *option)) == 2
    assert message in capsys.readouterr().out


def test_an_unreachable_database_is_exit_1_without_the_password(tmp_path: Path, capsys) -> None:
    conf = tmp_path / "down.conf"
    conf.write_text(
        conf_text(
            type(
                "D",
                (),
                {
                    "host": "127.0.0.1",
                    "port": 1,
                    "user": "cron",
                    "password": "s3cret-pw",
                    "database": "asterisk",
                },
            )()
        )
    )
    assert run_module.run(parse("--once", "--conf", str(conf), "--log-level", "ERROR")) == 1
    out = capsys.readouterr().out
    assert "cannot be reached" in out and "s3cret-pw" not in out
    assert re.search(r"cron@127\.0\.0\.1:1/asterisk", out)
