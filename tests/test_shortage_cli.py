"""``fillreactor shortage`` against the seeded test database, through a temporary astguiclient.conf.

Expected values are worked by hand from AST_VDauto_dial.pl (``vdad <line>``) and spec 4.4a.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

import pytest

from fillreactor import shortage_cli
from fillreactor.testing.database import Dsn


def write_conf(path: Path, dsn: Dsn, *, port: int | None = None) -> Path:
    path.write_text(
        "# test astguiclient.conf\n"
        "PATHhome => /usr/share/astguiclient\n"
        "VARserver_ip => 10.10.10.11\n"
        f"VARDB_server => {dsn.host}\n"
        f"VARDB_database => {dsn.database}\n"
        f"VARDB_user => {dsn.user}\n"
        f"VARDB_pass => {dsn.password}\n"
        f"VARDB_port => {port or dsn.port}\n"
    )
    return path


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    shortage_cli.add_arguments(parser)
    return parser.parse_args(list(argv))


async def run_json(capsys, *argv: str) -> list[dict]:
    status = await asyncio.to_thread(shortage_cli.run, parse(*argv, "--json"))
    captured = capsys.readouterr()
    assert (status, captured.err) == (0, "")
    return json.loads(captured.out)  # nothing but JSON on stdout


async def has_column(seed, column: str) -> bool:
    rows = await seed.fetch_all(
        "SELECT 1 FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE()"
        " AND TABLE_NAME = 'vicidial_campaigns' AND COLUMN_NAME = %s",
        [column],
    )
    return bool(rows)


@pytest.fixture
def conf(tmp_path: Path, database_dsn: Dsn) -> Path:
    return write_conf(tmp_path / "astguiclient.conf", database_dsn)


async def test_seeded_cluster_json(seed, conf: Path, capsys) -> None:
    # seed.cluster: 4 READY agents of FILLTEST at level 3 on 10.10.10.11 (6 trunks), stored 6.
    # goal 3 x 4 = 12 (vdad 1193), existing 0, lines 0, make 12, line 12 > 6 -> min(6, 12) = 6.
    cluster = await seed.cluster(agents=4, agent_server_trunks=6, local_trunk_shortage=6)
    [row] = await run_json(capsys, "--conf", str(conf), "--parity")
    assert (row["campaign_id"], row["server_ip"], row["local_trunk_shortage"], row["stored"]) == (
        cluster.campaign_id,
        cluster.agent_server_ip,
        6,
        6,
    )
    assert (row["goal"], row["existing"], row["make"], row["row"]) == (12, 0, 6, 0)
    terms = row["terms"]
    assert (terms["agents"], terms["dial_level"], terms["lines_before"], terms["overrides"]) == (
        4,
        3.0,
        0,
        ["MVT", "OTHER LIMIT"],
    )
    assert (terms["computed"], terms["written"]) == (6, False)  # equal to the stored 6: not written


async def test_rows_keys_quirks_and_server_filter(seed, conf: Path, capsys) -> None:
    await seed.system_settings()
    await seed.server("a1", "10.0.0.1", max_vicidial_trunks=8)
    await seed.server("b1", "10.0.0.2")
    # MAN: MANUAL at level 1 with 10 READY, 2 calls: goal 10, existing 2, make 8, lines 2,
    # line 10 > 8 -> min(2, 8) = 2; stored 2 (first row) and 5 (second row).
    await seed.campaign("MAN", dial_method="MANUAL", auto_dial_level="1")
    await seed.live_agents(10, "10.0.0.1", "MAN")
    await seed.auto_calls(2, "10.0.0.1", "MAN", status="LIVE")
    await seed.campaign_server_stats("MAN", "10.0.0.1", 2)
    await seed.campaign_server_stats("MAN", "10.0.0.1", 5)
    # OLD: a row on 10.0.0.1 but no agents there: cleared to 0 (vdad 775)
    await seed.campaign_server_stats("OLD", "10.0.0.1", 4)
    # B: 2 READY at level 1 on 10.0.0.2 (23 trunks): goal 2, no row yet: the Perl inserts one (vdad 919)
    await seed.campaign("B")
    await seed.live_agents(2, "10.0.0.2", "B")

    parity = await run_json(capsys, "--conf", str(conf), "--parity")
    assert [
        (r["campaign_id"], r["server_ip"], r["row"], r["stored"], r["local_trunk_shortage"]) for r in parity
    ] == [
        # computed 2 equals the first row's 2: nothing written, MANUAL's zero not applied (spec 4.4a),
        # every row keeps its own value
        ("MAN", "10.0.0.1", 0, 2, 2),
        ("MAN", "10.0.0.1", 1, 5, 5),
        ("OLD", "10.0.0.1", 2, 4, 0),
        ("B", "10.0.0.2", None, None, 0),
    ]
    assert parity[2]["reason"].startswith("no agents of the campaign on the server")
    assert "goal" not in parity[2]

    assert parity[0]["server_lines"] == {"used": 2, "V": 2, "shared drops": 0}

    corrected = await run_json(capsys, "--conf", str(conf))
    man = corrected[0]
    assert [r["local_trunk_shortage"] for r in corrected] == [0, 0, 0, 0]
    # without the inbound_no_agents_no_dial_* columns the term is named, not guessed
    lacks = not await has_column(seed, "inbound_no_agents_no_dial_threshold")
    assert man["deviations"] == ["ZERO_OVERRIDE_ALWAYS"] + ["NOT_MODELLED"] * lacks
    assert [n["term"] for n in man["not_modelled"]] == ["inbound no-agents no-dial"] * lacks
    assert man["reason"].startswith("Manual Dial Override")

    only_b = await run_json(capsys, "--conf", str(conf), "--server-ip", "10.0.0.2")
    assert [(r["campaign_id"], r["server_ip"]) for r in only_b] == [("B", "10.0.0.2")]
    assert only_b[0]["reason"].startswith("lines 0 + make 2 fit max_vicidial_trunks 23")


async def test_text_output_explains_each_term(seed, conf: Path, capsys) -> None:
    await seed.cluster(agents=4, agent_server_trunks=6, local_trunk_shortage=0)
    status = await asyncio.to_thread(shortage_cli.run, parse("--conf", str(conf)))
    out = capsys.readouterr().out
    assert status == 0
    assert "10.10.10.11  FILLTEST  local_trunk_shortage 6  (row 0, stored 0)" in out
    assert "  goal = 3 x 4 -> 12" in out
    assert "  MVT override: 12 > max_vicidial_trunks 6: make 6, shortage 6" in out
    assert "  LOCAL TRUNK SHORTAGE: 6|0  (6 - 6)" in out
    if not await has_column(seed, "inbound_no_agents_no_dial_threshold"):
        assert "inbound_no_agents_no_dial: vicidial_campaigns has no" in out


def test_bad_conf_is_one_line_on_stderr(tmp_path: Path, capsys) -> None:
    status = shortage_cli.run(parse("--conf", str(tmp_path / "missing.conf"), "--json"))
    captured = capsys.readouterr()
    assert (status, captured.out) == (shortage_cli.EXIT_CONFIG, "")
    assert captured.err.count("\n") == 1 and "missing.conf: no such file" in captured.err


def test_unreachable_database_is_one_line_on_stderr(tmp_path: Path, capsys) -> None:
    dsn = Dsn("cron", "secret", "127.0.0.1", 1, "asterisk")  # nothing listens on port 1
    status = shortage_cli.run(parse("--conf", str(write_conf(tmp_path / "a.conf", dsn)), "--json"))
    captured = capsys.readouterr()
    assert (status, captured.out) == (shortage_cli.EXIT_DATABASE, "")
    assert captured.err.count("\n") == 1 and "cannot be reached" in captured.err
    assert "secret" not in captured.err
