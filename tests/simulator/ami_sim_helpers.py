"""Simulator test helpers: a raw AMI client and the per-call sequences of the captures.

Imported by name (fixtures live in conftest.py)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterable
from pathlib import Path

from fillreactor.core.message import AmiFramer, AmiMessage, encode_message, iter_messages

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "asterisk22"
CAPTURE_PORT = {"dialer1": 5038, "dialer2": 5039, "dialer3": 5040}
FAST = 0.01  # real seconds per simulated second


class RawAmiClient:
    """A minimal AMI client over asyncio streams, reading whole messages with AmiFramer."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.framer = AmiFramer()
        self.pending: list[AmiMessage] = []

    @classmethod
    async def connect(cls, host: str, port: int) -> RawAmiClient:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    def send(self, *pairs: tuple[str, str]) -> None:
        self.writer.write(encode_message(pairs))

    async def read(self) -> AmiMessage:
        """The next message; raises EOFError when the server closed the connection."""
        while not self.pending:
            data = await self.reader.read(65536)
            if not data:
                raise EOFError
            self.pending.extend(AmiMessage.from_bytes(frame) for frame in self.framer.feed(data))
        return self.pending.pop(0)

    async def read_until(self, predicate: Callable[[AmiMessage], bool]) -> list[AmiMessage]:
        """Messages up to and including the first that matches."""
        seen: list[AmiMessage] = []
        while True:
            message = await self.read()
            seen.append(message)
            if predicate(message):
                return seen

    async def action(self, *pairs: tuple[str, str]) -> AmiMessage:
        """Send an action and return its response (events before it are kept in ``skipped``)."""
        action_id = dict(pairs).get("ActionID")
        self.send(*pairs)
        messages = await self.read_until(lambda m: bool(m.response) and m.action_id == (action_id or ""))
        return messages[-1]

    async def login(self, username: str = "cron", secret: str = "1234", events: str = "on") -> AmiMessage:
        return await self.action(
            ("Action", "Login"),
            ("ActionID", "login"),
            ("Username", username),
            ("Secret", secret),
            ("Events", events),
        )

    async def closed_by_peer(self) -> bool:
        try:
            while True:
                await self.read()
        except (EOFError, ConnectionError):
            return True

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except (ConnectionError, OSError):
            pass


# -- the captures, per call -----------------------------------------------------------------------
def channel_role(name: str) -> str:
    """``d1``/``d2`` (originated pair), ``t1``/``t2`` (trunk pair), ``bare`` (a dial string)."""
    if ";" not in name:
        return "bare"
    location, _, leg = name.rpartition(";")
    context = location.partition("@")[2].rpartition("-")[0]
    return ("t" if context == "trunk" else "d") + leg


def event_shape(message: AmiMessage) -> tuple[str, str]:
    """An event as (name, roles): Dial* events as ``caller>dest``, LocalBridge by its first leg."""
    channel = message.get("Channel")
    dest = message.get("DestChannel")
    if dest:
        return message.event, f"{channel_role(channel) if channel else '-'}>{channel_role(dest)}"
    if message.get("LocalOneChannel"):
        return message.event, channel_role(message.get("LocalOneChannel"))
    return message.event, channel_role(channel) if channel else "-"


def call_sequences(messages: Iterable[AmiMessage]) -> dict[str, list[tuple[str, str]]]:
    """Call-class events of one server grouped by call (Linkedid), in wire order.

    OriginateResponse and Bridge{Create,Destroy} carry no Linkedid: they are tied to their call by
    CallerIDName and BridgeUniqueid. DeviceStateChange is per device, not per call: left out.
    """
    by_call: dict[str, list[tuple[str, str]]] = {}
    call_of_name: dict[str, str] = {}
    call_of_bridge: dict[str, str] = {}
    held: list[AmiMessage] = []  # BridgeCreate comes before the BridgeEnter that names its call
    for message in messages:
        if not message.get("Privilege", "").startswith("call") or message.event == "DeviceStateChange":
            continue
        linkedid = message.get("Linkedid") or message.get("DestLinkedid") or message.get("LocalOneLinkedid")
        if message.event == "OriginateResponse":
            linkedid = call_of_name.get(message.get("CallerIDName"), "")
        elif message.event.startswith("Bridge") and not linkedid:
            if message.event == "BridgeCreate":
                held.append(message)
                continue
            linkedid = call_of_bridge.get(message.get("BridgeUniqueid"), "")
        if not linkedid:
            continue
        if message.get("CallerIDName", "").startswith("V") and message.get("Linkedid"):
            call_of_name[message.get("CallerIDName")] = linkedid
        if message.event == "BridgeEnter" and message.get("BridgeUniqueid") not in call_of_bridge:
            call_of_bridge[message.get("BridgeUniqueid")] = linkedid
            for created in [m for m in held if m.get("BridgeUniqueid") == message.get("BridgeUniqueid")]:
                by_call.setdefault(linkedid, []).append(event_shape(created))
                held.remove(created)
        by_call.setdefault(linkedid, []).append(event_shape(message))
    return by_call


def captured_messages(port: int) -> list[AmiMessage]:
    data = (FIXTURES / f"asterisk22-dialer-{port}.raw").read_bytes()
    return [AmiMessage.from_bytes(frame) for frame in iter_messages(data)]


def captured_call(port: int, dial_string: str) -> list[tuple[str, str]]:
    """The call-class sequence of the captured call whose originated ``;1`` dials ``dial_string``."""
    messages = captured_messages(port)
    first = next(
        m for m in messages if m.event == "Newchannel" and m.get("Channel").startswith(dial_string + "-")
    )
    return call_sequences(messages)[first.get("Linkedid")]


# -- whole calls, every class of event ------------------------------------------------------------
def messages_of_call(messages: Iterable[AmiMessage], linkedid: str) -> list[AmiMessage]:
    """Every broadcast event of one call, in wire order, whatever its class.

    Events with the call's Linkedid (or DestLinkedid/LocalOneLinkedid), plus what carries none: the
    DeviceStateChange of the call's two devices, its OriginateResponse (by CallerIDName) and its
    bridge's BridgeCreate/BridgeDestroy. Action-list rows (no Privilege) and Status rows are left out.
    """
    messages = list(messages)
    devices: set[str] = set()
    bridges: set[str] = set()
    call_id = None
    for message in messages:
        if message.get("Linkedid") == linkedid and message.get("Channel"):
            devices.add(message.get("Channel").rsplit("-", 1)[0])
            if message.get("CallerIDName", "").startswith("V"):
                call_id = message.get("CallerIDName")
        if message.event == "BridgeEnter" and message.get("Linkedid") == linkedid:
            bridges.add(message.get("BridgeUniqueid"))
    found = []
    for message in messages:
        if not message.get("Privilege") or message.event == "Status":
            continue
        own = message.get("Linkedid") or message.get("DestLinkedid") or message.get("LocalOneLinkedid")
        if (
            own == linkedid
            or (message.event == "DeviceStateChange" and message.get("Device") in devices)
            or (message.event == "OriginateResponse" and message.get("CallerIDName") == call_id)
            or (message.event.startswith("Bridge") and message.get("BridgeUniqueid") in bridges)
        ):
            found.append(message)
    return found


_ID_KEYS = frozenset(
    prefix + key for prefix in ("", "Dest", "LocalOne", "LocalTwo") for key in ("Uniqueid", "Linkedid")
) | {"BridgeUniqueid", "ActionID"}
_TIMED_VARIABLES = frozenset(
    {"RINGTIME_MS", "ANSWEREDTIME", "ANSWEREDTIME_MS", "DIALEDTIME", "DIALEDTIME_MS"}
)
_SEQUENCE = re.compile(r"-([0-9a-f]{8})(;|$)")


def comparable(message: AmiMessage, names: dict[str, str]) -> list[tuple[str, str]]:
    """A message with what differs from run to run replaced by stable names.

    Uniqueids, Linkedids, bridge ids, ActionIDs and Local sequence numbers are numbered in order of
    appearance (``names`` is shared across one call's messages); the timed VarSet values (elapsed
    milliseconds) and ``Wait()`` arguments (the lab's dialplan waits RAND(1,3) and RAND(2,8)) are
    masked. Everything else, keys and their order included, must be equal.
    """
    pairs = []
    for key, value in message.pairs:
        value = _SEQUENCE.sub(
            lambda match: "-" + names.setdefault("seq " + match.group(1), f"S{len(names)}") + match.group(2),
            value,
        )
        if key in _ID_KEYS and value not in ("", "<unknown>"):
            value = names.setdefault(value, f"ID{len(names)}")
        if key == "Value" and message.get("Variable") in _TIMED_VARIABLES:
            value = "<time>"
        if key == "AppData" and message.get("Application") == "Wait":
            value = "<seconds>"
        pairs.append((key, value))
    return pairs


def comparable_call(messages: Iterable[AmiMessage]) -> list[list[tuple[str, str]]]:
    names: dict[str, str] = {}
    return [comparable(message, names) for message in messages]


def captured_whole_call(port: int, dial_string: str) -> list[AmiMessage]:
    """Every event of the captured call whose originated ``;1`` dials ``dial_string``."""
    messages = captured_messages(port)
    first = next(
        m for m in messages if m.event == "Newchannel" and m.get("Channel").startswith(dial_string + "-")
    )
    return messages_of_call(messages, first.get("Linkedid"))


def count_by_class(messages: Iterable[AmiMessage]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for message in messages:
        klass = message.get("Privilege").split(",")[0]
        counts[klass] = counts.get(klass, 0) + 1
    return counts


class ChunkRecorder(asyncio.Protocol):
    """A raw AMI client at the protocol level: keeps every ``data_received`` chunk (one recv())."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.framer = AmiFramer()
        self.messages: list[AmiMessage] = []
        self.transport: asyncio.Transport | None = None
        self.changed = asyncio.Event()
        self.lost = asyncio.Event()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.chunks.append(data)
        self.messages.extend(AmiMessage.from_bytes(frame) for frame in self.framer.feed(data))
        self.changed.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost.set()
        self.changed.set()

    def send(self, *pairs: tuple[str, str]) -> None:
        assert self.transport is not None
        self.transport.write(encode_message(pairs))

    async def wait_for(self, predicate: Callable[[AmiMessage], bool], timeout: float = 10.0) -> AmiMessage:
        async def scan() -> AmiMessage:
            seen = 0
            while True:
                for message in self.messages[seen:]:
                    if predicate(message):
                        return message
                seen = len(self.messages)
                self.changed.clear()
                if self.lost.is_set():
                    raise EOFError
                await self.changed.wait()

        return await asyncio.wait_for(scan(), timeout)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def open_recorder(host: str, port: int) -> ChunkRecorder:
    _transport, protocol = await asyncio.get_running_loop().create_connection(ChunkRecorder, host, port)
    return protocol


def login_pairs(events: str = "on", action_id: str = "login") -> tuple[tuple[str, str], ...]:
    return (
        ("Action", "Login"),
        ("ActionID", action_id),
        ("Username", "cron"),
        ("Secret", "1234"),
        ("Events", events),
    )


def originate_pairs(
    action_id: str, channel: str, callerid: str, *, exten: str = "8365", timeout_ms: int = 60000
) -> tuple[tuple[str, str], ...]:
    return (
        ("Action", "Originate"),
        ("ActionID", action_id),
        ("Channel", channel),
        ("Exten", exten),
        ("Context", "default"),
        ("Priority", "1"),
        ("Callerid", callerid),
        ("Timeout", str(timeout_ms)),
        ("Async", "true"),
    )
