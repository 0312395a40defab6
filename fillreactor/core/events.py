"""Typed AMI events: the only vocabulary the channel-count model understands.

Rules this module keeps:

* Events are small values, independent of the Asterisk version that produced them. The
  normaliser (``fillreactor.core.normalise``) maps the field sets of Asterisk 1.4/1.8, 11 and 12-22
  onto these types; nothing downstream looks at raw AMI headers.
* ``linkedid`` is ``''`` when the Asterisk version has no Linkedid (before 12). ``state`` is the
  numeric ChannelState (0 Down, 4 Ring, 5 Ringing, 6 Up, 7 Busy, ...); legacy text states are
  mapped to the same numbers; ``STATE_UNKNOWN`` (-1) when the event carries no state. Unknown
  values are ``''`` (the AMI ``<unknown>`` placeholder is normalised to ``''``).
* Events are slots dataclasses compared by value, and nobody mutates one. They are deliberately not
  ``frozen``: a frozen dataclass costs about 1 us more to build (``object.__setattr__`` per field),
  a quarter of the whole bytes-to-model path per channel event (tests/bench/bench_parse.py).
* An event does not know its server: the AMI link that read it does, and passes the server to the
  model alongside the event.
"""

from __future__ import annotations

from dataclasses import dataclass

# Asterisk's enum ast_channel_state.
STATE_DOWN = 0
STATE_RESERVED = 1
STATE_OFFHOOK = 2
STATE_DIALING = 3
STATE_RING = 4
STATE_RINGING = 5
STATE_UP = 6
STATE_BUSY = 7
STATE_DIALING_OFFHOOK = 8
STATE_PRERING = 9
# A channel event of an Asterisk that does not report a state (1.4 Hangup and Newcallerid).
STATE_UNKNOWN = -1
# SnapshotEnd.list_items when the server did not say (StatusComplete of old versions has no count).
LIST_ITEMS_UNKNOWN = -1

STATE_BY_NAME: dict[str, int] = {
    "Down": STATE_DOWN,
    "Rsrvd": STATE_RESERVED,
    "Reserved": STATE_RESERVED,
    "OffHook": STATE_OFFHOOK,
    "Dialing": STATE_DIALING,
    "Ring": STATE_RING,
    "Ringing": STATE_RINGING,
    "Up": STATE_UP,
    "Busy": STATE_BUSY,
    "Dialing Offhook": STATE_DIALING_OFFHOOK,
    "Pre-ring": STATE_PRERING,
}

# OriginateResponse Reason codes (Asterisk's AST_CONTROL_* values), as observed on Asterisk 22.
REASON_FAILED = 0  # e.g. no such context/extension
REASON_HANGUP = 1
REASON_RING_TIMEOUT = 3  # no answer
REASON_ANSWERED = 4
REASON_BUSY = 5
REASON_CONGESTION = 8


@dataclass(slots=True)
class ChannelFields:
    """The channel-snapshot fields every channel event carries."""

    channel: str
    uniqueid: str
    linkedid: str
    state: int
    caller_id_name: str
    connected_line_name: str


@dataclass(slots=True)
class ChannelCreated(ChannelFields):
    """Newchannel."""


@dataclass(slots=True)
class ChannelStateChanged(ChannelFields):
    """Newstate."""


@dataclass(slots=True)
class CallerIdChanged(ChannelFields):
    """NewCallerid / Newcallerid (1.4) / NewConnectedLine: the channel's names changed."""


@dataclass(slots=True)
class ChannelHungUp(ChannelFields):
    """Hangup: the channel is gone. ``cause`` is the Q.850 cause (0 when unknown)."""

    cause: int
    cause_txt: str


@dataclass(slots=True)
class SnapshotRow(ChannelFields):
    """One CoreShowChannel row (or a Status row) of the snapshot answering ``action_id``."""

    action_id: str


@dataclass(slots=True)
class SnapshotEnd:
    """CoreShowChannelsComplete: ``list_items`` is what Asterisk says it sent."""

    action_id: str
    list_items: int


@dataclass(slots=True)
class OriginateResult:
    """OriginateResponse. On failure ``channel`` is the bare dial string and ``uniqueid`` is ''."""

    action_id: str
    success: bool
    reason: int
    channel: str
    uniqueid: str
    caller_id_name: str


@dataclass(slots=True)
class FullyBooted:
    """The server is ready to take actions (sent right after login, or later after a slow boot)."""


@dataclass(slots=True)
class Shutdown:
    """The server is going away; ``restart`` when Asterisk says it will come back."""

    restart: bool


ChannelEvent = ChannelCreated | ChannelStateChanged | CallerIdChanged | ChannelHungUp
Event = ChannelEvent | SnapshotRow | SnapshotEnd | OriginateResult | FullyBooted | Shutdown
