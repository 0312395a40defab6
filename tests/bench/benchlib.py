"""Shared pieces of the benchmarks: options, percentiles, the figures table, the simulator child process.

Rules this module keeps:

* Nothing here measures or decides anything: it parses ``--name=value`` options, sorts samples,
  starts and talks to the child process (``simproc.py``) and collects the figures each benchmark
  hands to ``record`` so ``run.py`` can print them as one table (with the machine and the date).
* A figure is recorded with its goal and whether the goal was met, as the benchmark judged it; the
  table prints them, it never turns them into a failure (benchmarks assert nothing).
* The child process speaks JSON lines: one object per line on its stdout, commands one object
  per line on its stdin; its stderr is passed through (its log lines are not figures).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as _dt
import json
import math
import os
import platform
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from fillreactor.astguiclient import AstguiclientConf  # noqa: E402
from fillreactor.testing.database import Dsn  # noqa: E402


# -- options ---------------------------------------------------------------------------------------
def option(argv: Sequence[str], name: str, default: str) -> str:
    """The value of ``--name=value`` in ``argv`` (the last one wins), else ``default``."""
    value = default
    for arg in argv:
        if arg.startswith(f"--{name}="):
            value = arg.split("=", 1)[1]
    return value


def flag(argv: Sequence[str], name: str) -> bool:
    return f"--{name}" in argv


# -- samples ---------------------------------------------------------------------------------------
def percentile(samples: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (the sample at rank ceil(fraction * n)); NaN when empty."""
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    rank = max(1, math.ceil(fraction * len(ordered) - 1e-9))
    return ordered[min(len(ordered), rank) - 1]


def summary_ms(samples: Sequence[float]) -> dict[str, float]:
    """p50 / p99 / max in milliseconds of samples in seconds."""
    return {
        "n": len(samples),
        "p50": percentile(samples, 0.50) * 1000,
        "p99": percentile(samples, 0.99) * 1000,
        "max": (max(samples) * 1000) if samples else float("nan"),
    }


def fmt_rate(value: float) -> str:
    return "n/a" if value != value else f"{value:,.0f}"


def fmt_ms(value: float) -> str:
    if value != value:  # NaN
        return "n/a"
    if value >= 1000:
        return f"{value / 1000:.2f} s"
    return f"{value:.2f} ms"


def rss_mb(pid: int | str = "self") -> float:
    """Resident set size (VmRSS) in MB of a process (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@contextlib.contextmanager
def pinned(cpu: int) -> Iterator[str]:
    """Run the block with this process on one CPU (when the machine has it), then restore; yields
    what was done, for the printout."""
    try:
        before = os.sched_getaffinity(0)
    except (AttributeError, OSError) as error:  # not Linux
        yield f"not pinned ({error})"
        return
    if cpu not in before:
        yield "not pinned"
        return
    os.sched_setaffinity(0, {cpu})
    try:
        yield f"cpu {cpu}"
    finally:
        os.sched_setaffinity(0, before)


def pin_child(cpu: int | None) -> None:
    """In a child process: pin to ``cpu`` when given and present."""
    if cpu is None:
        return
    with contextlib.suppress(AttributeError, OSError):
        if int(cpu) in os.sched_getaffinity(0):
            os.sched_setaffinity(0, {int(cpu)})


def schedstat() -> tuple[float, float]:
    """(seconds on a CPU, seconds runnable but waiting for a CPU) of this process's main thread."""
    try:
        run, wait, _slices = Path("/proc/self/schedstat").read_text().split()[:3]
    except (OSError, ValueError):
        return float("nan"), float("nan")
    return int(run) / 1e9, int(wait) / 1e9


def load_average() -> str:
    try:
        one, five, _ = os.getloadavg()
    except OSError:
        return "load n/a"
    return f"load {one:.2f} (1 min) {five:.2f} (5 min)"


# -- the table -------------------------------------------------------------------------------------
@dataclass
class Figure:
    benchmark: str
    figure: str
    value: str
    goal: str = ""
    met: bool | None = None
    note: str = ""


FIGURES: list[Figure] = []


def record(
    benchmark: str, figure: str, value: str, goal: str = "", met: bool | None = None, note: str = ""
) -> None:
    FIGURES.append(Figure(benchmark, figure, value, goal, met, note))


def machine() -> str:
    cpu = platform.processor() or ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return (
        f"{cpu or platform.machine()}, {os.cpu_count()} cores; Python {platform.python_version()}"
        f" ({platform.python_implementation()}); {platform.system()} {platform.release()}"
    )


def _verdict(met: bool | None) -> str:
    return "" if met is None else ("met" if met else "MISSED")


def table_text(figures: Sequence[Figure], load: str = "") -> str:
    """The figures as a plain-text table (what ``run.py`` prints at the end); ``load``: the load
    average when the run began (other work on the machine shows in the tails)."""
    head = ("benchmark", "figure", "value", "goal", "result")
    rows = [(f.benchmark, f.figure, f.value, f.goal, _verdict(f.met)) for f in figures]
    widths = [max(len(str(r[i])) for r in (head, *rows)) for i in range(len(head))]
    line = "  ".join("-" * w for w in widths)
    out = [
        f"fillreactor benchmarks, {_dt.date.today().isoformat()}: {machine()}"
        + (f"; {load} at the start" if load else ""),
        line,
        "  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)).rstrip(),
        line,
    ]
    out += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    out.append(line)
    notes = [f"  [{f.benchmark}] {f.figure}: {f.note}" for f in figures if f.note]
    if notes:
        out += ["notes:", *notes]
    return "\n".join(out)


def table_rst(figures: Sequence[Figure], load: str = "") -> str:
    """The figures as a reStructuredText ``list-table`` (for README.rst)."""
    lines = [
        f"Measured {_dt.date.today().isoformat()} on {machine()}"
        + (f" ({load} at the start)." if load else "."),
        "",
        ".. list-table::",
        "   :header-rows: 1",
        "   :widths: 14 40 22 14 8",
        "",
        "   * - benchmark",
        "     - figure",
        "     - value",
        "     - goal",
        "     - result",
    ]
    for f in figures:
        lines += [
            f"   * - {f.benchmark}",
            f"     - {f.figure}",
            f"     - {f.value}",
            f"     - {f.goal}".rstrip(),
            f"     - {_verdict(f.met)}".rstrip(),
        ]
    return "\n".join(lines) + "\n"


FRESH_ENV = "FILLREACTOR_BENCH_FRESH"
FIGURES_PREFIX = "FIGURES-JSON: "


def run_fresh(script: str, argv: Sequence[str], body: Callable[[list[str]], None]) -> None:
    """Run ``body(argv)`` in a new interpreter (``script`` again), so the figures (memory above
    all) are those of a process that ran nothing else; its lines are printed as they come and its
    figures recorded here. Inside that interpreter (or with ``--here``), ``body`` runs directly."""
    if os.environ.get(FRESH_ENV) == "1" or "--here" in argv:
        body(list(argv))
        if os.environ.get(FRESH_ENV) == "1":
            print(FIGURES_PREFIX + json.dumps([vars(f) for f in FIGURES]), flush=True)
        return
    env = {**os.environ, FRESH_ENV: "1"}
    with subprocess.Popen(
        [sys.executable, script, *argv], stdout=subprocess.PIPE, text=True, env=env
    ) as child:
        assert child.stdout is not None
        for line in child.stdout:
            if line.startswith(FIGURES_PREFIX):
                FIGURES.extend(Figure(**f) for f in json.loads(line[len(FIGURES_PREFIX) :]))
            else:
                print(line, end="", flush=True)
    if child.returncode:
        raise RuntimeError(f"{Path(script).name} exited with {child.returncode}")


# -- the database and the service's configuration ----------------------------------------------------
def conf_for(dsn: Dsn, server_ip: str) -> AstguiclientConf:
    return dsn.astguiclient_conf(server_ip, path="(benchmark)")


def dsn_text(dsn: Dsn) -> str:
    """The DSN with its password, for the child process (``Dsn.__str__`` hides it)."""
    password = f":{quote(dsn.password, safe='')}" if dsn.password else ""
    return f"mysql://{quote(dsn.user, safe='')}{password}@{dsn.host}:{dsn.port}/{dsn.database or ''}"


def answered_numbers(count: int, start: int = 1) -> list[str]:
    """Phone numbers the simulator answers (never ...0000 busy, ...1111 congestion, ...9999 no answer)."""
    out: list[str] = []
    n = start
    while len(out) < count:
        if n % 10_000 not in (0, 1111, 9999):
            out.append(f"3125{n:06d}")
        n += 1
    return out


# -- the child process -------------------------------------------------------------------------------
class Child:
    """``simproc.py <mode>`` in its own process; JSON lines both ways."""

    def __init__(self, mode: str, params: dict[str, Any]) -> None:
        self.mode = mode
        self.params = params
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(HERE / "simproc.py"),
            self.mode,
            json.dumps(self.params),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=1 << 26,  # result lines carry thousands of samples
        )

    async def send(self, **message: Any) -> None:
        assert self.process is not None and self.process.stdin is not None
        self.process.stdin.write((json.dumps(message) + "\n").encode())
        await self.process.stdin.drain()

    async def receive(self, timeout: float = 120.0) -> dict[str, Any]:
        assert self.process is not None and self.process.stdout is not None
        async with asyncio.timeout(timeout):
            line = await self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"simproc {self.mode} ended (exit code {await self.process.wait()})")
        message: dict[str, Any] = json.loads(line)
        if "error" in message:
            raise RuntimeError(f"simproc {self.mode}: {message['error']}")
        return message

    async def expect(self, key: str, timeout: float = 120.0) -> dict[str, Any]:
        message = await self.receive(timeout)
        if key not in message:
            raise RuntimeError(f"simproc {self.mode}: expected {key!r}, got {sorted(message)}")
        return message

    async def stop(self) -> None:
        process = self.process
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(Exception):
            await self.send(stop=True)
        try:
            async with asyncio.timeout(20):
                await process.wait()
        except TimeoutError:
            process.kill()  # our own child, by its handle
            await process.wait()
