"""``fillreactor shortage``: why is this campaign (not) filling? AST_VDauto_dial.pl's number, explained.

Rules this module keeps:

* It reads the database named by ``--conf`` (astguiclient.conf syntax:
  ``fillreactor.astguiclient.load_conf``), takes one snapshot (``store.snapshot.load_snapshot``
  with the stored ``vicidial_campaign_server_stats`` rows) and computes, per server, every
  campaign's goal, existing calls, make and shortage with every term, by the same code as live
  mode (``core.shortage``), the lines counted from ``vicidial_auto_calls`` rows as
  AST_VDauto_dial.pl counts them (``LiveCounts.from_rows``). It writes nothing.
* ``--parity``: exactly the value AST_VDauto_dial.pl would leave in the table, quirks included
  (written only when it differs from the stored value, forced zeros only in that write, a
  negative value stored as 0). Without it: fillreactor's corrected value, each correction named.
* ``--server-ip IP``: only what AST_VDauto_dial.pl running on that server computes: the campaigns
  with agents there, and that server's rows of campaigns without agents (cleared to 0).
* One entry per stored row (a key with two rows gives two), plus the rows the Perl would insert.
  ``--json`` prints one JSON list of objects (``campaign_id``, ``server_ip``,
  ``local_trunk_shortage``, the stored value, ``goal``, ``existing``, ``make``, the ``terms``,
  ``reason`` for a zero, deviations and ``not_modelled``) and nothing else on stdout.
* A bad configuration file or an unreachable database is one line on stderr and exit status 2
  (configuration) or 1 (database); nothing on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import TextIO

from fillreactor.astguiclient import DEFAULT_PATH, ConfigError, load_conf
from fillreactor.core.cluster import ClusterSnapshot, LiveCounts
from fillreactor.core.lines import breakdown
from fillreactor.core.shortage_table import TableRow, as_json_ready, shortage_table

EXIT_DATABASE = 1
EXIT_CONFIG = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--conf", default=str(DEFAULT_PATH), metavar="FILE", help="astguiclient.conf naming the database"
    )
    parser.add_argument(
        "--server-ip", metavar="IP", help="only what AST_VDauto_dial.pl on this server computes"
    )
    parser.add_argument("--json", action="store_true", help="print a JSON list of objects, nothing else")
    parser.add_argument(
        "--parity",
        action="store_true",
        help="the exact value AST_VDauto_dial.pl leaves in the table (default: the corrected value)",
    )


def run(args: argparse.Namespace) -> int:
    return asyncio.run(_main(args, sys.stdout, sys.stderr))


async def _main(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    # imported here: the store pulls in aiomysql, which the other subcommands do not need
    from fillreactor.store.database import Database, DatabaseAddress, StoreError
    from fillreactor.store.snapshot import load_snapshot

    try:
        conf = load_conf(args.conf)
    except ConfigError as error:
        print(f"fillreactor shortage: {error}", file=err)
        return EXIT_CONFIG
    try:
        database = await Database.open(
            DatabaseAddress.from_conf(conf), minsize=1, maxsize=1, retry_attempts=1
        )
    except StoreError as error:
        print(f"fillreactor shortage: {error}", file=err)
        return EXIT_DATABASE
    try:
        snapshot = await load_snapshot(database, stored_shortages=True)
    except StoreError as error:
        print(f"fillreactor shortage: {error}", file=err)
        return EXIT_DATABASE
    finally:
        await database.close()
    rows = table(snapshot, server_ip=args.server_ip, parity=args.parity)
    if args.json:
        json.dump(json_objects(rows, snapshot), out, indent=2)
        out.write("\n")
    else:
        out.write(render(rows, snapshot, parity=args.parity, source=conf.database_label))
    return 0


def server_lines(snapshot: ClusterSnapshot, server: str) -> dict[str, int]:
    """The server's used lines as AST_VDauto_dial.pl counts them, by callerid family."""
    view = breakdown(snapshot, LiveCounts.from_rows(snapshot.auto_calls), server)
    families = {(f or "other"): n for f, n in sorted(view.rows_by_family.items())}
    return {"used": view.used, "V": view.model_v, **families, "shared drops": view.shared_drops}


def json_objects(rows: tuple[TableRow, ...], snapshot: ClusterSnapshot) -> list[dict]:
    objects = as_json_ready(rows)
    for row, obj in zip(rows, objects, strict=True):
        if row.result is not None:
            obj["server_lines"] = server_lines(snapshot, row.server_ip)
    return objects


def table(
    snapshot: ClusterSnapshot, *, server_ip: str | None = None, parity: bool = False
) -> tuple[TableRow, ...]:
    """The rows after one AST_VDauto_dial.pl loop, lines counted from the snapshot's rows."""
    live = LiveCounts.from_rows(snapshot.auto_calls)
    servers = None if server_ip is None else [server_ip]
    return shortage_table(snapshot, live, servers=servers, parity=parity)


def render(rows: tuple[TableRow, ...], snapshot: ClusterSnapshot, *, parity: bool, source: str) -> str:
    mode = (
        "parity: the value AST_VDauto_dial.pl leaves in the table"
        if parity
        else "corrected: fillreactor's value, each correction named"
    )
    lines = [f"vicidial_campaign_server_stats of {source} after one loop ({mode})", ""]
    if not rows:
        lines.append("no campaign has agents on any server and no row is stored")
    server = None
    for row in rows:
        if row.server_ip != server:
            server = row.server_ip
            if server in snapshot.servers:
                counts = ", ".join(
                    f"{k} {n}" for k, n in server_lines(snapshot, server).items() if k != "used" and n
                )
                used = server_lines(snapshot, server)["used"]
                mvt = snapshot.servers[server].max_vicidial_trunks
                lines.append(f"== {server}: {used} of {mvt} lines used ({counts or 'no call'})")
        where = "new row" if row.row is None else f"row {row.row}, stored {row.stored}"
        lines.append(
            f"{row.server_ip}  {row.campaign_id}  local_trunk_shortage {row.local_trunk_shortage}  ({where})"
        )
        result = row.result
        if result is None:
            lines.append(f"  {row.reason}")
        else:
            lines.extend(f"  {line}" for line in result.explanation)
            if row.local_trunk_shortage == 0 and row.reason:
                lines.append(f"  why 0: {row.reason}")
            elif row.local_trunk_shortage != result.shortage:
                lines.append(
                    "  not written: the stored value equals the computed one, this row keeps its own"
                )
        lines.append("")
    if snapshot.missing_inputs:
        lines.append("inputs this database does not have (named NOT_MODELLED where a campaign uses them):")
        lines.extend(f"  {name}: {reason}" for name, reason in sorted(snapshot.missing_inputs.items()))
    return "\n".join(lines).rstrip("\n") + "\n"
