"""Channel snapshots and the AMI event shapes built from them, as Asterisk 22 writes them.

Rules this module keeps (spec/AMI.md A§4-5, checked against fixtures/asterisk22):

* A channel snapshot is always written in the captured order: ``Channel, ChannelState,
  ChannelStateDesc, CallerIDNum, CallerIDName, ConnectedLineNum, ConnectedLineName, Language,
  AccountCode, Context, Exten, Priority, Uniqueid, Linkedid``; Dial* events prefix it with ``Dest``
  and LocalBridge with ``LocalOne``/``LocalTwo``.
* An event is ``Event``, ``Privilege`` (``<class>,all``), then its fields. Action-list rows
  (CoreShowChannel) have no Privilege; ``Status`` rows carry ``Privilege: Call`` and ActionID last.
* Hangup adds ``Cause`` and ``Cause-txt``; (Soft)HangupRequest add ``Cause`` only.
* A Dial* event for the originated ``;1`` has no calling channel: only ``Dest*`` fields.
"""

from __future__ import annotations

from dataclasses import dataclass, field

Pairs = list[tuple[str, str]]

UNKNOWN = "<unknown>"

STATE_DESC = {0: "Down", 4: "Ring", 5: "Ringing", 6: "Up", 7: "Busy"}

CAUSE_TEXT = {
    0: "Unknown",
    16: "Normal Clearing",
    17: "User busy",
    19: "User alerting, no answer",
    34: "Circuit/channel congestion",
}

BRIDGE_FIELDS = ("BridgeType", "basic"), ("BridgeTechnology", "simple_bridge"), ("BridgeCreator", UNKNOWN)


@dataclass
class Channel:
    name: str
    uniqueid: str
    linkedid: str
    context: str
    exten: str
    state: int = 0
    priority: int = 1
    caller_num: str = UNKNOWN
    caller_name: str = UNKNOWN
    connected_num: str = UNKNOWN
    connected_name: str = UNKNOWN
    application: str = ""
    application_data: str = ""
    bridge_id: str = ""
    created_at: float = 0.0  # simulated epoch seconds
    language: str = "en"
    account_code: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    def snapshot(self, prefix: str = "") -> Pairs:
        return [
            (prefix + "Channel", self.name),
            (prefix + "ChannelState", str(self.state)),
            (prefix + "ChannelStateDesc", STATE_DESC.get(self.state, "Unknown")),
            (prefix + "CallerIDNum", self.caller_num),
            (prefix + "CallerIDName", self.caller_name),
            (prefix + "ConnectedLineNum", self.connected_num),
            (prefix + "ConnectedLineName", self.connected_name),
            (prefix + "Language", self.language),
            (prefix + "AccountCode", self.account_code),
            (prefix + "Context", self.context),
            (prefix + "Exten", self.exten),
            (prefix + "Priority", str(self.priority)),
            (prefix + "Uniqueid", self.uniqueid),
            (prefix + "Linkedid", self.linkedid),
        ]


def duration_hms(seconds: float) -> str:
    whole = max(0, int(seconds))
    return f"{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


# -- broadcast events ------------------------------------------------------------------------------
def channel_event(event: str, channel: Channel, *extra: tuple[str, str], klass: str = "call") -> Pairs:
    return [("Event", event), ("Privilege", f"{klass},all"), *channel.snapshot(), *extra]


def hangup_event(channel: Channel, cause: int) -> Pairs:
    return channel_event(
        "Hangup", channel, ("Cause", str(cause)), ("Cause-txt", CAUSE_TEXT.get(cause, "Unknown"))
    )


def hangup_request_event(event: str, channel: Channel, cause: int) -> Pairs:
    return channel_event(event, channel, ("Cause", str(cause)))


def newexten_event(channel: Channel, application: str, app_data: str) -> Pairs:
    return channel_event(
        "Newexten",
        channel,
        ("Extension", channel.exten),
        ("Application", application),
        ("AppData", app_data),
        klass="dialplan",
    )


def varset_event(channel: Channel, variable: str, value: str) -> Pairs:
    return channel_event("VarSet", channel, ("Variable", variable), ("Value", value), klass="dialplan")


def dial_event(event: str, caller: Channel | None, dest: Channel, *extra: tuple[str, str]) -> Pairs:
    pairs: Pairs = [("Event", event), ("Privilege", "call,all")]
    if caller is not None:
        pairs += caller.snapshot()
    return pairs + dest.snapshot("Dest") + list(extra)


def local_bridge_event(one: Channel, two: Channel, context: str, exten: str) -> Pairs:
    return [
        ("Event", "LocalBridge"),
        ("Privilege", "call,all"),
        *one.snapshot("LocalOne"),
        *two.snapshot("LocalTwo"),
        ("Context", context),
        ("Exten", exten),
        ("LocalOptimization", "Yes"),
    ]


def bridge_fields(bridge_id: str, members: int) -> Pairs:
    return [
        ("BridgeUniqueid", bridge_id),
        *BRIDGE_FIELDS,
        ("BridgeName", UNKNOWN),
        ("BridgeNumChannels", str(members)),
        ("BridgeVideoSourceMode", "none"),
    ]


def bridge_event(event: str, bridge_id: str, members: int, channel: Channel | None = None) -> Pairs:
    pairs: Pairs = [("Event", event), ("Privilege", "call,all"), *bridge_fields(bridge_id, members)]
    if channel is not None:
        pairs += channel.snapshot()
    return pairs


def device_state_event(device: str, state: str) -> Pairs:
    return [("Event", "DeviceStateChange"), ("Privilege", "call,all"), ("Device", device), ("State", state)]


# -- action-list rows ------------------------------------------------------------------------------
def core_show_channel_row(channel: Channel, action_id: str, now: float) -> Pairs:
    return [
        ("Event", "CoreShowChannel"),
        ("ActionID", action_id),
        *channel.snapshot(),
        ("Application", channel.application),
        ("ApplicationData", channel.application_data),
        ("Duration", duration_hms(now - channel.created_at)),
        ("BridgeId", channel.bridge_id),
    ]


def status_row(channel: Channel, action_id: str, now: float) -> Pairs:
    return [
        ("Event", "Status"),
        ("Privilege", "Call"),  # capital C, as captured
        *channel.snapshot(),
        ("Type", "Local"),
        ("DNID", ""),
        ("EffectiveConnectedLineNum", channel.connected_num),
        ("EffectiveConnectedLineName", channel.connected_name),
        ("TimeToHangup", "0"),
        ("BridgeID", channel.bridge_id),
        ("Application", channel.application),
        ("Data", channel.application_data),
        ("Nativeformats", "(slin)"),
        ("Readformat", "slin"),
        ("Readtrans", ""),
        ("Writeformat", "slin"),
        ("Writetrans", ""),
        ("Callgroup", "0"),
        ("Pickupgroup", "0"),
        ("Seconds", str(max(0, int(now - channel.created_at)))),
        ("ActionID", action_id),
    ]


def concise_line(channel: Channel, now: float) -> str:
    """One ``core show channels concise`` line (``!``-separated, as VICIdial's AST_update reads it)."""
    caller_num = "" if channel.caller_num == UNKNOWN else channel.caller_num
    parts = [
        channel.name,
        channel.context,
        channel.exten,
        str(channel.priority),
        STATE_DESC.get(channel.state, "Unknown"),
        channel.application,
        channel.application_data,
        caller_num,
        "",
        "",
        "3",
        str(max(0, int(now - channel.created_at))),
        channel.bridge_id,
        channel.uniqueid,
    ]
    return "!".join(parts)
