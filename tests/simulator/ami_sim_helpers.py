"""Simulator test helpers: a raw AMI client and the per-call sequences of the captures.

Imported by name (fixtures live in conftest.py)."""

from __future__ import annotations

import asyncio
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
