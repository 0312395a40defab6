"""Fuzzing the channel-count model (fillreactor/core/model.py) with arbitrary operation sequences.

Unlike tests/core/test_model_properties.py (realistic call lifecycles against a full recount of
their history), the histories here are arbitrary: any event type in any order on any server
(named or not, ``''`` included), colliding and empty Uniqueids, Linkedids that point anywhere,
names that are, almost are, or carry a VICIdial id after a space, snapshots with stray ActionIDs
and wrong ListItems, reservations, lookups, expiries and link changes, time moving irregularly.

Invariants after every step (the module's rules, read independently of its code):

* nothing raises;
* every count is non-negative;
* the counts equal a recount of the model's own live channels: a call is the set of live
  channels sharing a call key (``call_key_of``); a call with a ``V`` id counts one line on the
  server where it is seen unless its (looked-up) origin names another server; campaigns count
  such calls whose origin names a campaign, plus the open reservations; families, trunk channels,
  calls and pending lookups likewise;
* a reserved call id is never also carried by a live channel of that server (no double count);
* what a mutation reports adds up: the sum of the UsageChange deltas of a server is its usage
  move; operations that report nothing move nothing;
* a tombstoned Uniqueid (hung up, or removed by a snapshot as a missed Hangup) is never live
  again on that server until ``expire`` has run ``tombstone_ttl`` after its first Hangup.

Each call id has one fixed origin here (the store's answer never changes for an id), so a recount
from the final cache is exact; reservations are only made on the server the origin names.
"""

from __future__ import annotations

from collections import Counter

from fuzz_helpers import FUZZ_MODEL
from hypothesis import given
from hypothesis import strategies as st

from fillreactor.core.callid import call_id_of
from fillreactor.core.events import (
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
from fillreactor.core.model import FAMILIES, ChannelModel, call_key_of
from fillreactor.core.origin import CallOrigin
from fillreactor.core.usage import UsageChange

SERVERS = ["s1", "s2", ""]
V_IDS = [f"V112610101000000000{n}" for n in range(1, 6)]
# the store's answer for each id, fixed: placed on a server, campaign only (server unknown), no row
ORIGIN: dict[str, CallOrigin | str | None] = {
    V_IDS[0]: CallOrigin("A", "s1", "OUTBALANCE"),
    V_IDS[1]: CallOrigin("B", "s2", "OUTBALANCE"),
    V_IDS[2]: "A",
    V_IDS[3]: None,
    V_IDS[4]: CallOrigin("B", "s1", "OUTBALANCE"),
}
RESERVABLE = [(cid, o.server_ip, o.campaign_id) for cid, o in ORIGIN.items() if isinstance(o, CallOrigin)]
NAMES = [
    *V_IDS, f"{V_IDS[0]} Smith", "M1126101010000000007", "Y1126101010000000008", "DC123456W1234567890W",
    "RINGAGENT", "RA_x", "V12345", "V11261010100000000011", "", "John", "<unknown>",
]  # fmt: skip
UNIQUEIDS = ["1.1", "1.2", "1.3", "2.1", "", "x"]
LINKEDIDS = ["", "1.1", "2.1", "L"]
CHANNELS = ["Local/9@default-0;1", "SIP/carrier-00000001", "PJSIP/agent-1", "IAX2/x-1", "DAHDI/pseudo", ""]
ACTION_IDS = ["snap1", "snap2", "", *V_IDS[:2]]
TTL = 10.0


def channel_fields() -> st.SearchStrategy[tuple[object, ...]]:
    return st.tuples(
        st.sampled_from(CHANNELS),
        st.sampled_from(UNIQUEIDS),
        st.sampled_from(LINKEDIDS),
        st.integers(-1, 9),
        st.sampled_from(NAMES),
        st.sampled_from(NAMES),
    )


EVENTS: st.SearchStrategy[Event] = st.one_of(
    st.builds(lambda f: ChannelCreated(*f), channel_fields()),  # type: ignore[arg-type]
    st.builds(lambda f: ChannelStateChanged(*f), channel_fields()),  # type: ignore[arg-type]
    st.builds(lambda f: CallerIdChanged(*f), channel_fields()),  # type: ignore[arg-type]
    st.builds(lambda f, c: ChannelHungUp(*f, c, "x"), channel_fields(), st.integers(0, 34)),  # type: ignore[arg-type]
    st.builds(lambda f, a: SnapshotRow(*f, a), channel_fields(), st.sampled_from(ACTION_IDS)),  # type: ignore[arg-type]
    st.builds(SnapshotEnd, st.sampled_from(ACTION_IDS), st.integers(-1, 6)),
    st.builds(
        OriginateResult,
        st.sampled_from(ACTION_IDS),
        st.booleans(),
        st.integers(0, 8),
        st.sampled_from(CHANNELS),
        st.sampled_from(UNIQUEIDS),
        st.sampled_from(NAMES),
    ),
    st.just(FullyBooted()),
    st.builds(Shutdown, st.booleans()),
)
OPERATIONS = st.one_of(
    st.tuples(st.just("apply"), st.sampled_from(SERVERS), EVENTS),
    st.tuples(st.just("apply"), st.sampled_from(SERVERS), EVENTS),  # events twice as likely
    st.tuples(st.just("reserve"), st.sampled_from(RESERVABLE), st.sampled_from([None, 0.5, 5.0])),
    st.tuples(st.just("resolve"), st.lists(st.sampled_from(V_IDS), max_size=3)),
    st.tuples(st.just("expire")),
    st.tuples(st.just("begin_snapshot"), st.sampled_from(SERVERS), st.sampled_from(ACTION_IDS[:2])),
    st.tuples(st.just("set_link"), st.sampled_from(SERVERS), st.booleans()),
)


class Mirror:
    """What the test knows independently: which ids were looked up, which Uniqueids are tombstoned."""

    def __init__(self) -> None:
        self.known: set[str] = set()  # call ids whose origin the model was told
        self.tombs: dict[tuple[str, str], float] = {}  # (server, uniqueid) -> first Hangup time
        self.live: dict[str, bool] = {}  # the "Dialable" table: link live ...
        self.loaded: dict[str, bool] = {}  # ... and a snapshot accepted since the last login
        self.awaited: dict[str, str | None] = {}  # the ActionID of the snapshot a server waits for
        self.rows: dict[str, int] = {}  # rows of that snapshot received so far

    def origin(self, call_id: str) -> CallOrigin | None:
        origin = ORIGIN.get(call_id)
        return CallOrigin(origin, "", "") if isinstance(origin, str) else origin


def recount(model: ChannelModel, mirror: Mirror, server: str) -> dict[str, object]:
    channels = model.live_channels(server)
    calls: dict[str, set[tuple[str, str]]] = {}
    for uniqueid, fields in channels.items():
        ident = call_id_of(fields.caller_id_name, fields.connected_line_name)
        key = call_key_of(fields.linkedid, ident[1] if ident else None, uniqueid)
        calls.setdefault(key, set())
        if ident is not None:
            calls[key].add(ident)
    families: Counter[str] = Counter()
    campaigns: Counter[str] = Counter()
    counted = pending_campaign = elsewhere = 0
    pending: set[str] = set()
    for idents in calls.values():
        for family in {family for family, _ in idents}:
            families[family] += 1
        v_ids = [call_id for family, call_id in idents if family == "V"]
        if not v_ids:
            continue
        primary = min(v_ids)
        origin = mirror.origin(primary) if primary in mirror.known else None
        if origin is not None and origin.server_ip and origin.server_ip != server:
            elsewhere += 1
            continue
        counted += 1
        if primary not in mirror.known:
            pending.add(primary)
        if origin is not None and origin.campaign_id:
            campaigns[origin.campaign_id] += 1
        else:
            pending_campaign += 1
    view = model.server_view(server)
    for call_id in view.reserved_call_ids:
        origin = mirror.origin(call_id)
        assert origin is not None
        campaigns[origin.campaign_id] += 1
    return {
        "usage": counted + len(view.reserved_call_ids),
        "campaigns": dict(campaigns),
        "dialer_calls": {family: families.get(family, 0) for family in FAMILIES},
        "pending_campaign": pending_campaign,
        "placed_elsewhere": elsewhere,
        "calls": len(calls),
        "channels": len(channels),
        "trunk_channels": sum(model.classifier.is_trunk(f.channel) for f in channels.values()),
        "pending": pending,
        "carried": {call_id for idents in calls.values() for _, call_id in idents},
    }


def check(model: ChannelModel, mirror: Mirror) -> None:
    pending: set[str] = set()
    for server in model.servers():
        view = model.server_view(server)
        truth = recount(model, mirror, server)
        assert view.usage == truth["usage"] == model.usage(server) >= 0
        assert dict(view.campaigns) == truth["campaigns"]
        assert all(n > 0 for n in view.campaigns.values())
        for campaign, count in view.campaigns.items():
            assert model.campaign_usage(server, campaign) == count
        assert dict(view.dialer_calls) == truth["dialer_calls"]
        assert all(n >= 0 for n in view.dialer_calls.values())
        assert view.pending_campaign == truth["pending_campaign"] >= 0
        assert view.placed_elsewhere == truth["placed_elsewhere"] >= 0
        assert model.awaits_campaign(server) == bool(truth["pending"])  # its per-server counter
        assert view.calls == truth["calls"] and view.channels == truth["channels"]
        assert view.trunk_channels == truth["trunk_channels"] >= 0
        assert view.reservations == len(view.reserved_call_ids) >= 0
        assert not set(view.reserved_call_ids) & truth["carried"]  # type: ignore[operator]
        expected_dialable = mirror.live.get(server, False) and mirror.loaded.get(server, False)
        assert view.dialable == model.dialable(server) == expected_dialable
        assert view.link_live == mirror.live.get(server, False)
        pending |= truth["pending"]  # type: ignore[arg-type]
        live = model.live_channels(server)
        for (tomb_server, uniqueid), _when in mirror.tombs.items():
            if tomb_server == server:
                assert uniqueid not in live, f"tombstoned {uniqueid!r} is live again on {server!r}"
    assert model.pending_lookups() == pending
    counts = model.counts()
    assert counts.usage == {s: model.usage(s) for s in model.servers()}


def usages(model: ChannelModel) -> dict[str, int]:
    return {server: model.usage(server) for server in model.servers()}


def check_report(
    before: dict[str, int], model: ChannelModel, changes: tuple[UsageChange, ...] | None
) -> None:
    after = usages(model)
    moved: Counter[str] = Counter()
    for change in changes or ():
        moved[change.server] += change.delta
        assert change.campaign_before >= 0 and change.campaign_after >= 0
    for server, usage in after.items():
        assert moved[server] == usage - before.get(server, 0), f"{server}: reported {moved[server]}"


@FUZZ_MODEL
@given(
    st.lists(st.tuples(OPERATIONS, st.sampled_from([0.0, 0.0, 0.3, 1.0, 4.0, 12.0])), max_size=60),
)
def test_the_model_survives_any_history_with_its_invariants(steps: list[tuple[tuple, float]]) -> None:
    model = ChannelModel(reservation_timeout=3.0, tombstone_ttl=TTL)
    mirror = Mirror()
    now = 1000.0
    for operation, elapsed in steps:
        now += elapsed
        kind = operation[0]
        before = usages(model)
        changes: tuple[UsageChange, ...] | None = None
        if kind == "apply":
            _, server, event = operation
            live_before = set(model.live_channels(server))
            changes = model.apply(server, event, now)
            awaited = mirror.awaited.get(server)
            if isinstance(event, SnapshotRow) and awaited is not None and event.action_id == awaited:
                mirror.rows[server] += 1
            if isinstance(event, SnapshotEnd) and awaited is not None and event.action_id == awaited:
                # accepted unless the rows received differ from a known ListItems
                accepted = event.list_items == -1 or event.list_items == mirror.rows[server]
                assert model.server_view(server).snapshot.state == ("loaded" if accepted else "rejected")
                mirror.loaded[server], mirror.awaited[server] = accepted, None
            if isinstance(event, Shutdown):
                mirror.live[server] = mirror.loaded[server] = False
                mirror.awaited[server] = None
            if isinstance(event, ChannelHungUp) and event.uniqueid:
                mirror.tombs.setdefault((server, event.uniqueid), now)
            for uniqueid in live_before - set(model.live_channels(server)):
                if not isinstance(event, ChannelHungUp):  # a snapshot removed a missed hangup
                    assert isinstance(event, SnapshotEnd)
                mirror.tombs.setdefault((server, uniqueid), now)
        elif kind == "reserve":
            _, (call_id, server, campaign), timeout = operation
            changes = model.reserve(server, call_id, campaign, now, timeout)
            mirror.known.add(call_id)
        elif kind == "resolve":
            found = {call_id: ORIGIN[call_id] for call_id in operation[1]}
            changes = model.resolve_campaigns(found, now)
            mirror.known |= set(found)
        elif kind == "expire":
            changes = model.expire(now)
            mirror.tombs = {key: when for key, when in mirror.tombs.items() if when > now - TTL}
        elif kind == "begin_snapshot":
            model.begin_snapshot(operation[1], operation[2], now)
            mirror.awaited[operation[1]], mirror.rows[operation[1]] = operation[2], 0
        elif kind == "set_link":
            _, server, live = operation
            model.set_link(server, live, now)
            mirror.live[server], mirror.loaded[server] = live, False
            if not live:  # a pending snapshot dies with the link
                mirror.awaited[server] = None
        check_report(before, model, changes)
        check(model, mirror)
