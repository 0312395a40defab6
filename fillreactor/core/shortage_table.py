"""The ``vicidial_campaign_server_stats`` table as AST_VDauto_dial.pl leaves it after one loop.

Rules this module keeps (AST_VDauto_dial.pl build 240917; spec 4.4, 4.4a), for
``fillreactor shortage``:

* One ``TableRow`` per stored row (the table has no key: a key with two rows gives two), plus one
  for each campaign with agents on a server and no row yet (the Perl inserts it with 0, 917-928).
* The stored value the Perl compares with is the first row of the key in table order (``first_stored``).
* ``parity``: the value is written only when it differs from that stored value; the UPDATE has no
  ``LIMIT``, so then every row of the key takes it, and otherwise every row keeps its own value.
  Corrected: every row of the key shows the corrected value.
* Rows of campaigns without agents on the server are cleared to 0 (775); rows of a server with no
  ``servers`` row are left as stored (no AST_VDauto_dial.pl computes them).
* Rows come per server (sorted), the server's campaigns in the Perl's order, then its cleared rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from fillreactor.core.cluster import CampaignServer, ClusterSnapshot, LiveCounts
from fillreactor.core.shortage import ShortageResult, compute_server_shortages


@dataclass(frozen=True, slots=True)
class TableRow:
    """One ``vicidial_campaign_server_stats`` row as it is after the computation.

    ``row``: its index among the stored rows in table order (``None``: a row the Perl inserts,
    AST_VDauto_dial.pl 917-928); ``result``: the computation behind it (``None``: the campaign has
    no agents on the server and the row is cleared or left, see ``reason``).
    """

    campaign_id: str
    server_ip: str
    local_trunk_shortage: int
    stored: int | None
    row: int | None
    result: ShortageResult | None
    reason: str

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "campaign_id": self.campaign_id,
            "server_ip": self.server_ip,
            "local_trunk_shortage": self.local_trunk_shortage,
            "stored": self.stored,
            "row": self.row,
            "reason": self.reason,
        }
        result = self.result
        if result is not None:
            terms = result.terms.as_dict() if result.terms is not None else {}
            out.update(
                goal=result.goal,
                existing=result.existing,
                make=result.make,
                line_goal=result.line_goal,
                terms=terms,
                deviations=[d.name for d in result.deviations],
                not_modelled=[{"term": n.term, "reason": n.reason} for n in result.not_modelled],
                explanation=list(result.explanation),
            )
        return out


CLEARED = "no agents of the campaign on the server: AST_VDauto_dial.pl sets it to 0 (775)"
NO_SERVER_ROW = "no servers row for this server_ip: no AST_VDauto_dial.pl computes it; left as stored"


def first_stored(snapshot: ClusterSnapshot) -> dict[CampaignServer, int]:
    """The stored value the Perl compares with, per key: the first row in table order.

    The Perl keeps the last row its ``SELECT`` returns (AST_VDauto_dial.pl 904-914); measured on
    MariaDB's MEMORY table (hash index, newest first) that is the first row inserted (spec 4.4a).
    """
    first: dict[CampaignServer, int] = {}
    for stored in snapshot.stored_shortages:
        first.setdefault((stored.campaign_id, stored.server_ip), stored.local_trunk_shortage)
    return first


def shortage_table(
    snapshot: ClusterSnapshot,
    live: LiveCounts,
    *,
    servers: Iterable[str] | None = None,
    parity: bool = False,
) -> tuple[TableRow, ...]:
    """Every row of ``vicidial_campaign_server_stats`` after one loop on the given servers.

    Per server: the campaigns with agents (in the Perl's order), each row of the key getting the
    value (parity: the UPDATE has no LIMIT, so when the value is written every row of the key
    takes it; when it is not, every row keeps its own), a new row where none exists, then the
    rows of campaigns without agents on the server, cleared to 0 (775).
    """
    previous = first_stored(snapshot)
    rows_of: dict[CampaignServer, list[tuple[int, int]]] = {}
    for index, stored in enumerate(snapshot.stored_shortages):
        rows_of.setdefault((stored.campaign_id, stored.server_ip), []).append(
            (index, stored.local_trunk_shortage)
        )
    wanted = sorted(
        snapshot.servers if servers is None else set(servers),
    )
    out: list[TableRow] = []
    for server in wanted:
        if server not in snapshot.servers:
            for (campaign, ip), rows in rows_of.items():
                if ip == server:
                    out.extend(
                        TableRow(campaign, ip, value, value, i, None, NO_SERVER_ROW) for i, value in rows
                    )
            continue
        results = compute_server_shortages(snapshot, live, server, previous=previous, parity=parity)
        seen = set()
        for result in results:
            key = (result.campaign, server)
            seen.add(key)
            key_rows = rows_of.get(key, [])
            terms = result.terms
            if not key_rows:
                out.append(
                    TableRow(result.campaign, server, result.shortage, None, None, result, result.zero_reason)
                )
                continue
            for index, value in key_rows:
                kept = parity and terms is not None and not terms.written
                shown = value if kept else result.shortage
                out.append(TableRow(result.campaign, server, shown, value, index, result, result.zero_reason))
        for (campaign, ip), rows in rows_of.items():
            if ip == server and (campaign, ip) not in seen:
                out.extend(TableRow(campaign, ip, 0, value, i, None, CLEARED) for i, value in rows)
    if servers is None:
        for (campaign, ip), rows in rows_of.items():
            if ip not in snapshot.servers:
                out.extend(TableRow(campaign, ip, value, value, i, None, NO_SERVER_ROW) for i, value in rows)
    return tuple(out)


def as_json_ready(rows: Iterable[TableRow]) -> list[dict[str, Any]]:
    return [row.as_dict() for row in rows]
