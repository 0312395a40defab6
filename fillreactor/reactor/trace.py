"""The verbose trace: one record per decision-relevant happening, in a stable one-line format.

Rules this module keeps:

* The reactor emits ``TraceRecord`` values; it never formats text or writes files itself. Sinks
  (stderr with colour, a file, a golden-trace collector in replay) decide what to do with them.
* The line format is stable and documented (README "The trace"); golden files compare these lines
  byte for byte, so a record's text depends only on what happened, never on wall time, object ids
  or dict order. Times are seconds since the service (or the replay) started, 3 decimals.
* ``kind`` is one of ``KINDS``; ``server`` and ``campaign`` are ``""`` when the record has none.
  Filters (``--trace-server``, ``--trace-campaign``) keep a record whose server/campaign matches or
  is empty.

Line: ``<seconds> <kind> <server or -> <campaign or -> <detail>``, fields separated by one space,
kind padded to 9 and server to 15 characters, e.g.::

    12.345 event     10.10.10.11     -        Hangup Local/9312...@default-00000001;2 usage 20->19
    12.346 plan      -               DEMO     shortage 10 in flight 8 needed 2 -> 10.10.10.12 +2
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

KINDS = (
    "event",  # an AMI event that moved a count
    "link",  # a link state change (logged in, resynced, down, shutting down)
    "threshold",  # a campaign fired: why
    "plan",  # a plan and its explanation
    "originate",  # an originate sent, refused or answered by Asterisk
    "rows",  # a batch of rows written
    "refresh",  # a snapshot or stats refresh that changed something
    "leader",  # the leader lock taken, lost, standby
    "breaker",  # a circuit breaker transition
    "shadow",  # shadow-mode comparison
    "note",  # anything else worth a line
)


@dataclass(frozen=True, slots=True)
class TraceRecord:
    at: float
    kind: str
    server: str
    campaign: str
    detail: str

    def line(self) -> str:
        return (
            f"{self.at:.3f} {self.kind:<9} {self.server or '-':<15} {self.campaign or '-':<8} {self.detail}"
        ).rstrip()


TraceSink = Callable[[TraceRecord], None]


class TraceFilter:
    """Keeps the records of the given servers/campaigns (empty: all); records with none always pass."""

    def __init__(self, sink: TraceSink, servers: Iterable[str] = (), campaigns: Iterable[str] = ()) -> None:
        self.sink = sink
        self.servers = frozenset(servers)
        self.campaigns = frozenset(campaigns)

    def __call__(self, record: TraceRecord) -> None:
        if self.servers and record.server and record.server not in self.servers:
            return
        if self.campaigns and record.campaign and record.campaign not in self.campaigns:
            return
        self.sink(record)


class TraceCollector:
    """Keeps every record (replay's decision trace, tests)."""

    def __init__(self) -> None:
        self.records: list[TraceRecord] = []

    def __call__(self, record: TraceRecord) -> None:
        self.records.append(record)

    def lines(self, kinds: Iterable[str] | None = None) -> list[str]:
        wanted = None if kinds is None else frozenset(kinds)
        return [r.line() for r in self.records if wanted is None or r.kind in wanted]
