"""Field sets of Asterisk 1.4, 1.6/1.8 and 11 (spec/VICIDIAL_FILL.md 7.2), hand-written.

Each message is written both as Asterisk sends it and with the ``Timestamp:`` line that
``timestampevents=yes`` inserts right after ``Privilege:``; both must give the same event.
"""

from __future__ import annotations

import pytest

from fillreactor.core.events import (
    STATE_RINGING,
    STATE_UP,
    CallerIdChanged,
    ChannelCreated,
    ChannelHungUp,
    ChannelStateChanged,
    SnapshotEnd,
    SnapshotRow,
)
from fillreactor.core.message import AmiMessage
from fillreactor.core.normalise import (
    LIST_ITEMS_UNKNOWN,
    STATE_UNKNOWN,
    Normaliser,
    normalise,
    normalise_raw,
)

CALL_ID = "V1126101010000000123"


def wire(lines: list[str], *, timestamp: bool) -> bytes:
    """Lines as Asterisk writes them; with ``timestamp`` a Timestamp line follows Privilege."""
    out = []
    for line in lines:
        out.append(line)
        if timestamp and line.startswith("Privilege:"):
            out.append("Timestamp: 1225393958.123456")
    return "\r\n".join(out).encode()


CASES = [
    pytest.param(
        [
            "Event: Newchannel",
            "Privilege: call,all",
            "Channel: SIP/trunk-081d5e78",
            "State: Down",
            "CallerIDNum: <unknown>",
            "CallerIDName: <unknown>",
            "Uniqueid: 1225393958.42",
        ],
        ChannelCreated("SIP/trunk-081d5e78", "1225393958.42", "", 0, "", ""),
        id="1.4-Newchannel",
    ),
    pytest.param(
        [
            "Event: Newstate",
            "Privilege: call,all",
            "Channel: SIP/trunk-081d5e78",
            "State: Up",
            "CallerID: 8005551234",
            f"CallerIDName: {CALL_ID}",
            "Uniqueid: 1225393958.42",
        ],
        ChannelStateChanged("SIP/trunk-081d5e78", "1225393958.42", "", STATE_UP, CALL_ID, ""),
        id="1.4-Newstate",
    ),
    pytest.param(
        [
            "Event: Newcallerid",
            "Privilege: call,all",
            "Channel: Local/8365@default-a1b2,1",
            "CallerID: 8005551234",
            f"CallerIDName: {CALL_ID}",
            "Uniqueid: 1225393958.43",
            "CID-CallingPres: 0 (Presentation Allowed, Not Screened)",
        ],
        CallerIdChanged("Local/8365@default-a1b2,1", "1225393958.43", "", STATE_UNKNOWN, CALL_ID, ""),
        id="1.4-Newcallerid",
    ),
    pytest.param(
        [
            "Event: Hangup",
            "Privilege: call,all",
            "Channel: SIP/trunk-081d5e78",
            "Uniqueid: 1225393958.42",
            "Cause: 16",
            "Cause-txt: Normal Clearing",
        ],
        ChannelHungUp(
            "SIP/trunk-081d5e78", "1225393958.42", "", STATE_UNKNOWN, "", "", 16, "Normal Clearing"
        ),
        id="1.4-Hangup",
    ),
    pytest.param(
        [
            "Event: Status",
            "Privilege: Call",
            "Channel: SIP/trunk-081d5e78",
            "CallerIDNum: 8005551234",
            f"CallerIDName: {CALL_ID}",
            "Account: ",
            "State: Up",
            "Context: default",
            "Extension: 8365",
            "Priority: 1",
            "Seconds: 12",
            "Link: ",
            "Uniqueid: 1225393958.42",
            "ActionID: status-1",
        ],
        SnapshotRow("SIP/trunk-081d5e78", "1225393958.42", "", STATE_UP, CALL_ID, "", "status-1"),
        id="1.4-Status",
    ),
    pytest.param(
        ["Event: StatusComplete", "ActionID: status-1"],
        SnapshotEnd("status-1", LIST_ITEMS_UNKNOWN),
        id="1.4-StatusComplete",
    ),
    pytest.param(
        [
            "Event: Newstate",
            "Privilege: call,all",
            "Channel: SIP/trunk-0000002a",
            "ChannelState: 5",
            "ChannelStateDesc: Ringing",
            "CallerIDNum: 8005551234",
            f"CallerIDName: {CALL_ID}",
            "ConnectedLineNum: ",
            "ConnectedLineName: ",
            "Uniqueid: 1325393958.7",
        ],
        ChannelStateChanged("SIP/trunk-0000002a", "1325393958.7", "", STATE_RINGING, CALL_ID, ""),
        id="1.8-Newstate",
    ),
    pytest.param(
        [
            "Event: NewCallerid",
            "Privilege: call,all",
            "Channel: SIP/trunk-0000002a",
            "CallerIDNum: 8005551234",
            f"CallerIDName: {CALL_ID}",
            "Uniqueid: 1325393958.7",
            "CID-CallingPres: 0 (Presentation Allowed, Not Screened)",
        ],
        CallerIdChanged("SIP/trunk-0000002a", "1325393958.7", "", STATE_UNKNOWN, CALL_ID, ""),
        id="1.8-NewCallerid",
    ),
    pytest.param(
        [
            "Event: Hangup",
            "Privilege: call,all",
            "Channel: SIP/trunk-0000002a",
            "Uniqueid: 1325393958.7",
            "CallerIDNum: 8005551234",
            f"CallerIDName: {CALL_ID}",
            "ConnectedLineNum: <unknown>",
            f"ConnectedLineName: {CALL_ID}",
            "Cause: 17",
            "Cause-txt: User busy",
        ],
        ChannelHungUp(
            "SIP/trunk-0000002a", "1325393958.7", "", STATE_UNKNOWN, CALL_ID, CALL_ID, 17, "User busy"
        ),
        id="1.8-Hangup",
    ),
    pytest.param(
        [
            "Event: CoreShowChannel",
            "ActionID: csc-1",
            "Channel: SIP/trunk-0000002a",
            "UniqueID: 1325393958.7",
            "Context: default",
            "Extension: 8365",
            "Priority: 1",
            "ChannelState: 6",
            "ChannelStateDesc: Up",
            "Application: Dial",
            "ApplicationData: SIP/agent",
            "CallerIDnum: 8005551234",
            f"CallerIDname: {CALL_ID}",
            "Duration: 00:00:10",
            "AccountCode: ",
            "BridgedChannel: ",
            "BridgedUniqueID: ",
        ],
        SnapshotRow("SIP/trunk-0000002a", "1325393958.7", "", STATE_UP, CALL_ID, "", "csc-1"),
        id="1.8-CoreShowChannel",
    ),
    pytest.param(
        ["Event: CoreShowChannelsComplete", "EventList: Complete", "ListItems: 1", "ActionID: csc-1"],
        SnapshotEnd("csc-1", 1),
        id="1.8-CoreShowChannelsComplete",
    ),
    pytest.param(
        ["Event: StatusComplete", "ActionID: status-2", "Items: 3"],
        SnapshotEnd("status-2", 3),
        id="1.8-StatusComplete-Items",
    ),
    pytest.param(
        [
            "Event: Newchannel",
            "Privilege: call,all",
            "Channel: SIP/trunk-0000002a",
            "ChannelState: 0",
            "ChannelStateDesc: Down",
            "CallerIDNum: ",
            "CallerIDName: ",
            "AccountCode: ",
            "Exten: 918005551234",
            "Context: default",
            "Uniqueid: 1425393958.9",
        ],
        ChannelCreated("SIP/trunk-0000002a", "1425393958.9", "", 0, "", ""),
        id="11-Newchannel",
    ),
    pytest.param(
        [
            "Event: NewConnectedLine",
            "Privilege: call,all",
            "Channel: Local/918005551234@default-00000004;1",
            "ChannelState: 5",
            "ChannelStateDesc: Ringing",
            "CallerIDNum: <unknown>",
            f"CallerIDName: {CALL_ID}",
            "ConnectedLineNum: <unknown>",
            f"ConnectedLineName: {CALL_ID}",
            "Uniqueid: 1425393958.10",
        ],
        CallerIdChanged(
            "Local/918005551234@default-00000004;1", "1425393958.10", "", STATE_RINGING, CALL_ID, CALL_ID
        ),
        id="11-NewConnectedLine",
    ),
    pytest.param(
        [
            "Event: Hangup",
            "Privilege: call,all",
            "Channel: SIP/trunk-0000002a",
            "ChannelState: 6",
            "ChannelStateDesc: Up",
            "CallerIDNum: 8005551234",
            f"CallerIDName: {CALL_ID}",
            "ConnectedLineNum: ",
            "ConnectedLineName: ",
            "AccountCode: ",
            "Uniqueid: 1425393958.9",
            "Cause: 16",
            "Cause-txt: Normal Clearing",
        ],
        ChannelHungUp("SIP/trunk-0000002a", "1425393958.9", "", STATE_UP, CALL_ID, "", 16, "Normal Clearing"),
        id="11-Hangup",
    ),
]


@pytest.mark.parametrize("timestamp", [False, True], ids=["plain", "timestampevents"])
@pytest.mark.parametrize("lines, expected", CASES)
def test_legacy_field_sets(lines: list[str], expected: object, timestamp: bool) -> None:
    frame = wire(lines, timestamp=timestamp)
    normaliser = Normaliser()
    assert normaliser.feed_frame(frame) == expected
    assert normaliser.errors == 0
    assert normalise_raw(frame) == expected
    assert normalise(AmiMessage.from_bytes(frame)) == expected


def test_values_without_the_space_after_the_colon_are_read() -> None:
    # Old servers and hand-made fixtures: "Key:" with the trailing blank trimmed, "Key:value".
    frame = (
        b"Event: Newstate\r\nPrivilege: call,all\r\nChannel: SIP/x-1\r\nState: Ringing\r\n"
        b"CallerIDName:\r\nUniqueid:1.5"
    )
    assert normalise_raw(frame) == ChannelStateChanged("SIP/x-1", "1.5", "", STATE_RINGING, "", "")


@pytest.mark.parametrize("name, number", [("Ring", 4), ("Rsrvd", 1), ("Dialing Offhook", 8), ("Pre-ring", 9)])
def test_legacy_state_names(name: str, number: int) -> None:
    frame = f"Event: Newstate\r\nChannel: SIP/x-1\r\nState: {name}\r\nUniqueid: 1.1".encode()
    event = normalise_raw(frame)
    assert event is not None and event.state == number
