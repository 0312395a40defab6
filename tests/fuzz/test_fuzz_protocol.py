"""Fuzzing ``FastAMIProtocol.data_received`` (fillreactor/ami/fast_protocol.py) with arbitrary chunking.

The protocol runs bare (no panoramisk Manager: ``factory`` None, no pending actions), as in the
first reads of a connection; a fake transport stands in for the socket.

Properties (the module's rules):

* Nothing escapes ``data_received``: any bytes in any chunking, a sink that raises, a framer limit
  that is hit. The protocol stays open and counts what went wrong.
* The same events whatever the chunking: a real capture (with a UTF-8 event) cut anywhere gives
  the sink exactly the events of its frames, each normalised on its own through the message path
  (``AmiMessage`` -> ``normalise``), in order; the banner sets ``version``.
"""

from __future__ import annotations

import pytest
from fuzz_helpers import (
    CAPTURE_BYTES,
    FUZZ_FAST,
    FUZZ_MEDIUM,
    FUZZ_WHOLE_CAPTURE,
    UTF8_NAME,
    chunkings,
    seeded_chunkings,
    session_bytes,
)
from hypothesis import given
from hypothesis import strategies as st

from fillreactor.ami.fast_protocol import FastAMIProtocol
from fillreactor.core.events import ChannelCreated, Event
from fillreactor.core.message import AmiMessage, iter_messages
from fillreactor.core.normalise import normalise


class FakeTransport:
    """Enough of an asyncio transport for panoramisk's ``connection_made`` and ``close``."""

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str, default: object = None) -> object:
        return default


def bare_protocol(sink: object, **options: object) -> tuple[FastAMIProtocol, FakeTransport]:
    protocol = FastAMIProtocol(on_event=sink, **options)  # type: ignore[arg-type]
    transport = FakeTransport()
    protocol.connection_made(transport)
    return protocol, transport


def expected_events(data: bytes) -> list[Event]:
    """The events of a session's frames, each parsed and normalised on its own (the message path)."""
    events = []
    for frame in iter_messages(data):
        if frame.startswith(b"Event: "):
            event = normalise(AmiMessage.from_bytes(frame))
            if event is not None:
                events.append(event)
    return events


EXPECTED = {name: expected_events(session_bytes(name)) for name in CAPTURE_BYTES}


@pytest.mark.parametrize("name", sorted(CAPTURE_BYTES))
@FUZZ_WHOLE_CAPTURE
@given(data=st.data())
def test_the_same_events_whatever_the_chunking(name: str, data: st.DataObject) -> None:
    session = session_bytes(name)
    events: list[Event] = []
    protocol, transport = bare_protocol(events.append)
    for piece in data.draw(st.one_of(seeded_chunkings(session), chunkings(session))):
        protocol.data_received(piece)
    assert events == EXPECTED[name]
    first = events[0]
    assert isinstance(first, ChannelCreated) and first.caller_id_name == UTF8_NAME
    assert protocol.version == "11.0.0"
    assert protocol.sink_errors == protocol.frame_errors == protocol.framer.errors == 0
    assert not transport.closed and protocol.framer.pending_bytes == 0


@FUZZ_FAST
@given(
    st.lists(
        st.one_of(
            st.binary(max_size=60),
            st.sampled_from(
                [
                    b"\r\n\r\n",
                    b"\n\n",
                    b"Event: Hangup\r\n",
                    b"Event: Newchannel\r\nUniqueid: 1\r\n",
                    b"Response: Success\r\nActionID: x\r\n",
                    b"Event: FullyBooted\r\n\r\n",
                    b"Event: Shutdown\r\nRestart: True\r\n\r\n",
                    b"Asterisk Call Manager/1.1\r\n",
                    b"ChannelState: 99999999999999999999\r\n",
                    b"\xc3",
                    b"ActionID: \r\n",
                ]
            ),
        ),
        max_size=30,
    ),
    st.booleans(),
)
def test_nothing_escapes_any_bytes_in_any_chunking(pieces: list[bytes], raising_sink: bool) -> None:
    seen: list[Event] = []

    def sink(event: Event) -> None:
        seen.append(event)
        if raising_sink:
            raise RuntimeError("a broken sink")

    protocol, _transport = bare_protocol(sink, max_message_bytes=128)
    for piece in pieces:
        protocol.data_received(piece)  # never raises: that is the property
    assert protocol.framer.pending_bytes <= 128
    assert protocol.sink_errors == (len(seen) if raising_sink else 0)
    assert len(protocol.last_failures) <= 8


# the first ~16 kB of a capture, cut after a whole message
_FIRST = session_bytes(sorted(CAPTURE_BYTES)[0])
SHORT_SESSION = _FIRST[: _FIRST.index(b"\r\n\r\n", 16_000) + 4]
SHORT_EXPECTED = expected_events(SHORT_SESSION)


@FUZZ_MEDIUM
@given(st.data())
def test_a_raising_sink_loses_no_later_event(data: st.DataObject) -> None:
    """The sink raises on some events: every event is still offered, in order, and counted."""
    session, expected = SHORT_SESSION, SHORT_EXPECTED
    bad = set(data.draw(st.lists(st.integers(0, len(expected) - 1), max_size=20)))
    offered: list[Event] = []

    def sink(event: Event) -> None:
        offered.append(event)
        if len(offered) - 1 in bad:
            raise ValueError("sink failure")

    protocol, _ = bare_protocol(sink)
    for piece in data.draw(chunkings(session)):
        protocol.data_received(piece)
    assert offered == expected and protocol.sink_errors == len(bad)
