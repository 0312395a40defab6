"""What an AMI link needs to know: the server to reach (``LinkTarget``) and how to behave (``LinkSettings``).

Rules this module keeps:

* A ``LinkTarget`` is one row of VICIdial's ``servers`` table reduced to what a link uses:
  ``server_ip`` (the server's name everywhere in fillreactor), ``telnet_host``/``telnet_port``
  (where its AMI listens), the manager user from the configured ``ASTmgrUSERNAME*`` column and
  ``ASTmgrSECRET``. Two targets are equal when every one of these is equal: a changed row
  restarts its link, an equal one leaves it alone. The secret never appears in a ``repr``.
* Which username column logs in is a setting (``USERNAME_COLUMNS``; default ``ASTmgrUSERNAME``,
  the user VICIdial's own dialer uses). Every column is read as the row gives it: no defaults are
  invented for a missing or empty value; such a row is reported and skipped, never fatal.
* ``LinkSettings`` holds every timeout and the reconnect policy. Values are checked when built
  (``ValueError`` with the field's name): a bad configuration fails at start-up, not at 3 a.m.
* ``filter_events`` (empty = no ``Action: Filter``) are event names; ``filter_pattern`` turns them
  into one legacy include filter, a POSIX extended regex over the event text, which Asterisk
  starts with ``Event: <name>`` and a CR (manager.c ``__manager_event_sessions_va``). The name
  must be followed by a character that cannot be part of a name, so ``Hangup`` does not also
  let ``HangupRequest`` through.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from fillreactor.core.message import DEFAULT_MAX_MESSAGE_BYTES
from fillreactor.core.normalise import INTERESTING_EVENTS

log = logging.getLogger(__name__)

USERNAME_COLUMNS = ("ASTmgrUSERNAME", "ASTmgrUSERNAMEupdate", "ASTmgrUSERNAMElisten", "ASTmgrUSERNAMEsend")
DEFAULT_USERNAME_COLUMN = "ASTmgrUSERNAME"
# Every event the normaliser keeps (channel events, snapshot rows, OriginateResponse, FullyBooted,
# Shutdown): with a whitelist, FullyBooted and Shutdown must be in it (spec/AMI.md B 4.7).
DEFAULT_FILTER_EVENTS: tuple[str, ...] = tuple(sorted(INTERESTING_EVENTS))
_EVENT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def filter_pattern(names: Iterable[str]) -> str:
    """The ``Filter:`` value of an ``Action: Filter`` that lets exactly these event names through."""
    wanted = sorted(set(names))
    for name in wanted:
        if not _EVENT_NAME.match(name):
            raise ValueError(f"not an AMI event name: {name!r}")
    if not wanted:
        raise ValueError("no event names to filter on")
    return "^Event: (" + "|".join(wanted) + ")[^A-Za-z0-9_]"


@dataclass(frozen=True, slots=True)
class LinkTarget:
    """One Asterisk server to keep an AMI session with."""

    server: str
    host: str
    port: int
    username: str
    secret: str = field(repr=False)

    def __post_init__(self) -> None:
        for name in ("server", "host", "username"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"{name} is empty")
        if not isinstance(self.port, int) or not 0 < self.port < 65536:
            raise ValueError(f"port {self.port!r} is not a TCP port")
        for name in ("host", "username", "secret"):
            value = getattr(self, name)
            if not isinstance(value, str) or "\r" in value or "\n" in value:
                raise ValueError(f"{name} contains a line break")

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


def target_from_row(row: Mapping[str, Any], username_column: str = DEFAULT_USERNAME_COLUMN) -> LinkTarget:
    """A ``servers`` row to a ``LinkTarget``; ``ValueError`` saying what is wrong with the row."""
    if username_column not in USERNAME_COLUMNS:
        raise ValueError(f"username column {username_column!r} is not one of {', '.join(USERNAME_COLUMNS)}")
    missing = [
        c
        for c in ("server_ip", "telnet_host", "telnet_port", username_column, "ASTmgrSECRET")
        if c not in row
    ]
    if missing:
        raise ValueError(f"servers row lacks {', '.join(missing)}")
    port = row["telnet_port"]
    try:
        port = int(port)
    except (TypeError, ValueError):
        raise ValueError(f"telnet_port {port!r} is not a number") from None
    secret = row["ASTmgrSECRET"]
    return LinkTarget(
        server=str(row["server_ip"] or "").strip(),
        host=str(row["telnet_host"] or "").strip(),
        port=port,
        username=str(row[username_column] or "").strip(),
        secret="" if secret is None else str(secret),
    )


def targets_from_rows(
    rows: Iterable[Mapping[str, Any]], username_column: str = DEFAULT_USERNAME_COLUMN
) -> tuple[list[LinkTarget], list[str]]:
    """Targets of the good rows, and one line per bad row (also logged). The first row of a server wins."""
    targets: list[LinkTarget] = []
    problems: list[str] = []
    seen: set[str] = set()
    for row in rows:
        name = row.get("server_ip", "?")
        try:
            target = target_from_row(row, username_column)
        except ValueError as exc:
            problems.append(f"servers row {name!r} skipped: {exc}")
            continue
        if target.server in seen:
            problems.append(f"servers row {name!r} skipped: server_ip listed twice")
            continue
        seen.add(target.server)
        targets.append(target)
    for problem in problems:
        log.warning("%s", problem)
    return targets, problems


@dataclass(frozen=True, slots=True)
class LinkSettings:
    """Timeouts (seconds) and policies of every AMI link. Defaults suit a production cluster."""

    # Login ``Events:`` mask: call (channels, OriginateResponse) and system (FullyBooted, Shutdown).
    events: str = "call,system"
    # Event names for an ``Action: Filter`` after each login; empty: no filter action.
    filter_events: tuple[str, ...] = ()
    # TCP connect (a host that drops SYNs), then the reply to Login: each bounded by this.
    connect_timeout: float = 5.0
    login_timeout: float = 5.0
    # After login, wait this long for FullyBooted before the resync; without it the server is not
    # used (``require_fully_booted``), as Asterisk still booting refuses or fails originates.
    require_fully_booted: bool = True
    fully_booted_timeout: float = 10.0
    # Any other action's reply (Filter, the default for Originate).
    action_timeout: float = 5.0
    # From the CoreShowChannels to its CoreShowChannelsComplete (a listing under a burst takes
    # ~330 ms, spec/AMI.md A 6a.7); a rejected listing is retried after ``resync_retry_delay``.
    resync_timeout: float = 10.0
    resync_retry_delay: float = 0.5
    # Liveness: a Ping every ``ping_interval``; no reply within ``ping_timeout`` = dead link.
    ping_interval: float = 2.0
    ping_timeout: float = 2.0
    # While the server answers "Asterisk is shutting down", a resync is tried this often (a
    # ``core stop gracefully`` can be aborted: the server then becomes usable again).
    shutdown_probe_interval: float = 5.0
    # Reconnects: full jitter, U(0, min(reconnect_max, reconnect_multiplier * 2 ** (n - 1))) before
    # the n-th consecutive attempt; a session that stayed ready for ``reconnect_reset_after``
    # seconds starts the count again at 1.
    reconnect_multiplier: float = 0.5
    reconnect_max: float = 30.0
    reconnect_reset_after: float = 30.0
    # A frame longer than this is discarded whole (garbage without blank lines).
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    # The servers column whose user logs in.
    username_column: str = DEFAULT_USERNAME_COLUMN

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if isinstance(value, float) or (isinstance(value, int) and not isinstance(value, bool)):
                if not math.isfinite(value) or value <= 0:
                    raise ValueError(f"{item.name} must be a positive number, not {value!r}")
        if self.username_column not in USERNAME_COLUMNS:
            raise ValueError(
                f"username_column {self.username_column!r} is not one of {', '.join(USERNAME_COLUMNS)}"
            )
        if not self.events.strip() or "\r" in self.events or "\n" in self.events:
            raise ValueError(f"events {self.events!r} is not an AMI event mask")
        if self.filter_events:
            filter_pattern(self.filter_events)  # raises on a bad name
