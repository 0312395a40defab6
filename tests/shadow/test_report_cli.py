"""``fillreactor shadow-report``, the report figures, and ``attach``'s refusals.

The report below is written by hand; every figure expected from it is added up by hand (nearest-rank
percentiles: position ceil(q * n) of the sorted lead times).
"""

from __future__ import annotations

import json

import pytest
from shadow_helpers import parse_tables

from fillreactor.astguiclient import AstguiclientConf
from fillreactor.reactor.service import ReactorService
from fillreactor.service.settings import Settings
from fillreactor.shadow import report_cli
from fillreactor.shadow.report import percentile
from fillreactor.shadow.runner import attach

B, C = "10.10.10.12", "10.10.10.13"
LINES = [
    {"kind": "start", "at": "2026-11-26 10:00:00.000", "host": "10.10.10.11"},
    {"kind": "match", "campaign": "CAMP", "server": B, "calls": 3, "observed_at": "2026-11-26 10:05:00.000",
     "lead_s": [2.0, 0.5, 1.0]},
    {"kind": "perl_only", "campaign": "CAMP", "server": C, "calls": 2, "reason": "overdial",
     "corrections": ["TOTAL_CAPPED_AT_NEED"], "observed_at": "2026-11-26 10:20:00.000"},
    {"kind": "fill_only", "campaign": "CAMP", "server": B, "calls": 1, "reason": "demand gone",
     "corrections": [], "ended_at": "2026-11-26 11:01:00.000"},
    {"kind": "over_limit", "server": C, "from": "2026-11-26 11:30:00.000", "to": "2026-11-26 11:30:04.500",
     "seconds": 4.5, "peak_over": 2, "limit": 30},
    {"kind": "match", "campaign": "X", "server": B, "calls": 1, "observed_at": "2026-11-26 11:40:00.000",
     "lead_s": [3.0]},
    {"kind": "balance_trunk_fill", "campaign": "CAMP", "perl": 5, "fillreactor": 4},
    {"kind": "match"},
    {"kind": "end", "at": "2026-11-26 12:00:00.000"},
]  # fmt: skip
COLUMNS = [
    "Perl placed", "fillreactor asked", "matched", "lead p50", "lead p99", "fillreactor only", "Perl only",
    "over limit",
]  # fmt: skip


@pytest.fixture
def report(tmp_path):
    path = tmp_path / "shadow.jsonl"
    text = "\n".join(json.dumps(line) for line in LINES[:7]) + "\nnot json\n"
    path.write_text(text + "\n".join(json.dumps(line) for line in LINES[7:]) + "\n")
    return path


def test_percentiles_are_nearest_rank() -> None:
    assert percentile([], 0.5) is None
    assert percentile([3.0, 1.0, 2.0], 0.5) == 2.0  # ceil(1.5) = 2nd
    assert percentile([1.0] * 10 + [1.5] * 6, 0.5) == 1.0  # ceil(8) = 8th
    assert percentile([1.0] * 10 + [1.5] * 6, 0.99) == 1.5  # ceil(15.84) = 16th
    assert percentile([5.0], 0.99) == 5.0


def test_the_tables_per_campaign_server_and_hour(report, capsys) -> None:
    assert report_cli.run(report_cli.build_parser().parse_args([str(report)])) == 0
    out = capsys.readouterr().out
    tables = parse_tables(out)
    # CAMP: placed 3 + 2, asked 3 + 1, matched 3, leads 0.5 1 2: p50 2nd = 1, p99 3rd = 2
    rows = tables["Per campaign"]
    assert [rows["CAMP"][k] for k in COLUMNS] == [
        "5", "4", "3", "1.000 s", "2.000 s", "1 (demand gone 1)", "2 (overdial 2)", "-"
    ]  # fmt: skip
    assert [rows["X"][k] for k in COLUMNS] == ["1", "1", "1", "3.000 s", "3.000 s", "0", "0", "-"]
    # all: leads 0.5 1 2 3: p50 2nd = 1, p99 4th = 3
    assert [rows["all"][k] for k in COLUMNS] == [
        "6", "5", "4", "1.000 s", "3.000 s", "1 (demand gone 1)", "2 (overdial 2)", "4.500 s (peak +2)"
    ]  # fmt: skip
    rows = tables["Per server"]
    assert [rows[B][k] for k in COLUMNS] == [
        "4",
        "5",
        "4",
        "1.000 s",
        "3.000 s",
        "1 (demand gone 1)",
        "0",
        "0.000 s",
    ]
    assert [rows[C][k] for k in COLUMNS] == [
        "2",
        "0",
        "0",
        "-",
        "-",
        "0",
        "2 (overdial 2)",
        "4.500 s (peak +2)",
    ]
    rows = tables["Per hour"]
    assert [rows["2026-11-26 10:00"][k] for k in COLUMNS] == [
        "5", "3", "3", "1.000 s", "2.000 s", "0", "2 (overdial 2)", "0.000 s"
    ]  # fmt: skip
    assert [rows["2026-11-26 11:00"][k] for k in COLUMNS] == [
        "1", "2", "1", "3.000 s", "3.000 s", "1 (demand gone 1)", "0", "4.500 s (peak +2)"
    ]  # fmt: skip
    assert "named correction of the planner: TOTAL_CAPPED_AT_NEED 2" in out
    assert "CAMP Perl 5 / fillreactor 4" in out
    assert "2 lines were not report lines and were skipped" in out
    assert out.startswith(f"{report}: 1 run, 8 lines")


def test_json_and_errors(report, tmp_path, capsys) -> None:
    parser = report_cli.build_parser()
    assert report_cli.run(parser.parse_args([str(report), "--json"])) == 0
    figures = json.loads(capsys.readouterr().out)
    assert (figures["perl_placed"], figures["fill_asked"], figures["matched"]) == (6, 5, 4)
    assert figures["lead_ms"] == {"p50": 1000.0, "p99": 3000.0}
    assert figures["campaigns"]["CAMP"]["perl_only"] == {"overdial": 2}
    assert (figures["runs"], figures["skipped"]) == (1, 2)
    assert report_cli.run(parser.parse_args([str(tmp_path / "missing.jsonl")])) == 1
    assert "missing.jsonl" in capsys.readouterr().err
    empty = tmp_path / "empty.jsonl"
    empty.write_text("nothing here\n")
    assert report_cli.run(parser.parse_args([str(empty)])) == 1
    assert "no report lines" in capsys.readouterr().err


def conf() -> AstguiclientConf:
    return AstguiclientConf(path="(test)", db_host="127.0.0.1", db_port=3306, db_user="root", db_password="",
                            db_name="none", server_ip="10.10.10.11")  # fmt: skip


async def test_attach_refuses_a_service_that_may_dial(tmp_path) -> None:
    with pytest.raises(ValueError, match="shadow=True"):
        attach(ReactorService(conf(), Settings()))
    with pytest.raises(ValueError, match="shadow=True"):
        attach(ReactorService(conf(), Settings(), dry_run=True))
    with pytest.raises(ValueError, match="cannot be written"):
        attach(
            ReactorService(conf(), Settings(), shadow=True),
            report_path=tmp_path / "no" / "such" / "dir.jsonl",
        )
    service = ReactorService(conf(), Settings(), shadow=True)
    runner = attach(service, report_path=tmp_path / "r.jsonl")
    assert runner.on_decision in service.decision_observers and runner.on_event in service.event_observers
    assert runner.run in service.extra_tasks
    runner.finish()  # nothing ran: a start and an end line
    kinds = [json.loads(line)["kind"] for line in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert kinds == ["start", "end"]
    assert runner.status()["perl_placed"] == 0 and runner.metric_samples() == []
