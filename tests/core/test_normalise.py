"""Normalisation of real Asterisk 22 traffic, and robustness against malformed frames."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fillreactor.core.events import (
    CallerIdChanged,
    ChannelCreated,
    ChannelHungUp,
    ChannelStateChanged,
    FullyBooted,
    OriginateResult,
    Shutdown,
    SnapshotEnd,
    SnapshotRow,
)
from fillreactor.core.message import AmiMessage, iter_messages
from fillreactor.core.normalise import (
    INTERESTING_EVENTS,
    Normaliser,
    normalise,
    normalise_raw,
    normalise_raw_full,
)

CAPTURES = sorted((Path(__file__).resolve().parents[2] / "fixtures" / "asterisk22").glob("*.raw"))
DIALER1 = next(p for p in CAPTURES if p.name.endswith("5038.raw"))

# What each interesting event name becomes.
TYPE_OF_NAME = {
    "Newchannel": ChannelCreated,
    "Newstate": ChannelStateChanged,
    "NewCallerid": CallerIdChanged,
    "NewConnectedLine": CallerIdChanged,
    "Hangup": ChannelHungUp,
    "CoreShowChannel": SnapshotRow,
    "Status": SnapshotRow,
    "CoreShowChannelsComplete": SnapshotEnd,
    "StatusComplete": SnapshotEnd,
    "OriginateResponse": OriginateResult,
    "FullyBooted": FullyBooted,
    "Shutdown": Shutdown,
}


def frames_of(path: Path) -> list[bytes]:
    return list(iter_messages(path.read_bytes()))


def events_of(path: Path) -> list:
    return [e for e in map(normalise_raw, frames_of(path)) if e is not None]


def test_captures_exist() -> None:
    assert len(CAPTURES) == 3


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_every_frame_of_a_capture_normalises_without_error(path: Path) -> None:
    normaliser = Normaliser()
    frames = frames_of(path)
    for frame in frames:
        normaliser.feed_frame(frame)
    assert normaliser.errors == 0, normaliser.last_errors
    assert normaliser.dropped + sum(normaliser.events.values()) == len(frames)


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_counts_per_type_equal_a_recount_of_the_capture_text(path: Path) -> None:
    text = path.read_bytes().decode("utf-8")
    expected: Counter[str] = Counter()
    for name in re.findall(r"^Event: (\S+)\r$", text, flags=re.M):
        if name in TYPE_OF_NAME:
            expected[TYPE_OF_NAME[name].__name__] += 1
    normaliser = Normaliser()
    for frame in frames_of(path):
        normaliser.feed_frame(frame)
    assert normaliser.snapshot()["events"] == dict(expected)
    assert expected["ChannelCreated"] > 0 and expected["ChannelHungUp"] == expected["ChannelCreated"]


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_raw_path_and_message_path_agree(path: Path) -> None:
    for frame in frames_of(path):
        assert normalise_raw(frame) == normalise(AmiMessage.from_bytes(frame))


def test_newchannel() -> None:
    first = events_of(DIALER1)[1]
    assert first == ChannelCreated(
        channel="Local/918005551212@default-00000000;1",
        uniqueid="1795688152.0",
        linkedid="1795688152.0",
        state=0,
        caller_id_name="",
        connected_line_name="",
    )


def test_caller_id_change_carries_the_call_id() -> None:
    changes = [e for e in events_of(DIALER1) if isinstance(e, CallerIdChanged)]
    assert changes[0].channel == "Local/918005551212@default-00000000;1"
    assert changes[0].caller_id_name == "V1126101010000000110"


def test_hangup_with_cause() -> None:
    hangups = [e for e in events_of(DIALER1) if isinstance(e, ChannelHungUp)]
    busy = next(h for h in hangups if h.uniqueid == "1795688152.7")
    assert busy == ChannelHungUp(
        channel="Local/18005550000@trunk-00000003;2",
        uniqueid="1795688152.7",
        linkedid="1795688152.4",
        state=7,
        caller_id_name="V1126101010000000111",
        connected_line_name="V1126101010000000111",
        cause=17,
        cause_txt="User busy",
    )
    originated_leg = next(h for h in hangups if h.uniqueid == "1795688152.4")
    assert (originated_leg.cause, originated_leg.cause_txt, originated_leg.state) == (0, "Unknown", 5)


def test_originate_response_shapes() -> None:
    results = {e.action_id: e for e in events_of(DIALER1) if isinstance(e, OriginateResult)}
    assert results["dialer1-orig-ok"] == OriginateResult(
        action_id="dialer1-orig-ok",
        success=True,
        reason=4,
        channel="Local/918005551212@default-00000000;1",
        uniqueid="1795688152.0",
        caller_id_name="V1126101010000000110",
    )
    assert results["dialer1-orig-busy"] == OriginateResult(
        action_id="dialer1-orig-busy",
        success=False,
        reason=5,
        channel="Local/918005550000@default",
        uniqueid="",
        caller_id_name="V1126101010000000111",
    )


def test_originate_failure_with_null_uniqueid() -> None:
    frame = (
        b"Event: OriginateResponse\r\nPrivilege: call,all\r\nActionID: a1\r\nResponse: Failure\r\n"
        b"Channel: SIP/nosuchpeer/123\r\nContext: default\r\nExten: 8365\r\nReason: 0\r\n"
        b"Uniqueid: <null>\r\nCallerIDNum: <unknown>\r\nCallerIDName: <unknown>"
    )
    assert normalise_raw(frame) == OriginateResult("a1", False, 0, "SIP/nosuchpeer/123", "", "")


def test_core_show_channels_rows_and_complete() -> None:
    events = events_of(DIALER1)
    rows = [e for e in events if isinstance(e, SnapshotRow) and e.action_id == "dialer1-csc-1"]
    assert len(rows) == 8
    assert rows[0] == SnapshotRow(
        channel="Local/918005551212@default-00000000;2",
        uniqueid="1795688152.1",
        linkedid="1795688152.0",
        state=4,
        caller_id_name="V1126101010000000110",
        connected_line_name="V1126101010000000110",
        action_id="dialer1-csc-1",
    )
    assert SnapshotEnd("dialer1-csc-1", 8) in events
    status_rows = [e for e in events if isinstance(e, SnapshotRow) and e.action_id == "dialer1-status-1"]
    assert len(status_rows) == 8
    assert SnapshotEnd("dialer1-status-1", 8) in events


def test_fully_booted_and_shutdown() -> None:
    assert normalise_raw(b"Event: FullyBooted\r\nPrivilege: system,all\r\nStatus: Fully Booted") == (
        FullyBooted()
    )
    shutdown = b"Event: Shutdown\r\nPrivilege: system,all\r\nShutdown: Cleanly\r\nRestart: %s"
    assert normalise_raw(shutdown % b"True") == Shutdown(restart=True)
    assert normalise_raw(shutdown % b"False") == Shutdown(restart=False)


def test_uninteresting_and_non_event_frames_are_dropped() -> None:
    normaliser = Normaliser()
    assert normaliser.feed_frame(b"Event: VarSet\r\nVariable: X\r\nValue: this line has no colon") is None
    assert normaliser.feed_frame(b"Response: Success\r\nPing: Pong") is None
    assert (normaliser.dropped, normaliser.errors) == (2, 0)


@pytest.mark.parametrize(
    "frame, reason",
    [
        (b"Event: Newchannel\r\nChannel: SIP/a-1\r\nChannelState: 0", "without Uniqueid"),
        (b"Event: Newstate\r\nChannel: SIP/a-1\r\nChannelState: up\r\nUniqueid: 1.1", "ChannelState"),
        (b"Event: Hangup\r\nChannel: SIP/a-1\r\nUniqueid: 1.1\r\nCause: sixteen", "Cause"),
        (b"Event: CoreShowChannelsComplete\r\nActionID: x\r\nListItems: many", "ListItems"),
        (b"Event: OriginateResponse\r\nResponse: Success\r\nReason: ?", "Reason"),
        (b"Event: Newchannel\r\nChannel SIP/a-1\r\nUniqueid: 1.1", "colon"),
        (b"Event: Newstate\r\nState: Sleepy\r\nUniqueid: 1.1", "State"),
        (b"Event: Hangup\r\n: value\r\nUniqueid: 1.1", "key"),
    ],
)
def test_malformed_frames_are_counted_errors(frame: bytes, reason: str) -> None:
    normaliser = Normaliser(keep_errors=2)
    assert normalise_raw(frame) is None
    assert normaliser.feed_frame(frame) is None
    assert normaliser.errors == 1 and reason in normaliser.last_errors[-1]


def test_error_reasons_are_bounded() -> None:
    normaliser = Normaliser(keep_errors=3)
    for _ in range(10):
        normaliser.feed_frame(b"Event: Hangup\r\nChannel: x")
    assert normaliser.errors == 10 and len(normaliser.last_errors) == 3


def test_undecodable_bytes_do_not_raise() -> None:
    frame = b"Event: Newchannel\r\nChannel: SIP/\xff\xfe-1\r\nUniqueid: 1.1\r\nCallerIDName: Zo\xc3"
    event = normalise_raw(frame)
    assert isinstance(event, ChannelCreated) and event.channel == "SIP/\ufffd\ufffd-1"


# -- fuzzing ------------------------------------------------------------------------------------
ALL_FRAMES = [frame for path in CAPTURES for frame in frames_of(path)]
INTERESTING_FRAMES = [f for f in ALL_FRAMES if f[7:].split(b"\r")[0].decode() in INTERESTING_EVENTS]
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.binary(max_size=400))
def test_fuzz_arbitrary_bytes_never_raise(data: bytes) -> None:
    normaliser = Normaliser()
    normalise_raw(data)
    normaliser.feed_frame(data)
    normaliser.feed_frame(b"Event: Hangup\r\n" + data)
    assert normaliser.errors + normaliser.dropped + sum(normaliser.events.values()) == 2


@st.composite
def mutated_frames(draw: st.DrawFn) -> bytes:
    frame = bytearray(draw(st.sampled_from(INTERESTING_FRAMES)))
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["flip", "cut", "insert", "delete_line"]))
        position = draw(st.integers(0, max(len(frame) - 1, 0)))
        if kind == "flip" and frame:
            frame[position] = draw(st.integers(0, 255))
        elif kind == "cut":
            del frame[position:]
        elif kind == "insert":
            frame[position:position] = draw(st.sampled_from([b"\r\n", b":", b"\xc3", b"\x00", b"x", b": "]))
        elif kind == "delete_line":
            lines = bytes(frame).split(b"\r\n")
            if len(lines) > 1:
                del lines[draw(st.integers(0, len(lines) - 1))]
            frame = bytearray(b"\r\n".join(lines))
    return bytes(frame)


@FUZZ
@given(mutated_frames())
def test_fuzz_mutated_real_frames_never_raise(frame: bytes) -> None:
    normaliser = Normaliser()
    event = normaliser.feed_frame(frame)
    assert normalise_raw(frame) == event
    assert normaliser.errors + normaliser.dropped + sum(normaliser.events.values()) == 1
    assert (event is None) == (normaliser.errors + normaliser.dropped == 1)


@FUZZ
@given(
    st.dictionaries(st.text(max_size=12), st.text(max_size=20), max_size=8),
    st.sampled_from(sorted(INTERESTING_EVENTS)),
)
def test_fuzz_message_path_never_raises(fields: dict[str, str], name: str) -> None:
    normaliser = Normaliser()
    normaliser.feed_message(AmiMessage({**fields, "Event": name}))
    normalise(AmiMessage({**fields, "Event": name}))
    assert normaliser.errors + normaliser.dropped + sum(normaliser.events.values()) == 1


@FUZZ
@given(mutated_frames())
def test_fuzz_direct_path_agrees_with_the_full_parse(frame: bytes) -> None:
    """The direct byte reader (channel events) and the line-by-line parse give the same event."""
    try:
        full = normalise_raw_full(frame)
    except Exception:
        return  # the full parse reports it; the direct path may still read the fields it needs
    assert normalise_raw(frame) == full


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_direct_path_agrees_with_the_full_parse_on_captures(path: Path) -> None:
    for frame in frames_of(path):
        assert normalise_raw(frame) == normalise_raw_full(frame)


def test_a_stray_cr_before_the_terminator_gives_the_same_event_on_both_paths() -> None:
    # b"...Linkedid: 1.1\r\r\n\r\n" frames as "...Linkedid: 1.1\r": both parses read Linkedid "1.1"
    frame = (
        b"Event: Newchannel\r\nPrivilege: call,all\r\nChannel: SIP/x-1\r\nChannelState: 0\r\n"
        b"ChannelStateDesc: Down\r\nCallerIDNum: 1\r\nCallerIDName: V1126101010000000001\r\n"
        b"ConnectedLineNum: <unknown>\r\nConnectedLineName: <unknown>\r\nLanguage: en\r\nAccountCode: \r\n"
        b"Context: default\r\nExten: s\r\nPriority: 1\r\nUniqueid: 1.1\r\nLinkedid: 1.1\r"
    )
    from fillreactor.core.normalise import normalise_raw_full

    assert normalise_raw(frame) == normalise_raw_full(frame)
    assert normalise_raw(frame).linkedid == "1.1"
