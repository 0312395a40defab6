"""The figures of shadow report lines, and the summary tables (``status`` and ``shadow-report``).

Rules this module keeps:

* A report is JSON Lines, one object per line, ``kind`` one of ``LINE_KINDS`` (``compare`` writes
  them; this module only reads and adds them up). ``start`` and ``end`` frame one run; a file may
  hold several runs (``--shadow-report`` appends) and they are added up together.
* What each kind adds (``Figures.add``):

  ==================  ====================================================================
  kind                adds
  ==================  ====================================================================
  match               Perl placed, fillreactor asked, matched: ``calls``; ``lead_s`` values
  perl_only           Perl placed, Perl only[reason]: ``calls``; corrections named
  fill_only           fillreactor asked, fillreactor only[reason]: ``calls``; corrections
  over_limit          seconds over the limit because of Perl FILL calls, the peak excess
  balance_trunk_fill  the last values the Perl and fillreactor would store, per campaign
  ==================  ====================================================================

* Each line counts in the hour it happened: a match or Perl-only call when it was seen
  (``observed_at``), a withdrawn want when it ended (``ended_at``), an interval when it began
  (``from``, the whole interval in that hour).
* Percentiles are nearest rank: the value at position ``ceil(q * n)`` of the sorted values (the
  smallest value with at least a fraction q of the values at or below it).
* A malformed line is skipped and counted, never an error.
"""

from __future__ import annotations

import json
import math
from collections import Counter, deque
from collections.abc import Iterable, Mapping, MutableSequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LINE_KINDS = (
    "start",
    "match",
    "perl_only",
    "fill_only",
    "over_limit",
    "balance_trunk_fill",
    "summary",
    "end",
)
HOUR_FIELD = {
    "match": "observed_at",
    "perl_only": "observed_at",
    "fill_only": "ended_at",
    "over_limit": "from",
}


def percentile(values: Iterable[float], q: float) -> float | None:
    """Nearest rank (see the module rules); None without values."""
    ordered = sorted(values)
    if not ordered:
        return None
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass
class Figures:
    perl_placed: int = 0
    fill_asked: int = 0
    matched: int = 0
    leads: MutableSequence[float] = field(default_factory=list)
    fill_only: Counter[str] = field(default_factory=Counter)
    perl_only: Counter[str] = field(default_factory=Counter)
    corrections: Counter[str] = field(default_factory=Counter)
    over_limit_s: float = 0.0
    over_limit_peak: int = 0

    def add(self, line: Mapping[str, Any]) -> None:
        kind = line["kind"]
        if kind == "over_limit":
            self.over_limit_s += float(line["seconds"])
            self.over_limit_peak = max(self.over_limit_peak, int(line.get("peak_over", 0)))
            return
        calls = int(line["calls"])
        if kind == "match":
            self.perl_placed += calls
            self.fill_asked += calls
            self.matched += calls
            self.leads.extend(float(x) for x in line.get("lead_s", ()))
        elif kind == "perl_only":
            self.perl_placed += calls
            self.perl_only[str(line["reason"])] += calls
        elif kind == "fill_only":
            self.fill_asked += calls
            self.fill_only[str(line["reason"])] += calls
        if kind in ("perl_only", "fill_only"):
            for name in line.get("corrections", ()):
                self.corrections[str(name)] += calls

    def lead(self, q: float) -> float | None:
        return percentile(self.leads, q)

    def as_dict(self) -> dict[str, Any]:
        p50, p99 = self.lead(0.5), self.lead(0.99)
        return {
            "perl_placed": self.perl_placed,
            "fill_asked": self.fill_asked,
            "matched": self.matched,
            "lead_ms": {
                "p50": None if p50 is None else round(p50 * 1000, 3),
                "p99": None if p99 is None else round(p99 * 1000, 3),
            },
            "fill_only": dict(sorted(self.fill_only.items())),
            "perl_only": dict(sorted(self.perl_only.items())),
            "corrections": dict(sorted(self.corrections.items())),
            "over_limit_s": round(self.over_limit_s, 3),
            "over_limit_peak": self.over_limit_peak,
        }


class Totals:
    """Report lines added up overall, per campaign, per server, per (campaign, server), per hour."""

    def __init__(self, lead_limit: int | None = None) -> None:
        self.lead_limit = lead_limit
        self.overall = self._figures()
        self.campaigns: dict[str, Figures] = {}
        self.servers: dict[str, Figures] = {}
        self.pairs: dict[tuple[str, str], Figures] = {}
        self.hours: dict[str, Figures] = {}
        self.perl_fill: dict[str, int] = {}
        self.fill_fill: dict[str, int | None] = {}
        self.lines = 0
        self.skipped = 0
        self.runs = 0

    def _figures(self) -> Figures:
        leads: MutableSequence[float] = [] if self.lead_limit is None else deque(maxlen=self.lead_limit)
        return Figures(leads=leads)

    def _at(self, table: dict[Any, Figures], key: Any) -> Figures:
        figures = table.get(key)
        if figures is None:
            figures = table[key] = self._figures()
        return figures

    def add(self, line: Mapping[str, Any]) -> bool:
        """Add one line; False (and counted as skipped) when it is not a report line."""
        try:
            kind = line["kind"]
            if kind not in LINE_KINDS:
                raise ValueError(kind)
            if kind == "start":
                self.runs += 1
            elif kind == "balance_trunk_fill":
                self.perl_fill[str(line["campaign"])] = int(line["perl"])
                self.fill_fill[str(line["campaign"])] = line.get("fillreactor")
            elif kind in HOUR_FIELD:
                server = str(line["server"])
                targets = [self.overall, self._at(self.servers, server), self._at(self.hours, _hour(line))]
                if kind != "over_limit":
                    campaign = str(line["campaign"])
                    targets += [self._at(self.campaigns, campaign), self._at(self.pairs, (campaign, server))]
                trial = Figures()
                trial.add(line)  # a malformed line fails here, before it touched any figure
                for figures in targets:
                    figures.add(line)
        except (KeyError, TypeError, ValueError, AttributeError):
            self.skipped += 1
            return False
        self.lines += 1
        return True

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.overall.as_dict(),
            "campaigns": {c: f.as_dict() for c, f in sorted(self.campaigns.items())},
            "servers": {s: f.as_dict() for s, f in sorted(self.servers.items())},
            "balance_trunk_fill": {
                c: {"perl": v, "fillreactor": self.fill_fill.get(c)}
                for c, v in sorted(self.perl_fill.items())
            },
        }


def _hour(line: Mapping[str, Any]) -> str:
    stamp = str(line[HOUR_FIELD[line["kind"]]])
    if len(stamp) < 13:
        raise ValueError(stamp)
    return stamp[:13] + ":00"


def read_report(path: Path) -> Totals:
    """Every line of a report file, added up (``OSError`` when it cannot be read)."""
    totals = Totals()
    with path.open(encoding="utf-8") as handle:
        for text in handle:
            if not text.strip():
                continue
            try:
                line = json.loads(text)
            except json.JSONDecodeError:
                totals.skipped += 1
                continue
            if not isinstance(line, dict):
                totals.skipped += 1
                continue
            totals.add(line)
    return totals


# -- tables -------------------------------------------------------------------------------------
COLUMNS = (
    "Perl placed",
    "fillreactor asked",
    "matched",
    "lead p50",
    "lead p99",
    "fillreactor only",
    "Perl only",
    "over limit",
)


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f} s"


def _breakdown(total: int, counts: Counter[str]) -> str:
    if not counts:
        return str(total)
    return f"{total} (" + ", ".join(f"{name} {n}" for name, n in sorted(counts.items())) + ")"


def row(name: str, figures: Figures, *, over_limit: bool = True) -> list[str]:
    over = "-"
    if over_limit:
        over = f"{figures.over_limit_s:.3f} s"
        if figures.over_limit_peak:
            over += f" (peak +{figures.over_limit_peak})"
    return [
        name,
        str(figures.perl_placed),
        str(figures.fill_asked),
        str(figures.matched),
        _seconds(figures.lead(0.5)),
        _seconds(figures.lead(0.99)),
        _breakdown(sum(figures.fill_only.values()), figures.fill_only),
        _breakdown(sum(figures.perl_only.values()), figures.perl_only),
        over,
    ]


def table(title: str, head: str, rows: list[list[str]]) -> str:
    header = [head, *COLUMNS]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [title]
    for values in [header, *rows]:
        lines.append("  ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)).rstrip())
    return "\n".join(lines)


def summary_tables(totals: Totals) -> str:
    """The three tables of ``fillreactor shadow-report`` (and the corrections and fills after them)."""
    parts = [
        table(
            "Per campaign",
            "campaign",
            [row(c, f, over_limit=False) for c, f in sorted(totals.campaigns.items())]
            + [row("all", totals.overall)],
        ),
        table("Per server", "server", [row(s, f) for s, f in sorted(totals.servers.items())]),
        table("Per hour", "hour", [row(h, f) for h, f in sorted(totals.hours.items())]),
    ]
    if totals.overall.corrections:
        names = ", ".join(f"{n} {c}" for n, c in sorted(totals.overall.corrections.items()))
        parts.append(f"Calls that differ by a named correction of the planner: {names}")
    if totals.perl_fill:
        fills = ", ".join(
            f"{c} Perl {v} / fillreactor {'-' if totals.fill_fill.get(c) is None else totals.fill_fill[c]}"
            for c, v in sorted(totals.perl_fill.items())
        )
        parts.append(f"balance_trunk_fill last seen: {fills}")
    if totals.skipped:
        parts.append(f"{totals.skipped} lines were not report lines and were skipped")
    return "\n\n".join(parts) + "\n"
