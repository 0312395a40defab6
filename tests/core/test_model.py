"""The channel-count model, rule by rule (fillreactor/core/model.py module docstring)."""

from __future__ import annotations

import pytest

from fillreactor.core.channels import TrunkClassifier
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
from fillreactor.core.model import ChannelModel, call_key_of
from fillreactor.core.origin import CallOrigin
from fillreactor.core.usage import NO_CHANGES, UsageChange

S = "10.0.0.1"
T = "10.0.0.2"
V1 = "V1126101010000000110"
V2 = "V1126101010000000111"
V3 = "V1126101010000000199"
M1 = "M1126101010000000112"
Y1 = "Y1126101010000000113"
DC1 = "DC123456W0000000114W"
RA1 = "RINGAGENT_1234"
LOCAL1 = "Local/918005551212@default-00000000;1"
LOCAL2 = "Local/918005551212@default-00000000;2"
TRUNK = "SIP/carrier-00000b21"


def new(uid: str, linkedid: str | None = None, cid: str = "", cl: str = "", channel: str = LOCAL1,
        state: int = 0) -> ChannelCreated:
    return ChannelCreated(channel, uid, uid if linkedid is None else linkedid, state, cid, cl)


def names(uid: str, linkedid: str | None = None, cid: str = "", cl: str = "", channel: str = LOCAL1,
          state: int = 0) -> CallerIdChanged:
    return CallerIdChanged(channel, uid, uid if linkedid is None else linkedid, state, cid, cl)


def state(uid: str, linkedid: str | None = None, cid: str = "", cl: str = "", channel: str = LOCAL1,
          state: int = 6) -> ChannelStateChanged:
    return ChannelStateChanged(channel, uid, uid if linkedid is None else linkedid, state, cid, cl)


def hangup(uid: str, linkedid: str | None = None, cid: str = "", cl: str = "",
           channel: str = LOCAL1) -> ChannelHungUp:
    linked = uid if linkedid is None else linkedid
    return ChannelHungUp(channel, uid, linked, 6, cid, cl, 16, "Normal Clearing")


def row(action: str, uid: str, linkedid: str | None = None, cid: str = "", cl: str = "",
        channel: str = LOCAL1, state: int = 6) -> SnapshotRow:
    return SnapshotRow(channel, uid, uid if linkedid is None else linkedid, state, cid, cl, action)


def failed(action_id: str, cid: str = "", reason: int = 5) -> OriginateResult:
    return OriginateResult(action_id, False, reason, "Local/918005550000@default", "", cid)


def succeeded(action_id: str, cid: str = "") -> OriginateResult:
    return OriginateResult(action_id, True, 4, LOCAL1, "1.0", cid)


def feed(model: ChannelModel, events: list[Event], server: str = S, now: float = 0.0) -> list[UsageChange]:
    changes: list[UsageChange] = []
    for event in events:
        changes.extend(model.apply(server, event, now))
    return changes


def dialer_call(uid: str, call_id: str, linkedid: str | None = None) -> list[Event]:
    """Newchannel with <unknown> names, then NewCallerid carrying the id (the Asterisk 22 order)."""
    return [new(uid, linkedid), names(uid, linkedid, cid=call_id)]


# -- call key --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("linkedid", "call_id", "uniqueid", "key"),
    [
        ("1.0", V1, "1.3", "1.0"),  # Asterisk 12+: Linkedid
        ("1.0", None, "1.3", "1.0"),
        ("", V1, "1.3", "~" + V1),  # before 12: the VICIdial call id groups the legs
        ("", None, "1.3", "1.3"),  # before 12, no id: the channel alone
    ],
)
def test_call_key_of(linkedid: str, call_id: str | None, uniqueid: str, key: str) -> None:
    assert call_key_of(linkedid, call_id, uniqueid) == key


@pytest.mark.parametrize(
    ("events", "usage", "calls"),
    [
        # the four channels of one originate share the Linkedid: one call
        (
            [new("1.0"), new("1.1", "1.0"), new("1.2", "1.0"), new("1.3", "1.0"),
             names("1.0", cid=V1), names("1.1", "1.0", cid=V1, cl=V1), names("1.2", "1.0", cl=V1),
             names("1.3", "1.0", cid=V1)],
            1, 1,
        ),
        # two originates: two calls
        (dialer_call("1.0", V1) + dialer_call("1.4", V2), 2, 2),
        # before 12 (no Linkedid): legs with different Uniqueids and the same call id are one call
        (
            [new("1.0", ""), new("1.1", ""), new("1.2", "", channel=TRUNK),
             names("1.0", "", cid=V1), names("1.1", "", cid=V1), names("1.2", "", cid="Customer", cl=V1)],
            1, 1,
        ),
        # before 12, channels without an id stay separate calls, and are not dialer calls
        ([new("1.0", ""), new("1.1", "")], 0, 2),
        # two channels of one call carrying two different V ids: still one call of line usage
        ([new("1.0", cid=V1), new("1.1", "1.0", cid=V2)], 1, 1),
    ],
)
def test_call_key_groups_channels(events: list[Event], usage: int, calls: int) -> None:
    model = ChannelModel()
    feed(model, events)
    view = model.server_view(S)
    assert (view.usage, view.calls, view.dialer_calls["V"]) == (usage, calls, usage)


def test_uniqueids_collide_across_servers_and_are_kept_apart() -> None:
    model = ChannelModel()
    feed(model, dialer_call("1.0", V1), server=S)
    feed(model, dialer_call("1.0", V2), server=T)
    assert (model.usage(S), model.usage(T)) == (1, 1)
    model.apply(S, hangup("1.0", cid=V1), 1.0)
    assert (model.usage(S), model.usage(T)) == (0, 1)


# -- dialer calls ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("events", "expected_changes", "usage"),
    [
        # Newchannel with <unknown> names is not a dialer call yet; NewCallerid makes it one
        ([new("1.0")], [], 0),
        (dialer_call("1.0", V1), [UsageChange(S, 0, 1)], 1),
        # the id in ConnectedLineName only (a trunk leg) counts too
        ([new("1.0"), names("1.0", cid="John Smith", cl=V1)], [UsageChange(S, 0, 1)], 1),
        # CallerIDName with text after a space: the first word is the id
        ([new("1.0", cid=V1 + " extra")], [UsageChange(S, 0, 1)], 1),
        # NewConnectedLine repeating the id on the same call moves nothing
        ([*dialer_call("1.0", V1), names("1.0", cid=V1, cl=V1)], [UsageChange(S, 0, 1)], 1),
        # a Newstate on a dialer channel moves nothing
        ([*dialer_call("1.0", V1), state("1.0", cid=V1)], [UsageChange(S, 0, 1)], 1),
        # the call id changes: still one call
        ([*dialer_call("1.0", V1), names("1.0", cid=V2)], [UsageChange(S, 0, 1)], 1),
        # the id goes away: no longer a dialer call
        (
            [*dialer_call("1.0", V1), names("1.0", cid="someone")],
            [UsageChange(S, 0, 1), UsageChange(S, 1, 0)],
            0,
        ),
        # not a call id (wrong length, lowercase, wrong letter)
        ([new("1.0", cid="V112610101000000011"), new("2.0", cid="v1126101010000000110"),
          new("3.0", cid="X1126101010000000110")], [], 0),
        # the last channel of the call hangs up
        ([*dialer_call("1.0", V1), hangup("1.0", cid=V1)], [UsageChange(S, 0, 1), UsageChange(S, 1, 0)], 0),
    ],
)
def test_dialer_call_detection(events: list[Event], expected_changes: list[UsageChange], usage: int) -> None:
    model = ChannelModel()
    assert feed(model, events) == expected_changes
    assert model.usage(S) == usage


def test_call_ends_only_when_its_last_channel_hangs_up() -> None:
    model = ChannelModel()
    feed(model, [new("1.0", cid=V1), new("1.1", "1.0", cid=V1), new("1.2", "1.0", cl=V1, channel=TRUNK)])
    assert model.usage(S) == 1
    assert model.apply(S, hangup("1.2", "1.0"), 1.0) == NO_CHANGES
    assert model.apply(S, hangup("1.0"), 1.0) == NO_CHANGES
    assert model.apply(S, hangup("1.1", "1.0"), 1.0) == (UsageChange(S, 1, 0),)


@pytest.mark.parametrize(
    ("call_id", "family"),
    [(V1, "V"), (M1, "M"), (Y1, "Y"), (DC1, "DC"), (RA1, "RA"), ("RA_55_1", "RA")],
)
def test_families_are_counted_apart_and_only_v_is_line_usage(call_id: str, family: str) -> None:
    model = ChannelModel()
    changes = feed(model, [new("1.0"), names("1.0", cid=call_id)])
    view = model.server_view(S)
    expected = dict.fromkeys(("V", "M", "Y", "DC", "RA"), 0) | {family: 1}
    assert view.dialer_calls == expected
    assert view.usage == (1 if family == "V" else 0)
    assert changes == ([UsageChange(S, 0, 1)] if family == "V" else [])
    assert model.pending_lookups() == ({call_id} if family == "V" else set())


def test_a_call_carrying_two_families_counts_once_in_each() -> None:
    model = ChannelModel()
    feed(model, [new("1.0", cid=V1), new("1.1", "1.0", cid=M1), new("1.2", "1.0", cid=M1)])
    view = model.server_view(S)
    assert (view.dialer_calls["V"], view.dialer_calls["M"], view.calls) == (1, 1, 1)


# -- campaigns -----------------------------------------------------------------------------------------


def test_campaign_is_pending_then_resolved_once_and_cached() -> None:
    model = ChannelModel()
    feed(model, dialer_call("1.0", V1))
    assert model.pending_lookups() == {V1}
    assert model.server_view(S).pending_campaign == 1
    assert model.resolve_campaigns({V1: "SALES"}, 1.0) == (UsageChange(S, 1, 1, "SALES", 0, 1),)
    assert model.pending_lookups() == set()
    assert model.campaign_usage(S, "SALES") == 1
    assert model.campaign_of(V1) == "SALES"
    # a second answer for the same id is ignored (resolved once)
    assert model.resolve_campaigns({V1: "OTHER"}, 2.0) == NO_CHANGES
    # the cache attributes the same id on another server at once, without a lookup
    assert feed(model, dialer_call("1.0", V1), server=T) == [UsageChange(T, 0, 1, "SALES", 0, 1)]
    assert model.pending_lookups() == set()
    # the call ends: both counts go down together
    assert model.apply(S, hangup("1.0", cid=V1), 3.0) == (UsageChange(S, 1, 0, "SALES", 1, 0),)


def test_origin_on_this_server_counts_here() -> None:
    model = ChannelModel()
    feed(model, dialer_call("1.0", V1))
    origin = CallOrigin("SALES", S, "OUT")
    assert model.resolve_campaigns({V1: origin}, 1.0) == (UsageChange(S, 1, 1, "SALES", 0, 1),)
    assert (model.origin_of(V1), model.campaign_of(V1)) == (origin, "SALES")


def test_call_placed_on_another_server_counts_only_there() -> None:
    # Issue 6 point 1: a FILL call placed on T and bridged over IAX2 to an agent on S carries the
    # same V id on S's leg. Its row says server_ip T: S counts nothing, T counts the call.
    model = ChannelModel()
    feed(model, dialer_call("1.0", V1), server=T)  # the call on T (Local halves, trunk)
    feed(model, [new("7.0", cid=V1, channel="IAX2/agent-1")], server=S)  # its leg on S
    assert (model.usage(S), model.usage(T)) == (1, 1)  # pending: counted where seen
    changes = model.resolve_campaigns({V1: CallOrigin("SALES", T, "OUTBALANCE")}, 1.0)
    assert sorted(changes, key=lambda c: c.server) == [
        UsageChange(S, 1, 0),
        UsageChange(T, 1, 1, "SALES", 0, 1),
    ]
    assert (model.usage(S), model.usage(T), model.campaign_usage(S, "SALES")) == (0, 1, 0)
    view = model.server_view(S)
    assert (view.placed_elsewhere, view.pending_campaign, view.dialer_calls["V"]) == (1, 0, 1)
    # a later leg of the same id on S is known at once not to count
    assert feed(model, [new("8.0", cid=V1, channel="IAX2/agent-2")], server=S) == []
    # the leg hangs up: nothing moves on S
    assert model.apply(S, hangup("7.0", cid=V1, channel="IAX2/agent-1"), 2.0) == NO_CHANGES


def test_counts_are_live_counts() -> None:
    model = ChannelModel()
    feed(model, dialer_call("1.0", V1))
    model.resolve_campaigns({V1: CallOrigin("SALES", S)}, 0.0)
    model.reserve(T, V2, "FILL", 0.0)
    counts = model.counts()
    assert (dict(counts.usage), dict(counts.campaign_usage)) == (
        {S: 1, T: 1},
        {("SALES", S): 1, ("FILL", T): 1},
    )
    assert counts.dialable == frozenset()


def test_origin_without_campaign_is_a_line_only() -> None:
    model = ChannelModel()
    feed(model, dialer_call("1.0", V1))
    assert model.resolve_campaigns({V1: CallOrigin("", S)}, 1.0) == NO_CHANGES
    assert (model.usage(S), model.server_view(S).campaigns) == (1, {})


def test_campaign_not_found_is_not_asked_again() -> None:
    model = ChannelModel()
    feed(model, dialer_call("1.0", V1))
    assert model.resolve_campaigns({V1: None}, 1.0) == NO_CHANGES
    assert model.pending_lookups() == set()
    feed(model, dialer_call("2.0", V1))
    assert model.pending_lookups() == set()
    view = model.server_view(S)
    assert (view.usage, view.campaigns, view.pending_campaign) == (2, {}, 2)


def test_resolving_an_id_nobody_carries_any_more_only_caches() -> None:
    model = ChannelModel()
    feed(model, [*dialer_call("1.0", V1), hangup("1.0")])
    assert model.pending_lookups() == set()
    assert model.resolve_campaigns({V1: "SALES"}, 1.0) == NO_CHANGES


def test_call_id_change_moves_the_campaign_count_with_chained_changes() -> None:
    model = ChannelModel()
    model.resolve_campaigns({V1: "A", V2: "B"}, 0.0)
    feed(model, dialer_call("1.0", V1))
    changes = model.apply(S, names("1.0", cid=V2), 1.0)
    assert changes == (UsageChange(S, 1, 1, "A", 1, 0), UsageChange(S, 1, 1, "B", 0, 1))
    assert sum(change.delta for change in changes) == 0


def test_primary_id_is_the_smallest_v_id_of_the_call() -> None:
    model = ChannelModel()
    model.resolve_campaigns({V1: "A", V2: "B"}, 0.0)
    feed(model, [new("1.0", cid=V2)])
    assert model.campaign_usage(S, "B") == 1
    assert model.apply(S, new("1.1", "1.0", cid=V1), 0.0) == (
        UsageChange(S, 1, 1, "B", 1, 0), UsageChange(S, 1, 1, "A", 0, 1))
    assert model.apply(S, hangup("1.1", "1.0"), 0.0) == (
        UsageChange(S, 1, 1, "A", 1, 0), UsageChange(S, 1, 1, "B", 0, 1))


def test_reserve_names_the_campaign_of_a_call_pending_a_lookup() -> None:
    model = ChannelModel()
    feed(model, dialer_call("1.0", V1))
    assert model.reserve(S, V1, "SALES", 0.0) == (UsageChange(S, 1, 1, "SALES", 0, 1),)
    assert model.pending_lookups() == set()
    assert model.server_view(S).reservations == 0  # the call is already live: no reservation


# -- trunk channels ----------------------------------------------------------------------------------


def test_trunk_channels_are_counted_for_reporting_only() -> None:
    model = ChannelModel()
    changes = feed(model, [new("1.0", cid=V1), new("1.1", "1.0", cl=V1, channel=TRUNK),
                           new("2.0", channel="DAHDI/pseudo"), new("3.0", channel="SIP/agent100-00000001")])
    assert changes == [UsageChange(S, 0, 1)]
    view = model.server_view(S)
    assert (view.trunk_channels, view.channels) == (2, 4)
    model.apply(S, hangup("1.1", "1.0", channel=TRUNK), 1.0)
    assert model.server_view(S).trunk_channels == 1


def test_trunk_classifier_is_configurable_and_follows_renames() -> None:
    model = ChannelModel(classifier=TrunkClassifier(excluded_peers=frozenset({"agent100"})))
    feed(model, [new("3.0", channel="SIP/agent100-00000001"), new("4.0", channel="Local/x@y-1;1")])
    assert model.server_view(S).trunk_channels == 0
    model.apply(S, state("4.0", channel="SIP/carrier-00000002"), 0.0)  # a masquerade renames
    assert model.server_view(S).trunk_channels == 1


# -- reservations ------------------------------------------------------------------------------------


def test_reservation_counts_until_its_channel_appears_and_is_not_double_counted() -> None:
    model = ChannelModel()
    assert model.reserve(S, V1, "SALES", 0.0) == (UsageChange(S, 0, 1, "SALES", 0, 1),)
    assert (model.usage(S), model.campaign_usage(S, "SALES")) == (1, 1)
    assert model.server_view(S).reserved_call_ids == (V1,)
    # Newchannel with <unknown> names: nothing; NewCallerid with the id: the reservation becomes the call
    assert feed(model, dialer_call("1.0", V1)) == []
    view = model.server_view(S)
    assert (view.usage, view.reservations, view.dialer_calls["V"], view.campaigns) == (1, 0, 1, {"SALES": 1})
    assert model.pending_lookups() == set()  # the campaign came with the reservation
    # a failure after the call appeared (busy: OriginateResponse between the Hangups) changes nothing
    assert model.apply(S, failed(V1, V1), 1.0) == NO_CHANGES
    assert model.apply(S, hangup("1.0"), 2.0) == (UsageChange(S, 1, 0, "SALES", 1, 0),)
    assert model.expire(100.0) == NO_CHANGES


@pytest.mark.parametrize(
    "release",
    [
        failed(V1),  # ActionID = the call id (fillreactor's originates)
        failed("dialer1-orig-busy", V1),  # CallerIDName = the call id
        failed("x", V1 + " extra"),
    ],
)
def test_reservation_released_by_a_failed_originate(release: OriginateResult) -> None:
    model = ChannelModel()
    model.reserve(S, V1, "SALES", 0.0)
    assert model.apply(S, release, 1.0) == (UsageChange(S, 1, 0, "SALES", 1, 0),)
    assert model.apply(S, release, 1.0) == NO_CHANGES


@pytest.mark.parametrize(
    "event",
    [succeeded(V1, V1), failed(V2, V2), failed("other"), FullyBooted()],
)
def test_reservation_kept_by_other_results(event: Event) -> None:
    model = ChannelModel()
    model.reserve(S, V1, "SALES", 0.0)
    assert model.apply(S, event, 1.0) == NO_CHANGES
    assert model.usage(S) == 1


def test_reservation_on_another_server_is_not_released() -> None:
    # The call id's channels on T (e.g. the IAX2 leg bridged to an agent there) neither release
    # the reservation on S nor count on T: the call was placed on S (issue 6 point 1).
    model = ChannelModel()
    model.reserve(S, V1, "SALES", 0.0)
    assert feed(model, dialer_call("1.0", V1), server=T) == []
    assert model.apply(T, failed(V1, V1), 0.0) == NO_CHANGES
    assert (model.usage(S), model.usage(T)) == (1, 0)
    assert model.server_view(T).placed_elsewhere == 1


def test_reservation_released_by_timeout() -> None:
    model = ChannelModel(reservation_timeout=60.0)
    model.reserve(S, V1, "SALES", 0.0)
    model.reserve(S, V2, "OTHER", 0.0, timeout=5.0)
    assert model.expire(4.9) == NO_CHANGES
    assert model.expire(5.0) == (UsageChange(S, 2, 1, "OTHER", 1, 0),)
    assert model.expire(59.0) == NO_CHANGES
    assert model.expire(60.0) == (UsageChange(S, 1, 0, "SALES", 1, 0),)
    assert model.usage(S) == 0


def test_two_reservations_expiring_together_chain() -> None:
    model = ChannelModel()
    model.reserve(S, V1, "A", 0.0, timeout=1.0)
    model.reserve(S, V2, "B", 0.0, timeout=1.0)
    changes = model.expire(1.0)
    assert changes == (UsageChange(S, 2, 0, "A", 1, 0), UsageChange(S, 0, 0, "B", 1, 0))
    assert sum(change.delta for change in changes) == -2


def test_re_reserving_refreshes_without_double_count() -> None:
    model = ChannelModel()
    model.reserve(S, V1, "SALES", 0.0, timeout=5.0)
    assert model.reserve(S, V1, "SALES", 4.0, timeout=5.0) == NO_CHANGES
    assert model.expire(6.0) == NO_CHANGES
    assert model.expire(9.0) == (UsageChange(S, 1, 0, "SALES", 1, 0),)


def test_an_acknowledged_originate_counts_its_reservation_from_the_reply() -> None:
    # sent at 0 with 3 s for the reply and 2 s for the channels; the reply comes at 2.5 s: the line
    # is held until 4.5 s, not 2 s (fault matrix: events later than the reservation)
    model = ChannelModel(reservation_timeout=2.0)
    model.reserve(S, V1, "SALES", 0.0, timeout=5.0)
    assert model.extend_reservation(S, V1, 2.5) is True
    assert model.expire(4.4) == NO_CHANGES and model.usage(S) == 1
    assert model.expire(4.5) == (UsageChange(S, 1, 0, "SALES", 1, 0),)
    assert model.extend_reservation(S, V1, 5.0) is False  # gone: not brought back
    assert model.extend_reservation(T, V1, 5.0) is False and model.usage(S) == 0


def test_reservation_turned_into_a_call_by_a_snapshot_row() -> None:
    model = ChannelModel()
    model.reserve(S, V1, "SALES", 0.0)
    model.begin_snapshot(S, "csc", 0.0)
    feed(model, [row("csc", "1.0", cid=V1), SnapshotEnd("csc", 1)])
    view = model.server_view(S)
    assert (view.usage, view.reservations, view.dialer_calls["V"]) == (1, 0, 1)


# -- tombstones ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "late",
    [
        state("1.0", cid=V1),  # a Newstate after the Hangup
        names("1.0", cid=V1),  # a NewCallerid after the Hangup
        new("1.0", cid=V1),  # even a repeated Newchannel
        hangup("1.0", cid=V1),  # a duplicate Hangup
    ],
)
def test_tombstones_stop_late_and_duplicate_events(late: Event) -> None:
    model = ChannelModel()
    feed(model, [*dialer_call("1.0", V1), hangup("1.0", cid=V1)])
    assert model.apply(S, late, 1.0) == NO_CHANGES
    view = model.server_view(S)
    assert (view.usage, view.channels, view.tombstones) == (0, 0, 1)


def test_hangup_of_an_unknown_channel_only_tombstones() -> None:
    model = ChannelModel()
    assert model.apply(S, hangup("9.9", cid=V1), 0.0) == NO_CHANGES
    assert model.apply(S, new("9.9", cid=V1), 0.0) == NO_CHANGES
    assert model.server_view(S).tombstones == 1


def test_tombstones_are_pruned_after_their_ttl() -> None:
    model = ChannelModel(tombstone_ttl=120.0)
    model.apply(S, hangup("1.0"), 10.0)
    model.apply(S, hangup("1.0"), 100.0)  # a duplicate keeps the first time
    model.apply(S, hangup("2.0"), 20.0)
    assert model.expire(129.9) == NO_CHANGES
    assert model.server_view(S).tombstones == 2
    model.expire(130.0)
    assert model.server_view(S).tombstones == 1
    model.expire(140.0)
    assert model.server_view(S).tombstones == 0
    # past the TTL a Uniqueid is unknown again (Asterisk never reuses one within a TTL)
    assert model.apply(S, new("1.0", cid=V1), 141.0) == (UsageChange(S, 0, 1),)


def test_an_event_for_an_unknown_channel_creates_it() -> None:
    model = ChannelModel()
    assert model.apply(S, state("5.0", cid=V1), 0.0) == (UsageChange(S, 0, 1),)


# -- snapshots ---------------------------------------------------------------------------------------


def loaded(model: ChannelModel, server: str = S) -> bool:
    return model.server_view(server).snapshot.state == "loaded"


def test_snapshot_loads_the_listed_channels() -> None:
    model = ChannelModel()
    model.set_link(S, True, 0.0)
    model.begin_snapshot(S, "csc-1", 0.0)
    rows = [row("csc-1", "1.0", cid=V1), row("csc-1", "1.1", "1.0", cid=V1),
            row("csc-1", "2.0", cid=V2), row("csc-1", "2.1", "2.0", cl=V2, channel=TRUNK)]
    assert feed(model, rows) == []  # rows are held until the end
    assert not model.dialable(S)
    assert model.apply(S, SnapshotEnd("csc-1", 4), 1.0) == (UsageChange(S, 0, 2),)
    view = model.server_view(S)
    assert (view.usage, view.channels, view.trunk_channels, view.calls) == (2, 4, 1, 2)
    assert model.dialable(S) and loaded(model)


def test_snapshot_removes_missed_hangups_and_updates_stale_contents() -> None:
    model = ChannelModel()
    model.resolve_campaigns({V1: "A", V2: "B"}, 0.0)
    feed(model, dialer_call("1.0", V1) + dialer_call("2.0", V2))
    model.begin_snapshot(S, "csc", 1.0)
    feed(model, [row("csc", "2.0", cid=V1)])  # 1.0 missed its Hangup; 2.0 now carries V1
    changes = model.apply(S, SnapshotEnd("csc", 1), 2.0)
    assert changes == (UsageChange(S, 2, 1, "B", 1, 0),)  # A lost 1.0 and gained 2.0: unmoved
    assert model.campaign_usage(S, "A") == 1 and model.campaign_usage(S, "B") == 0
    assert model.usage(S) == 1
    assert model.server_view(S).tombstones == 1  # the missed hangup is tombstoned
    assert model.apply(S, state("1.0", cid=V1), 3.0) == NO_CHANGES


def test_snapshot_keeps_channels_created_after_the_request() -> None:
    model = ChannelModel()
    model.begin_snapshot(S, "csc", 0.0)
    feed(model, dialer_call("3.0", V3))  # created after the request: not in the rows
    feed(model, [row("csc", "1.0", cid=V1)])
    assert model.apply(S, SnapshotEnd("csc", 1), 1.0) == (UsageChange(S, 1, 2),)
    assert model.usage(S) == 2


def test_snapshot_keeps_old_channels_touched_by_an_event_after_the_request() -> None:
    model = ChannelModel()
    feed(model, dialer_call("1.0", V1))
    model.begin_snapshot(S, "csc", 0.0)
    model.apply(S, state("1.0", cid=V1), 0.5)  # proves it is alive after the request
    model.apply(S, SnapshotEnd("csc", 0), 1.0)
    assert model.usage(S) == 1


def test_events_between_begin_and_end_win_over_rows() -> None:
    model = ChannelModel()
    model.begin_snapshot(S, "csc", 0.0)
    feed(model, [row("csc", "1.0", cid=V1), row("csc", "2.0", cid=V2)])
    feed(model, [names("1.0", cid="nobody")])  # newer than its row
    feed(model, [hangup("2.0", cid=V2)])  # tombstoned: its row is dead
    assert model.apply(S, SnapshotEnd("csc", 2), 1.0) == NO_CHANGES
    view = model.server_view(S)
    assert (view.usage, view.channels) == (0, 1)


def test_event_after_the_row_but_before_the_end_also_wins() -> None:
    model = ChannelModel()
    model.begin_snapshot(S, "csc", 0.0)
    model.apply(S, names("1.0", cid=V2), 0.1)
    model.apply(S, row("csc", "1.0", cid=V1), 0.2)
    model.apply(S, SnapshotEnd("csc", 1), 0.3)
    assert model.pending_lookups() == {V2}


def test_snapshot_row_of_a_hung_up_channel_does_not_resurrect_it() -> None:
    model = ChannelModel()
    feed(model, [*dialer_call("1.0", V1), hangup("1.0", cid=V1)])
    model.begin_snapshot(S, "csc", 1.0)
    feed(model, [row("csc", "1.0", cid=V1), SnapshotEnd("csc", 1)])
    assert model.usage(S) == 0 and loaded(model)


@pytest.mark.parametrize(("rows_sent", "list_items"), [(2, 3), (2, 1), (0, 1)])
def test_snapshot_rejected_when_rows_differ_from_list_items(rows_sent: int, list_items: int) -> None:
    model = ChannelModel()
    feed(model, dialer_call("9.0", V3))  # not listed: would be removed by an accepted snapshot
    model.set_link(S, True, 0.0)
    model.begin_snapshot(S, "csc", 0.0)
    rows = [row("csc", "1.0", cid=V1), row("csc", "2.0", cid=V2)][:rows_sent]
    assert feed(model, [*rows, SnapshotEnd("csc", list_items)]) == []
    view = model.server_view(S)
    assert (view.usage, view.channels) == (1, 1)  # state unchanged
    assert not model.dialable(S)
    assert view.snapshot.state == "rejected"
    assert f"ListItems {list_items}" in view.snapshot.detail
    # a good retry loads
    model.begin_snapshot(S, "csc-2", 1.0)
    retry = [row("csc-2", r.uniqueid, cid=r.caller_id_name) for r in rows]
    feed(model, [*retry, SnapshotEnd("csc-2", rows_sent)])
    assert model.dialable(S) and model.usage(S) == rows_sent


def test_snapshot_rejected_makes_a_dialable_server_undialable() -> None:
    model = ChannelModel()
    model.set_link(S, True, 0.0)
    model.begin_snapshot(S, "a", 0.0)
    model.apply(S, SnapshotEnd("a", 0), 0.0)
    assert model.dialable(S)
    model.begin_snapshot(S, "b", 1.0)  # a periodic cross-check: still dialable while pending
    assert model.dialable(S)
    model.apply(S, SnapshotEnd("b", 3), 1.0)
    assert not model.dialable(S)


def test_rows_and_ends_of_other_action_ids_are_ignored() -> None:
    model = ChannelModel()
    model.set_link(S, True, 0.0)
    model.begin_snapshot(S, "csc", 0.0)
    feed(model, [row("status-1", "1.0", cid=V1), SnapshotEnd("status-1", 1)])
    assert model.usage(S) == 0 and not model.dialable(S)
    assert model.server_view(S).snapshot.state == "pending"
    feed(model, [row("csc", "2.0", cid=V2), SnapshotEnd("csc", 1)])
    assert model.usage(S) == 1 and model.dialable(S)
    # rows with no snapshot pending
    feed(model, [row("csc", "3.0", cid=V3), SnapshotEnd("csc", 1)])
    assert model.usage(S) == 1


def test_a_new_begin_replaces_the_pending_snapshot() -> None:
    model = ChannelModel()
    model.begin_snapshot(S, "a", 0.0)
    model.apply(S, row("a", "1.0", cid=V1), 0.0)
    model.begin_snapshot(S, "b", 0.1)
    feed(model, [row("a", "2.0", cid=V2), SnapshotEnd("a", 2), row("b", "3.0", cid=V3), SnapshotEnd("b", 1)])
    assert model.pending_lookups() == {V3}


# -- links and dialable ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("steps", "dialable", "stale"),
    [
        ([], False, False),
        (["up"], False, False),
        (["snapshot"], False, False),  # loaded but the link was never reported live
        (["up", "snapshot"], True, False),
        (["up", "snapshot", "down"], False, True),
        (["up", "snapshot", "down", "up"], False, True),  # a re-login needs its own snapshot
        (["up", "snapshot", "down", "up", "snapshot"], True, False),
        (["up", "snapshot", "up"], False, False),  # every login needs a snapshot
        (["up", "snapshot", "shutdown"], False, True),
        (["up", "begin", "down", "up", "end"], False, True),  # the end of an abandoned snapshot
        (["up", "snapshot", "bad"], False, False),
    ],
)
def test_dialable_transitions(steps: list[str], dialable: bool, stale: bool) -> None:
    model = ChannelModel()
    for number, step in enumerate(steps):
        action = f"csc-{number}"
        if step == "up":
            model.set_link(S, True, number)
        elif step == "down":
            model.set_link(S, False, number)
        elif step == "shutdown":
            assert model.apply(S, Shutdown(restart=True), number) == NO_CHANGES
        elif step == "snapshot":
            model.begin_snapshot(S, action, number)
            model.apply(S, SnapshotEnd(action, 0), number)
        elif step == "begin":
            model.begin_snapshot(S, "pending", number)
        elif step == "end":
            model.apply(S, SnapshotEnd("pending", 0), number)
        elif step == "bad":
            model.begin_snapshot(S, action, number)
            model.apply(S, SnapshotEnd(action, 1), number)
    assert model.dialable(S) is dialable
    view = model.server_view(S)
    assert (view.dialable, view.stale) == (dialable, stale)


def test_link_down_keeps_counts_for_reporting() -> None:
    model = ChannelModel()
    feed(model, dialer_call("1.0", V1))
    model.reserve(S, V2, "SALES", 0.0)
    model.set_link(S, False, 1.0)
    view = model.server_view(S)
    assert (view.usage, view.stale, view.dialable) == (2, True, False)


# -- odd input ---------------------------------------------------------------------------------------


def test_odd_input_never_raises() -> None:
    model = ChannelModel()
    assert model.usage("nowhere") == 0
    assert model.campaign_usage("nowhere", "X") == 0
    assert not model.dialable("nowhere")
    assert model.server_view("nowhere").usage == 0
    assert model.apply("new-server", new("", cid=V1), 0.0) == NO_CHANGES  # no Uniqueid
    assert model.apply("new-server", hangup(""), 0.0) == NO_CHANGES
    assert model.apply("new-server", object(), 0.0) == NO_CHANGES  # type: ignore[arg-type]
    assert "new-server" in model.servers()
    model.add_server("other")
    assert model.servers() == ("new-server", "other")
    assert model.resolve_campaigns({}, 0.0) == NO_CHANGES


def test_a_resync_releases_reservations_that_never_became_calls() -> None:
    # reserved at t=10 (an Originate sent), then the server restarts: the listing at t=20 does not
    # have the call; begun 10 s after the originate (> reservation_grace 2 s): the line is free
    model = ChannelModel(reservation_grace=2.0)
    model.set_link("s", True, 0.0)
    model.reserve("s", "V1126101010000000001", "C", 10.0)
    model.reserve("s", "V1126101010000000002", "C", 19.5)  # 0.5 s before the listing: kept
    assert model.usage("s") == 2
    model.set_link("s", False, 15.0)
    model.set_link("s", True, 20.0)
    model.begin_snapshot("s", "a1", 20.0)
    model.apply("s", SnapshotEnd("a1", 0), 20.1)
    assert model.usage("s") == 1 and model.campaign_usage("s", "C") == 1
