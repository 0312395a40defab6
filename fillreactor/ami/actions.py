"""AMI actions sent outside panoramisk's futures: the table of replies we wait for, with timeouts.

Rules this module keeps:

* An action is written once, by ``ActionTable.send``, and never again: nothing here keeps a queue
  to re-send after a reconnect (panoramisk re-sends its "awaiting" actions after FullyBooted,
  spec/AMI.md B 1.2; an Originate re-sent after a reconnect dials the lead twice).
* Every action ends exactly once, through its ``on_done(ActionReply)`` callback, in one of three
  ways: its Response arrived (``REPLIED``), ``timeout`` seconds passed (``TIMEOUT``), or the
  connection was lost first (``LOST``, from ``lose_all``). Nothing is left pending forever.
* Only the first Response with the action's ActionID ends it. Events are never looked at here:
  the rows of a CoreShowChannels and the OriginateResponse of an Async Originate go to the event
  sink like every other event (the protocol offers only response frames to ``take``).
* ``on_error`` sees every Response that is not ``Success`` (before that action's ``on_done``), so
  the owner can react to "Asterisk is shutting down" whatever action it came from.
* Values are checked before anything is written: a CR or LF in a key or value would let a field
  inject AMI headers, so it is refused with ``ValueError`` (and nothing is sent). The same for an
  ActionID that is empty or already waiting.
* Callbacks run synchronously, in wire order, inside the protocol's ``data_received`` (replies)
  or a loop timer (timeouts); one that raises is logged and the others still run.
* The secret of a Login is never logged: the table logs action names and ActionIDs only.
"""

from __future__ import annotations

import asyncio
import enum
import itertools
import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from fillreactor.core.message import AmiMessage, MalformedMessage, encode_message

log = logging.getLogger(__name__)

Pairs = Sequence[tuple[str, str]]
FieldValue = str | int | Sequence[str]
Fields = Mapping[str, FieldValue] | Iterable[tuple[str, str]]

# ActionIDs of our own non-originate actions: a per-process token keeps two instances (leader and
# hot standby on the same Asterisk) and two links apart; Originates use the V call id instead.
_PROCESS_TOKEN = f"{os.getpid():x}{os.urandom(3).hex()}"
_action_numbers = itertools.count(1)


def new_action_id(kind: str) -> str:
    """A process-unique ActionID such as ``fr-1a2b3c4d5e-ping-17``."""
    return f"fr-{_PROCESS_TOKEN}-{kind}-{next(_action_numbers)}"


class ReplyStatus(enum.Enum):
    REPLIED = "replied"
    TIMEOUT = "timeout"
    LOST = "lost"


@dataclass(frozen=True, slots=True)
class ActionReply:
    """How an action ended. ``message`` is its Response when ``status`` is REPLIED."""

    action_id: str
    name: str
    status: ReplyStatus
    at: float
    message: AmiMessage | None = None
    detail: str = ""

    @property
    def success(self) -> bool:
        return self.message is not None and self.message.response == "Success"

    @property
    def text(self) -> str:
        """Asterisk's ``Message:`` (e.g. "Asterisk is shutting down"), else the detail."""
        if self.message is not None:
            return self.message.get("Message") or self.message.response
        return self.detail


def is_shutting_down(message: AmiMessage) -> bool:
    """An error reply that means the server is in (graceful) shutdown (manager.c process_message)."""
    return message.response != "Success" and "shutting down" in message.get("Message").lower()


def field_pairs(fields: Fields) -> list[tuple[str, str]]:
    """``{"Variable": ["a=1", "b=2"], "Timeout": 60000}`` or pairs -> ordered (key, str) pairs."""
    if isinstance(fields, Mapping):
        pairs: list[tuple[str, str]] = []
        for key, value in fields.items():
            if isinstance(value, (list, tuple)):
                pairs.extend((key, str(item)) for item in value)
            else:
                pairs.append((key, str(value)))
        return pairs
    return [(str(key), str(value)) for key, value in fields]


def encode_action(pairs: Pairs) -> bytes:
    """The wire bytes of an action; ``ValueError`` if a key or value could inject a header."""
    for key, value in pairs:
        if not key or key != key.strip() or ":" in key:
            raise ValueError(f"bad AMI header name {key!r}")
        if any(bad in key or bad in value for bad in ("\r", "\n")):
            raise ValueError(f"AMI header {key!r} contains a line break")
    return encode_message(pairs)


@dataclass(slots=True)
class _Pending:
    name: str
    on_done: Callable[[ActionReply], object]
    timer: asyncio.TimerHandle | None


class ActionTable:
    """The actions of one connection that still wait for their Response (see the module rules)."""

    def __init__(self, clock: Callable[[], float], loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.clock = clock
        self.loop = loop or asyncio.get_running_loop()
        self.on_error: Callable[[AmiMessage], object] | None = None
        self._pending: dict[str, _Pending] = {}
        self.callback_errors = 0

    def __len__(self) -> int:
        return len(self._pending)

    def __contains__(self, action_id: object) -> bool:
        return action_id in self._pending

    def send(
        self,
        write: Callable[[bytes], object],
        pairs: Pairs,
        *,
        timeout: float,
        on_done: Callable[[ActionReply], object],
    ) -> str:
        """Write one action (``pairs`` must hold Action and ActionID) and wait for its Response.

        Raises ``ValueError`` (nothing written) for bad fields, a missing or duplicate ActionID.
        """
        fields = {key.lower(): value for key, value in pairs}
        action_id = fields.get("actionid", "")
        name = fields.get("action", "")
        if not action_id or not name:
            raise ValueError("an action needs Action and ActionID")
        if action_id in self._pending:
            raise ValueError(f"ActionID {action_id!r} is already waiting for a reply")
        data = encode_action(pairs)
        timer = self.loop.call_later(timeout, self._expire, action_id, timeout)
        self._pending[action_id] = _Pending(name, on_done, timer)
        try:
            write(data)
        except Exception as exc:  # a transport that cannot write: the action never left
            self._end(action_id, ReplyStatus.LOST, None, f"write failed: {exc!r}")
        return action_id

    def take(self, action_id: str, frame: bytes) -> bool:
        """A response frame: True (consumed) when it answers one of our actions."""
        if action_id not in self._pending:
            return False
        try:
            message = AmiMessage.from_bytes(frame)
        except MalformedMessage as exc:
            # a broken reply still ends its action: waiting for a second one would wait forever
            self._end(action_id, ReplyStatus.REPLIED, AmiMessage({"Response": "Error"}), f"malformed: {exc}")
            return True
        if message.response != "Success" and self.on_error is not None:
            try:
                self.on_error(message)
            except Exception:
                self.callback_errors += 1
                log.exception("AMI error-reply hook raised")
        self._end(action_id, ReplyStatus.REPLIED, message, "")
        return True

    def lose_all(self, detail: str) -> None:
        """The connection is gone: every waiting action ends LOST, in the order they were sent."""
        for action_id in list(self._pending):
            self._end(action_id, ReplyStatus.LOST, None, detail)

    def _expire(self, action_id: str, timeout: float) -> None:
        pending = self._pending.get(action_id)
        if pending is not None:
            pending.timer = None
            self._end(
                action_id, ReplyStatus.TIMEOUT, None, f"no reply to {pending.name} within {timeout:g} s"
            )

    def _end(self, action_id: str, status: ReplyStatus, message: AmiMessage | None, detail: str) -> None:
        pending = self._pending.pop(action_id, None)
        if pending is None:
            return
        if pending.timer is not None:
            pending.timer.cancel()
        reply = ActionReply(action_id, pending.name, status, self.clock(), message, detail)
        try:
            pending.on_done(reply)
        except Exception:
            self.callback_errors += 1
            log.exception("AMI reply callback for %s %s raised", pending.name, action_id)
