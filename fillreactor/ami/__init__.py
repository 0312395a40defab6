"""The AMI side of the shell: one persistent, self-healing AMI session per Asterisk server.

Modules (one idea each):

* ``fast_protocol``: ``FastAMIProtocol``, the panoramisk protocol that frames, decodes per message
  and normalises the event firehose straight into a synchronous sink.
* ``actions``: our own action table (written once, ended once: reply, timeout or lost).
* ``config``: ``LinkTarget`` (a ``servers`` row), ``targets_from_rows``, ``LinkSettings``.
* ``backoff``: full-jitter reconnect spacing (tenacity ``wait_random_exponential``).
* ``link``: ``AmiLink``, the link of one server (login, filter, resync, Ping, reconnect, originate).
* ``linkset``: ``LinkSet``, the links of all servers reconciled from the server list.

The interface towards the reactor (everything else is internal):

.. code-block:: python

    class LinkHandler(Protocol):            # the reactor implements this; both calls synchronous
        def on_event(self, server: str, event: Event, read_at: float) -> None: ...
        def on_state(self, server: str, change: LinkChange) -> None: ...

    links = LinkSet(handler, LinkSettings(...), clock=clock)
    targets, problems = targets_from_rows(servers_rows, settings.username_column)
    await links.update(targets)             # start new, stop removed, restart changed links
    links.ready(server) / links[server].ready / links.ready_servers()
    ticket = links.send_originate(server, fields, action_id=call_id, timeout=5.0,
                                  before_write=reserve)       # synchronous up to the write
    ticket.written_at                       # monotonic time the bytes left, None = not sent
    reply = await ticket.reply              # OriginateReply: QUEUED / ERROR / NOT_SENT / TIMEOUT / LINK_LOST
    links.stats()                           # per-server counters for metrics
    await links.close()

* ``on_event`` gets every typed event (``fillreactor.core.events``) in wire order, each exactly
  once, including the CoreShowChannel rows and CoreShowChannelsComplete of the link's own resync
  and the OriginateResponse (``OriginateResult``) of its own originates. ``read_at`` is
  ``clock.monotonic()`` when the read that carried the event started.
* ``on_state`` gets a ``LinkChange`` (kind, at, attempt, action_id, accepted, detail) at the
  moment it happens, in wire order with the events. How the reactor maps them to the model:

  ==================  ===========================================================================
  kind                reactor
  ==================  ===========================================================================
  CONNECTING          (log/trace only)
  LOGGED_IN           (log/trace only)
  RESYNC_STARTED      ``model.set_link(server, True, at)``; ``model.begin_snapshot(server,
                      change.action_id, at)`` (sent before the CoreShowChannels is written)
  RESYNCED            accepted: the link is ready (``links.ready(server)``), the model's
                      snapshot loaded by the SnapshotEnd event just handed over; not accepted:
                      not dialable, the link retries by itself
  SHUTTING_DOWN       ``model.set_link(server, False, at)``: send nothing there
  DOWN                ``model.set_link(server, False, at)``; ``detail`` = the reason
  STOPPED             the link is finished (``detail``: ``removed``, ``target changed``, ``closed``)
  ==================  ===========================================================================

* An originate is dialable-checked, reserved and written in one synchronous step: either
  ``if links.ready(server): model.reserve(...); links.send_originate(...)`` or pass the
  reservation as ``before_write`` (called only when the bytes will be written). A reply other
  than QUEUED means no OriginateResponse will come for it (ERROR, NOT_SENT) or maybe not
  (TIMEOUT, LINK_LOST): the reactor releases or keeps the reservation accordingly. Nothing is
  ever re-sent by the link.
"""

from fillreactor.ami.config import (
    DEFAULT_FILTER_EVENTS,
    USERNAME_COLUMNS,
    LinkSettings,
    LinkTarget,
    target_from_row,
    targets_from_rows,
)
from fillreactor.ami.link import (
    AmiLink,
    LinkChange,
    LinkChangeKind,
    LinkCounters,
    LinkHandler,
    LinkState,
    OriginateReply,
    OriginateStatus,
    OriginateTicket,
)
from fillreactor.ami.linkset import LinkSet, LinkSetUpdate

__all__ = [
    "DEFAULT_FILTER_EVENTS",
    "USERNAME_COLUMNS",
    "AmiLink",
    "LinkChange",
    "LinkChangeKind",
    "LinkCounters",
    "LinkHandler",
    "LinkSet",
    "LinkSetUpdate",
    "LinkSettings",
    "LinkState",
    "LinkTarget",
    "OriginateReply",
    "OriginateStatus",
    "OriginateTicket",
    "target_from_row",
    "targets_from_rows",
]
