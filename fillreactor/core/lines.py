"""What counts as a line: the one used-lines figure per server, and the call counts of the shortage.

Rules this module keeps (AST_VDauto_dial.pl build 240917, lines cited; spec/VICIDIAL_FILL.md 4.1-4.3):

* VICIdial counts lines from ``vicidial_auto_calls`` rows, never from channels. A server's
  ``active_line_counter`` is its rows of **every** call type and family (auto-dial ``V``, FILL's
  OUTBALANCE, inbound ``Y``, the agent screen's manual ``M`` rows) whose status is in
  ``LINE_STATUSES`` (AST_VDauto_dial.pl 763), plus its shared drops when ``allow_shared_dial > 0``
  (745-756). A row counts on its own ``server_ip``: a FILL call placed on B and bridged over IAX2
  to an agent on A is one row, on B.
* A campaign's existing calls are its rows (and its drop in-group's) of any type on the server
  with a status in ``EXIST_STATUSES`` (1379-1392); inbound terms are ``IN`` rows of the campaign's
  closer groups (1219-1247).
* fillreactor's live figure takes the **V** rows from the AMI channel model instead of the table
  (the moment a call starts or ends, each V call on the server it was placed on, plus the
  originates fillreactor sent and has not seen yet), and **every other row** (M, Y and any id that
  is not a V id) from the snapshot's rows. Which ids reach AMI, from VICIdial's source:
  V: the Originate's CallerIDName (FILL 952-954, 1290); M: likewise (vdc_db_query.php 5068,
  5201-5202, 5242); Y: only once agi-VDAD_ALL_inbound.agi has run ``SET CALLERID`` (2374-2381),
  before it writes the row (2484/2494), and a call transferred into an in-group then carries a Y
  id besides its V id. So only V ids are taken from AMI; M and Y calls are counted from their rows
  (refreshed with the snapshot, one ``GROUP BY``), which is exactly what the Perl counts. The
  model still counts M/Y/DC/RA calls per family, for reporting.
* Status-specific terms come from the rows, since a channel does not know its row's status: IVR
  rows count as lines but not as existing calls (``v_ivr`` is subtracted from the model's V count),
  XFER/CLOSER for the available-only goal, LIVE for the inbound-queue no-dial override.
* ``LiveCounts.from_rows`` builds what the model would report if it held exactly the V rows in
  ``LINE_STATUSES``; with it, every figure here equals the Perl's row count (the property test
  checks both paths give the same shortage). A server the live counts do not mention at all (no
  ``usage`` key: no AMI view of it, e.g. ``LiveCounts()`` in a one-shot run) has its V calls
  counted from its rows the same way.
* Differences of the live figure, by design: a V row whose channel is not up yet (another
  dialer's call between its INSERT and the Originate) or that outlives its channel (cleanup not
  done yet) is not counted; a V call whose row is not found is counted where it is seen.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # cluster.py imports this module; only the types are needed here
    from fillreactor.core.cluster import ClusterSnapshot, LiveCounts

LINE_STATUSES = frozenset({"SENT", "RINGING", "LIVE", "XFER", "CLOSER", "IVR"})
"""Counted in ``active_line_counter`` (AST_VDauto_dial.pl 763)."""
EXIST_STATUSES = frozenset({"SENT", "RINGING", "LIVE", "XFER", "CLOSER"})
"""Counted as existing / inbound calls (AST_VDauto_dial.pl 1219, 1388)."""
AUTO_DIAL_FAMILY = "V"
"""Rows whose callerid is a V id (``^V\\d{19}$``): counted from the channel model."""
OTHER_FAMILY = ""
"""A row whose callerid is no V/M/Y id (J, empty, anything else): counted from the rows."""

AutoCallKey = tuple[str, str, str, str, str]
"""``(server_ip, campaign_id, call_type, status, family)`` of a ``vicidial_auto_calls`` group."""

_EMPTY: Mapping = MappingProxyType({})


def _frozen(counts: Mapping) -> Mapping:
    return MappingProxyType({k: v for k, v in sorted(counts.items()) if v})


@dataclass(frozen=True)
class RowLines:
    """The row counts the line figures read, indexed once per snapshot (all O(1) lookups).

    ``off_ami`` means "rows of every family but V" (counted from rows in live mode);
    ``v_*`` are the V rows (counted from the model in live mode, from here in ``from_rows``).
    """

    off_ami_lines: Mapping[str, int] = field(default_factory=lambda: _EMPTY)
    """Non-V rows in LINE_STATUSES per server."""
    off_ami_existing: Mapping[tuple[str, str], int] = field(default_factory=lambda: _EMPTY)
    """Non-V rows in EXIST_STATUSES per (campaign, server)."""
    v_lines: Mapping[str, int] = field(default_factory=lambda: _EMPTY)
    v_campaign: Mapping[tuple[str, str], int] = field(default_factory=lambda: _EMPTY)
    """V rows in LINE_STATUSES per server / per (campaign, server)."""
    v_ivr: Mapping[tuple[str, str], int] = field(default_factory=lambda: _EMPTY)
    """V rows in IVR status per (campaign, server): lines, not existing calls."""
    inbound: Mapping[tuple[str, str], int] = field(default_factory=lambda: _EMPTY)
    """IN rows (every family) in EXIST_STATUSES per (group, server)."""
    inbound_all: Mapping[str, int] = field(default_factory=lambda: _EMPTY)
    inbound_live: Mapping[str, int] = field(default_factory=lambda: _EMPTY)
    """IN rows per group on every server: in EXIST_STATUSES / in status LIVE."""
    families: Mapping[str, Mapping[str, int]] = field(default_factory=lambda: _EMPTY)
    """Rows in LINE_STATUSES per server and family letter ('' = other), for reporting."""
    shared_lines: Mapping[str, int] = field(default_factory=lambda: _EMPTY)
    shared_existing: Mapping[tuple[str, str], int] = field(default_factory=lambda: _EMPTY)
    """Fresh ``vicidial_shared_drops`` per server (LINE_STATUSES) / per (campaign, server)
    (OUT/OUTBALANCE in EXIST_STATUSES) (AST_VDauto_dial.pl 745-756, 1366-1378)."""

    @classmethod
    def of(cls, groups: Mapping[AutoCallKey, int], shared: Mapping[AutoCallKey, int] = _EMPTY) -> RowLines:
        off_lines: dict[str, int] = defaultdict(int)
        off_exist: dict[tuple[str, str], int] = defaultdict(int)
        v_lines: dict[str, int] = defaultdict(int)
        v_campaign: dict[tuple[str, str], int] = defaultdict(int)
        v_ivr: dict[tuple[str, str], int] = defaultdict(int)
        inbound: dict[tuple[str, str], int] = defaultdict(int)
        inbound_all: dict[str, int] = defaultdict(int)
        inbound_live: dict[str, int] = defaultdict(int)
        families: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for (server, campaign, call_type, status, family), count in groups.items():
            if status in LINE_STATUSES:
                families[server][family] += count
                if family == AUTO_DIAL_FAMILY:
                    v_lines[server] += count
                    v_campaign[(campaign, server)] += count
                    if status == "IVR":
                        v_ivr[(campaign, server)] += count
                else:
                    off_lines[server] += count
                    if status in EXIST_STATUSES:
                        off_exist[(campaign, server)] += count
            if call_type == "IN":
                if status in EXIST_STATUSES:
                    inbound[(campaign, server)] += count
                    inbound_all[campaign] += count
                if status == "LIVE":
                    inbound_live[campaign] += count
        shared_lines: dict[str, int] = defaultdict(int)
        shared_exist: dict[tuple[str, str], int] = defaultdict(int)
        for (server, campaign, call_type, status, _family), count in shared.items():
            if status in LINE_STATUSES:
                shared_lines[server] += count
            if call_type in ("OUT", "OUTBALANCE") and status in EXIST_STATUSES:
                shared_exist[(campaign, server)] += count
        return cls(
            _frozen(off_lines),
            _frozen(off_exist),
            _frozen(v_lines),
            _frozen(v_campaign),
            _frozen(v_ivr),
            _frozen(inbound),
            _frozen(inbound_all),
            _frozen(inbound_live),
            MappingProxyType({s: _frozen(f) for s, f in sorted(families.items())}),
            _frozen(shared_lines),
            _frozen(shared_exist),
        )


def used_lines(snapshot: ClusterSnapshot, live: LiveCounts, server: str) -> int:
    """THE used-lines figure of a server: what AST_VDauto_dial.pl counts against its trunks.

    The model's V calls placed on the server and reservations (``live.usage``), plus every
    other row of the server in LINE_STATUSES, plus fresh shared drops when shared dialing is on.
    """
    rows = snapshot.row_lines
    v_calls = live.usage.get(server)
    if v_calls is None:  # no AMI view of this server: its V rows
        v_calls = rows.v_lines.get(server, 0)
    used = v_calls + rows.off_ami_lines.get(server, 0)
    if snapshot.system.allow_shared_dial > 0:
        used += rows.shared_lines.get(server, 0)
    return used


def campaign_calls(snapshot: ClusterSnapshot, live: LiveCounts, campaign: str, server: str) -> int:
    """One campaign id's calls on a server in EXIST_STATUSES (any call type): the model's V calls
    (less its V rows in IVR) plus the campaign's other rows."""
    rows = snapshot.row_lines
    key = (campaign, server)
    if server in live.usage:
        v_calls = max(0, live.campaign_usage.get(key, 0) - rows.v_ivr.get(key, 0))
    else:  # no AMI view of this server: its V rows
        v_calls = rows.v_campaign.get(key, 0) - rows.v_ivr.get(key, 0)
    return v_calls + rows.off_ami_existing.get(key, 0)


@dataclass(frozen=True, slots=True)
class LineBreakdown:
    """One server's used lines split by where they were counted, for reports and the trace."""

    server: str
    used: int
    model_v: int
    """V calls counted by the channel model (or V rows in ``from_rows``), reservations included."""
    rows_by_family: Mapping[str, int]
    """Rows in LINE_STATUSES that are not V calls, by family letter ('' = other ids)."""
    shared_drops: int


def breakdown(snapshot: ClusterSnapshot, live: LiveCounts, server: str) -> LineBreakdown:
    rows = snapshot.row_lines
    families = {f: n for f, n in rows.families.get(server, _EMPTY).items() if f != AUTO_DIAL_FAMILY}
    shared = rows.shared_lines.get(server, 0) if snapshot.system.allow_shared_dial > 0 else 0
    v_calls = live.usage.get(server)
    return LineBreakdown(
        server,
        used_lines(snapshot, live, server),
        rows.v_lines.get(server, 0) if v_calls is None else v_calls,
        MappingProxyType(families),
        shared,
    )
