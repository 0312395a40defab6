"""Shared inputs of the fuzz tests: the real captures, chunkings of them, header strategies.

Imported by name. Example counts are sized so the whole fuzz suite stays well under 30 s on the
project's 2-core machine (``FUZZ_*`` below); the Hypothesis profile (deadline, derandomize on CI)
comes from tests/conftest.py and is not overridden here.
"""

from __future__ import annotations

import random
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "asterisk22"
CAPTURES = sorted(FIXTURES.glob("*.raw"))
CAPTURE_BYTES = {path.name: path.read_bytes() for path in CAPTURES}
BANNER = b"Asterisk Call Manager/11.0.0\r\n"

# A Newchannel whose CallerIDName has two-byte characters: a chunk cut inside one must not lose it.
UTF8_NAME = "Zoë Müller"
UTF8_EVENT = (
    "Event: Newchannel\r\nPrivilege: call,all\r\nChannel: SIP/zoe-00000001\r\nChannelState: 0\r\n"
    "ChannelStateDesc: Down\r\nCallerIDNum: 100\r\nCallerIDName: " + UTF8_NAME + "\r\n"
    "ConnectedLineNum: <unknown>\r\nConnectedLineName: <unknown>\r\n"
    "Uniqueid: 1795688000.1\r\nLinkedid: 1795688000.1\r\n\r\n"
).encode()


def session_bytes(name: str) -> bytes:
    """A capture with the UTF-8 event put right after its banner."""
    data = CAPTURE_BYTES[name]
    assert data.startswith(BANNER)
    return BANNER + UTF8_EVENT + data[len(BANNER) :]


# -- example budgets (examples per test; each line notes roughly what one example costs) ---------
FUZZ_FAST = settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])  # < 1 ms each
FUZZ_MEDIUM = settings(max_examples=120, suppress_health_check=[HealthCheck.too_slow])  # a few ms
FUZZ_MODEL = settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])  # ~2 ms, 60 steps
FUZZ_WHOLE_CAPTURE = settings(max_examples=25, suppress_health_check=[HealthCheck.too_slow])  # ~50 ms


def cut(data: bytes, cuts: list[int]) -> list[bytes]:
    """``data`` in pieces at the given offsets (any order, duplicates and out-of-range ignored)."""
    points = sorted({c for c in cuts if 0 < c < len(data)})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


@st.composite
def chunkings(draw: st.DrawFn, data: bytes, max_cuts: int = 40) -> list[bytes]:
    """``data`` cut at up to ``max_cuts`` drawn offsets (shrinks towards few, early cuts)."""
    if len(data) < 2:
        return [data] if data else []
    offsets = draw(st.lists(st.integers(1, len(data) - 1), max_size=max_cuts))
    return cut(data, offsets)


@st.composite
def seeded_chunkings(draw: st.DrawFn, data: bytes) -> list[bytes]:
    """``data`` in random pieces of 1..N bytes, N drawn from 1 to 4096 (a whole capture, any size)."""
    largest = draw(st.sampled_from([1, 2, 3, 7, 64, 500, 4096]))
    rng = random.Random(draw(st.integers(0, 2**32 - 1)))
    pieces, position = [], 0
    while position < len(data):
        size = rng.randint(1, largest)
        pieces.append(data[position : position + size])
        position += size
    return pieces


# -- header strategies ----------------------------------------------------------------------------
# A key is what Asterisk writes: no colon, no CR/LF, no surrounding space; repeated keys are drawn
# from a small pool so repeats are common.
KEYS = st.one_of(
    st.sampled_from(["Event", "Channel", "Uniqueid", "CallerIDName", "Output", "ActionID", "Value", "X-Y"]),
    st.text(
        st.characters(blacklist_characters=":\r\n", blacklist_categories=("Cs",)), min_size=1, max_size=12
    )
    .map(str.strip)
    .filter(bool),
)
VALUE_CHARS = st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",))
VALUES = st.one_of(
    st.text(VALUE_CHARS, max_size=30),
    st.sampled_from(["", " ", "<unknown>", "<null>", "é", "日本", "\U0001f4de", "a: b", "::"]),
    st.integers(1_000, 60_000).map(lambda n: "v" * n),  # huge values
)
