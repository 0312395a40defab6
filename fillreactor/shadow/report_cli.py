"""``fillreactor shadow-report FILE``: the summary tables of a shadow report.

Rules this module keeps:

* Reads a JSON Lines report written by ``fillreactor run --shadow --shadow-report FILE``
  (``fillreactor.shadow.report`` says what each line adds) and prints three tables: per campaign,
  per server, per hour; then the calls that differ by a named planner correction and the last
  ``balance_trunk_fill`` values. ``--json`` prints the figures as one JSON object instead.
* Exit 0 with the tables; 1 when the file cannot be read or holds no report line (the message
  says which); lines that are not report lines are skipped and counted, never fatal.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from fillreactor.shadow.report import read_report, summary_tables

EXIT_NO_REPORT = 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="the JSON Lines report of `fillreactor run --shadow`")
    parser.add_argument("--json", action="store_true", help="the figures as one JSON object")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fillreactor shadow-report")
    add_arguments(parser)
    return parser


def run(args: argparse.Namespace) -> int:
    path = Path(args.file)
    try:
        totals = read_report(path)
    except OSError as error:
        print(f"fillreactor shadow-report: {path}: {error.strerror or error}", file=sys.stderr)
        return EXIT_NO_REPORT
    if totals.lines == 0:
        print(f"fillreactor shadow-report: {path}: no report lines", file=sys.stderr)
        return EXIT_NO_REPORT
    if args.json:
        print(json.dumps({**totals.as_dict(), "runs": totals.runs, "skipped": totals.skipped}, indent=2))
        return 0
    runs = "1 run" if totals.runs == 1 else f"{totals.runs} runs"
    print(f"{path}: {runs}, {totals.lines} lines\n")
    sys.stdout.write(summary_tables(totals))
    return 0
