"""astguiclient.conf parsing by VICIdial's rules (spec/VICIDIAL_FILL.md 2.1.3, 8.4; spec/AMI.md 6.1)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fillreactor.astguiclient import ConfigError, load_conf, parse_conf, parse_lines

SAMPLE = """\
# astguiclient.conf as install.pl writes it
PATHhome => /usr/share/astguiclient
PATHlogs => /var/log/astguiclient
VARserver_ip => 10.10.10.15
VARDB_server => 10.10.10.5
VARDB_database => asterisk
VARDB_user => cron
VARDB_pass => s3cr%t
VARDB_custom_user => custom
VARDB_port => 3306
VARactive_keepalives => 1234568
"""


def test_sample_conf_gives_every_key() -> None:
    conf = parse_conf(SAMPLE, "/etc/astguiclient.conf")
    assert (conf.db_host, conf.db_port, conf.db_user, conf.db_password, conf.db_name) == (
        "10.10.10.5",
        3306,
        "cron",
        "s3cr%t",
        "asterisk",
    )
    assert conf.server_ip == "10.10.10.15"
    assert (conf.path_home, conf.path_logs) == ("/usr/share/astguiclient", "/var/log/astguiclient")
    assert conf.active_keepalives == "1234568"


def test_perl_rules_spaces_comments_last_equals_and_duplicates() -> None:
    # The Perl strips every space, tab and '>', cuts at '#' or ';', keeps the text after the LAST '='
    # and lets a later line win (spec/AMI.md 6.1).
    text = (
        "VARDB_server => first\n"
        "VARDB_server => db host # a comment\n"
        "VARDB_user\t=>\tcr on ; trailing\n"
        "VARDB_pass => a=b=c\n"
        "VARDB_database => asterisk\n"
        "VARserver_ip => 10.0.0.1\n"
    )
    values = parse_lines(text)
    assert values["VARDB_server"] == "dbhost"
    assert values["VARDB_user"] == "cron"
    assert values["VARDB_pass"] == "c"


def test_port_defaults_to_3306() -> None:
    conf = parse_conf(SAMPLE.replace("VARDB_port => 3306\n", ""))
    assert conf.db_port == 3306


@pytest.mark.parametrize(
    ("change", "key", "allowed"),
    [
        (("VARDB_port => 3306", "VARDB_port => 33o6"), "VARDB_port", "1-65535"),
        (("VARDB_port => 3306", "VARDB_port => 70000"), "VARDB_port", "1-65535"),
        (("VARserver_ip => 10.10.10.15", "VARserver_ip => dialer1"), "VARserver_ip", "IPv4"),
        (("VARDB_server => 10.10.10.5\n", ""), "VARDB_server", "host"),
        (("VARDB_database => asterisk", "VARDB_database => aster-isk"), "VARDB_database", "A-Z"),
        (("VARDB_user => cron\n", ""), "VARDB_user", "user"),
    ],
)
def test_bad_values_name_the_file_the_key_and_what_is_allowed(change, key, allowed) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_conf(SAMPLE.replace(*change), "/tmp/x.conf")
    message = str(raised.value)
    assert message.startswith("/tmp/x.conf: ")
    assert key in message and allowed in message
    assert "s3cr%t" not in message


def test_missing_file_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_conf(tmp_path / "nope.conf")


def test_password_never_in_repr() -> None:
    conf = parse_conf(SAMPLE)
    assert "s3cr%t" not in repr(conf) and "s3cr%t" not in str(conf)
    assert "s3cr%t" not in conf.database_label


@given(st.text())
def test_any_text_gives_a_conf_or_a_config_error(text: str) -> None:
    try:
        parse_conf(text)
    except ConfigError:
        pass
