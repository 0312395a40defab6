"""The verbose trace: one record per decision-relevant happening, in a stable one-line format.

Rules this module keeps:

* The reactor emits ``TraceRecord`` values; it never formats text or writes files itself. Sinks
  (``StreamSink``: stderr, in colour on a terminal; ``FileSink``: a file, plain; a golden-trace
  collector in replay) decide what to do with them. A sink never raises into the reactor: a
  write that fails is counted and reported once.
* The line format is stable and documented (README "The trace"); golden files compare these lines
  byte for byte, so a record's text depends only on what happened, never on wall time, object ids
  or dict order. Times are seconds since the service (or the replay) started, 3 decimals.
* ``kind`` is one of ``KINDS``; ``server`` and ``campaign`` are ``""`` when the record has none.
  Filters (``--trace-server``, ``--trace-campaign``) keep a record whose server/campaign matches or
  is empty.
* Colour never changes the text: ``colour_line(record)`` with the escape codes removed is
  ``record.line()``. Colour is used only on a terminal and never when ``NO_COLOR`` is set.

Line: ``<seconds> <kind> <server or -> <campaign or -> <detail>``, fields separated by one space,
kind padded to 9, server to 15 and campaign to 8 characters (longer values push the rest right;
trailing spaces removed), e.g.::

    12.345 event     10.10.10.11     -        Hangup Local/9312...@default-00000001;2 usage 20->19
    12.346 plan      -               DEMO     shortage 10 in flight 8 needed 2 -> 10.10.10.12 +2
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)

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

    def set_filters(self, servers: Iterable[str], campaigns: Iterable[str]) -> None:
        """New filters (a reload), from the next record on."""
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


# -- colour and the sinks that write lines ---------------------------------------------------------
RESET = "\x1b[0m"
KIND_COLOURS = {
    "event": "\x1b[2m",  # dim: the most frequent line
    "link": "\x1b[34m",  # blue
    "threshold": "\x1b[33m",  # yellow
    "plan": "\x1b[1;36m",  # bold cyan
    "originate": "\x1b[32m",  # green
    "rows": "\x1b[35m",  # magenta
    "refresh": "\x1b[2m",
    "leader": "\x1b[1;35m",  # bold magenta
    "breaker": "\x1b[1;31m",  # bold red
    "shadow": "\x1b[36m",
    "note": "",
}
FAILURE_COLOUR = "\x1b[1;31m"  # bold red: the whole line of something that went wrong
_FAILURE = re.compile(r"\b(failed|refused|down|not dialable|not dialing|error|lost)\b")
_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")


def is_failure(record: TraceRecord) -> bool:
    """A line worth red: an originate refused or failed, a link down, dialing stopped."""
    return record.kind in ("originate", "link", "leader", "note") and bool(_FAILURE.search(record.detail))


def colour_line(record: TraceRecord) -> str:
    """``record.line()`` with ANSI colours: the kind's colour, or red for a failure."""
    text = record.line()
    colour = FAILURE_COLOUR if is_failure(record) else KIND_COLOURS.get(record.kind, "")
    return f"{colour}{text}{RESET}" if colour else text


def strip_colour(text: str) -> str:
    return _ESCAPE.sub("", text)


def wants_colour(stream: IO[str], environ: dict[str, str] | None = None) -> bool:
    """Colour on a terminal, unless ``NO_COLOR`` is set (https://no-color.org) or TERM is dumb."""
    env = os.environ if environ is None else environ
    if env.get("NO_COLOR") or env.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class StreamSink:
    """Writes each record as one line to a text stream (stderr by default), coloured on a terminal."""

    def __init__(self, stream: IO[str] | None = None, *, colour: bool | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.colour = wants_colour(self.stream) if colour is None else colour
        self.errors = 0

    def __call__(self, record: TraceRecord) -> None:
        line = colour_line(record) if self.colour else record.line()
        try:
            self.stream.write(line + "\n")
            self.stream.flush()
        except (OSError, ValueError) as error:  # a closed pipe or stream: the reactor goes on
            self.errors += 1
            if self.errors == 1:
                log.warning("trace output failed: %s", error)


class FileSink:
    """Appends each record as one plain line to a file, line buffered (``tail -f`` shows it at once)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.errors = 0
        self._handle: IO[str] | None = None

    def open(self) -> None:
        """Open now, so that a path that cannot be written is an error at start-up (OSError)."""
        self._handle = self.path.open("a", encoding="utf-8", buffering=1)

    def __call__(self, record: TraceRecord) -> None:
        try:
            if self._handle is None:
                self.open()
            assert self._handle is not None
            self._handle.write(record.line() + "\n")
        except (OSError, ValueError) as error:
            self.errors += 1
            if self.errors == 1:
                log.warning("trace file %s cannot be written: %s", self.path, error)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
