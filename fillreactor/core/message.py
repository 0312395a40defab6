"""AMI wire messages: framing bytes into messages and messages back into bytes.

Rules this module keeps (everything about the AMI wire format lives here):

* A message is a block of ``Key: Value`` lines ended by an empty line. Asterisk sends CRLF; a bare
  LF is accepted too, because recorded fixtures and old servers use it.
* The first line of a session is the banner ``Asterisk Call Manager/<version>``, ended by a single
  line break, not a blank line. The framer hands it out once, separately.
* Messages are decoded per complete message (never per TCP chunk), as UTF-8 with replacement, so a
  multi-byte character split across reads survives (panoramisk decodes per chunk and loses it).
* Headers keep their wire order and repeated keys are kept (``Output:`` lines, the UserEvent that
  carries ``CallerIDName`` twice). ``get`` returns the first value of a key.
* A message longer than ``max_message_bytes`` is discarded whole and counted: a peer that sends
  garbage without blank lines cannot make us buffer without limit.
* Nothing here raises on bad input from the wire: bad frames are counted, never fatal.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

CRLF = b"\r\n"
MESSAGE_END = b"\r\n\r\n"
BANNER_PREFIX = b"Asterisk Call Manager/"
DEFAULT_MAX_MESSAGE_BYTES = 1 << 20


class MalformedMessage(ValueError):
    """A frame that is not a sequence of ``Key: Value`` lines."""


class AmiMessage:
    """One AMI message: headers in wire order, repeated keys kept.

    ``fields`` maps each key to its first value (the common, fast lookup); ``pairs`` is the whole
    ordered header list and is only materialised separately when a key repeats.
    """

    __slots__ = ("_pairs", "fields")

    def __init__(self, fields: dict[str, str], pairs: tuple[tuple[str, str], ...] | None = None) -> None:
        self.fields = fields
        self._pairs = pairs

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[str, str]]) -> AmiMessage:
        ordered = tuple(pairs)
        fields: dict[str, str] = {}
        for key, value in ordered:
            fields.setdefault(key, value)
        return cls(fields, ordered if len(fields) != len(ordered) else None)

    @classmethod
    def from_text(cls, text: str) -> AmiMessage:
        """Parse one message (without its terminating blank line). Raises MalformedMessage."""
        lines = text.replace("\r\n", "\n").split("\n")
        pairs = []
        for line in lines:
            if not line:
                continue
            key, sep, value = line.partition(":")
            if not sep or not key or key != key.strip():
                raise MalformedMessage(f"not a 'Key: Value' line: {line[:80]!r}")
            pairs.append((key, value[1:] if value.startswith(" ") else value))
        if not pairs:
            raise MalformedMessage("empty message")
        return cls.from_pairs(pairs)

    @classmethod
    def from_bytes(cls, data: bytes) -> AmiMessage:
        return cls.from_text(data.decode("utf-8", "replace"))

    # -- reading -------------------------------------------------------------------------------
    def get(self, key: str, default: str = "") -> str:
        return self.fields.get(key, default)

    def get_all(self, key: str) -> list[str]:
        if self._pairs is None:
            value = self.fields.get(key)
            return [] if value is None else [value]
        return [v for k, v in self._pairs if k == key]

    @property
    def pairs(self) -> tuple[tuple[str, str], ...]:
        if self._pairs is None:
            return tuple(self.fields.items())
        return self._pairs

    @property
    def event(self) -> str:
        """The event name, or '' for responses and actions."""
        return self.fields.get("Event", "")

    @property
    def response(self) -> str:
        return self.fields.get("Response", "")

    @property
    def action_id(self) -> str:
        return self.fields.get("ActionID", "")

    # -- writing -------------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        return encode_message(self.pairs)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AmiMessage) and self.pairs == other.pairs

    def __hash__(self) -> int:
        return hash(self.pairs)

    def __repr__(self) -> str:
        return f"AmiMessage({list(self.pairs)!r})"


def encode_message(pairs: Iterable[tuple[str, str]]) -> bytes:
    """Serialise headers as Asterisk does: ``Key: Value`` CRLF lines and a blank line."""
    return "".join(f"{key}: {value}\r\n" for key, value in pairs).encode("utf-8") + CRLF


@dataclass
class AmiFramer:
    """Incremental framer: feed TCP chunks, get complete raw messages (bytes, no terminator).

    ``banner`` is set once the banner line was seen (only when ``expect_banner``). ``errors`` counts
    discarded oversized frames.
    """

    expect_banner: bool = True
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    banner: str | None = None
    errors: int = 0
    _buffer: bytes = field(default=b"", repr=False)
    _discarding: bool = field(default=False, repr=False)

    def feed(self, data: bytes) -> list[bytes]:
        buffer = self._buffer + data if self._buffer else data
        if buffer.count(b"\n") != buffer.count(CRLF):
            # a bare LF (a recorded fixture, an old server): fold every line end to CRLF first. The
            # test is on the bytes alone, so the frames never depend on where the reads were cut.
            buffer = buffer.replace(CRLF, b"\n").replace(b"\n", CRLF)
        if self.expect_banner and self.banner is None:
            end = buffer.find(CRLF)
            if end < 0:
                self._buffer = self._check_size(buffer)
                return []
            line = buffer[:end]
            if line.startswith(BANNER_PREFIX):
                self.banner = line.decode("utf-8", "replace")
                buffer = buffer[end + 2 :]
            else:
                self.banner = ""  # no banner: a server that does not send one; read messages as they come
        parts = buffer.split(MESSAGE_END)
        rest = parts.pop()
        if self._discarding and parts:
            # the tail of an oversized frame (from an earlier read) ends at the first terminator
            parts.pop(0)
            self._discarding = False
        self._buffer = self._check_size(rest)
        limit = self.max_message_bytes
        frames = []
        for part in parts:
            if len(part) > limit:  # whole in one read, but too long all the same: the same rule
                self.errors += 1
            elif part:
                frames.append(part)
        return frames

    def _check_size(self, rest: bytes) -> bytes:
        if len(rest) > self.max_message_bytes:
            if not self._discarding:
                self.errors += 1
            self._discarding = True
            # keep what could be the start of a terminator cut between two reads
            return rest[-(len(MESSAGE_END) - 1) :]
        return rest

    @property
    def pending_bytes(self) -> int:
        return len(self._buffer)


def iter_messages(data: bytes, *, expect_banner: bool = True) -> Iterator[bytes]:
    """Frame a whole recorded session (e.g. a ``fixtures/*.raw`` file) into raw messages."""
    framer = AmiFramer(expect_banner=expect_banner)
    yield from framer.feed(data)
    if framer.pending_bytes:
        yield framer._buffer
