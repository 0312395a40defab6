"""``/etc/astguiclient.conf``: the database and this host, read the way VICIdial's Perl reads it.

Rules this module keeps (spec/VICIDIAL_FILL.md 2.1.3 and 8.4, spec/AMI.md 6.1):

* One ``KEY => value`` per line, no sections. Each line loses every space, tab, ``>``, CR and LF,
  and everything from the first ``#`` or ``;`` on (a comment). A line names a key when it *starts*
  with it; the value is the text after the line's last ``=``. A later line wins. So values cannot
  hold spaces, ``#``, ``;`` or ``=``, exactly as for VICIdial's own scripts.
* Only the keys fillreactor needs are read: ``VARDB_server``, ``VARDB_port`` (default 3306),
  ``VARDB_user``, ``VARDB_pass``, ``VARDB_database``, ``VARserver_ip``, ``PATHhome``, ``PATHlogs``
  (and ``VARactive_keepalives`` for ``check``). Others are ignored.
* A missing or bad value is one ``ConfigError`` naming the file, the key and what is allowed.
* The password never appears in a message, a ``repr`` or a log line.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_PATH = Path("/etc/astguiclient.conf")
DEFAULT_DB_PORT = 3306
DEFAULT_PATH_HOME = "/usr/share/astguiclient"
DEFAULT_PATH_LOGS = "/var/log/astguiclient"

# The keys read, in the order VICIdial's scripts test them. Prefix matching means a longer key that
# starts with a shorter one would also match it: none of these is a prefix of another.
KEYS = (
    "PATHhome",
    "PATHlogs",
    "VARserver_ip",
    "VARDB_server",
    "VARDB_database",
    "VARDB_user",
    "VARDB_pass",
    "VARDB_port",
    "VARactive_keepalives",
)

_STRIP = re.compile(r"[ >\n\r\t]|#.*|;.*")
_DATABASE_NAME = re.compile(r"^[A-Za-z0-9_$]{1,64}$")


class ConfigError(ValueError):
    """A configuration value that is missing or not allowed; the message names file and key."""


def parse_lines(text: str) -> dict[str, str]:
    """The raw ``KEY -> value`` pairs of an astguiclient.conf text, by VICIdial's rules."""
    values: dict[str, str] = {}
    for raw in text.splitlines():
        line = _STRIP.sub("", raw)
        if not line:
            continue
        for key in KEYS:
            if line.startswith(key):
                values[key] = line.rpartition("=")[2] if "=" in line else ""
                break
    return values


@dataclass(frozen=True)
class AstguiclientConf:
    """The settings fillreactor takes from astguiclient.conf."""

    path: str
    db_host: str
    db_port: int
    db_user: str
    db_password: str = field(repr=False)
    db_name: str
    server_ip: str
    path_home: str = DEFAULT_PATH_HOME
    path_logs: str = DEFAULT_PATH_LOGS
    active_keepalives: str = ""

    def __repr__(self) -> str:  # the dataclass repr would still show the field name order; be explicit
        return (
            f"AstguiclientConf(path={self.path!r}, db={self.db_user}@{self.db_host}:{self.db_port}/"
            f"{self.db_name}, password={'***' if self.db_password else '(none)'},"
            f" server_ip={self.server_ip!r})"
        )

    @property
    def database_label(self) -> str:
        """Where the database is, for messages (never with the password)."""
        return f"{self.db_user}@{self.db_host}:{self.db_port}/{self.db_name}"


def _need(path: str, values: dict[str, str], key: str, allowed: str) -> str:
    value = values.get(key, "")
    if not value:
        raise ConfigError(f"{path}: {key} is missing or empty ({allowed})")
    return value


def parse_conf(text: str, path: str = str(DEFAULT_PATH)) -> AstguiclientConf:
    """Validate the text of an astguiclient.conf; ``path`` is only used in messages."""
    values = parse_lines(text)
    host = _need(path, values, "VARDB_server", "the MySQL/MariaDB host name or address")
    user = _need(path, values, "VARDB_user", "the database user, e.g. cron")
    name = _need(path, values, "VARDB_database", "the VICIdial database name, e.g. asterisk")
    if not _DATABASE_NAME.match(name):
        raise ConfigError(f"{path}: VARDB_database {name!r} is not allowed (1-64 of A-Z a-z 0-9 _ $)")
    port_text = values.get("VARDB_port", "") or str(DEFAULT_DB_PORT)
    if not re.fullmatch(r"[0-9]{1,5}", port_text) or not 0 < int(port_text) < 65536:
        raise ConfigError(f"{path}: VARDB_port {port_text!r} is not allowed (a TCP port, 1-65535)")
    server_ip = _need(path, values, "VARserver_ip", "this server's IPv4 address as in servers.server_ip")
    try:
        ipaddress.IPv4Address(server_ip)
    except ValueError:
        raise ConfigError(
            f"{path}: VARserver_ip {server_ip!r} is not allowed (an IPv4 address such as 10.10.10.15)"
        ) from None
    return AstguiclientConf(
        path=path,
        db_host=host,
        db_port=int(port_text),
        db_user=user,
        db_password=values.get("VARDB_pass", ""),
        db_name=name,
        server_ip=server_ip,
        path_home=values.get("PATHhome") or DEFAULT_PATH_HOME,
        path_logs=values.get("PATHlogs") or DEFAULT_PATH_LOGS,
        active_keepalives=values.get("VARactive_keepalives", ""),
    )


def load_conf(path: str | Path = DEFAULT_PATH) -> AstguiclientConf:
    """Read and validate an astguiclient.conf file."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: no such file (give the VICIdial configuration with --conf FILE)"
        ) from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot be read ({error.strerror or error})") from None
    return parse_conf(text, str(path))
