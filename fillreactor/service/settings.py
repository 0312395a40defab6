"""Every setting of the service, in one table: name, default, what is allowed, what it does.

Rules this module keeps:

* ``SETTINGS`` is the one list of fillreactor's own settings. The INI file (``/etc/fillreactor.conf``,
  section ``[fillreactor]``), the command line (``--name-with-dashes``, made by
  ``add_setting_arguments``) and README's table (``settings_table_rst``) are all made from it, and
  tests check that it and the ``Settings`` dataclass name the same fields, that every setting has
  its option, and that README's table is the rendered one.
* The database and this host come from astguiclient.conf (``fillreactor.astguiclient``), never from
  here: VICIdial's own file stays the one place an admin changes them.
* A value is parsed once, when the settings are built; a bad one is one line naming the file (or
  "command line"), the key as written there and what is allowed. Every bad value is reported, not
  only the first (``SettingsError.problems``, one line each). Secrets never live here.
* Precedence: the defaults, then the INI file, then the command line.
* ``Settings`` is frozen: a reload (SIGHUP) builds a new one and the service swaps it in.
"""

from __future__ import annotations

import argparse
import configparser
import difflib
import re
from collections.abc import Callable, Iterable, Mapping
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


_LOCK_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
UNIX_SOCKET_PATH_MAX = 107  # sun_path is 108 bytes with its terminating NUL


def _lock_name(text: str) -> str:
    value = text.strip()
    if not _LOCK_NAME.match(value):
        raise ValueError("1-64 of A-Z a-z 0-9 _ . : -")
    return value


def _socket_path(text: str) -> str:
    value = text.strip()
    if not value.startswith("/") or len(value.encode()) > UNIX_SOCKET_PATH_MAX:
        raise ValueError(f"an absolute path of at most {UNIX_SOCKET_PATH_MAX} bytes")
    return value


def _optional_path(text: str) -> str:
    value = text.strip()
    if value and not value.startswith("/"):
        raise ValueError("an absolute path, or empty")
    return value


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
    aliases: tuple[str, ...] = ()
    """More command-line spellings (the issue's ``--trace-server``)."""

    @property
    def option(self) -> str:
        """The command-line option: ``--`` and the name with dashes."""
        return "--" + self.name.replace("_", "-")

    @property
    def is_flag(self) -> bool:
        return isinstance(self.default, bool)

    @property
    def is_list(self) -> bool:
        return isinstance(self.default, tuple)


# fmt: off
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
            "how long to wait for Asterisk's reply to an Originate; without it the call's outcome is"
            " unknown and the server's next resync decides it"),
    Setting("reservation_timeout", 60.0, _number(1, 600), "1-600 seconds",
            "a queued Originate whose channels never appear stops counting as a line after this"),
    Setting("agents_refresh", 1.0, _number(0.1, 60), "0.1-60 seconds",
            "how often live agents and vicidial_auto_calls are read"),
    Setting("config_refresh", 10.0, _number(0.5, 600), "0.5-600 seconds",
            "how often servers, campaigns, trunks and system settings are read"),
    Setting("stats_refresh", 2.5, _number(0.1, 60), "0.1-60 seconds",
            "how often vicidial_campaign_server_stats is read (stats source; live fallback)"),
    Setting("lock_check", 2.0, _number(0.1, 60), "0.1-60 seconds",
            "how often the leader checks it still holds the lock (claims are fenced regardless)"),
    Setting("lock_name", "fillreactor", _lock_name, "1-64 of A-Z a-z 0-9 _ . : -",
            "the GET_LOCK name: one dialing instance per name"),
    Setting("plan_slice", 0.010, _number(0.001, 1), "0.001-1 seconds",
            "the longest a plan may run before yielding to the event loop"),
    Setting("per_server_pacing", False, _boolean, "yes or no",
            "also honour servers.outbound_calls_per_second (the Perl FILL ignores it)"),
    Setting("stale_claim_age", 120.0, _number(0, 86400), "0-86400 seconds",
            "at start-up, this host's `VDFC_` hopper claims older than this are released"),
    Setting("hopper_retry", 1.0, _number(0, 60), "0-60 seconds",
            "after a claim found fewer leads than planned, wait this long before claiming again"),
    Setting("trace", False, _boolean, "yes or no", "write the verbose event trace"),
    Setting("trace_servers", (), _server_list, "server IPs, comma separated",
            "limit the trace to these servers", aliases=("--trace-server",)),
    Setting("trace_campaigns", (), _server_list, "campaign ids, comma separated",
            "limit the trace to these campaigns", aliases=("--trace-campaign",)),
    Setting("trace_file", "", _optional_path, "an absolute path, or empty",
            "write the trace to this file (appended, plain text); empty: to stderr, in colour on a terminal"),
    Setting("log_level", "info", _choice("debug", "info", "warning", "error"),
            "debug, info, warning or error", "the lowest level of the log lines written to stderr"),
    Setting("metrics_port", 0, _integer(0, 65535), "0 (off) or a TCP port",
            "serve Prometheus metrics on 127.0.0.1:<port>"),
    Setting("status_socket", "/run/fillreactor/status.sock", _socket_path, "an absolute path",
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
# fmt: on


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
    trace_file: str = ""
    log_level: str = "info"
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
COMMAND_LINE = "command line"


class SettingsError(ConfigError):
    """One or more bad settings; ``problems`` holds one line per bad value."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


def _unknown(where: str, key: str) -> str:
    names = [s.name for s in SETTINGS]
    close = difflib.get_close_matches(key.replace("-", "_"), names, n=1)
    hint = f"; did you mean {close[0]}?" if close else ""
    return f"{where}: unknown setting {key!r} (see `fillreactor run --help`{hint})"


def parse_value(name: str, text: str, where: str, key: str | None = None) -> Any:
    """One setting from text; ``ConfigError`` naming ``where`` (file or command line), key, allowed.

    ``key`` is the setting as written there (``--timer-interval`` on the command line).
    """
    setting = SETTING_BY_NAME.get(name)
    if setting is None:
        raise ConfigError(_unknown(where, key or name))
    try:
        return setting.parse(text)
    except ValueError as error:
        raise ConfigError(
            f"{where}: {key or name} = {text!r} is not allowed ({error or setting.allowed})"
        ) from None


def read_ini(path: Path) -> dict[str, Any]:
    """The settings of an INI file's ``[fillreactor]`` section (a missing file is an error here).

    Keys are case-insensitive and may be written with dashes. Every bad value is reported.
    """
    parser = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=("#", ";"))
    try:
        with path.open(encoding="utf-8") as handle:
            parser.read_file(handle)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"{path}: cannot be read (not UTF-8 text: {error.reason} at byte {error.start})"
        ) from None
    except (OSError, configparser.Error) as error:
        raise ConfigError(f"{path}: cannot be read ({error})") from None
    for section in parser.sections():
        if section != SECTION:
            raise ConfigError(f"{path}: unknown section [{section}] (only [{SECTION}])")
    values: dict[str, Any] = {}
    problems: list[str] = []
    if parser.has_section(SECTION):
        for key, text in parser.items(SECTION):
            name = key.replace("-", "_")
            try:
                values[name] = parse_value(name, text, str(path), key)
            except ConfigError as error:
                problems.append(str(error))
    if problems:
        raise SettingsError(problems)
    return values


def load_settings(
    config_path: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    *,
    config_required: bool = False,
    command_line: Mapping[str, Any] | None = None,
) -> Settings:
    """Defaults, then the INI file (if it exists, or always when ``config_required``), then overrides.

    ``overrides`` are typed values; ``command_line`` is what ``add_setting_arguments`` collected
    (texts, flags, lists), parsed here. Problems of the file and of the command line are reported
    together, one line each.
    """
    values: dict[str, Any] = {}
    problems: list[str] = []
    path = config_path or DEFAULT_CONFIG_PATH
    if config_required or path.exists():
        try:
            values.update(read_ini(path))
        except SettingsError as error:
            problems.extend(error.problems)
        except ConfigError as error:
            problems.append(str(error))
    if command_line:
        try:
            values.update(parse_command_line(command_line))
        except SettingsError as error:
            problems.extend(error.problems)
    if problems:
        raise SettingsError(problems)
    values.update(overrides or {})
    return Settings().with_values(values)


def setting_names() -> tuple[str, ...]:
    return tuple(f.name for f in fields(Settings))


# -- the command line ------------------------------------------------------------------------------
def _help(setting: Setting) -> str:
    return f"{setting.help} [{setting.allowed}; default {shown_default(setting)}]".replace("%", "%%")


def add_setting_arguments(parser: argparse.ArgumentParser, *, title: str = "settings") -> None:
    """One option per setting (``--name-with-dashes``; flags also ``--no-...``), none with a default.

    Values are kept as written and parsed by ``parse_command_line``, so a bad one gets the same
    message as in the file, and an option not given leaves the file's value alone.
    """
    group = parser.add_argument_group(
        title, "each also an INI key of [fillreactor] in --config (the command line wins)"
    )
    for setting in SETTINGS:
        flags = (setting.option, *setting.aliases)
        if setting.is_flag:
            group.add_argument(
                *flags,
                dest=setting.name,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=_help(setting),
            )
        elif setting.is_list:
            group.add_argument(
                *flags,
                dest=setting.name,
                action="append",
                default=None,
                metavar="LIST",
                help=_help(setting) + " (repeatable)",
            )
        else:
            group.add_argument(*flags, dest=setting.name, default=None, metavar="VALUE", help=_help(setting))


def command_line_values(args: argparse.Namespace) -> dict[str, Any]:
    """The settings given on the command line, as ``add_setting_arguments`` left them."""
    return {s.name: getattr(args, s.name) for s in SETTINGS if getattr(args, s.name, None) is not None}


def parse_command_line(given: Mapping[str, Any]) -> dict[str, Any]:
    """Typed values of ``command_line_values``; ``SettingsError`` with one line per bad value."""
    values: dict[str, Any] = {}
    problems: list[str] = []
    for name, raw in given.items():
        setting = SETTING_BY_NAME.get(name)
        if setting is None:
            problems.append(_unknown(COMMAND_LINE, name))
            continue
        if setting.is_flag and isinstance(raw, bool):
            values[name] = raw
            continue
        text = ",".join(raw) if isinstance(raw, (list, tuple)) else str(raw)
        try:
            values[name] = parse_value(name, text, COMMAND_LINE, setting.option)
        except ConfigError as error:
            problems.append(str(error))
    if problems:
        raise SettingsError(problems)
    return values


# -- README's table --------------------------------------------------------------------------------
TABLE_BEGIN = ".. BEGIN SETTINGS TABLE (made by fillreactor.service.settings.settings_table_rst: do not edit)"
TABLE_END = ".. END SETTINGS TABLE"
_LITERAL = re.compile(r"(?<!`)`([^`]+)`(?!`)")  # `x` in a help text is a literal in README


def shown_default(setting: Setting) -> str:
    value = setting.default
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, tuple):
        return ", ".join(value) if value else "(empty: all)"
    if isinstance(value, float):
        return f"{value:g}"
    if value == "":
        return "(empty)"
    return str(value)


def settings_table_rst() -> str:
    """README's table of every setting (reStructuredText list-table between the two markers)."""
    lines = [
        TABLE_BEGIN,
        "",
        ".. list-table::",
        "   :header-rows: 1",
        "   :widths: 18 22 12 18 40",
        "",
        "   * - INI key",
        "     - command line",
        "     - default",
        "     - allowed",
        "     - what it does",
    ]
    for setting in SETTINGS:
        spellings = [setting.option, *setting.aliases]
        if setting.is_flag:
            spellings.append(f"--no-{setting.option[2:]}")
        lines += [
            f"   * - ``{setting.name}``",
            "     - " + ", ".join(f"``{o}``" for o in spellings),
            f"     - ``{shown_default(setting)}``",
            f"     - {setting.allowed}",
            "     - " + _LITERAL.sub(r"``\1``", setting.help),
        ]
    lines += ["", TABLE_END]
    return "\n".join(lines) + "\n"
