"""Every setting of the service, in one table: name, default, what is allowed, what it does.

Rules this module keeps:

* ``SETTINGS`` is the one list of fillreactor's own settings. The INI file (``/etc/fillreactor.conf``,
  section ``[fillreactor]``), the command line (``--name-with-dashes``) and README's table are all made
  from it, and a test checks that it and the ``Settings`` dataclass name the same fields.
* The database and this host come from astguiclient.conf (``fillreactor.astguiclient``), never from
  here: VICIdial's own file stays the one place an admin changes them.
* A value is parsed once, when the settings are built; a bad one is a ``ConfigError`` naming the
  file (or "command line"), the key and what is allowed. Secrets never live here.
* ``Settings`` is frozen: a reload (SIGHUP) builds a new one and the service swaps it in.
"""

from __future__ import annotations

import configparser
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from fillreactor.astguiclient import ConfigError

DEFAULT_CONFIG_PATH = Path("/etc/fillreactor.conf")
SECTION = "fillreactor"


def _choice(*allowed: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = text.strip().lower()
        if value not in allowed:
            raise ValueError(" or ".join(allowed))
        return value

    return parse


def _number(low: float, high: float) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"a number from {low:g} to {high:g}") from None
        if not low <= value <= high:
            raise ValueError(f"a number from {low:g} to {high:g}")
        return value

    return parse


def _integer(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise ValueError(f"a whole number from {low} to {high}") from None
        if not low <= value <= high:
            raise ValueError(f"a whole number from {low} to {high}")
        return value

    return parse


def _boolean(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "yes", "true", "on"):
        return True
    if value in ("0", "no", "false", "off"):
        return False
    raise ValueError("yes or no")


def _text(text: str) -> str:
    return text.strip()


def _server_list(text: str) -> tuple[str, ...]:
    return tuple(part for part in (p.strip() for p in text.replace(",", " ").split()) if part)


USERNAME_COLUMNS = {
    "default": "ASTmgrUSERNAME",
    "update": "ASTmgrUSERNAMEupdate",
    "listen": "ASTmgrUSERNAMElisten",
    "send": "ASTmgrUSERNAMEsend",
}


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    parse: Callable[[str], Any]
    allowed: str
    help: str


SETTINGS: tuple[Setting, ...] = (
    Setting("shortage_source", "live", _choice("live", "stats"), "live or stats",
            "where demand comes from: live (AMI counts + the shortage formula) or stats "
            "(vicidial_campaign_server_stats, as the Perl FILL)"),
    Setting("dial_via", "ami", _choice("ami", "manager"), "ami or manager",
            "ami: Originate over fillreactor's own AMI session (vicidial_manager row SENT); "
            "manager: a vicidial_manager row NEW for AST_manager_send.pl"),
    Setting("trigger", "event", _choice("event", "timer"), "event or timer",
            "event: plan the moment usage crosses a threshold; timer: plan every timer_interval seconds"),
    Setting("timer_interval", 2.5, _number(0.1, 60), "0.1-60 seconds",
            "the period of --trigger timer (the Perl FILL's loop delay is 2.5 s)"),
    Setting("ami_user", "default", _choice(*USERNAME_COLUMNS), "default, update, listen or send",
            "which servers.ASTmgrUSERNAME* column logs in (the secret is servers.ASTmgrSECRET)"),
    Setting("ami_filter", True, _boolean, "yes or no",
            "ask each Asterisk to send only the events fillreactor needs (Action: Filter)"),
    Setting("ping_interval", 5.0, _number(0.05, 300), "0.05-300 seconds",
            "how often each AMI link is pinged when it is quiet"),
    Setting("ping_timeout", 3.0, _number(0.05, 60), "0.05-60 seconds",
            "a link whose Ping is not answered in this time is cut and reconnected"),
    Setting("reconnect_max_wait", 30.0, _number(0.05, 600), "0.05-600 seconds",
            "the cap of the jittered reconnect back-off"),
    Setting("originate_timeout", 5.0, _number(0.05, 60), "0.05-60 seconds",
            "how long to wait for Asterisk's reply to an Originate before the call counts as not sent"),
    Setting("reservation_timeout", 60.0, _number(1, 600), "1-600 seconds",
            "a sent originate whose channels never appear stops counting as a line after this"),
    Setting("agents_refresh", 1.0, _number(0.1, 60), "0.1-60 seconds",
            "how often live agents and vicidial_auto_calls are read"),
    Setting("config_refresh", 10.0, _number(0.5, 600), "0.5-600 seconds",
            "how often servers, campaigns, trunks and system settings are read"),
    Setting("stats_refresh", 2.5, _number(0.1, 60), "0.1-60 seconds",
            "how often vicidial_campaign_server_stats is read (stats source; live fallback)"),
    Setting("lock_check", 2.0, _number(0.1, 60), "0.1-60 seconds",
            "how often the leader checks it still holds the lock (claims are fenced regardless)"),
    Setting("lock_name", "fillreactor", _text, "a MySQL lock name",
            "the GET_LOCK name: one dialing instance per name"),
    Setting("plan_slice", 0.010, _number(0.001, 1), "0.001-1 seconds",
            "the longest a plan may run before yielding to the event loop"),
    Setting("per_server_pacing", False, _boolean, "yes or no",
            "also honour servers.outbound_calls_per_second (the Perl FILL ignores it)"),
    Setting("stale_claim_age", 120.0, _number(0, 86400), "0-86400 seconds",
            "at start-up, this host's VDFC_ hopper claims older than this are released"),
    Setting("hopper_retry", 1.0, _number(0, 60), "0-60 seconds",
            "after a claim found fewer leads than planned, wait this long before claiming again"),
    Setting("trace", False, _boolean, "yes or no", "write the verbose event trace"),
    Setting("trace_servers", (), _server_list, "server IPs, comma separated",
            "limit the trace to these servers"),
    Setting("trace_campaigns", (), _server_list, "campaign ids, comma separated",
            "limit the trace to these campaigns"),
    Setting("metrics_port", 0, _integer(0, 65535), "0 (off) or a TCP port",
            "serve Prometheus metrics on 127.0.0.1:<port>"),
    Setting("status_socket", "/run/fillreactor/status.sock", _text, "a path",
            "the unix socket `fillreactor status` asks"),
    Setting("circuit_breaker", True, _boolean, "yes or no",
            "stop filling into a balance server whose calls keep failing at the carrier"),
    Setting("breaker_failures", 5, _integer(1, 1000), "1-1000",
            "carrier failures in a row that open a server's breaker"),
    Setting("breaker_ratio", 0.8, _number(0.01, 1), "0.01-1",
            "failure ratio over breaker_window that opens the breaker"),
    Setting("breaker_window", 20, _integer(2, 10000), "2-10000 calls",
            "how many recent results the ratio is taken over"),
    Setting("breaker_cooldown", 30.0, _number(0.1, 3600), "0.1-3600 seconds",
            "how long an open breaker waits before one probe call"),
    Setting("breaker_max_cooldown", 600.0, _number(0.1, 86400), "0.1-86400 seconds",
            "the cap of the doubling cool-down after failed probes"),
)


@dataclass(frozen=True)
class Settings:
    """fillreactor's own settings (see ``SETTINGS`` for what each means)."""

    shortage_source: str = "live"
    dial_via: str = "ami"
    trigger: str = "event"
    timer_interval: float = 2.5
    ami_user: str = "default"
    ami_filter: bool = True
    ping_interval: float = 5.0
    ping_timeout: float = 3.0
    reconnect_max_wait: float = 30.0
    originate_timeout: float = 5.0
    reservation_timeout: float = 60.0
    agents_refresh: float = 1.0
    config_refresh: float = 10.0
    stats_refresh: float = 2.5
    lock_check: float = 2.0
    lock_name: str = "fillreactor"
    plan_slice: float = 0.010
    per_server_pacing: bool = False
    stale_claim_age: float = 120.0
    hopper_retry: float = 1.0
    trace: bool = False
    trace_servers: tuple[str, ...] = ()
    trace_campaigns: tuple[str, ...] = ()
    metrics_port: int = 0
    status_socket: str = "/run/fillreactor/status.sock"
    circuit_breaker: bool = True
    breaker_failures: int = 5
    breaker_ratio: float = 0.8
    breaker_window: int = 20
    breaker_cooldown: float = 30.0
    breaker_max_cooldown: float = 600.0

    @property
    def ami_username_column(self) -> str:
        return USERNAME_COLUMNS[self.ami_user]

    def with_values(self, values: Mapping[str, Any]) -> Settings:
        return replace(self, **values)


SETTING_BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}


def parse_value(name: str, text: str, where: str) -> Any:
    """One setting from text; ``ConfigError`` naming ``where`` (file or command line), key, allowed."""
    setting = SETTING_BY_NAME.get(name)
    if setting is None:
        raise ConfigError(f"{where}: unknown setting {name!r} (see `fillreactor run --help`)")
    try:
        return setting.parse(text)
    except ValueError as error:
        raise ConfigError(f"{where}: {name} = {text!r} is not allowed ({error or setting.allowed})") from None


def read_ini(path: Path) -> dict[str, Any]:
    """The settings of an INI file's ``[fillreactor]`` section (a missing file is an error here)."""
    parser = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=("#", ";"))
    try:
        with path.open(encoding="utf-8") as handle:
            parser.read_file(handle)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except (OSError, configparser.Error) as error:
        raise ConfigError(f"{path}: cannot be read ({error})") from None
    values: dict[str, Any] = {}
    for section in parser.sections():
        if section != SECTION:
            raise ConfigError(f"{path}: unknown section [{section}] (only [{SECTION}])")
    if parser.has_section(SECTION):
        for key, text in parser.items(SECTION):
            values[key] = parse_value(key, text, str(path))
    return values


def load_settings(
    config_path: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    *,
    config_required: bool = False,
) -> Settings:
    """Defaults, then the INI file (if it exists, or always when ``config_required``), then overrides."""
    values: dict[str, Any] = {}
    path = config_path or DEFAULT_CONFIG_PATH
    if config_required or path.exists():
        values.update(read_ini(path))
    values.update(overrides or {})
    return Settings().with_values(values)


def setting_names() -> tuple[str, ...]:
    return tuple(f.name for f in fields(Settings))
