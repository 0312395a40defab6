"""Fuzzing the AMI framer and message parser (fillreactor/core/message.py).

Properties (the module's rules, spec/AMI.md B 1.8):

* Nothing escapes ``AmiFramer.feed`` for any bytes in any chunking; no frame contains a message
  terminator; what it buffers stays within ``max_message_bytes``.
* Framing does not depend on the chunking: the real captures (and the same traffic with bare LF
  line ends, and a UTF-8 event cut anywhere) give the same frames in any chunking as in one piece.
* Headers survive the round trip whatever they hold (repeated keys in order, empty and huge
  values, any Unicode) and however the stream is cut.
* A frame over the limit is dropped and counted; it does not take the next message with it.

Chunking dependencies found here, since fixed, are regression tests at the end (see their
docstrings).
"""

from __future__ import annotations

import pytest
from fuzz_helpers import (
    BANNER,
    CAPTURE_BYTES,
    FUZZ_FAST,
    FUZZ_MEDIUM,
    FUZZ_WHOLE_CAPTURE,
    KEYS,
    UTF8_EVENT,
    VALUES,
    chunkings,
    cut,
    seeded_chunkings,
    session_bytes,
)
from hypothesis import given
from hypothesis import strategies as st

from fillreactor.core.message import MESSAGE_END, AmiFramer, AmiMessage, MalformedMessage, encode_message

LIMIT = 256  # a small frame limit so the fuzzer reaches it


def frame_all(pieces: list[bytes], **framer_options: object) -> tuple[list[bytes], AmiFramer]:
    framer = AmiFramer(**framer_options)  # type: ignore[arg-type]
    frames: list[bytes] = []
    for piece in pieces:
        frames.extend(framer.feed(piece))
    return frames, framer


@st.composite
def any_stream(draw: st.DrawFn) -> tuple[bytes, list[bytes]]:
    """Arbitrary bytes, rich in the bytes that matter to framing, cut anywhere."""
    alphabet = st.sampled_from(
        [b"\r\n", b"\r\n\r\n", b"\n", b"\n\n", b"\r", b":", b": ", b"Event: X", b"\xc3"]
    )
    parts = draw(st.lists(st.one_of(st.binary(max_size=40), alphabet), max_size=40))
    data = b"".join(parts)
    return data, draw(chunkings(data))


@FUZZ_FAST
@given(any_stream(), st.booleans())
def test_the_framer_takes_any_bytes_in_any_chunking(stream: tuple[bytes, list[bytes]], banner: bool) -> None:
    data, pieces = stream
    framer = AmiFramer(expect_banner=banner, max_message_bytes=LIMIT)
    for piece in pieces:
        for frame in framer.feed(piece):
            assert frame and MESSAGE_END not in frame
        # bounded memory: whatever the peer sends, at most one limit's worth waits for its end
        assert framer.pending_bytes <= LIMIT
    assert framer.errors >= 0
    for frame in frame_all([data], expect_banner=banner)[0]:
        try:  # the parser either reads a frame or says why not
            AmiMessage.from_bytes(frame)
        except MalformedMessage:
            pass


@st.composite
def crlf_stream(draw: st.DrawFn) -> bytes:
    """Arbitrary bytes whose only line ends are CRLF (what Asterisk sends), frames under LIMIT."""
    lines = draw(st.lists(st.binary(max_size=30).map(lambda b: b.replace(b"\n", b"")), max_size=30))
    data = b"\r\n".join(lines)
    # keep every frame (and the unterminated tail) under the limit: frame size limits are tested apart
    return b"\r\n\r\n".join(chunk[:LIMIT] for chunk in data.split(b"\r\n\r\n"))


@FUZZ_FAST
@given(st.data())
def test_framing_of_crlf_traffic_does_not_depend_on_the_chunking(data: st.DataObject) -> None:
    stream = data.draw(crlf_stream())
    pieces = data.draw(chunkings(stream))
    for banner in (True, False):
        whole, whole_framer = frame_all([stream], expect_banner=banner, max_message_bytes=LIMIT)
        chunked, chunked_framer = frame_all(pieces, expect_banner=banner, max_message_bytes=LIMIT)
        assert chunked == whole
        assert chunked_framer.banner == whole_framer.banner
        assert chunked_framer.pending_bytes == whole_framer.pending_bytes


@pytest.mark.parametrize("name", sorted(CAPTURE_BYTES))
@FUZZ_WHOLE_CAPTURE
@given(data=st.data())
def test_captures_give_the_same_frames_in_any_chunking(name: str, data: st.DataObject) -> None:
    session = session_bytes(name)
    whole, framer = frame_all([session])
    assert framer.banner == BANNER.decode().strip() and framer.errors == 0
    assert whole[0] == UTF8_EVENT[: -len(MESSAGE_END)]
    pieces = data.draw(st.one_of(seeded_chunkings(session), chunkings(session)))
    chunked, chunked_framer = frame_all(pieces)
    assert chunked == whole and chunked_framer.banner == framer.banner and chunked_framer.pending_bytes == 0


@pytest.mark.parametrize("name", sorted(CAPTURE_BYTES))
@FUZZ_WHOLE_CAPTURE
@given(data=st.data())
def test_bare_lf_traffic_frames_as_the_crlf_original(name: str, data: st.DataObject) -> None:
    """Old servers and recorded fixtures end lines with a bare LF: the same frames, in CRLF form."""
    session = session_bytes(name)
    expected, _ = frame_all([session])
    lf_session = session.replace(b"\r\n", b"\n")
    pieces = data.draw(st.one_of(seeded_chunkings(lf_session), chunkings(lf_session)))
    chunked, framer = frame_all(pieces)
    assert chunked == expected and framer.banner == BANNER.decode().strip()


@FUZZ_MEDIUM
@given(st.data())
def test_a_utf8_character_cut_between_reads_survives(data: st.DataObject) -> None:
    stream = BANNER + UTF8_EVENT * 2
    offsets = data.draw(st.lists(st.integers(1, len(stream) - 1), min_size=1, max_size=6))
    frames, _ = frame_all(cut(stream, offsets))
    names = [AmiMessage.from_bytes(frame).get("CallerIDName") for frame in frames]
    assert names == ["Zoë Müller", "Zoë Müller"]


@FUZZ_MEDIUM
@given(
    st.lists(st.lists(st.tuples(KEYS, VALUES), min_size=1, max_size=8), min_size=1, max_size=4),
    st.data(),
)
def test_any_headers_survive_framing_and_parsing(
    messages: list[list[tuple[str, str]]], data: st.DataObject
) -> None:
    stream = b"".join(encode_message(pairs) for pairs in messages)
    pieces = data.draw(chunkings(stream, max_cuts=20))
    frames, framer = frame_all(pieces, expect_banner=False, max_message_bytes=len(stream) + 1)
    assert framer.errors == 0 and framer.pending_bytes == 0
    parsed = [AmiMessage.from_bytes(frame) for frame in frames]
    assert [m.pairs for m in parsed] == [tuple(pairs) for pairs in messages]
    for message, pairs in zip(parsed, messages, strict=True):
        for key, value in pairs:
            # first value wins for get(); get_all() keeps every repeat in wire order
            assert message.get(key) == next(v for k, v in pairs if k == key)
            assert message.get_all(key) == [v for k, v in pairs if k == key]
            assert value in message.get_all(key)


@st.composite
def streams_with_an_oversized_frame(draw: st.DrawFn) -> tuple[bytes, bytes, list[bytes]]:
    before = draw(st.sampled_from([b"", b"Event: A\r\nN: 1\r\n\r\n"]))
    oversized = b"Event: Junk\r\nData: " + b"x" * draw(st.integers(2 * LIMIT, 6 * LIMIT)) + b"\r\n\r\n"
    after = b"Event: B\r\nN: 2\r\n\r\n"
    data = before + oversized + after
    # pieces of at most LIMIT bytes around the big frame, cuts anywhere (inside its terminator too)
    terminator = len(before) + len(oversized) - 4
    offsets = draw(st.lists(st.integers(1, len(data) - 1), max_size=30))
    offsets += list(range(len(before) + LIMIT // 2, terminator, LIMIT // 2))  # so it spans reads
    return before, after, cut(data, offsets)


@FUZZ_MEDIUM
@given(streams_with_an_oversized_frame())
def test_an_oversized_frame_is_dropped_and_counted_and_spares_its_neighbours(
    stream: tuple[bytes, bytes, list[bytes]],
) -> None:
    before, after, pieces = stream
    frames, framer = frame_all(pieces, expect_banner=False, max_message_bytes=LIMIT)
    expected = [m[:-4] for m in (before, after) if m]
    assert frames == expected and framer.errors == 1


# -- bugs the fuzzing found, fixed: kept as regression tests ----------------------------------------
def test_fixed_the_message_after_an_oversized_frame_survives_a_cut_terminator() -> None:
    """The discarding framer clears its buffer, including the first half of the oversized frame's
    CRLFCRLF; the second half then looks like the start of the next frame, and the next frame is
    taken for the oversized frame's tail and dropped."""
    oversized = b"Event: Junk\r\nData: " + b"x" * 200 + b"\r\n\r\n"
    after = b"Event: B\r\nA: 1\r\n\r\n"
    data = oversized + after
    pieces = cut(data, [100, len(oversized) - 2])  # ... "xxx\r\n" | "\r\nEvent: B ..."
    frames, framer = frame_all(pieces, expect_banner=False, max_message_bytes=64)
    assert framer.errors == 1
    assert frames == [b"Event: B\r\nA: 1"]  # actual: [] (Event B lost)


def test_fixed_an_oversized_frame_is_dropped_whatever_the_chunking() -> None:
    """The module promises 'a message longer than max_message_bytes is discarded whole'; the size
    is checked only on the unterminated remainder, so a long frame that arrives with its end in
    one read (or in reads each under the limit) is handed out whole."""
    oversized = b"Event: Junk\r\nData: " + b"x" * 100 + b"\r\n\r\n"
    whole, framer = frame_all([oversized], expect_banner=False, max_message_bytes=64)
    chunked, chunked_framer = frame_all(cut(oversized, [40, 80]), expect_banner=False, max_message_bytes=64)
    assert (whole, framer.errors) == (chunked, chunked_framer.errors) == ([], 1)  # actual: whole passes


def test_fixed_mixed_line_ends_frame_the_same_whatever_the_chunking() -> None:
    r"""``feed`` folds bare LF to CRLF only when the buffer holds a ``\n\n``; ``A: 1\n\r\n`` is a
    message end once folded and not otherwise, so it ends a frame or not depending on whether a
    later ``\n\n`` arrived in the same read."""
    data = b"A: 1\n\r\nX: 0\r\n\r\nY: 1\n\n"
    whole, _ = frame_all([data], expect_banner=False)
    chunked, _ = frame_all(cut(data, [data.index(b"Y")]), expect_banner=False)
    assert chunked == whole  # actual: [b'A: 1\n\r\nX: 0', b'Y: 1'] against [b'A: 1', b'X: 0', b'Y: 1']
