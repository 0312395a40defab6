"""The channel-count model: live dialer calls and line usage per Asterisk server, from AMI events.

Everything that decides a server's line usage lives here. The model is pure: it never touches a
socket, never reads a clock (``now`` is passed in) and reports every count it moved as
``UsageChange`` values (``fillreactor.core.usage``).

Rules this module keeps:

* **Per server.** Uniqueids collide across servers, so every table below is per server; a server
  named for the first time (by any method) is added on the spot.
* **Call key** = the channel's Linkedid. Before Asterisk 12 there is no Linkedid and the Local
  halves and the trunk leg of one call have unrelated Uniqueids; there a channel that carries a
  VICIdial call id is keyed by that id (``~V1126...``), which is exactly what makes the legs one
  call, and a channel without one is keyed by its own Uniqueid. The key is a pure function of the
  channel's current fields, so a channel re-keys when its ids change (a NewCallerid after the
  Newchannel).
* **Dialer call** = a call (key) with at least one live channel whose CallerIDName, else
  ConnectedLineName, is a VICIdial call id (``callid.call_id_of``). A call is counted once per
  family it carries (V, M, Y, DC, RA), for reporting; only ``V`` calls can be line usage here
  (every other family is counted from its ``vicidial_auto_calls`` rows: ``core/lines.py``).
* **Origin.** A V call's origin (campaign, server it was placed on, call type: ``CallOrigin``) is
  that of its *primary* id (the smallest V id among its channels; normally there is exactly one).
  It comes from ``reserve`` (our own originates: this server, OUTBALANCE) or from one lookup
  (``pending_lookups`` then ``resolve_campaigns``; ``None`` = no row, never asked again; a plain
  campaign string = the server is not known). Each call remembers how it was counted, so later
  cache changes cannot unbalance the counts.
* **Where a V call counts** (VICIdial counts a call's row on its ``server_ip`` only):

  ==========================================  ===================================================
  origin of the primary id                    on the server the channels are seen on
  ==========================================  ===================================================
  placed on this server, or server unknown    a line, and a call of its campaign
  placed on another server                    nothing (the IAX2 leg of a call bridged to an agent
                                              here; the server it was placed on counts it)
  pending lookup, or looked up and no row     a line, no campaign (counted where seen)
  ==========================================  ===================================================

* **Line usage** of a server = its V calls that count here + its open reservations.
  ``campaign_usage`` counts the same two things for one campaign.
* **Reservations** (an originate sent, its channels not seen yet) end in exactly one of:

  =====================================================  ================================
  what happens on that server                            reservation
  =====================================================  ================================
  a channel carrying the call id appears (event or row)  becomes the live call (no double count)
  OriginateResult failure, ActionID or CallerIDName = id released
  ``expire(now)`` at or after its deadline               released
  an accepted snapshot, begun over ``reservation_grace`` released (it never became a call: lost
  seconds after the originate, not in the listing       in a crash, a restart, a dropped link)
  OriginateResult success                                unchanged (its channels decide)
  =====================================================  ================================

* **Channel events** (Newchannel, Newstate, NewCallerid/NewConnectedLine):

  ===============================  ===========================================================
  Uniqueid is                      effect
  ===============================  ===========================================================
  live, same names/Linkedid/name   state updated; ``NO_CHANGES`` (the hot path)
  live, names or Linkedid differ   re-identified: leaves its old call, joins its new call
  tombstoned (hung up)             ignored: late events never resurrect a channel
  unknown                          created (a missed Newchannel is recovered by any event)
  ===============================  ===========================================================

  A Hangup removes a live channel and tombstones its Uniqueid (an unknown or duplicate Hangup
  only tombstones). Tombstones live ``tombstone_ttl`` seconds and are pruned by ``expire``.
* **Snapshots** (CoreShowChannels). ``begin_snapshot`` opens a new snapshot generation; rows of
  any other ActionID are ignored; rows are held until ``SnapshotEnd`` and then:

  ================================================  =======================================
  at SnapshotEnd                                    outcome
  ================================================  =======================================
  rows received != ListItems                        rejected: nothing changes, server not
                                                    dialable, ``server_view`` shows it
  row of a tombstoned Uniqueid                      ignored (the Hangup wins)
  row of a channel touched by an event since begin  ignored (the event is newer)
  row of any other channel                          the row's contents are taken
  model channel not listed, untouched since begin   removed and tombstoned (a missed Hangup)
  model channel not listed, touched since begin     kept (created/updated after the request)
  ================================================  =======================================

* **Dialable** = link live AND a snapshot loaded since the last login:

  ====================================  ==========================================================
  transition                            effect
  ====================================  ==========================================================
  ``set_link(live=True)`` (a login)     link live, snapshot needed (every login needs its own)
  successful SnapshotEnd                snapshot loaded, counts no longer stale
  rejected SnapshotEnd                  snapshot not loaded
  ``set_link(live=False)``, Shutdown    not dialable, pending snapshot dropped, counts kept, stale
  ====================================  ==========================================================

* **Reporting.** Every mutation returns what it moved, in order, as chained ``UsageChange``
  values: the first carries the server's whole usage move, further ones (other campaigns of the
  same mutation) have ``usage_before == usage_after``; summing ``delta`` never double counts. A
  campaign appears only if its count moved; usage moved with no campaign moved gives one change
  with ``campaign=None``. Nothing moved gives ``NO_CHANGES``.
* **Never raises on odd input**: unknown servers are added, empty Uniqueids and unknown event types
  are ignored.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from fillreactor.core.cluster import LiveCounts
from fillreactor.core.origin import CallOrigin

from .callid import AUTO_DIAL, INBOUND, MANUAL_DIAL, RING_AGENT, THREE_WAY, call_id_of
from .channels import DEFAULT_CLASSIFIER, TrunkClassifier
from .events import (
    LIST_ITEMS_UNKNOWN,
    STATE_UNKNOWN,
    CallerIdChanged,
    ChannelCreated,
    ChannelFields,
    ChannelHungUp,
    ChannelStateChanged,
    Event,
    FullyBooted,
    OriginateResult,
    Shutdown,
    SnapshotEnd,
    SnapshotRow,
)
from .usage import NO_CHANGES, UsageChange

FAMILIES: tuple[str, ...] = (AUTO_DIAL, MANUAL_DIAL, INBOUND, THREE_WAY, RING_AGENT)

SNAPSHOT_NEVER = "never"
SNAPSHOT_PENDING = "pending"
SNAPSHOT_LOADED = "loaded"
SNAPSHOT_REJECTED = "rejected"
SNAPSHOT_ABANDONED = "abandoned"  # the link went down while the snapshot was pending

RECENT_IDS_KEPT = 50_000  # V call ids remembered per server for ``call_seen``
CALL_ID_KEY_PREFIX = "~"  # pre-12 call keys built from a call id: never equal to a Uniqueid

_UNKNOWN = object()  # campaign cache miss (distinct from a cached None = "looked up, not found")


def call_key_of(linkedid: str, call_id: str | None, uniqueid: str) -> str:
    """The call key of a channel (see the module rules): Linkedid, else call id, else Uniqueid."""
    if linkedid:
        return linkedid
    if call_id:
        return CALL_ID_KEY_PREFIX + call_id
    return uniqueid


# -- internal records ----------------------------------------------------------------------------


class _Channel:
    __slots__ = (
        "call_id",
        "caller_id_name",
        "channel",
        "connected_line_name",
        "family",
        "gen",
        "key",
        "linkedid",
        "state",
        "trunk",
        "uniqueid",
    )

    def __init__(self, fields: ChannelFields, gen: int, trunk: bool) -> None:
        self.channel = fields.channel
        self.uniqueid = fields.uniqueid
        self.linkedid = fields.linkedid
        self.state = fields.state
        self.caller_id_name = fields.caller_id_name
        self.connected_line_name = fields.connected_line_name
        self.gen = gen  # the snapshot generation of the last event that touched this channel
        self.trunk = trunk
        ident = call_id_of(fields.caller_id_name, fields.connected_line_name)
        self.family: str | None = ident[0] if ident is not None else None
        self.call_id: str | None = ident[1] if ident is not None else None
        self.key = call_key_of(fields.linkedid, self.call_id, fields.uniqueid)


class _Call:
    __slots__ = ("campaign", "counted", "families", "ids", "key", "members", "pending", "primary", "server")

    def __init__(self, server: _Server, key: str) -> None:
        self.server = server
        self.key = key
        self.members = 0
        self.ids: dict[str, int] = {}  # call id -> member channels carrying it
        self.families: dict[str, int] = {}  # family -> distinct ids of that family in this call
        self.primary: str | None = None  # smallest V id: the one the campaign is read from
        self.campaign: str | None = None  # campaign this call is counted under (None: none)
        self.counted = False  # counted as a line of this server (see "Where a V call counts")
        self.pending = False  # primary awaits a campaign lookup


class _Server:
    __slots__ = (
        "calls",
        "campaign_counts",
        "channels",
        "family_counts",
        "gen",
        "id_refs",
        "link_changed_at",
        "link_live",
        "name",
        "pending_calls",
        "recent_ids",
        "reservations",
        "snapshot_action_id",
        "snapshot_at",
        "snapshot_begun_at",
        "snapshot_detail",
        "snapshot_loaded",
        "snapshot_row_count",
        "snapshot_rows",
        "snapshot_state",
        "stale",
        "tombstone_queue",
        "tombstones",
        "touched",
        "trunk_channels",
        "v_lines",
    )

    def __init__(self, name: str) -> None:
        self.name = name
        self.pending_calls = 0  # live V calls here whose campaign lookup has not answered
        self.channels: dict[str, _Channel] = {}
        self.calls: dict[str, _Call] = {}
        self.tombstones: dict[str, float] = {}
        self.tombstone_queue: deque[tuple[float, str]] = deque()
        # call id -> (campaign, deadline, when it was made)
        self.reservations: dict[str, tuple[str, float, float]] = {}
        self.recent_ids: OrderedDict[str, None] = OrderedDict()  # V ids that had channels here lately
        self.family_counts: dict[str, int] = dict.fromkeys(FAMILIES, 0)
        self.campaign_counts: dict[str, int] = {}
        self.id_refs: dict[str, int] = {}  # call id -> live channels carrying it
        self.trunk_channels = 0
        self.v_lines = 0  # V calls counted as lines here
        self.touched: dict[str, int] = {}  # campaign -> count before the current mutation
        self.link_live = False
        self.link_changed_at: float | None = None
        self.snapshot_loaded = False
        self.stale = False
        self.gen = 0
        self.snapshot_action_id: str | None = None
        self.snapshot_rows: dict[str, SnapshotRow] = {}
        self.snapshot_row_count = 0
        self.snapshot_state = SNAPSHOT_NEVER
        self.snapshot_detail = ""
        self.snapshot_at: float | None = None
        self.snapshot_begun_at = 0.0

    @property
    def usage(self) -> int:
        return self.v_lines + len(self.reservations)

    def bump_campaign(self, campaign: str, delta: int) -> None:
        counts = self.campaign_counts
        before = counts.get(campaign, 0)
        if campaign not in self.touched:
            self.touched[campaign] = before
        after = before + delta
        if after:
            counts[campaign] = after
        else:
            counts.pop(campaign, None)

    def report(self, usage_before: int) -> tuple[UsageChange, ...]:
        """The chained UsageChange values of the mutation that started at ``usage_before``."""
        usage_after = self.usage
        touched = self.touched
        if not touched:
            if usage_after == usage_before:
                return NO_CHANGES
            return (UsageChange(self.name, usage_before, usage_after),)
        counts = self.campaign_counts
        changes: list[UsageChange] = []
        before = usage_before
        for campaign, campaign_before in touched.items():
            campaign_after = counts.get(campaign, 0)
            if campaign_after != campaign_before:
                changes.append(
                    UsageChange(self.name, before, usage_after, campaign, campaign_before, campaign_after)
                )
                before = usage_after
        touched.clear()
        if not changes and usage_after != usage_before:
            return (UsageChange(self.name, usage_before, usage_after),)
        return tuple(changes)


# -- the report ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SnapshotStatus:
    state: str  # never / pending / loaded / rejected / abandoned
    action_id: str | None  # the pending snapshot's ActionID
    detail: str  # why the last one was rejected, or what was loaded
    at: float | None  # when the last snapshot was loaded


@dataclass(frozen=True, slots=True)
class ServerView:
    """What the model knows about one server (a copy; safe to keep)."""

    server: str
    usage: int
    reservations: int
    reserved_call_ids: tuple[str, ...]
    dialer_calls: Mapping[str, int]  # family -> calls (V, M, Y, DC, RA)
    campaigns: Mapping[str, int]  # campaign -> campaign_usage (live V calls + reservations)
    pending_campaign: int  # live V calls counted here whose campaign is not known (pending or not found)
    placed_elsewhere: int  # live V calls seen here that were placed on another server (not counted)
    calls: int  # distinct call keys with a live channel, dialer or not
    channels: int
    trunk_channels: int
    tombstones: int
    link_live: bool
    dialable: bool
    stale: bool
    snapshot: SnapshotStatus


# -- the model -----------------------------------------------------------------------------------


class ChannelModel:
    """Per-server live dialer calls, reservations and trunk channels, fed by typed AMI events."""

    def __init__(
        self,
        *,
        classifier: TrunkClassifier | None = None,
        reservation_timeout: float = 60.0,
        reservation_grace: float = 2.0,
        tombstone_ttl: float = 120.0,
        max_cached_campaigns: int = 200_000,
    ) -> None:
        self.classifier = classifier if classifier is not None else DEFAULT_CLASSIFIER
        self.reservation_timeout = reservation_timeout
        self.reservation_grace = reservation_grace
        self.tombstone_ttl = tombstone_ttl
        self.max_cached_campaigns = max_cached_campaigns
        self._servers: dict[str, _Server] = {}
        self._origin_of: OrderedDict[str, CallOrigin | None] = OrderedDict()  # call id -> origin
        self._unresolved: dict[str, list[_Call]] = {}  # V id -> live calls awaiting its campaign
        self._handlers: dict[type, Callable[..., tuple[UsageChange, ...]]] = {
            ChannelCreated: self._on_channel,
            ChannelStateChanged: self._on_channel,
            CallerIdChanged: self._on_channel,
            ChannelHungUp: self._on_hangup,
            SnapshotRow: self._on_snapshot_row,
            SnapshotEnd: self._on_snapshot_end,
            OriginateResult: self._on_originate_result,
            Shutdown: self._on_shutdown,
            FullyBooted: self._ignore,
        }

    # -- servers and links -----------------------------------------------------------------------
    def add_server(self, server: str) -> None:
        self._server(server)

    def servers(self) -> tuple[str, ...]:
        return tuple(self._servers)

    def _server(self, server: str) -> _Server:
        srv = self._servers.get(server)
        if srv is None:
            srv = self._servers[server] = _Server(server)
        return srv

    def set_link(self, server: str, live: bool, now: float) -> None:
        """``live=True`` means a login just completed: dialable again only after a snapshot loads."""
        srv = self._server(server)
        srv.link_changed_at = now
        srv.snapshot_loaded = False
        if live:
            srv.link_live = True
            return
        srv.link_live = False
        srv.stale = True
        if srv.snapshot_action_id is not None:
            srv.snapshot_action_id = None
            srv.snapshot_rows = {}
            srv.snapshot_state = SNAPSHOT_ABANDONED
            srv.snapshot_detail = "link went down before the snapshot ended"

    def dialable(self, server: str) -> bool:
        srv = self._servers.get(server)
        return srv is not None and srv.link_live and srv.snapshot_loaded

    # -- counts ----------------------------------------------------------------------------------
    def usage(self, server: str) -> int:
        srv = self._servers.get(server)
        return srv.usage if srv is not None else 0

    def campaign_usage(self, server: str, campaign: str) -> int:
        srv = self._servers.get(server)
        return srv.campaign_counts.get(campaign, 0) if srv is not None else 0

    def pending_lookups(self) -> set[str]:
        return set(self._unresolved)

    def has_pending_lookups(self) -> bool:
        """Any live call waiting for its campaign (O(1): asked after every event)."""
        return bool(self._unresolved)

    def awaits_campaign(self, server: str) -> bool:
        """Does ``server`` have a live V call whose campaign lookup has not answered yet?

        O(calls awaiting a lookup): only the ids of the last few milliseconds' new calls.
        """
        srv = self._servers.get(server)
        if srv is None or not self._unresolved:
            return False
        return srv.pending_calls > 0

    def call_seen(self, server: str, call_id: str) -> bool:
        """Did a channel carrying ``call_id`` live on ``server`` (now, or among its last
        ``RECENT_IDS_KEPT`` V calls)? The evidence that an Originate went out."""
        srv = self._servers.get(server)
        return srv is not None and (bool(srv.id_refs.get(call_id)) or call_id in srv.recent_ids)

    def call_active(self, server: str, call_id: str) -> bool:
        """Is ``call_id`` reserved on ``server`` or carried by one of its live channels?"""
        srv = self._servers.get(server)
        return srv is not None and (call_id in srv.reservations or bool(srv.id_refs.get(call_id)))

    def live_channels(self, server: str) -> dict[str, ChannelFields]:
        """The live channels of a server as the model sees them, by Uniqueid (for reports and tests)."""
        srv = self._servers.get(server)
        if srv is None:
            return {}
        return {
            uid: ChannelFields(
                ch.channel, uid, ch.linkedid, ch.state, ch.caller_id_name, ch.connected_line_name
            )
            for uid, ch in srv.channels.items()
        }

    def campaign_of(self, call_id: str) -> str | None:
        """The cached campaign of a call id (None when unknown or not found)."""
        origin = self._origin_of.get(call_id)
        return origin.campaign_id or None if origin is not None else None

    def origin_of(self, call_id: str) -> CallOrigin | None:
        """The cached origin of a call id (None when unknown or not found)."""
        return self._origin_of.get(call_id)

    def counts(self) -> LiveCounts:
        """Every server's usage and campaign usage, and the dialable servers, as ``LiveCounts``."""
        usage = {name: srv.usage for name, srv in self._servers.items()}
        campaign_usage = {
            (campaign, name): n
            for name, srv in self._servers.items()
            for campaign, n in srv.campaign_counts.items()
            if n
        }
        dialable = frozenset(n for n, srv in self._servers.items() if srv.link_live and srv.snapshot_loaded)
        return LiveCounts(usage, campaign_usage, dialable)

    def server_view(self, server: str) -> ServerView:
        srv = self._servers.get(server) or _Server(server)
        pending_campaign = sum(1 for call in srv.calls.values() if call.counted and call.campaign is None)
        placed_elsewhere = sum(
            1 for call in srv.calls.values() if call.primary is not None and not call.counted
        )
        return ServerView(
            server=server,
            usage=srv.usage,
            reservations=len(srv.reservations),
            reserved_call_ids=tuple(srv.reservations),
            dialer_calls=dict(srv.family_counts),
            campaigns=dict(srv.campaign_counts),
            pending_campaign=pending_campaign,
            placed_elsewhere=placed_elsewhere,
            calls=len(srv.calls),
            channels=len(srv.channels),
            trunk_channels=srv.trunk_channels,
            tombstones=len(srv.tombstones),
            link_live=srv.link_live,
            dialable=srv.link_live and srv.snapshot_loaded,
            stale=srv.stale,
            snapshot=SnapshotStatus(
                srv.snapshot_state, srv.snapshot_action_id, srv.snapshot_detail, srv.snapshot_at
            ),
        )

    # -- events ----------------------------------------------------------------------------------
    def apply(self, server: str, event: Event, now: float) -> tuple[UsageChange, ...]:
        srv = self._servers.get(server)
        if srv is None:
            srv = self._server(server)
        handler = self._handlers.get(type(event))
        if handler is None:
            return NO_CHANGES
        return handler(srv, event, now)

    def _ignore(self, srv: _Server, event: object, now: float) -> tuple[UsageChange, ...]:
        return NO_CHANGES

    def _on_channel(self, srv: _Server, event: ChannelFields, now: float) -> tuple[UsageChange, ...]:
        uniqueid = event.uniqueid
        channel = srv.channels.get(uniqueid)
        if channel is not None:
            channel.gen = srv.gen
            if event.state != STATE_UNKNOWN:  # a legacy Hangup/Newcallerid says nothing of the state
                channel.state = event.state
            if (
                event.caller_id_name == channel.caller_id_name
                and event.connected_line_name == channel.connected_line_name
                and event.linkedid == channel.linkedid
                and event.channel == channel.channel
            ):
                return NO_CHANGES
            usage_before = srv.usage
            self._reidentify(srv, channel, event)
            return srv.report(usage_before)
        if not uniqueid or uniqueid in srv.tombstones:
            return NO_CHANGES
        usage_before = srv.usage
        self._insert(srv, event, srv.gen)
        return srv.report(usage_before)

    def _on_hangup(self, srv: _Server, event: ChannelHungUp, now: float) -> tuple[UsageChange, ...]:
        uniqueid = event.uniqueid
        if not uniqueid:
            return NO_CHANGES
        channel = srv.channels.get(uniqueid)
        if uniqueid not in srv.tombstones:
            self._tombstone(srv, uniqueid, now)
        if channel is None:
            return NO_CHANGES
        usage_before = srv.usage
        self._remove(srv, channel)
        return srv.report(usage_before)

    def _on_originate_result(
        self, srv: _Server, event: OriginateResult, now: float
    ) -> tuple[UsageChange, ...]:
        if event.success or not srv.reservations:
            return NO_CHANGES
        usage_before = srv.usage
        name = event.caller_id_name
        for call_id in (event.action_id, name, name.partition(" ")[0]):
            reservation = srv.reservations.pop(call_id, None)
            if reservation is not None:
                srv.bump_campaign(reservation[0], -1)
        return srv.report(usage_before)

    def _on_shutdown(self, srv: _Server, event: Shutdown, now: float) -> tuple[UsageChange, ...]:
        self.set_link(srv.name, False, now)
        return NO_CHANGES

    # -- snapshots -------------------------------------------------------------------------------
    def begin_snapshot(self, server: str, action_id: str, now: float) -> None:
        """A CoreShowChannels with ``action_id`` was just sent: events from now on win over its rows."""
        srv = self._server(server)
        srv.gen += 1
        srv.snapshot_action_id = action_id
        srv.snapshot_rows = {}
        srv.snapshot_row_count = 0
        srv.snapshot_state = SNAPSHOT_PENDING
        srv.snapshot_detail = ""
        srv.snapshot_begun_at = now

    def _on_snapshot_row(self, srv: _Server, event: SnapshotRow, now: float) -> tuple[UsageChange, ...]:
        if srv.snapshot_action_id is None or event.action_id != srv.snapshot_action_id:
            return NO_CHANGES
        srv.snapshot_row_count += 1
        if event.uniqueid:
            srv.snapshot_rows[event.uniqueid] = event
        return NO_CHANGES

    def _on_snapshot_end(self, srv: _Server, event: SnapshotEnd, now: float) -> tuple[UsageChange, ...]:
        if srv.snapshot_action_id is None or event.action_id != srv.snapshot_action_id:
            return NO_CHANGES
        rows, row_count = srv.snapshot_rows, srv.snapshot_row_count
        srv.snapshot_action_id = None
        srv.snapshot_rows = {}
        # LIST_ITEMS_UNKNOWN: an old server that does not say how many rows it sent; nothing to check
        if event.list_items != LIST_ITEMS_UNKNOWN and row_count != event.list_items:
            srv.snapshot_state = SNAPSHOT_REJECTED
            srv.snapshot_detail = f"{row_count} rows received, ListItems {event.list_items}"
            srv.snapshot_loaded = False
            return NO_CHANGES
        usage_before = srv.usage
        gen = srv.gen
        channels = srv.channels
        for uniqueid, row in rows.items():
            if uniqueid in srv.tombstones:
                continue
            channel = channels.get(uniqueid)
            if channel is None:
                self._insert(srv, row, gen - 1)
            elif channel.gen != gen:
                channel.state = row.state
                self._reidentify(srv, channel, row)
        missed = [ch for uid, ch in channels.items() if ch.gen != gen and uid not in rows]
        for channel in missed:
            self._tombstone(srv, channel.uniqueid, now)
            self._remove(srv, channel)
        # an originate sent well before the listing whose channels are not in it never became a call
        # (lost with a crash or a restart): its line is free again
        cutoff = srv.snapshot_begun_at - self.reservation_grace
        dead = [cid for cid, (_, _, made) in srv.reservations.items() if made < cutoff]
        for call_id in dead:
            srv.bump_campaign(srv.reservations.pop(call_id)[0], -1)
        srv.snapshot_state = SNAPSHOT_LOADED
        srv.snapshot_detail = f"{row_count} rows, {len(missed)} missed hangups removed" + (
            f", {len(dead)} dead reservations released" if dead else ""
        )
        srv.snapshot_at = now
        srv.snapshot_loaded = True
        srv.stale = False
        return srv.report(usage_before)

    # -- reservations and campaigns --------------------------------------------------------------
    def reserve(
        self, server: str, call_id: str, campaign: str, now: float, timeout: float | None = None
    ) -> tuple[UsageChange, ...]:
        """An Originate carrying ``call_id`` for ``campaign`` was sent to ``server``."""
        srv = self._server(server)
        usage_before = {srv: srv.usage}
        self._learn_campaign(
            call_id, CallOrigin(campaign, server, "OUTBALANCE"), usage_before, overwrite=True
        )
        if not srv.id_refs.get(call_id):  # else its channels are already here: the live call counts
            previous = srv.reservations.pop(call_id, None)
            if previous is not None:
                srv.bump_campaign(previous[0], -1)
            deadline = now + (self.reservation_timeout if timeout is None else timeout)
            srv.reservations[call_id] = (campaign, deadline, now)
            srv.bump_campaign(campaign, +1)
        return self._report_all(usage_before)

    def extend_reservation(self, server: str, call_id: str, now: float) -> bool:
        """Asterisk acknowledged the Originate: its reservation counts from now (a reply that was
        slow in coming must not eat the time its channels have to appear). False if not reserved."""
        srv = self._servers.get(server)
        if srv is None or call_id not in srv.reservations:
            return False
        campaign, _deadline, made = srv.reservations[call_id]
        srv.reservations[call_id] = (campaign, now + self.reservation_timeout, made)
        return True

    def resolve_campaigns(
        self, found: Mapping[str, CallOrigin | str | None], now: float
    ) -> tuple[UsageChange, ...]:
        """Lookup results: call id -> its origin (``lookup_call_origins``), or None when looked up
        and not found. A plain campaign string means "server not known": counted where seen."""
        usage_before: dict[_Server, int] = {}
        for call_id, origin in found.items():
            if isinstance(origin, str):
                origin = CallOrigin(origin, "", "")
            self._learn_campaign(call_id, origin, usage_before, overwrite=False)
        return self._report_all(usage_before)

    def _learn_campaign(
        self, call_id: str, origin: CallOrigin | None, usage_before: dict[_Server, int], overwrite: bool
    ) -> None:
        """Cache a call id's origin and count the live calls that were waiting for it."""
        cache = self._origin_of
        if call_id in cache and (not overwrite or cache[call_id] == origin):
            return
        cache[call_id] = origin
        cache.move_to_end(call_id)
        while len(cache) > self.max_cached_campaigns:
            cache.popitem(last=False)
        for call in self._unresolved.pop(call_id, ()):
            call.pending = False
            call.server.pending_calls -= 1
            if origin is None:
                continue  # no row: stays a line where seen, with no campaign
            srv = call.server
            if origin.server_ip and origin.server_ip != srv.name:
                usage_before.setdefault(srv, srv.usage)
                call.counted = False
                srv.v_lines -= 1
            elif origin.campaign_id:
                usage_before.setdefault(srv, srv.usage)
                call.campaign = origin.campaign_id
                srv.bump_campaign(origin.campaign_id, +1)

    @staticmethod
    def _report_all(usage_before: dict[_Server, int]) -> tuple[UsageChange, ...]:
        changes: list[UsageChange] = []
        for srv, before in usage_before.items():
            changes.extend(srv.report(before))
        return tuple(changes) if changes else NO_CHANGES

    # -- expiry ----------------------------------------------------------------------------------
    def expire(self, now: float) -> tuple[UsageChange, ...]:
        """Release reservations past their deadline and prune tombstones older than the TTL."""
        changes: list[UsageChange] = []
        cutoff = now - self.tombstone_ttl
        for srv in self._servers.values():
            if srv.reservations:
                due = [cid for cid, (_, deadline, _made) in srv.reservations.items() if deadline <= now]
                if due:
                    usage_before = srv.usage
                    for call_id in due:
                        srv.bump_campaign(srv.reservations.pop(call_id)[0], -1)
                    changes.extend(srv.report(usage_before))
            queue, tombstones = srv.tombstone_queue, srv.tombstones
            while queue and queue[0][0] <= cutoff:
                when, uniqueid = queue.popleft()
                if tombstones.get(uniqueid) == when:
                    del tombstones[uniqueid]
        return tuple(changes) if changes else NO_CHANGES

    # -- the mechanics: channels join and leave calls ---------------------------------------------
    def _tombstone(self, srv: _Server, uniqueid: str, now: float) -> None:
        srv.tombstones[uniqueid] = now
        srv.tombstone_queue.append((now, uniqueid))

    def _insert(self, srv: _Server, fields: ChannelFields, gen: int) -> None:
        channel = _Channel(fields, gen, self.classifier.is_trunk(fields.channel))
        srv.channels[channel.uniqueid] = channel
        if channel.trunk:
            srv.trunk_channels += 1
        self._join(srv, channel)

    def _remove(self, srv: _Server, channel: _Channel) -> None:
        del srv.channels[channel.uniqueid]
        if channel.trunk:
            srv.trunk_channels -= 1
        self._leave(srv, channel)

    def _reidentify(self, srv: _Server, channel: _Channel, fields: ChannelFields) -> None:
        if fields.channel != channel.channel:
            trunk = self.classifier.is_trunk(fields.channel)
            srv.trunk_channels += trunk - channel.trunk
            channel.channel, channel.trunk = fields.channel, trunk
        channel.caller_id_name = fields.caller_id_name
        channel.connected_line_name = fields.connected_line_name
        channel.linkedid = fields.linkedid
        ident = call_id_of(fields.caller_id_name, fields.connected_line_name)
        family, call_id = ident if ident is not None else (None, None)
        key = call_key_of(fields.linkedid, call_id, channel.uniqueid)
        if call_id == channel.call_id and key == channel.key:
            return
        self._leave(srv, channel)
        channel.family, channel.call_id, channel.key = family, call_id, key
        self._join(srv, channel)

    def _join(self, srv: _Server, channel: _Channel) -> None:
        call = srv.calls.get(channel.key)
        if call is None:
            call = srv.calls[channel.key] = _Call(srv, channel.key)
        call.members += 1
        call_id = channel.call_id
        if call_id is None:
            return
        srv.id_refs[call_id] = srv.id_refs.get(call_id, 0) + 1
        carried = call.ids.get(call_id, 0)
        call.ids[call_id] = carried + 1
        if not carried:
            family = channel.family
            assert family is not None
            ids_of_family = call.families.get(family, 0)
            call.families[family] = ids_of_family + 1
            if not ids_of_family:
                srv.family_counts[family] += 1
            if family == AUTO_DIAL:
                recent = srv.recent_ids
                if call_id not in recent:
                    recent[call_id] = None
                    if len(recent) > RECENT_IDS_KEPT:
                        recent.popitem(last=False)
                if call.primary is None or call_id < call.primary:
                    self._set_primary(call, call_id)
        if srv.reservations:
            reservation = srv.reservations.pop(call_id, None)
            if reservation is not None:
                srv.bump_campaign(reservation[0], -1)

    def _leave(self, srv: _Server, channel: _Channel) -> None:
        call = srv.calls.get(channel.key)
        if call is None:  # cannot happen while the tables are consistent; never raise on the hot path
            return
        call_id = channel.call_id
        if call_id is not None:
            refs = srv.id_refs.get(call_id, 0) - 1
            if refs > 0:
                srv.id_refs[call_id] = refs
            else:
                srv.id_refs.pop(call_id, None)
            carried = call.ids.get(call_id, 0) - 1
            if carried > 0:
                call.ids[call_id] = carried
            else:
                call.ids.pop(call_id, None)
                family = channel.family
                assert family is not None
                ids_of_family = call.families.get(family, 0) - 1
                if ids_of_family > 0:
                    call.families[family] = ids_of_family
                else:
                    call.families.pop(family, None)
                    srv.family_counts[family] -= 1
                if call_id == call.primary:
                    others = [i for i in call.ids if i[0] == AUTO_DIAL and len(i) == 20]
                    self._set_primary(call, min(others) if others else None)
        call.members -= 1
        if call.members <= 0:
            if call.primary is not None:
                self._set_primary(call, None)
            del srv.calls[channel.key]

    def _set_primary(self, call: _Call, call_id: str | None) -> None:
        srv = call.server
        if call.primary is not None:
            if call.counted:
                srv.v_lines -= 1
            if call.campaign is not None:
                srv.bump_campaign(call.campaign, -1)
            elif call.pending:
                srv.pending_calls -= 1
                waiting = self._unresolved.get(call.primary)
                if waiting is not None:
                    waiting.remove(call)
                    if not waiting:
                        del self._unresolved[call.primary]
        call.primary, call.campaign, call.pending, call.counted = call_id, None, False, False
        if call_id is None:
            return
        origin = self._origin_of.get(call_id, _UNKNOWN)
        if origin is _UNKNOWN:
            call.pending = True
            srv.pending_calls += 1
            self._unresolved.setdefault(call_id, []).append(call)
        elif isinstance(origin, CallOrigin) and origin.server_ip and origin.server_ip != srv.name:
            return  # placed on another server: that server counts it
        call.counted = True
        srv.v_lines += 1
        if isinstance(origin, CallOrigin) and origin.campaign_id:
            call.campaign = origin.campaign_id
            srv.bump_campaign(origin.campaign_id, +1)
