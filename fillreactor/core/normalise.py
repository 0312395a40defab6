"""AMI messages of Asterisk 1.4 to 22 into typed events (``fillreactor.core.events``).

Rules this module keeps (everything that knows an AMI field name lives here):

* Pure: no I/O, no clock, no logging. The only state is the ``Normaliser``'s counters.
* Eleven event names are understood (``INTERESTING_EVENTS``); every other event is dropped by its
  name alone. ``normalise_raw`` reads the name from the ``Event: X`` first line of a framed message
  and returns None for an uninteresting name **without decoding or parsing the rest**: VarSet,
  Newexten, DeviceStateChange and friends are most of the traffic. Asterisk always puts ``Event:``
  first; a frame whose first line is not ``Event:`` (a response, an action) is not an event here.
* Field sets by version (spec/VICIDIAL_FILL.md 7.2). The state is ``ChannelState`` (numeric, 1.6+)
  or else the text ``State`` (1.4: ``State: Up``, mapped through ``STATE_BY_NAME``); a message with
  neither (1.4 Hangup, Newcallerid) gets ``STATE_UNKNOWN`` (-1). ``Linkedid`` is ``''`` before 12.
  ``CallerIDName`` and ``ConnectedLineName`` exist since 1.4 and 1.8; ``CallerID`` (1.4's number) is
  not carried by the events. A ``Timestamp:`` line (``timestampevents=yes``) is just another key.
* The placeholders ``<unknown>`` and ``<null>`` become ``''`` in every text field we keep.
* Repeated keys: the first value wins (as ``AmiMessage.get``).
* Malformed input never raises out of the public functions: ``normalise``/``normalise_raw``
  return None, and the ``Normaliser`` counts it with a reason. Malformed means: a channel event or
  snapshot row without ``Uniqueid``; a non-numeric ``ChannelState``/``Cause``/``ListItems``/
  ``Reason``; a text ``State`` that is not an Asterisk state name; a line without a colon; an
  empty key. Undecodable bytes are decoded with replacement (names survive, junk is visible).
* Speed: channel events of 1.6+ (the bulk of what is kept) are read straight from the bytes: a
  ``find`` per field we keep, a ``decode`` per value, the typed event built directly. Every other
  shape (legacy, missing fields, a line without a colon) takes the full parse (one ``decode``, one
  ``split``, a ``partition`` per line), and both paths give the same event (fuzz-tested). No regex,
  no intermediate ``AmiMessage`` on the raw path.
"""

from __future__ import annotations

import re
from collections import Counter, deque
from collections.abc import Callable

from fillreactor.core.events import (
    LIST_ITEMS_UNKNOWN,
    STATE_BY_NAME,
    STATE_UNKNOWN,
    CallerIdChanged,
    ChannelCreated,
    ChannelHungUp,
    ChannelStateChanged,
    Event,
    FullyBooted,
    OriginateResult,
    Shutdown,
    SnapshotEnd,
    SnapshotRow,
)
from fillreactor.core.message import AmiMessage

PLACEHOLDERS = frozenset({"<unknown>", "<null>", "<Unknown>"})

_EVENT_PREFIX = b"Event: "
_EVENT_PREFIX_LEN = len(_EVENT_PREFIX)
_FULLY_BOOTED = FullyBooted()


class MalformedEvent(ValueError):
    """An interesting event whose fields cannot be read; the message says why."""


Fields = dict[str, str]
Builder = Callable[[Fields], Event]


# -- field readers ------------------------------------------------------------------------------
def _text(fields: Fields, key: str) -> str:
    value = fields.get(key, "")
    return "" if value in PLACEHOLDERS else value


def _integer(fields: Fields, key: str, missing: int) -> int:
    value = fields.get(key)
    if value is None or value == "":
        return missing
    try:
        return int(value)
    except ValueError:
        raise MalformedEvent(f"{key} is not a number: {value[:40]!r}") from None


def _state(fields: Fields) -> int:
    numeric = fields.get("ChannelState")
    if numeric is not None:
        try:
            return int(numeric)
        except ValueError:
            raise MalformedEvent(f"ChannelState is not a number: {numeric[:40]!r}") from None
    text = fields.get("State")
    if text is None:
        return STATE_UNKNOWN
    state = STATE_BY_NAME.get(text)
    if state is not None:
        return state
    if text.isdigit():  # some 1.6 builds print the number under the old key
        return int(text)
    raise MalformedEvent(f"unknown State: {text[:40]!r}")


def _uniqueid(fields: Fields) -> str:
    uniqueid = fields.get("Uniqueid") or fields.get("UniqueID")  # CoreShowChannel 1.6-11: UniqueID
    if not uniqueid or uniqueid in PLACEHOLDERS:
        raise MalformedEvent(f"{fields.get('Event', '?')} without Uniqueid")
    return uniqueid


# -- builders: one per event name ---------------------------------------------------------------
def _channel_fields(
    fields: Fields, caller_id_name_key: str = "CallerIDName"
) -> tuple[str, str, str, int, str, str]:
    """The ``ChannelFields`` every channel event starts with, in their order."""
    return (
        fields.get("Channel", ""),
        _uniqueid(fields),
        _text(fields, "Linkedid"),
        _state(fields),
        _text(fields, caller_id_name_key),
        _text(fields, "ConnectedLineName"),
    )


def _channel_builder(cls: type) -> Builder:
    def build(fields: Fields) -> Event:
        return cls(*_channel_fields(fields))

    return build


def _hangup(fields: Fields) -> Event:
    return ChannelHungUp(*_channel_fields(fields), _integer(fields, "Cause", 0), fields.get("Cause-txt", ""))


def _snapshot_row(fields: Fields) -> Event:
    # CoreShowChannel of 1.6-11 spells the name CallerIDname (1.6 has only CallerIDnum)
    name_key = "CallerIDName" if "CallerIDName" in fields else "CallerIDname"
    return SnapshotRow(*_channel_fields(fields, name_key), fields.get("ActionID", ""))


def _snapshot_end(fields: Fields) -> Event:
    key = "ListItems" if "ListItems" in fields else "Items"  # 1.6-1.8 StatusComplete: Items only
    return SnapshotEnd(fields.get("ActionID", ""), _integer(fields, key, LIST_ITEMS_UNKNOWN))


def _originate_result(fields: Fields) -> Event:
    return OriginateResult(
        fields.get("ActionID", ""),
        fields.get("Response", "") == "Success",
        _integer(fields, "Reason", 0),
        fields.get("Channel", ""),
        _text(fields, "Uniqueid"),
        _text(fields, "CallerIDName"),
    )


def _fully_booted(fields: Fields) -> Event:
    return _FULLY_BOOTED


def _shutdown(fields: Fields) -> Event:
    return Shutdown(fields.get("Restart", "").strip().lower() in ("true", "yes", "1"))


BUILDERS: dict[str, Builder] = {
    "Newchannel": _channel_builder(ChannelCreated),
    "Newstate": _channel_builder(ChannelStateChanged),
    "NewCallerid": _channel_builder(CallerIdChanged),
    "Newcallerid": _channel_builder(CallerIdChanged),  # Asterisk 1.4 spelling
    "NewConnectedLine": _channel_builder(CallerIdChanged),
    "Hangup": _hangup,
    "CoreShowChannel": _snapshot_row,
    "Status": _snapshot_row,
    "CoreShowChannelsComplete": _snapshot_end,
    "StatusComplete": _snapshot_end,
    "OriginateResponse": _originate_result,
    "FullyBooted": _fully_booted,
    "Shutdown": _shutdown,
}
INTERESTING_EVENTS = frozenset(BUILDERS)
# The same table keyed by the raw name bytes, so the raw path looks up before decoding anything.
_RAW_BUILDERS: dict[bytes, Builder] = {name.encode("ascii"): build for name, build in BUILDERS.items()}


# -- parsing ------------------------------------------------------------------------------------
def parse_fields(frame: bytes) -> Fields:
    """``Key: Value`` lines of one framed message into a dict (first value wins).

    Raises MalformedEvent on a line without a colon or with an empty key.
    """
    fields: Fields = {}
    # reversed: later duplicates are overwritten by earlier ones, so the first value wins
    for line in reversed(frame.decode("utf-8", "replace").split("\r\n")):
        key, sep, value = line.partition(": ")
        if not sep:
            # rare: "Key:" with nothing after it, "Key:value", a stray LF, an empty line, junk
            key, sep, value = line.partition(":")
            if not sep:
                if not line.strip():
                    continue
                raise MalformedEvent(f"line without a colon: {line[:60]!r}")
            value = value.strip()
        if not key or key != key.strip():
            raise MalformedEvent(f"bad key in line: {line[:60]!r}")
        fields[key] = value.rstrip("\r")  # a stray CR before the line end is no part of a value
    return fields


def event_name(frame: bytes) -> bytes | None:
    """The raw event name of a framed message, or None when its first line is not ``Event:``."""
    if not frame.startswith(_EVENT_PREFIX):
        return None
    end = frame.find(b"\r", _EVENT_PREFIX_LEN)
    return frame[_EVENT_PREFIX_LEN:] if end < 0 else frame[_EVENT_PREFIX_LEN:end]


# -- the direct path: read only the fields we keep, straight from the bytes ---------------------
class _NeedsFullParse(Exception):
    """The frame has an unusual shape (e.g. ``Key:value`` without the space): parse every line."""


def _raw_value(frame: bytes, key: bytes) -> bytes | None:
    """The first value of ``key`` (given as ``b"\\r\\nKey: "``), or None when absent."""
    start = frame.find(key)
    if start < 0:
        if frame.find(key[:-1]) >= 0:  # present, but not as "Key: value"
            raise _NeedsFullParse
        return None
    start += len(key)
    end = frame.find(b"\r\n", start)
    return frame[start:] if end < 0 else frame[start:end]


def _raw_text(value: bytes | None) -> str:
    if value is None or value in _RAW_PLACEHOLDERS:
        return ""
    return value.decode("utf-8", "replace")


_RAW_PLACEHOLDERS = frozenset(p.encode() for p in PLACEHOLDERS)
_K_CHANNEL = b"\r\nChannel: "
_K_UNIQUEID = b"\r\nUniqueid: "
_K_LINKEDID = b"\r\nLinkedid: "
_K_STATE = b"\r\nChannelState: "
_K_CALLER_ID_NAME = b"\r\nCallerIDName: "
_K_CONNECTED_LINE_NAME = b"\r\nConnectedLineName: "
_K_CAUSE = b"\r\nCause: "
_K_CAUSE_TXT = b"\r\nCause-txt: "
_K_ACTION_ID = b"\r\nActionID: "


# Asterisk 12+ writes the channel snapshot in one fixed order (ast_manager_build_channel_state_string),
# so one regex reads every field we keep in a single C-level pass: about 5x cheaper than a find per field.
# Possessive quantifiers (3.11+): every run is followed by CRLF, so backtracking never helps.
_SNAPSHOT = re.compile(
    # the event line, then only what Asterisk puts before a snapshot (so no key occurs earlier)
    rb"Event: [^\r]*+(?:\r\n(?:Privilege|Timestamp|ActionID): [^\r]*+){0,3}"
    rb"\r\nChannel: ([^\r]*+)\r\nChannelState: (\d++)\r\nChannelStateDesc: [^\r]*+"
    rb"\r\nCallerIDNum: [^\r]*+\r\nCallerIDName: ([^\r]*+)\r\nConnectedLineNum: [^\r]*+"
    rb"\r\nConnectedLineName: ([^\r]*+)\r\nLanguage: [^\r]*+\r\nAccountCode: [^\r]*+"
    rb"\r\nContext: [^\r]*+\r\nExten: [^\r]*+\r\nPriority: [^\r]*+"
    rb"\r\nUniqueid: ([^\r]++)\r\nLinkedid: ([^\r]*+)"
)
_CAUSE = re.compile(rb"\r\nCause: (\d++)\r\nCause-txt: ([^\r]*+)")


def _snapshot_channel(frame: bytes, kind: int) -> Event | None:
    """The Asterisk 12+ shape read with one regex, or None when the frame is not exactly that shape."""
    match = _SNAPSHOT.match(frame)
    if match is None:
        return None
    end = match.end()
    # every line up to `end` was checked by the regex; a later line without a colon is malformed
    if frame.count(b":", end) < frame.count(b"\r\n", end):
        return None
    channel, state, caller_id_name, connected_line_name, uniqueid, linkedid = match.groups()
    placeholders = _RAW_PLACEHOLDERS
    if uniqueid in placeholders:
        return None
    # _raw_text inlined: this is the hottest line of the whole event path
    fields = (
        channel.decode("utf-8", "replace"),
        uniqueid.decode("utf-8", "replace"),
        "" if linkedid in placeholders else linkedid.decode("utf-8", "replace"),
        int(state),
        "" if caller_id_name in placeholders else caller_id_name.decode("utf-8", "replace"),
        "" if connected_line_name in placeholders else connected_line_name.decode("utf-8", "replace"),
    )
    if kind == _HANGUP:
        cause = _CAUSE.match(frame, end)
        if cause is None:
            return None
        return ChannelHungUp(*fields, int(cause.group(1)), cause.group(2).decode("utf-8", "replace"))
    if kind == _ROW:
        action_id = _raw_value(frame, _K_ACTION_ID)
        return SnapshotRow(*fields, "" if action_id is None else action_id.decode("utf-8", "replace"))
    return _DIRECT_CLASSES[kind](*fields)


def _direct_channel(frame: bytes, kind: int) -> Event | None:
    """A channel event of Asterisk 1.6+ read straight from the bytes, or None to take the full parse.

    Only the common, well-formed shape is taken here: numeric ChannelState, Uniqueid, Channel and
    CallerIDName present, and at least as many colons as lines (a line without a colon sends the
    frame to the full parse, which reports it). Anything else falls back; both paths agree.
    Used for the shapes ``_snapshot_channel`` does not take (1.6-11, unusual headers).
    """
    if frame.count(b":") <= frame.count(b"\r\n"):
        return None
    uniqueid = _raw_value(frame, _K_UNIQUEID)
    state = _raw_value(frame, _K_STATE)
    channel = _raw_value(frame, _K_CHANNEL)
    caller_id_name = _raw_value(frame, _K_CALLER_ID_NAME)
    if (
        not uniqueid
        or uniqueid in _RAW_PLACEHOLDERS
        or state is None
        or not state.isdigit()
        or channel is None
        or caller_id_name is None
    ):
        return None
    fields = (
        channel.decode("utf-8", "replace"),
        uniqueid.decode("utf-8", "replace"),
        _raw_text(_raw_value(frame, _K_LINKEDID)),
        int(state),
        _raw_text(caller_id_name),
        _raw_text(_raw_value(frame, _K_CONNECTED_LINE_NAME)),
    )
    if kind == _HANGUP:
        cause = _raw_value(frame, _K_CAUSE)
        if cause is None or not cause.isdigit():
            return None
        cause_txt = _raw_value(frame, _K_CAUSE_TXT)
        return ChannelHungUp(
            *fields, int(cause), "" if cause_txt is None else cause_txt.decode("utf-8", "replace")
        )
    if kind == _ROW:
        action_id = _raw_value(frame, _K_ACTION_ID)
        return SnapshotRow(*fields, "" if action_id is None else action_id.decode("utf-8", "replace"))
    return _DIRECT_CLASSES[kind](*fields)


_CREATED, _STATE_CHANGED, _CALLER_ID, _HANGUP, _ROW = range(5)
_DIRECT_CLASSES: dict[int, type] = {
    _CREATED: ChannelCreated,
    _STATE_CHANGED: ChannelStateChanged,
    _CALLER_ID: CallerIdChanged,
}
_DIRECT_KIND: dict[bytes, int] = {
    b"Newchannel": _CREATED,
    b"Newstate": _STATE_CHANGED,
    b"NewCallerid": _CALLER_ID,
    b"Newcallerid": _CALLER_ID,
    b"NewConnectedLine": _CALLER_ID,
    b"Hangup": _HANGUP,
    b"CoreShowChannel": _ROW,
    b"Status": _ROW,
}
# event name -> (full builder, direct-path kind or None): one lookup per frame on the hot path
_RAW_ROUTES: dict[bytes, tuple[Builder, int | None]] = {
    name: (build, _DIRECT_KIND.get(name)) for name, build in _RAW_BUILDERS.items()
}


def normalise_raw_full(frame: bytes) -> Event | None:
    """The raw path without the direct shortcut: parse every line, then build (raises if broken)."""
    if not frame.startswith(_EVENT_PREFIX):
        return None
    end = frame.find(b"\r", _EVENT_PREFIX_LEN)
    build = _RAW_BUILDERS.get(frame[_EVENT_PREFIX_LEN:] if end < 0 else frame[_EVENT_PREFIX_LEN:end])
    if build is None:
        return None
    return build(parse_fields(frame))


def normalise_raw_strict(frame: bytes) -> Event | None:
    """The raw fast path. None for an uninteresting (or non-event) frame; MalformedEvent if broken."""
    if not frame.startswith(_EVENT_PREFIX):
        return None
    end = frame.find(b"\r", _EVENT_PREFIX_LEN)
    name = frame[_EVENT_PREFIX_LEN:] if end < 0 else frame[_EVENT_PREFIX_LEN:end]
    route = _RAW_ROUTES.get(name)
    if route is None:
        return None
    build, kind = route
    if kind is not None:
        # the Asterisk 12+ shape in one regex first, then a find per field, then the full parse
        event = _snapshot_channel(frame, kind)
        if event is not None:
            return event
        try:
            event = _direct_channel(frame, kind)
        except _NeedsFullParse:
            event = None
        if event is not None:
            return event
    return build(parse_fields(frame))


def normalise_fields_strict(fields: Fields) -> Event | None:
    build = BUILDERS.get(fields.get("Event", ""))
    return None if build is None else build(fields)


def normalise_strict(message: AmiMessage) -> Event | None:
    """Like ``normalise`` but raises MalformedEvent."""
    return normalise_fields_strict(message.fields)


def normalise_raw(frame: bytes) -> Event | None:
    """A framed message (bytes from ``AmiFramer.feed``) to a typed event; None if dropped or broken."""
    try:
        return normalise_raw_strict(frame)
    except Exception:  # malformed input is never an exception for the caller
        return None


def normalise_fields(fields: Fields) -> Event | None:
    """A ``{key: first value}`` dict (e.g. from a panoramisk ``Message``) to a typed event, or None."""
    try:
        return normalise_fields_strict(fields)
    except Exception:
        return None


def normalise(message: AmiMessage) -> Event | None:
    """A parsed ``AmiMessage`` to a typed event; None if uninteresting or broken."""
    try:
        return normalise_fields_strict(message.fields)
    except Exception:
        return None


class Normaliser:
    """The normaliser with counters, one per AMI link.

    ``events`` counts produced events by type name, ``dropped`` the frames that were not an
    interesting event, ``errors`` the malformed ones; ``last_errors`` keeps the latest reasons
    (bounded) for the trace.
    """

    __slots__ = ("dropped", "errors", "events", "last_errors")

    def __init__(self, keep_errors: int = 8) -> None:
        self.events: Counter[type] = Counter()  # keyed by type: cheaper than its name per frame
        self.dropped = 0
        self.errors = 0
        self.last_errors: deque[str] = deque(maxlen=keep_errors)

    def feed_frame(self, frame: bytes) -> Event | None:
        # the per-frame path of every AMI link: _count inlined
        try:
            event = normalise_raw_strict(frame)
        except Exception as exc:  # never let a wire problem escape: count it
            self._error(exc, frame[:60])
            return None
        if event is None:
            self.dropped += 1
        else:
            self.events[type(event)] += 1
        return event

    def feed_message(self, message: AmiMessage) -> Event | None:
        try:
            event = normalise_fields_strict(message.fields)
        except Exception as exc:
            self._error(exc, message.event[:60])
            return None
        return self._count(event)

    def _count(self, event: Event | None) -> Event | None:
        if event is None:
            self.dropped += 1
        else:
            self.events[type(event)] += 1
        return event

    def _error(self, exc: Exception, where: object) -> None:
        self.errors += 1
        self.last_errors.append(f"{type(exc).__name__}: {exc} in {where!r}")

    def snapshot(self) -> dict[str, object]:
        """Counters for the trace/metrics."""
        return {
            "events": {kind.__name__: count for kind, count in self.events.items()},
            "dropped": self.dropped,
            "errors": self.errors,
            "last_errors": list(self.last_errors),
        }
