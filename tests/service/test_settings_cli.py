"""Settings: every one on the command line (made from the table), the file below it, one line per bad
value naming where, the key and what is allowed, and README's table made from the same table.

The expected values are written by hand from each setting's "allowed" text in SETTINGS.
"""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

import pytest
from service_helpers import fillreactor_command, subprocess_env

from fillreactor.astguiclient import ConfigError
from fillreactor.service import run as run_module
from fillreactor.service.settings import (
    SETTINGS,
    Settings,
    SettingsError,
    command_line_values,
    load_settings,
    settings_table_rst,
)

# every setting: the command line as an admin writes it, and the value it must give
GOOD: dict[str, tuple[tuple[str, ...], object]] = {
    "shortage_source": (("--shortage-source", "STATS"), "stats"),
    "dial_via": (("--dial-via", "manager"), "manager"),
    "trigger": (("--trigger", "timer"), "timer"),
    "timer_interval": (("--timer-interval", "0.5"), 0.5),
    "ami_user": (("--ami-user", "update"), "update"),
    "ami_filter": (("--no-ami-filter",), False),
    "ping_interval": (("--ping-interval", "2"), 2.0),
    "ping_timeout": (("--ping-timeout", "1.5"), 1.5),
    "reconnect_max_wait": (("--reconnect-max-wait", "10"), 10.0),
    "originate_timeout": (("--originate-timeout", "4"), 4.0),
    "reservation_timeout": (("--reservation-timeout", "90"), 90.0),
    "agents_refresh": (("--agents-refresh", "0.5"), 0.5),
    "config_refresh": (("--config-refresh", "30"), 30.0),
    "stats_refresh": (("--stats-refresh", "1"), 1.0),
    "lock_check": (("--lock-check", "1"), 1.0),
    "lock_name": (("--lock-name", "fill.cluster-2"), "fill.cluster-2"),
    "plan_slice": (("--plan-slice", "0.02"), 0.02),
    "per_server_pacing": (("--per-server-pacing",), True),
    "stale_claim_age": (("--stale-claim-age", "0"), 0.0),
    "hopper_retry": (("--hopper-retry", "3"), 3.0),
    "trace": (("--trace",), True),
    "trace_servers": (
        ("--trace-server", "10.0.0.1", "--trace-servers", "10.0.0.2,10.0.0.3"),
        ("10.0.0.1", "10.0.0.2", "10.0.0.3"),
    ),
    "trace_campaigns": (("--trace-campaign", "SALES"), ("SALES",)),
    "trace_file": (("--trace-file", "/var/log/fillreactor.trace"), "/var/log/fillreactor.trace"),
    "log_level": (("--log-level", "WARNING"), "warning"),
    "metrics_port": (("--metrics-port", "9321"), 9321),
    "status_socket": (("--status-socket", "/tmp/fr.sock"), "/tmp/fr.sock"),
    "circuit_breaker": (("--no-circuit-breaker",), False),
    "breaker_failures": (("--breaker-failures", "3"), 3),
    "breaker_ratio": (("--breaker-ratio", "0.5"), 0.5),
    "breaker_window": (("--breaker-window", "50"), 50),
    "breaker_cooldown": (("--breaker-cooldown", "10"), 10.0),
    "breaker_max_cooldown": (("--breaker-max-cooldown", "120"), 120.0),
}


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="fillreactor run")
    run_module.add_arguments(parser)
    return parser.parse_args(list(argv))


def settings_from(*argv: str, config: Path | None = None) -> Settings:
    args = parse(*argv)
    return load_settings(config, config_required=config is not None, command_line=command_line_values(args))


def test_the_table_and_the_dataclass_name_the_same_settings_and_every_one_is_tested_here() -> None:
    names = [s.name for s in SETTINGS]
    assert names == [f for f in Settings.__dataclass_fields__]
    assert set(GOOD) == set(names)
    for setting in SETTINGS:
        assert getattr(Settings(), setting.name) == setting.default


@pytest.mark.parametrize("name", list(GOOD))
def test_every_setting_is_an_option_of_run(name: str, tmp_path: Path) -> None:
    argv, expected = GOOD[name]
    missing = tmp_path / "absent.conf"  # not read: no --config, and load_settings gets this path
    settings = load_settings(missing, command_line=command_line_values(parse(*argv)))
    assert getattr(settings, name) == expected
    assert settings.with_values({name: getattr(Settings(), name)}) == Settings()  # only that one changed


def test_the_command_line_wins_over_the_file_and_the_file_over_the_defaults(tmp_path: Path) -> None:
    config = tmp_path / "fillreactor.conf"
    config.write_text("[fillreactor]\ntrigger = timer\ntimer_interval = 5\nami-filter = no\n")
    settings = settings_from("--timer-interval", "1", config=config)
    assert (settings.trigger, settings.timer_interval, settings.ami_filter) == ("timer", 1.0, False)
    assert settings_from("--ami-filter", config=config).ami_filter is True


def test_each_bad_value_is_one_line_naming_the_command_line_the_option_and_what_is_allowed() -> None:
    with pytest.raises(SettingsError) as caught:
        settings_from(
            "--timer-interval",
            "fast",
            "--dial-via",
            "sip",
            "--metrics-port",
            "70000",
            "--lock-name",
            "no spaces",
        )
    assert caught.value.problems == [
        "command line: --dial-via = 'sip' is not allowed (ami or manager)",
        "command line: --timer-interval = 'fast' is not allowed (a number from 0.1 to 60)",
        "command line: --lock-name = 'no spaces' is not allowed (1-64 of A-Z a-z 0-9 _ . : -)",
        "command line: --metrics-port = '70000' is not allowed (a whole number from 0 to 65535)",
    ]


def test_problems_of_the_file_and_of_the_command_line_are_reported_together(tmp_path: Path) -> None:
    config = tmp_path / "fillreactor.conf"
    config.write_text("[fillreactor]\nping_timeout = 0\ntrigger = often\ntimer_interva = 3\n")
    with pytest.raises(SettingsError) as caught:
        settings_from("--status-socket", "relative.sock", config=config)
    assert caught.value.problems == [
        f"{config}: ping_timeout = '0' is not allowed (a number from 0.05 to 60)",
        f"{config}: trigger = 'often' is not allowed (event or timer)",
        f"{config}: unknown setting 'timer_interva' (see `fillreactor run --help`; "
        "did you mean timer_interval?)",
        "command line: --status-socket = 'relative.sock' is not allowed "
        "(an absolute path of at most 107 bytes)",
    ]


def test_a_settings_file_that_cannot_be_read_is_one_message(tmp_path: Path) -> None:
    config = tmp_path / "latin1.conf"
    config.write_bytes("[fillreactor]\nlock_name = café\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=rf"^{config}: cannot be read \(not UTF-8 text"):
        settings_from(config=config)
    with pytest.raises(ConfigError, match=rf"^{tmp_path / 'none.conf'}: no such file$"):
        settings_from(config=tmp_path / "none.conf")


def test_run_once_still_defaults_to_stats_and_manager_and_takes_the_options(monkeypatch, tmp_path) -> None:
    seen = {}

    async def fake_run_once(options):
        seen["options"] = options
        return 0

    monkeypatch.setattr(run_module, "run_once", fake_run_once)
    conf = tmp_path / "a.conf"
    assert (
        run_module.run(parse("--once", "--conf", str(conf), "--stale-claim-age", "5", "--lock-name", "x1"))
        == 0
    )
    options = seen["options"]
    assert (options.shortage_source, options.dial_via, options.stale_claim_age, options.lock_name) == (
        "stats",
        "manager",
        5.0,
        "x1",
    )


# -- README's table (tests/service/test_readme.py compares it with README) ------------------------------
def test_the_table_lists_every_setting_with_its_option_and_default() -> None:
    table = settings_table_rst()
    for setting in SETTINGS:
        assert f"   * - ``{setting.name}``\n     - ``{setting.option}``" in table
    assert "     - ``--trace-servers``, ``--trace-server``\n" in table
    assert "     - ``--ami-filter``, ``--no-ami-filter``\n     - ``yes``\n" in table
    assert "   * - ``stale_claim_age``\n     - ``--stale-claim-age``\n     - ``120``\n" in table


# -- end to end ------------------------------------------------------------------------------------
def test_bad_options_stop_run_with_exit_2_and_one_line_each(tmp_path: Path) -> None:
    conf = tmp_path / "astguiclient.conf"
    conf.write_text(
        "VARDB_server => 127.0.0.1\nVARDB_user => cron\nVARDB_pass => s3cret\n"
        "VARDB_database => asterisk\nVARserver_ip => 10.10.10.11\n"
    )
    config = tmp_path / "fillreactor.conf"
    config.write_text("[fillreactor]\nshortage_source = guess\n")
    done = subprocess.run(
        fillreactor_command("run", "--conf", str(conf), "--config", str(config), "--ping-timeout", "never"),
        capture_output=True,
        text=True,
        timeout=30,
        env=subprocess_env(),
    )
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"fillreactor run: {config}: shortage_source = 'guess' is not allowed (live or stats)",
        "fillreactor run: command line: --ping-timeout = 'never' is not allowed (a number from 0.05 to 60)",
    ]
    assert "s3cret" not in done.stderr + done.stdout


def test_run_help_lists_every_setting_option() -> None:
    done = subprocess.run(
        fillreactor_command("run", "--help"),
        capture_output=True,
        text=True,
        timeout=30,
        env=subprocess_env(COLUMNS="200"),
    )
    assert done.returncode == 0
    for setting in SETTINGS:
        assert setting.option in done.stdout
