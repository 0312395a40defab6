"""The ``servers`` rows the AMI links are made from, and the FILL host's own row.

Rules this module keeps:

* Links go to every server that VICIdial itself treats as a live Asterisk server:
  ``active = 'Y'`` and ``active_asterisk_server = 'Y'`` (a NULL counts as 'Y', the column's default).
  The rows are handed to ``fillreactor.ami.config.targets_from_rows``, which checks each one.
* The secret is read here and handed to the link only; nothing logs a row.
"""

from __future__ import annotations

from typing import Any

from fillreactor.store.database import Database

LINK_ROWS_SQL = (
    "SELECT server_ip, server_id, telnet_host, telnet_port, ASTmgrUSERNAME, ASTmgrUSERNAMEupdate,"
    " ASTmgrUSERNAMElisten, ASTmgrUSERNAMEsend, ASTmgrSECRET, asterisk_version FROM servers"
    " WHERE (active = 'Y' OR active IS NULL) AND COALESCE(active_asterisk_server, 'Y') = 'Y'"
    " ORDER BY server_ip"
)
HOST_ROW_SQL = (
    "SELECT server_ip, server_id, vd_server_logs, ext_context, answer_transfer_agent, local_gmt,"
    " max_vicidial_trunks FROM servers WHERE server_ip = %s LIMIT 1"
)


async def read_link_rows(database: Database) -> list[dict[str, Any]]:
    """One dict per Asterisk server to keep an AMI link with."""
    return await database.fetch_dicts(LINK_ROWS_SQL)


async def read_host_row(database: Database, server_ip: str) -> dict[str, Any] | None:
    """The FILL host's own ``servers`` row (``VARserver_ip``), or None when it has none."""
    rows = await database.fetch_dicts(HOST_ROW_SQL, (server_ip,))
    return rows[0] if rows else None
