"""Fuzzing the configuration readers: astguiclient.conf (fillreactor/astguiclient.py) and the
settings INI file (fillreactor/service/settings.py ``read_ini`` / ``load_settings``).

Properties (each module's rules):

* Any text (and, through the file readers, any bytes) gives a configuration or a ``ConfigError``,
  never another exception; a ``ConfigError`` message names the file and never holds the password.
* astguiclient.conf, VICIdial's rules (spec/VICIDIAL_FILL.md 2.1.3, spec/AMI.md 6.1): a value
  written with any spacing, tabs, ``>``, comments, CR/LF/CRLF line ends and repeated keys (the
  later wins) reads back as written.
* The INI file: any subset of settings in any order, key case, separator, comments and line ends
  gives exactly the typed values in the table below (written from each setting's "allowed" text
  in SETTINGS), the defaults elsewhere; a repeated key or an unknown key or section is an error.

Three inputs that once escaped as other exceptions are regression tests at the end.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from fuzz_helpers import FUZZ_FAST, FUZZ_MEDIUM
from hypothesis import given
from hypothesis import strategies as st

from fillreactor.astguiclient import KEYS, ConfigError, load_conf, parse_conf
from fillreactor.service.settings import SETTINGS, Settings, load_settings, read_ini

LINE_ENDS = st.sampled_from(["\n", "\r\n", "\r"])


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="fillreactor-fuzz-") as directory:
        yield Path(directory)


# -- astguiclient.conf -----------------------------------------------------------------------------
ASCII_DIGITS = st.text(st.sampled_from("0123456789"), min_size=1, max_size=6)
CONF_VALUES = st.one_of(
    st.sampled_from(["", "3306", "0", "65535", "65536", "10.0.0.1", "999.1.1.1", "asterisk", "a-b", "$x"]),
    ASCII_DIGITS,
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=20),
    st.just("x" * 5000),
    st.just("1" * 5000),
)


@st.composite
def conf_texts(draw: st.DrawFn) -> str:
    """Lines of astguiclient.conf: known and unknown keys, odd separators, comments, any line end."""
    lines = []
    for _ in range(draw(st.integers(0, 14))):
        key = draw(
            st.one_of(st.sampled_from(KEYS), st.sampled_from(["VARDB_custom_user", "#VARDB_user", ""]))
        )
        separator = draw(st.sampled_from([" => ", "=>", "=", " = ", "\t=>\t", " ", "==>"]))
        comment = draw(st.sampled_from(["", " # note", " ;x", "#", " ; VARDB_port => 1"]))
        lines.append(f"{key}{separator}{draw(CONF_VALUES)}{comment}")
    end = draw(LINE_ENDS)
    return end.join(lines) + draw(st.sampled_from(["", end]))


@FUZZ_FAST
@given(conf_texts())
def test_any_conf_text_gives_a_conf_or_a_config_error(text: str) -> None:
    try:
        conf = parse_conf(text, "/etc/astguiclient.conf")
    except ConfigError as error:
        assert str(error).startswith("/etc/astguiclient.conf: ")
        return
    assert 0 < conf.db_port < 65536 and conf.db_host and conf.db_user and conf.db_name


def valid_values() -> st.SearchStrategy[dict[str, str]]:
    no_space = st.text(
        st.sampled_from("abcdefghijklmnopqrstuvwxyzABC0123456789._-/%+@"), min_size=1, max_size=15
    )
    return st.fixed_dictionaries(
        {
            "VARDB_server": no_space,
            "VARDB_user": no_space,
            "VARDB_pass": no_space.map(lambda text: "QQ" + text),  # QQ: in no other value, so findable
            "VARDB_database": st.text(st.sampled_from("abcXYZ019_$"), min_size=1, max_size=64),
            "VARDB_port": st.integers(1, 65535).map(str),
            "VARserver_ip": st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t))),
        }
    )


@FUZZ_FAST
@given(valid_values(), st.data())
def test_written_values_read_back_whatever_the_layout(values: dict[str, str], data: st.DataObject) -> None:
    lines: list[str] = []
    for key, value in data.draw(st.permutations(sorted(values.items()))):
        if data.draw(st.booleans()):  # an earlier line for the same key: the later one wins
            lines.append(f"{key} => overwritten")
        left = data.draw(st.sampled_from(["", " ", "\t", " >"]))
        separator = data.draw(st.sampled_from([" => ", "=>", "=", "\t=> "]))
        comment = data.draw(st.sampled_from(["", " # comment", "\t; other"]))
        lines.append(f"{key}{left}{separator}{value}{comment}")
        if data.draw(st.booleans()):
            lines.append(data.draw(st.sampled_from(["", "# a comment line", "; VARDB_user => nobody", "  "])))
    text = data.draw(LINE_ENDS).join(lines)
    conf = parse_conf(text)
    written = (conf.db_host, conf.db_user, conf.db_password, conf.db_name, conf.db_port, conf.server_ip)
    assert written == (
        values["VARDB_server"],
        values["VARDB_user"],
        values["VARDB_pass"],
        values["VARDB_database"],
        int(values["VARDB_port"]),
        values["VARserver_ip"],
    )
    assert values["VARDB_pass"] not in repr(conf)


@FUZZ_MEDIUM
@given(st.binary(max_size=400), st.booleans())
def test_any_conf_file_gives_a_conf_or_a_config_error(workdir: Path, data: bytes, valid_head: bool) -> None:
    path = workdir / "astguiclient.conf"
    head = b"VARDB_server => h\nVARDB_user => u\nVARDB_database => d\nVARserver_ip => 10.0.0.1\n"
    path.write_bytes((head if valid_head else b"") + data)
    try:
        load_conf(path)
    except ConfigError:
        pass


# -- the settings INI file ---------------------------------------------------------------------------
# (setting, text in the file, the value it must give), from each setting's "allowed" text
GOOD: list[tuple[str, str, object]] = [
    ("shortage_source", "stats", "stats"),
    ("shortage_source", " LIVE ", "live"),
    ("dial_via", "manager", "manager"),
    ("trigger", "Timer", "timer"),
    ("timer_interval", "0.1", 0.1),
    ("timer_interval", "60", 60.0),
    ("ami_user", "send", "send"),
    ("ami_filter", "no", False),
    ("ami_filter", "ON", True),
    ("ping_timeout", "3", 3.0),
    ("lock_name", "fill_lock", "fill_lock"),
    ("per_server_pacing", "yes", True),
    ("trace", "true", True),
    ("trace_servers", "10.0.0.1, 10.0.0.2 10.0.0.3", ("10.0.0.1", "10.0.0.2", "10.0.0.3")),
    ("metrics_port", "9100", 9100),
    ("metrics_port", "0", 0),
    ("breaker_window", "2", 2),
    ("breaker_ratio", "1", 1.0),
]
BAD_VALUES = ["", "maybe", "-1", "1e400", "nan", "inf", "0x10", "70000", "9" * 5000, "٣", "%(x)s", "\x00"]
SETTING_NAMES = [s.name for s in SETTINGS]


@st.composite
def ini_texts(draw: st.DrawFn) -> str:
    """Anything an admin might write: sections, keys known or not, good and bad values, comments."""
    lines = []
    for _ in range(draw(st.integers(0, 12))):
        kind = draw(st.sampled_from(["section", "option", "option", "option", "comment", "blank", "junk"]))
        if kind == "section":
            lines.append(
                draw(st.sampled_from(["[fillreactor]", "[Fillreactor]", "[other]", "[DEFAULT]", "[x", "[]"]))
            )
        elif kind == "option":
            key = draw(
                st.one_of(st.sampled_from(SETTING_NAMES), st.sampled_from(["TRIGGER", "nope", "", " trace"]))
            )
            value = draw(
                st.one_of(
                    st.sampled_from([g[1] for g in GOOD]), st.sampled_from(BAD_VALUES), st.text(max_size=12)
                )
            )
            lines.append(f"{key}{draw(st.sampled_from(['=', ' = ', ':', ' : ']))}{value}")
        elif kind == "comment":
            lines.append(draw(st.sampled_from(["# c", "; c", "  # indented", "REM"])))
        elif kind == "junk":
            lines.append(draw(st.text(max_size=20)))
        else:
            lines.append("")
    end = draw(LINE_ENDS)
    return end.join(lines)


@FUZZ_FAST
@given(ini_texts())
def test_any_ini_text_gives_settings_or_a_config_error(workdir: Path, text: str) -> None:
    path = workdir / "fillreactor.conf"
    path.write_text(text, encoding="utf-8")  # st.text() draws no lone surrogates: always encodable
    try:
        read_ini(path)
        settings = load_settings(path, config_required=True)
    except ConfigError as error:
        assert str(error).startswith(str(path))
        return
    assert isinstance(settings, Settings)


@FUZZ_MEDIUM
@given(st.binary(max_size=300))
def test_any_utf8_ini_file_gives_settings_or_a_config_error(workdir: Path, data: bytes) -> None:
    path = workdir / "fillreactor.conf"
    path.write_bytes(b"[fillreactor]\n" + data)
    try:
        load_settings(path, config_required=True)
    except ConfigError:
        pass


@FUZZ_FAST
@given(st.data())
def test_good_settings_give_exactly_their_values(workdir: Path, data: st.DataObject) -> None:
    chosen = data.draw(st.lists(st.sampled_from(GOOD), unique_by=lambda g: g[0], max_size=8))
    end = data.draw(LINE_ENDS)
    lines = [data.draw(st.sampled_from(["", "# fillreactor settings", "; by hand"])), "[fillreactor]"]
    for name, text, _ in chosen:
        key = data.draw(st.sampled_from([name, name.upper()]))  # option names are case-insensitive
        separator = data.draw(st.sampled_from(["=", " = ", ": "]))
        comment = data.draw(st.sampled_from(["", "  # why", " ; why"]))
        lines.append(f"{key}{separator}{text}{comment}")
    path = workdir / "fillreactor.conf"
    path.write_text(end.join(lines) + end, encoding="utf-8")
    expected = Settings().with_values({name: value for name, _, value in chosen})
    assert load_settings(path, config_required=True) == expected
    if chosen:  # the same key twice is refused, not silently resolved
        name, text, _ = chosen[0]
        path.write_text(end.join([*lines, f"{name} = {text}"]) + end, encoding="utf-8")
        with pytest.raises(ConfigError, match="cannot be read"):
            load_settings(path, config_required=True)


# -- bugs the fuzzing found, fixed: kept as regression tests ----------------------------------------
CONF_HEAD = "VARDB_server => h\nVARDB_user => u\nVARDB_database => d\nVARserver_ip => 10.0.0.1\n"


def test_fixed_a_superscript_digit_port_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        parse_conf(CONF_HEAD + "VARDB_port => ²\n")


def test_fixed_a_huge_port_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        parse_conf(CONF_HEAD + "VARDB_port => " + "1" * 5000 + "\n")


def test_fixed_a_settings_file_that_is_not_utf8_is_a_config_error(workdir: Path) -> None:
    path = workdir / "latin1.conf"
    path.write_bytes("[fillreactor]\nlock_name = café\n".encode("latin-1"))
    with pytest.raises(ConfigError):
        read_ini(path)
