"""One short AMI session for ``fillreactor check``: can fillreactor log in, and may it do what it needs?

Rules this module keeps (spec/AMI.md part B; Asterisk main/manager.c):

* One connection: banner, ``Login`` (the same user and secret a link uses, ``Events: system``),
  ``ListCommands``, ``Logoff``; every step bounded by ``timeout``. Nothing is originated and no
  filter is left behind (filters live as long as their session, and this one ends at once).
* What the user may do is read from ``ListCommands``: Asterisk lists only the actions the user's
  ``write=`` permissions allow (or that need none). fillreactor needs ``Originate`` (write
  ``originate``) to dial over AMI, ``CoreShowChannels`` (write ``system`` or ``reporting``) to
  resync, and uses ``Filter`` (write ``system``) when ``ami_filter`` is on.
* ``FullyBooted`` right after the login shows the user reads ``system`` events: a link waits for
  it before it uses the server (Asterisk sends it to a new session only when that is allowed).
  Read ``call`` (the channel events) cannot be tested without a call; ``check`` says so.
* The secret is written to the socket only: no message here holds it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

from fillreactor.ami.actions import encode_action, new_action_id
from fillreactor.ami.config import LinkTarget
from fillreactor.core.message import AmiFramer, AmiMessage, MalformedMessage

FULLY_BOOTED_WAIT = 0.5  # Asterisk writes it right behind the login reply


@dataclass
class ProbeResult:
    server: str
    address: str
    connected: bool = False
    banner: str = ""
    logged_in: bool = False
    error: str = ""
    commands: frozenset[str] = frozenset()
    fully_booted: bool = False
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def may(self, action: str) -> bool:
        return action.lower() in self.commands


class _Session:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.framer = AmiFramer()
        self.queue: list[AmiMessage] = []

    async def next_message(self) -> AmiMessage:
        while not self.queue:
            data = await self.reader.read(65536)
            if not data:
                raise ConnectionError("the server closed the connection")
            for frame in self.framer.feed(data):
                with contextlib.suppress(MalformedMessage):
                    self.queue.append(AmiMessage.from_bytes(frame))
        return self.queue.pop(0)

    async def banner(self) -> str:
        while self.framer.banner is None:
            data = await self.reader.read(65536)
            if not data:
                raise ConnectionError("the server closed the connection before its banner")
            for frame in self.framer.feed(data):
                with contextlib.suppress(MalformedMessage):
                    self.queue.append(AmiMessage.from_bytes(frame))
        return self.framer.banner

    async def action(self, pairs: list[tuple[str, str]]) -> tuple[AmiMessage, list[AmiMessage]]:
        """The response to one action, and the events read before it."""
        action_id = new_action_id("check")
        self.writer.write(encode_action([*pairs, ("ActionID", action_id)]))
        await self.writer.drain()
        events: list[AmiMessage] = []
        while True:
            message = await self.next_message()
            if message.response and message.action_id == action_id:
                return message, events
            events.append(message)


async def probe(target: LinkTarget, *, timeout: float = 5.0) -> ProbeResult:
    """Log in to one server and list what its user may do (see the module rules); never raises."""
    result = ProbeResult(target.server, target.address)
    started = time.monotonic()
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(timeout):
            try:
                reader, writer = await asyncio.open_connection(target.host, target.port)
            except OSError as error:
                result.error = f"cannot connect to {target.address}: {error.strerror or error}"
                return result
            result.connected = True
            session = _Session(reader, writer)
            result.banner = await session.banner()
            login, _ = await session.action(
                [
                    ("Action", "Login"),
                    ("Username", target.username),
                    ("Secret", target.secret),
                    ("Events", "system"),
                ]
            )
            if login.response != "Success":
                reason = login.get("Message") or login.response
                result.error = f"login as {target.username!r} refused: {reason}"
                return result
            result.logged_in = True
            listing, events = await session.action([("Action", "ListCommands")])
            result.fully_booted = any(e.event == "FullyBooted" for e in events)
            if listing.response == "Success":
                result.commands = frozenset(
                    key.lower()
                    for key, _value in listing.pairs
                    if key.lower() not in ("response", "actionid", "message")
                )
            else:
                result.notes.append(f"ListCommands refused: {listing.get('Message') or listing.response}")
            if not result.fully_booted:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(FULLY_BOOTED_WAIT):
                        while not result.fully_booted:
                            result.fully_booted = (await session.next_message()).event == "FullyBooted"
            with contextlib.suppress(TimeoutError, ConnectionError):
                async with asyncio.timeout(min(1.0, timeout)):
                    await session.action([("Action", "Logoff")])
    except TimeoutError:
        step = "ListCommands" if result.logged_in else ("the login" if result.banner else "its banner")
        if not result.error:
            result.error = f"no answer from {target.address} within {timeout:g} s (waiting for {step})"
    except (ConnectionError, OSError) as error:
        result.error = f"{target.address}: {error}"
    finally:
        result.seconds = time.monotonic() - started
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
    return result
