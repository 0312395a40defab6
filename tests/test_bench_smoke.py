"""The benchmarks still run (with tiny sizes): figures are printed, nothing about speed is asserted."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

RUN = Path(__file__).resolve().parent / "bench" / "run.py"


def run_bench(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(RUN), *args], capture_output=True, text=True, timeout=240, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_parse_benchmark_prints_every_path_for_both_mixes() -> None:
    out = run_bench("parse", "--events=2000", "--repeat=1")
    assert out.count("events/s") == 10
    assert "read=all" in out and "Events: call,system" in out


def test_plan_benchmark_prints_percentiles() -> None:
    out = run_bench("plan", "-n=3")
    assert "plan, 1 triggered campaign" in out and "p50" in out and "p99" in out


def test_dial_statements_benchmark_prints_its_figure() -> None:
    out = run_bench("dial_statements", "--calls=12", "--servers=2", "--campaigns=2", "--cps=1000")
    assert out.count(" per placed call  [") == 2 and "the Perl FILL: 14.9" in out
