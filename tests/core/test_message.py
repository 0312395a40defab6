"""AMI framing and message parsing (fillreactor.core.message)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fillreactor.core.message import AmiFramer, AmiMessage, MalformedMessage, encode_message, iter_messages

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "asterisk22"


def test_banner_is_handed_out_once_and_messages_follow() -> None:
    framer = AmiFramer()
    frames = framer.feed(b"Asterisk Call Manager/11.0.0\r\nResponse: Success\r\nMessage: ok\r\n\r\n")
    assert framer.banner == "Asterisk Call Manager/11.0.0"
    assert frames == [b"Response: Success\r\nMessage: ok"]


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64, 4096])
def test_any_chunking_gives_the_same_frames(chunk: int) -> None:
    data = (FIXTURES / "asterisk22-dialer-5038.raw").read_bytes()
    whole = list(iter_messages(data))
    framer = AmiFramer()
    pieces: list[bytes] = []
    for start in range(0, len(data), chunk):
        pieces.extend(framer.feed(data[start : start + chunk]))
    assert pieces == whole
    assert framer.pending_bytes == 0


def test_capture_frames_all_parse_and_count_matches_the_sample() -> None:
    total_events = 0
    for raw in sorted(FIXTURES.glob("*.raw")):
        for frame in iter_messages(raw.read_bytes()):
            message = AmiMessage.from_bytes(frame)
            total_events += bool(message.event)
    sample = (FIXTURES / "asterisk22-sample.txt").read_text()
    assert total_events == sample.count("\nEvent: ") == 614


def test_repeated_keys_are_kept_in_order_and_get_returns_the_first() -> None:
    message = AmiMessage.from_text("Event: UserEvent\r\nCallerIDName: a\r\nUserEvent: X\r\nCallerIDName: b")
    assert message.get("CallerIDName") == "a"
    assert message.get_all("CallerIDName") == ["a", "b"]
    assert [k for k, _ in message.pairs] == ["Event", "CallerIDName", "UserEvent", "CallerIDName"]


def test_empty_values_and_colons_in_values() -> None:
    message = AmiMessage.from_text("Event: Newchannel\r\nAccountCode: \r\nApplicationData: a:b,c")
    assert message.get("AccountCode") == ""
    assert message.get("ApplicationData") == "a:b,c"
    assert message.get("Missing", "x") == "x"


@pytest.mark.parametrize("text", ["", "no colon here", ": value without key", " Key: leading space"])
def test_malformed_frames_raise_malformed_message(text: str) -> None:
    with pytest.raises(MalformedMessage):
        AmiMessage.from_text(text)


def test_utf8_split_across_chunks_survives() -> None:
    data = "Event: Newchannel\r\nCallerIDName: Zoë Müller\r\n\r\n".encode()
    cut = data.index("ë".encode()) + 1  # inside the two-byte character
    framer = AmiFramer(expect_banner=False)
    frames = framer.feed(data[:cut]) + framer.feed(data[cut:])
    assert AmiMessage.from_bytes(frames[0]).get("CallerIDName") == "Zoë Müller"


def test_bare_lf_sessions_are_accepted() -> None:
    framer = AmiFramer()
    frames = framer.feed(b"Asterisk Call Manager/1.1\nEvent: Hangup\nUniqueid: 1.2\n\n")
    assert framer.banner == "Asterisk Call Manager/1.1"
    assert AmiMessage.from_bytes(frames[0]).get("Uniqueid") == "1.2"


def test_oversized_frames_are_discarded_and_counted_and_the_next_frame_survives() -> None:
    framer = AmiFramer(expect_banner=False, max_message_bytes=100)
    assert framer.feed(b"X" * 150) == []
    assert framer.feed(b"Y" * 150) == []
    assert framer.errors == 1
    assert framer.feed(b"\r\n\r\nEvent: Ping\r\n\r\n") == [b"Event: Ping"]
    assert framer.pending_bytes == 0


def test_encode_round_trip() -> None:
    pairs = [("Action", "Originate"), ("ActionID", "V1"), ("Variable", "a=1"), ("Variable", "b=2")]
    data = encode_message(pairs)
    assert data.endswith(b"\r\n\r\n")
    assert AmiMessage.from_bytes(data[:-4]).pairs == tuple(pairs)
    assert AmiMessage.from_pairs(pairs).to_bytes() == data


header_keys = st.text(st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef-"), min_size=1, max_size=12)
header_values = st.text(st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)), max_size=30)


@given(st.lists(st.tuples(header_keys, header_values), min_size=1, max_size=12))
def test_any_headers_round_trip(pairs: list[tuple[str, str]]) -> None:
    # the parser strips exactly the one space the encoder writes after the colon
    data = encode_message(pairs)
    parsed = AmiMessage.from_bytes(data[:-4])
    assert parsed.pairs == tuple(pairs)


@given(st.binary(max_size=300), st.integers(min_value=1, max_value=50))
def test_framer_never_raises_on_garbage(data: bytes, chunk: int) -> None:
    framer = AmiFramer(max_message_bytes=64)
    for start in range(0, len(data), chunk):
        framer.feed(data[start : start + chunk])


def test_the_message_before_an_oversized_frame_in_the_same_read_survives() -> None:
    # one read: a whole message, then the start of a frame already over the limit
    framer = AmiFramer(expect_banner=False, max_message_bytes=64)
    first = framer.feed(b"Event: A\r\nN: 1\r\n\r\nEvent: Junk\r\nData: " + b"x" * 100)
    rest = framer.feed(b"x" * 10 + b"\r\n\r\nEvent: B\r\nN: 2\r\n\r\n")
    assert first == [b"Event: A\r\nN: 1"] and rest == [b"Event: B\r\nN: 2"] and framer.errors == 1
