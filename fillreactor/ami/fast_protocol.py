"""A panoramisk 1.4 protocol that sends the AMI event firehose straight to a synchronous sink.

Plug it in with ``panoramisk.Manager(protocol_factory=FastAMIProtocol, on_event=sink, ...)``, or
``protocol_factory=functools.partial(FastAMIProtocol, on_event=sink)``, or set ``manager.on_event``.
The sink is called as ``sink(event)`` with a typed ``fillreactor.core.events`` event.

Rules this module keeps (what it changes against panoramisk's ``AMIProtocol`` and why):

* Framing is ``AmiFramer``: messages are cut on the blank line **before** decoding and each is
  decoded on its own (UTF-8, replacement). panoramisk decodes each TCP chunk with
  ``errors='ignore'`` and loses a multi-byte character split between reads (spec/AMI.md B 1.8).
* An event that no pending action is waiting for is normalised from its bytes
  (``Normaliser.feed_frame``) and handed to the sink; uninteresting names are skipped by name.
  No panoramisk ``Message`` is built for them and ``Manager.dispatch`` is not run: that is where
  panoramisk spends its time (about 16 us per event, spec/AMI.md B 1.10). So
  ``register_event`` handlers only see the names in ``dispatched_event_names`` (FullyBooted and
  Shutdown by default, which panoramisk itself needs) plus ``extra_dispatch_names``.
* Responses, and events whose ActionID belongs to a pending action (``self.responses``: the
  CoreShowChannel rows of a CoreShowChannels, an OriginateResponse of an Async Originate), become
  panoramisk ``Message`` objects and go through panoramisk's own ``handle_message``, so
  ``send_action`` futures resolve exactly as with the stock protocol. Such events are consumed by
  their action and are not sent to the sink (panoramisk's rule too); ``event_of(message)`` turns
  those messages into typed events.
* FullyBooted and Shutdown reach the sink **and** panoramisk: FullyBooted re-sends the awaiting
  actions, Shutdown closes the connection and lets the Manager reconnect, as in panoramisk.
* Nothing escapes ``data_received``. A raising sink is counted (``sink_errors``) and logged (rate
  limited); the connection and the rest of the read survive (panoramisk drops the connection and
  the rest of the chunk). An exception inside panoramisk's ``handle_message`` (for instance its
  ``KeyError('async')`` on an Originate without Async) fails that action's future instead of
  leaving it pending forever.
* The banner sets ``self.version`` and is logged as panoramisk does. ``save_stream`` gets the raw
  bytes when it is a file-like object with ``write`` (panoramisk's path variant writes bytes to a
  text file and is not supported).

Hooks for an owner that bypasses panoramisk's action futures (``fillreactor.ami.link`` does):

* ``timed_sink``, when set, replaces ``on_event``: it is called as ``timed_sink(event, read_at)``,
  ``read_at`` being ``clock()`` read once when the ``data_received`` call that carried the event
  started (for reaction-latency measurement). Same cost per event as the plain sink.
* ``replies`` (an ``ActionReplies``: ``take(action_id, frame) -> bool``): a response frame whose
  ActionID it takes goes to it and not to panoramisk. Events are never offered to it, so the rows
  and OriginateResponses of such actions reach the sink like every other event.
* ``on_control(event)`` sees FullyBooted and Shutdown after the sink, before panoramisk does.
* ``on_lost(exc)`` is called exactly once, when the connection is lost (whoever closed it), even
  before panoramisk's Manager has attached itself (``factory`` None: panoramisk would raise there).
* ``on_frame(frame, read_at)``, when set, is called for every complete frame (bytes without the
  terminating blank line: responses and events alike, whether kept or dropped) just before that
  frame is handled, so anything the handling causes (a state change, an event) comes after it.
  ``fillreactor record`` writes the AMI traffic with it. A raising tap is counted like a failed
  frame and the frame is still handled. Unset (None), it costs one test per frame.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from panoramisk import utils as panoramisk_utils
from panoramisk.ami_protocol import AMIProtocol
from panoramisk.message import Message

from fillreactor.core.events import Event, FullyBooted, Shutdown
from fillreactor.core.message import DEFAULT_MAX_MESSAGE_BYTES, AmiFramer
from fillreactor.core.normalise import Normaliser, event_name, normalise_fields

EventSink = Callable[[Event], object]
TimedEventSink = Callable[[Event, float], object]


class ActionReplies(Protocol):
    """Who takes the responses to actions sent outside panoramisk (``fillreactor.ami.actions``)."""

    def __len__(self) -> int: ...

    def take(self, action_id: str, frame: bytes) -> bool: ...


_EVENT_PREFIX = b"Event: "
_ACTION_ID_LINE = b"\r\nActionID: "
_ACTION_ID_FIRST = b"ActionID: "
_WIRE_EOL = "\r\n"
# Log the first few sink failures in full, then one in LOG_EVERY, so a broken sink cannot flood logs.
_LOG_FIRST = 5
_LOG_EVERY = 1000


class FastAMIProtocol(AMIProtocol):
    """panoramisk's ``AMIProtocol`` with a framed, normalising fast path for events."""

    # Events that also go through panoramisk's dispatch (its Manager registers FullyBooted itself).
    dispatched_event_names: frozenset[bytes] = frozenset({b"FullyBooted", b"Shutdown"})
    _dispatched_types = (FullyBooted, Shutdown)

    def __init__(
        self,
        on_event: EventSink | None = None,
        *,
        extra_dispatch_names: frozenset[bytes] = frozenset(),
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    ) -> None:
        super().__init__()
        self.on_event = on_event
        self.timed_sink: TimedEventSink | None = None
        self.clock: Callable[[], float] = time.monotonic
        self.replies: ActionReplies | None = None
        self.on_control: Callable[[Event], object] | None = None
        self.on_lost: Callable[[Exception | None], object] | None = None
        self.on_frame: Callable[[bytes, float], object] | None = None
        self.closed = False
        self.extra_dispatch_names = extra_dispatch_names
        self.normaliser = Normaliser()
        self.framer = AmiFramer(max_message_bytes=max_message_bytes)
        self.sink_errors = 0
        self.action_errors = 0
        self.frame_errors = 0
        self.last_failures: deque[str] = deque(maxlen=8)
        # panoramisk sets these in connection_made / Manager.connection_made; defaults for safety
        self.factory: Any = None
        self.version: str | None = None
        self.responses: dict[str, Any] = {}
        self.log = logging.getLogger(__name__)

    # -- asyncio.Protocol ----------------------------------------------------------------------
    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self.framer = AmiFramer(max_message_bytes=self.framer.max_message_bytes)

    def data_received(self, data: bytes) -> None:
        read_at = self.clock()
        try:
            frames = self.framer.feed(data)
            if self.version is None and self.framer.banner:
                self._banner(self.framer.banner)
            self._save_stream(data)
        except Exception as exc:  # pragma: no cover - the framer does not raise; belt and braces
            self._failure("frame", exc, data[:60])
            return
        timed = self.timed_sink
        sink = None if timed is not None else self._sink()
        responses = self.responses
        replies = self.replies
        feed_frame = self.normaliser.feed_frame
        tap = self.on_frame
        for frame in frames:
            if tap is not None:
                try:
                    tap(frame, read_at)
                except Exception as exc:
                    self._failure("tap", exc, frame[:60])
            try:
                if not frame.startswith(_EVENT_PREFIX):
                    # a response: ours (sent outside panoramisk) or one of panoramisk's actions
                    if replies and self._take_reply(frame, replies):
                        continue
                    self._to_panoramisk(frame)
                    continue
                if responses and self._awaited(frame, responses):
                    self._to_panoramisk(frame)
                    continue
                event = feed_frame(frame)
                if event is None:
                    if self.extra_dispatch_names and event_name(frame) in self.extra_dispatch_names:
                        self._to_panoramisk(frame)
                    continue
            except Exception as exc:
                self._failure("frame", exc, frame[:60])
                continue
            if timed is not None:
                try:
                    timed(event, read_at)
                except Exception as exc:
                    self._sink_failed(exc, event)
            elif sink is not None:
                try:
                    sink(event)
                except Exception as exc:
                    self._sink_failed(exc, event)
            if isinstance(event, self._dispatched_types):
                self._control(event, frame)

    def connection_lost(self, exc: Exception | None) -> None:
        """panoramisk's ``connection_lost`` without its crash when no Manager is attached yet."""
        try:
            if not self.closed:
                self.close()
                if self.factory is not None:
                    self.factory.connection_lost(exc)
        except Exception as error:
            self._failure("connection_lost", error, exc)
        hook, self.on_lost = self.on_lost, None
        if hook is not None:
            try:
                hook(exc)
            except Exception as error:
                self._failure("on_lost", error, exc)

    def _control(self, event: Event, frame: bytes) -> None:
        control = self.on_control
        if control is not None:
            try:
                control(event)
            except Exception as exc:
                self._failure("control", exc, frame[:60])
        try:
            self._to_panoramisk(frame)
        except Exception as exc:
            self._failure("frame", exc, frame[:60])

    # -- the panoramisk path ---------------------------------------------------------------------
    def _to_panoramisk(self, frame: bytes) -> None:
        """Build a panoramisk Message from one frame and let panoramisk handle it."""
        text = frame.decode(getattr(self, "encoding", "utf-8") or "utf-8", "replace")
        if panoramisk_utils.EOL != _WIRE_EOL:  # someone imported panoramisk.testing (EOL = '\n')
            text = text.replace(_WIRE_EOL, panoramisk_utils.EOL)
        message = Message.from_line(text.strip())
        if message is None:
            return  # neither Event nor Response: panoramisk ignores it too
        if self.factory is None and not self._matching_action(message):
            return  # before Manager.connection_made there is no dispatcher to hand events to
        try:
            self.handle_message(message)
        except Exception as exc:
            self._action_failed(message, exc)

    @staticmethod
    def _action_id_of(frame: bytes) -> str | None:
        """The ActionID of a frame, read from its bytes, or None."""
        start = frame.find(_ACTION_ID_LINE)
        if start >= 0:
            start += len(_ACTION_ID_LINE)
        elif frame.startswith(_ACTION_ID_FIRST):  # a response may start with its ActionID
            start = len(_ACTION_ID_FIRST)
        else:
            return None
        end = frame.find(b"\r\n", start)
        action_id = frame[start:] if end < 0 else frame[start:end]
        return action_id.decode("utf-8", "replace").strip()

    @classmethod
    def _awaited(cls, frame: bytes, responses: dict[str, Any]) -> bool:
        """True when the event carries the ActionID of a pending panoramisk action."""
        action_id = cls._action_id_of(frame)
        return action_id is not None and action_id in responses

    def _take_reply(self, frame: bytes, replies: ActionReplies) -> bool:
        action_id = self._action_id_of(frame)
        return action_id is not None and replies.take(action_id, frame)

    def _matching_action(self, message: Message) -> Any:
        action = self.responses.get(message.id)
        if action is None and message.action_id:
            action = self.responses.get(message.action_id)
        return action

    def _action_failed(self, message: Message, exc: Exception) -> None:
        self.action_errors += 1
        action = self._matching_action(message)
        if action is not None:
            for key in (action.id, action.action_id):
                if key:
                    self.responses.pop(key, None)
            if not action.future.done():
                action.future.set_exception(exc)
        self._remember("action", exc, message.get("event") or message.get("response"))
        self.log.error("AMI message handling failed (%s): %r", type(exc).__name__, exc)

    # -- the fast path's helpers -----------------------------------------------------------------
    def _sink(self) -> EventSink | None:
        if self.on_event is not None:
            return self.on_event
        factory = self.factory
        if factory is None:
            return None
        sink = getattr(factory, "on_event", None)
        if sink is None:
            config = getattr(factory, "config", None)
            if isinstance(config, dict):
                sink = config.get("on_event")
        return sink

    def _banner(self, banner: str) -> None:
        self.version = banner.partition("/")[2].strip()
        self.log.info("protocol version: '%s'", self.version)

    def _save_stream(self, data: bytes) -> None:
        stream = getattr(self.factory, "save_stream", None)
        if stream is not None and hasattr(stream, "write"):
            stream.write(data)

    def _sink_failed(self, exc: Exception, event: Event) -> None:
        self.sink_errors += 1
        self._remember("sink", exc, type(event).__name__)
        if self.sink_errors <= _LOG_FIRST or self.sink_errors % _LOG_EVERY == 0:
            self.log.error(
                "AMI event sink raised on %s (%d so far); the connection stays up",
                type(event).__name__,
                self.sink_errors,
                exc_info=exc,
            )

    def _failure(self, kind: str, exc: Exception, where: object) -> None:
        self.frame_errors += 1
        self._remember(kind, exc, where)
        self.log.error("AMI %s handling failed: %r", kind, exc)

    def _remember(self, kind: str, exc: Exception, where: object) -> None:
        self.last_failures.append(f"{kind}: {type(exc).__name__}: {exc} in {where!r}")

    def stats(self) -> dict[str, object]:
        """Counters for the trace/metrics."""
        return {
            **self.normaliser.snapshot(),
            "framer_errors": self.framer.errors,
            "sink_errors": self.sink_errors,
            "action_errors": self.action_errors,
            "frame_errors": self.frame_errors,
            "last_failures": list(self.last_failures),
        }


def event_of(message: Message) -> Event | None:
    """The typed event of a panoramisk ``Message`` (e.g. the rows of a CoreShowChannels result)."""
    fields = {key: value[0] if isinstance(value, list) else value for key, value in message.items()}
    return normalise_fields(fields)
