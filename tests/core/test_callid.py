"""VICIdial call ids (fillreactor.core.callid), spec 5.3."""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fillreactor.core.callid import build_call_id, call_id_family, call_id_of, lead_id_of


def test_spec_example() -> None:
    assert build_call_id(datetime(2024, 9, 2, 23, 59, 59), 12345) == "V9022359590000012345"


def test_december_drops_the_tens_digit_of_the_month() -> None:
    assert build_call_id(datetime(2026, 12, 31, 1, 2, 3), 7) == "V2310102030000000007"


def test_lead_ids_longer_than_ten_digits_keep_the_leftmost_ten() -> None:
    assert build_call_id(datetime(2026, 1, 1), 12345678901)[10:] == "1234567890"


@given(st.datetimes(min_value=datetime(2000, 1, 1)), st.integers(min_value=0, max_value=9_999_999_999))
def test_every_built_id_is_an_auto_dial_id_carrying_its_lead(when: datetime, lead: int) -> None:
    call_id = build_call_id(when, lead)
    assert len(call_id) == 20
    assert call_id_family(call_id) == "V"
    assert lead_id_of(call_id) == lead


@pytest.mark.parametrize(
    ("name", "family"),
    [
        ("V1126101010000000110", "V"),
        ("M1126101010000000110", "M"),
        ("Y1126101010000000110", "Y"),
        ("V1126101010000000110 extra words", "V"),
        ("DC123456W1234567890W", "DC"),
        ("RINGAGENT1234", "RA"),
        ("RA_1234", "RA"),
        ("V112610101000000011", None),  # 18 digits
        ("V11261010100000001100", None),  # 20 digits
        ("X1126101010000000110", None),
        ("8005551234", None),
        ("", None),
        ("<unknown>", None),
    ],
)
def test_families(name: str, family: str | None) -> None:
    assert call_id_family(name) == family


def test_call_id_of_prefers_the_caller_id_name_then_the_connected_line() -> None:
    assert call_id_of("V1126101010000000110", "M1126101010000000111") == ("V", "V1126101010000000110")
    assert call_id_of("John Smith", "V1126101010000000110") == ("V", "V1126101010000000110")
    assert call_id_of("", "") is None
