"""Fuzzing the normaliser (fillreactor/core/normalise.py): ``Normaliser.feed_frame``,
``normalise_raw`` and ``normalise_fields``.

Properties (the module's rules):

* Nothing escapes: any bytes, any field dict, give an event or None, and the ``Normaliser``
  counts every frame exactly once (an event, a dropped frame or an error).
* The byte path agrees with the message path: a frame of ``Key: Value`` lines, however it was
  mutated (repeated keys before or after the original, empty, huge, placeholder or non-numeric
  values, lines dropped), gives from its bytes the event that ``normalise_fields`` gives from its
  parsed ``AmiMessage`` (first value wins on both).
* Placeholders never reach a text field; a repeated key after the original changes nothing.
"""

from __future__ import annotations

from fuzz_helpers import CAPTURE_BYTES, FUZZ_FAST, FUZZ_MEDIUM, session_bytes
from hypothesis import given
from hypothesis import strategies as st

from fillreactor.core.events import ChannelFields, OriginateResult
from fillreactor.core.message import AmiMessage, iter_messages
from fillreactor.core.normalise import (
    BUILDERS,
    INTERESTING_EVENTS,
    PLACEHOLDERS,
    Normaliser,
    normalise_fields,
    normalise_raw,
)

FRAMES = [frame for name in sorted(CAPTURE_BYTES) for frame in iter_messages(session_bytes(name))]
EVENT_FRAMES = [f for f in FRAMES if f.startswith(b"Event: ")]
INTERESTING = [f for f in EVENT_FRAMES if f[7:].split(b"\r")[0].decode() in INTERESTING_EVENTS]
FIELD_KEYS = [
    "Channel", "Uniqueid", "UniqueID", "Linkedid", "ChannelState", "State", "CallerIDName",
    "CallerIDname", "ConnectedLineName", "Cause", "Cause-txt", "ActionID", "ListItems", "Items",
    "Response", "Reason", "Restart", "Privilege", "Timestamp", "Event",
]  # fmt: skip
ODD_VALUES = st.sampled_from(
    [
        "",
        " ",
        "<unknown>",
        "<null>",
        "<Unknown>",
        "6",
        "-1",
        "007",
        "4294967296",
        "9" * 5000,
        "1e3",
        "Up",
        "Ring",
        "up",
        "²",
        "٣",
        "x" * 100_000,
        "V1126101010000000001",
        "Zoë",
        "a: b",
        "Success",
    ]
)
VALUE_CHARS = st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",))


def well_formed_lines(frame: bytes) -> list[tuple[str, str]]:
    return [tuple(line.split(": ", 1)) for line in frame.decode("utf-8", "replace").split("\r\n")]  # type: ignore[misc]


def encode(pairs: list[tuple[str, str]]) -> bytes:
    return "\r\n".join(f"{key}: {value}" for key, value in pairs).encode("utf-8")


@st.composite
def mutated_event_frames(draw: st.DrawFn) -> bytes:
    """A real interesting frame, its ``Key: Value`` lines mutated (the first line stays ``Event:``)."""
    pairs = well_formed_lines(draw(st.sampled_from(INTERESTING)))
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["repeat_after", "repeat_before", "set", "drop", "add"]))
        index = draw(st.integers(1, len(pairs) - 1)) if len(pairs) > 1 else 0
        value = draw(st.one_of(ODD_VALUES, st.text(VALUE_CHARS, max_size=20)))
        if kind == "repeat_after" and index:
            pairs.insert(draw(st.integers(index + 1, len(pairs))), (pairs[index][0], value))
        elif kind == "repeat_before" and index:
            pairs.insert(draw(st.integers(1, index)), (pairs[index][0], value))
        elif kind == "set" and index:
            pairs[index] = (pairs[index][0], value)
        elif kind == "drop" and index:
            del pairs[index]
        elif kind == "add":
            pairs.insert(draw(st.integers(1, len(pairs))), (draw(st.sampled_from(FIELD_KEYS)), value))
    if draw(st.booleans()):  # an event name the normaliser knows, maybe another than the original
        pairs[0] = ("Event", draw(st.sampled_from(sorted(INTERESTING_EVENTS))))
    return encode(pairs)


@FUZZ_FAST
@given(st.binary(max_size=300))
def test_any_bytes_give_an_event_or_none_and_are_counted_once(data: bytes) -> None:
    normaliser = Normaliser()
    for frame in (data, b"Event: Hangup\r\n" + data, b"Event: CoreShowChannel\r\nUniqueid: 1\r\n" + data):
        assert normaliser.feed_frame(frame) == normalise_raw(frame)
    assert normaliser.errors + normaliser.dropped + sum(normaliser.events.values()) == 3
    assert len(normaliser.last_errors) <= 8


@FUZZ_FAST
@given(mutated_event_frames())
def test_the_byte_path_agrees_with_the_message_path(frame: bytes) -> None:
    message = AmiMessage.from_bytes(frame)  # well-formed lines: the message parser reads it
    expected = normalise_fields(message.fields)
    normaliser = Normaliser()
    assert normaliser.feed_frame(frame) == expected
    assert normalise_raw(frame) == expected
    assert (expected is None) == (normaliser.errors + normaliser.dropped == 1)
    if isinstance(expected, ChannelFields | OriginateResult):
        texts = [expected.caller_id_name] + (
            [expected.linkedid, expected.connected_line_name] if isinstance(expected, ChannelFields) else []
        )
        assert not any(text in PLACEHOLDERS for text in texts)


@FUZZ_MEDIUM
@given(st.sampled_from(INTERESTING), st.data())
def test_a_repeat_after_the_original_changes_nothing(frame: bytes, data: st.DataObject) -> None:
    pairs = well_formed_lines(frame)
    original = normalise_raw(frame)
    for _ in range(data.draw(st.integers(1, 4))):
        key = data.draw(st.sampled_from([k for k, _ in pairs]))
        pairs.append((key, data.draw(st.one_of(ODD_VALUES, st.text(VALUE_CHARS, max_size=20)))))
    assert normalise_raw(encode(pairs)) == original


@FUZZ_FAST
@given(
    st.sampled_from(sorted(BUILDERS)),
    st.dictionaries(
        st.sampled_from(FIELD_KEYS) | st.text(max_size=8), ODD_VALUES | st.text(max_size=20), max_size=10
    ),
)
def test_any_fields_give_an_event_or_none(name: str, fields: dict[str, str]) -> None:
    fields = {**fields, "Event": name}
    event = normalise_fields(fields)
    normaliser = Normaliser()
    assert normaliser.feed_message(AmiMessage(fields)) == event
    assert normaliser.errors + normaliser.dropped + sum(normaliser.events.values()) == 1
