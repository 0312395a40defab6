"""The pure rules of one OUTBALANCE call (core.outbound_call), each against the Perl line it mirrors."""

from __future__ import annotations

from datetime import datetime

import pytest
from dialer_helpers import pass_at

from fillreactor.core.outbound_call import (
    COLUMN_WIDTHS,
    CSLR_ENUM,
    AltPhone,
    CampaignDialSettings,
    CidPool,
    CidRow,
    FillHost,
    HopperEntry,
    Lead,
    ListOverrides,
    TargetServer,
    asterisk_minor,
    choose_caller_id,
    choose_number,
    container_timeout,
    dial_prefix,
    dial_timeout_ms,
    mysql_int,
    next_called_since_last_reset,
    perl_num,
    perl_number_text,
    prepare_call,
    routing_exten,
)


def lead(**fields: str) -> Lead:
    base = {
        "list_id": "1001",
        "phone_code": "1",
        "phone_number": "3125550000",
        "gmt_offset_now": "-5.00",
        "called_since_last_reset": "N",
        "called_count": "0",
        "state": "IL",
    }
    return Lead(7, {**base, **fields})


@pytest.mark.parametrize(
    ("current", "perl", "stored"),
    [
        # lines 864-875: not /^Y/ -> Y; Y -> Y1; Yn -> Y(n+1); Y11 is not in the ENUM: '' (spec 6.9)
        ("N", "Y", "Y"),
        ("D", "Y", "Y"),
        ("", "Y", "Y"),
        ("Y", "Y1", "Y1"),
        ("Y1", "Y2", "Y2"),
        ("Y9", "Y10", "Y10"),
        ("Y10", "Y11", ""),
    ],
)
def test_called_since_last_reset_steps(current: str, perl: str, stored: str) -> None:
    assert next_called_since_last_reset(current) == (perl, stored)


def test_every_enum_value_has_a_stored_successor_in_the_enum() -> None:
    for value in CSLR_ENUM:
        _, stored = next_called_since_last_reset(value)
        assert stored in CSLR_ENUM or stored == ""


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("-5.00", -5.0),
        ("5.50", 5.5),
        ("30 ", 30.0),
        ("7.5e1x", 75.0),
        ("abc", 0.0),
        ("", 0.0),
        (" 12ab", 12.0),
    ],
)
def test_perl_numification(text: str, value: float) -> None:
    assert perl_num(text) == value


def test_perl_prints_numbers_as_perl_does() -> None:
    assert perl_number_text(60 * 1000) == "60000"
    assert perl_number_text(7.5 * 1000) == "7500"
    assert perl_number_text(7.55 * 1000) == "7550"  # %.15g of 7549.999999999999


def test_mysql_integer_rounding_and_range() -> None:
    # measured on MariaDB 10.11, sql_mode='': '1234.5' -> 1235, '1234.4' -> 1234, 99999000 -> 16777215
    assert mysql_int("1234.5", 0, 16777215) == 1235
    assert mysql_int("1234.4", 0, 16777215) == 1234
    assert mysql_int("99999000", 0, 16777215) == 16777215
    assert mysql_int("", -128, 127) == 0


@pytest.mark.parametrize(
    ("version", "minor", "exten"),
    [
        # parse_asterisk_version (1745-1786): <=1 -> minor = 2nd part; >1 -> minor = 1st part
        ("1.4.21.2", 4, "8368"),
        ("1.8.32.3", 8, "8368"),
        ("11.25.3", 11, "8368"),
        ("12.0.0", 12, "138368"),
        ("13.38.3-vici", 13, "138368"),
        ("18.21.0", 18, "138368"),
        ("", 0, "8368"),
        ("Asterisk 16", 0, "8368"),  # numifies to 0 <= 1: minor is the (missing) 2nd part
    ],
)
def test_routing_prefix_by_asterisk_version(version: str, minor: int, exten: str) -> None:
    assert asterisk_minor(version) == minor
    assert routing_exten("8368", TargetServer("10.0.0.2", version, "13")) == exten


def test_dial_timeout_and_prefix_rules() -> None:
    campaign = CampaignDialSettings("C", dial_timeout="4", dial_prefix="")
    assert dial_timeout_ms(campaign, 0) == 60000  # 4 is not > 4 (line 984)
    assert dial_timeout_ms(CampaignDialSettings("C", dial_timeout="25"), 0) == 25000
    assert dial_timeout_ms(CampaignDialSettings("C", dial_timeout="25"), 5) == 5000
    assert dial_prefix(campaign, None) == "9"
    assert dial_prefix(CampaignDialSettings("C", dial_prefix="88"), ListOverrides(dial_prefix="7")) == "7"
    assert dial_prefix(CampaignDialSettings("C", dial_prefix="9x"), None) == ""  # /x/i (line 1237)


def test_the_lead_container_keeps_the_last_match() -> None:
    entry = "auto_dial_field => state\nIL => 20\nIL=>33\nNY => 40\nauto_dial_field=>city\nchicago => 50\n"
    assert container_timeout(entry, lead(state="IL")) == 33.0  # last match wins
    assert container_timeout(entry, lead(state="IL", city="chicago")) == 50.0
    assert container_timeout(entry, lead(state="TX")) == 0.0
    assert container_timeout("abc", lead()) == 0.0  # not longer than 5: ignored
    assert container_timeout("auto_dial_field => called_count\n0 => 12\n", lead()) == 12.0  # before the +1


def test_extended_number_choice() -> None:
    phones = [AltPhone(1, 1, "1", "111"), AltPhone(2, 3, "44", "333"), AltPhone(3, None, "1", "999")]
    campaign = CampaignDialSettings("C", auto_alt_dial="EXTENDED_ONLY")
    assert choose_number(HopperEntry(1, 7, "C", "", "XLAST"), lead(), campaign, phones).phone_number == "333"
    assert choose_number(HopperEntry(1, 7, "C", "", "X1"), lead(), campaign, phones).phone_code == "1"
    main = choose_number(HopperEntry(1, 7, "C", "", "X5"), lead(), campaign, phones)
    assert (main.phone_number, main.alt_dial, main.corrections) == ("3125550000", "X5", ())
    assert choose_number(HopperEntry(1, 7, "C", "", ""), lead(), campaign, phones).alt_dial == "MAIN"


def test_caller_id_precedence() -> None:
    pool = CidPool(
        [CidRow("G1", "312", "(312) 555-0001", 0, "AREACODE"), CidRow("C", "312", "3125550002", 0)],
    )
    base = CampaignDialSettings(
        "C", campaign_cid="0000000000", cid_group_id="---DISABLED---", cid_group_id_two="---DISABLED---"
    )
    # campaign CID first; the list override replaces it; a list CID group (digits of its CID) wins over both
    assert choose_caller_id(base, None, lead(), "3125550000", pool).ccid_type == "CAMPAIGN_CID"
    listed = ListOverrides(campaign_cid_override="8005551212")
    assert choose_caller_id(base, listed, lead(), "3125550000", pool).ccid == "8005551212"
    grouped = ListOverrides(campaign_cid_override="8005551212", cid_group_id="G1")
    choice = choose_caller_id(base, grouped, lead(), "3125550000", pool)
    assert (choice.ccid, choice.ccid_type) == ("3125550001", "LIST_CID_GROUP")
    # no list override: a campaign group overrides a custom CID; AREACODE only when no group set one
    custom = CampaignDialSettings(
        "C", campaign_cid="", use_custom_cid="Y", cid_group_id="G1", cid_group_id_two="---DISABLED---"
    )
    choice = choose_caller_id(custom, None, lead(security_phrase="8475550000"), "3125550000", pool)
    assert choice.ccid_type == "CID_GROUP"
    area = CampaignDialSettings(
        "C",
        campaign_cid="",
        use_custom_cid="AREACODE",
        cid_group_id="---DISABLED---",
        cid_group_id_two="---DISABLED---",
    )
    assert choose_caller_id(area, None, lead(), "3125550000", pool).ccid == "3125550002"


def test_the_ami_originate_is_the_audit_row_plus_async_and_actionid() -> None:
    call = prepare_call(
        hopper=HopperEntry(3, 7, "C", "VDFC_10.0.0.2"),
        lead=lead(),
        lists=None,
        campaign=CampaignDialSettings(
            "C", dial_prefix="9", campaign_cid="3125550000", campaign_vdad_exten="8368"
        ),
        host=FillHost("10.0.0.1", local_gmt=-5.0),
        target=TargetServer("10.0.0.2", "18.21.0", "13"),
        now=pass_at(datetime(2024, 9, 2, 23, 59, 59)),
        number=choose_number(HopperEntry(3, 7, "C", ""), lead(), CampaignDialSettings("C")),
        pool=CidPool(),
    )
    assert call.call_id == "V9022359590000000007"  # spec 5.3's example date
    assert call.ami_action() == (
        ("Action", "Originate"),
        ("ActionID", "V9022359590000000007"),
        ("Exten", "138368"),
        ("Context", "default"),
        ("Channel", "Local/913125550000@default"),
        ("Priority", "1"),
        ("Callerid", '"V9022359590000000007" <3125550000>'),
        ("Timeout", "60000"),
        ("Async", "true"),
    )


async def test_the_column_widths_are_the_schema_s(seed) -> None:
    rows = await seed.fetch_all(
        "SELECT TABLE_NAME, COLUMN_NAME, CHARACTER_MAXIMUM_LENGTH FROM information_schema.COLUMNS"
        " WHERE TABLE_SCHEMA = DATABASE()"
    )
    schema = {(r["TABLE_NAME"], r["COLUMN_NAME"]): r["CHARACTER_MAXIMUM_LENGTH"] for r in rows}
    for table, columns in COLUMN_WIDTHS.items():
        for column, width in columns.items():
            assert schema[(table, column)] == width, (table, column)
