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


def test_reaction_benchmark_prints_both_triggers_and_the_ratio() -> None:
    out = run_bench("reaction", *"--triggers=12 --timer-triggers=3 --rate=20 --balance=2 --trunks=3".split())
    assert "event  outside  n=" in out and "timer  outside  n=" in out and "reactor CPU" in out
    assert "timer / event: p50 x" in out and "service.latency" in out


def test_ingest_benchmark_prints_both_mixes() -> None:
    out = run_bench("ingest", "--connections=3", "--ingest-calls=8", "--ingest-repeat=1")
    assert out.count(" events/s (steady ") == 2 and "lines in use after the run: 0" in out


def test_dbcost_benchmark_prints_per_call_and_per_idle_minute() -> None:
    sizes = "--calls=12 --servers=2 --campaigns=2 --idle-seconds=1 --idle-servers=2 --idle-campaigns=2"
    out = run_bench("dbcost", *sizes.split(), "--idle-warmup=0.5")
    assert out.count(" per call  [") == 2 and "statements per idle minute" in out


def test_scale_benchmark_prints_memory_latency_refresh_and_the_table() -> None:
    sizes = "--scale-servers=6 --scale-balance=2 --scale-campaigns=8 --scale-channels=240 --scale-triggers=3"
    out = run_bench("scale", *sizes.split(), "--scale-repeat=2", "--scale-flips=1", "--scale-settle=0.2")
    assert "resident with the cluster loaded" in out and "event-to-plan, 3 triggers" in out
    assert "snapshot refresh (SnapshotLoader.load" in out
    # the figures recorded by the benchmarks run come out as one table, with the machine and the date
    assert "fillreactor benchmarks, " in out and "Python 3." in out and "resident memory" in out
