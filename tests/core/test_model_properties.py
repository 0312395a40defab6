"""Properties of the channel-count model, checked against a brute-force recount.

1. After every step of a random history (interleaved call lifecycles on two servers whose
   Uniqueids collide, one of them pre-Asterisk-12, with duplicated and late events, reservations,
   failed originates, expiries and origin lookups, some naming the other server as the one the
   call was placed on), the model's counts equal a naive recount of that history, and the
   reported UsageChange values add up to the moves.
2. A snapshot reaches the true state for any interleaving: a model that lost events before a
   reconnect, then received racing events and snapshot rows interleaved, equals the truth once
   the stream has been delivered.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fillreactor.core.callid import call_id_of
from fillreactor.core.events import (
    CallerIdChanged,
    ChannelCreated,
    ChannelFields,
    ChannelHungUp,
    ChannelStateChanged,
    OriginateResult,
    SnapshotEnd,
    SnapshotRow,
)
from fillreactor.core.model import ChannelModel, call_key_of
from fillreactor.core.origin import CallOrigin

MODERN, LEGACY = "10.0.0.1", "10.0.0.2"  # LEGACY: Asterisk < 12, no Linkedid
CAMPAIGN = {
    "V1126101010000000001": "A",
    "V1126101010000000002": "B",
    "V1126101010000000003": "A",
}
# The server each call was placed on ('' = the lookup does not say: counted where seen). A call
# whose channels show up on the other server (the IAX2 leg to an agent there) counts only here.
ORIGIN = {
    "V1126101010000000001": MODERN,
    "V1126101010000000002": LEGACY,
    "V1126101010000000003": "",
}
RESERVABLE = [call_id for call_id, server in ORIGIN.items() if server]
NAMES = [*CAMPAIGN, "M1126101010000000004", "Y1126101010000000005", "", "John Smith"]
FAMILIES = ("V", "M", "Y", "DC", "RA")
RESERVATION_TIMEOUT = 5.0


# -- generating histories ------------------------------------------------------------------------


@st.composite
def channel_lifecycle(draw: st.DrawFn, uid: str, linkedid: str) -> list[ChannelFields]:
    """Newchannel (names usually <unknown>), name changes, Newstates, maybe a Hangup."""
    channel = draw(st.sampled_from(["Local/9@default-0;1", "SIP/carrier-00000001", "PJSIP/agent-1"]))
    cid, cl = draw(st.sampled_from(["", *NAMES])), ""
    events: list[ChannelFields] = [ChannelCreated(channel, uid, linkedid, 0, cid, cl)]
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["names", "connected", "state"]))
        if kind == "names":
            cid = draw(st.sampled_from(NAMES))
        elif kind == "connected":
            cl = draw(st.sampled_from(NAMES))
        event_type = ChannelStateChanged if kind == "state" else CallerIdChanged
        events.append(event_type(channel, uid, linkedid, draw(st.integers(0, 7)), cid, cl))
    if draw(st.booleans()):
        events.append(ChannelHungUp(channel, uid, linkedid, 6, cid, cl, 16, "Normal Clearing"))
    return events


@st.composite
def server_stream(draw: st.DrawFn, server: str, max_calls: int = 4) -> list[tuple[str, ChannelFields]]:
    """Call lifecycles of one server, interleaved. Uniqueids restart at 1000.0 on every server."""
    queues: list[list[ChannelFields]] = []
    counter = 0
    for _ in range(draw(st.integers(0, max_calls))):
        first = f"1000.{counter}"
        for _ in range(draw(st.integers(1, 3))):
            uid = f"1000.{counter}"
            counter += 1
            queues.append(draw(channel_lifecycle(uid, first if server == MODERN else "")))
    merged: list[tuple[str, ChannelFields]] = []
    while any(queues):
        live = [q for q in queues if q]
        queue = live[draw(st.integers(0, len(live) - 1))]
        merged.append((server, queue.pop(0)))
    return merged


@st.composite
def history(draw: st.DrawFn) -> list[tuple]:
    modern, legacy = draw(server_stream(MODERN)), draw(server_stream(LEGACY))
    steps: list[tuple] = []
    while modern or legacy:
        source = modern if (modern and (not legacy or draw(st.booleans()))) else legacy
        steps.append(("event", *source.pop(0)))
    # duplicates and late copies of events, anywhere after the original
    for _ in range(draw(st.integers(0, 4))):
        if not steps:
            break
        original = draw(st.integers(0, len(steps) - 1))
        steps.insert(draw(st.integers(original + 1, len(steps))), steps[original])
    # control operations
    ops = st.one_of(
        st.tuples(st.just("reserve"), st.sampled_from(RESERVABLE)),
        st.tuples(st.just("fail"), st.sampled_from([MODERN, LEGACY]), st.sampled_from(list(CAMPAIGN))),
        st.tuples(st.just("resolve")),
        st.tuples(st.just("expire")),
    )
    for op in draw(st.lists(ops, max_size=6)):
        steps.insert(draw(st.integers(0, len(steps))), op)
    return steps


# -- the brute-force recount ---------------------------------------------------------------------


@dataclass
class Truth:
    """What the history says, recounted from scratch (except the sequential reservation rules)."""

    channels: dict[str, dict[str, ChannelFields]]
    dead: dict[str, set[str]]
    reservations: dict[str, dict[str, float]]  # server -> call id -> deadline
    known: set[str]  # call ids whose campaign the model has been told

    @classmethod
    def empty(cls) -> Truth:
        servers = (MODERN, LEGACY)
        return cls({s: {} for s in servers}, {s: set() for s in servers}, {s: {} for s in servers}, set())

    def calls(self, server: str) -> dict[str, list[str]]:
        """call key -> call ids of its live channels."""
        grouped: dict[str, list[str]] = {}
        for uid, fields in self.channels[server].items():
            ident = call_id_of(fields.caller_id_name, fields.connected_line_name)
            call_id = ident[1] if ident else None
            ids = grouped.setdefault(call_key_of(fields.linkedid, call_id, uid), [])
            if call_id:
                ids.append(call_id)
        return grouped

    def primaries(self, server: str) -> list[str]:
        primaries = []
        for ids in self.calls(server).values():
            v_ids = [i for i in ids if i.startswith("V")]
            if v_ids:
                primaries.append(min(v_ids))
        return primaries

    def families(self, server: str) -> dict[str, int]:
        counts = dict.fromkeys(FAMILIES, 0)
        for ids in self.calls(server).values():
            for family in {call_id_of(i, "")[0] for i in ids}:  # type: ignore[index]
                counts[family] += 1
        return counts

    def counted(self, server: str) -> list[str]:
        """The primaries that count as lines here: not known to be placed on the other server."""
        return [
            p
            for p in self.primaries(server)
            if not (p in self.known and ORIGIN[p] and ORIGIN[p] != server)
        ]

    def usage(self, server: str) -> int:
        return len(self.counted(server)) + len(self.reservations[server])

    def campaigns(self, server: str) -> dict[str, int]:
        counts: dict[str, int] = {}
        for primary in self.counted(server):
            if primary in self.known:
                counts[CAMPAIGN[primary]] = counts.get(CAMPAIGN[primary], 0) + 1
        for call_id in self.reservations[server]:
            counts[CAMPAIGN[call_id]] = counts.get(CAMPAIGN[call_id], 0) + 1
        return counts

    def pending(self) -> set[str]:
        return {p for s in (MODERN, LEGACY) for p in self.primaries(s) if p not in self.known}

    def live_ids(self, server: str) -> set[str]:
        return {i for ids in self.calls(server).values() for i in ids}

    def event(self, server: str, fields: ChannelFields) -> None:
        if fields.uniqueid in self.dead[server]:
            return
        if isinstance(fields, ChannelHungUp):
            self.dead[server].add(fields.uniqueid)
            self.channels[server].pop(fields.uniqueid, None)
            return
        self.channels[server][fields.uniqueid] = fields
        for call_id in self.live_ids(server) & set(self.reservations[server]):
            del self.reservations[server][call_id]


def check(model: ChannelModel, truth: Truth) -> None:
    for server in (MODERN, LEGACY):
        view = model.server_view(server)
        assert view.usage == truth.usage(server)
        assert dict(view.dialer_calls) == truth.families(server)
        assert dict(view.campaigns) == truth.campaigns(server)
        assert view.calls == len(truth.calls(server))
        assert view.channels == len(truth.channels[server])
        assert set(view.reserved_call_ids) == set(truth.reservations[server])
    assert model.pending_lookups() == truth.pending()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(history())
def test_model_counts_equal_a_brute_force_recount(steps: list[tuple]) -> None:
    model = ChannelModel(reservation_timeout=RESERVATION_TIMEOUT, tombstone_ttl=1e9)
    truth = Truth.empty()
    for now, step in enumerate(steps):
        before = {s: (model.usage(s), dict(model.server_view(s).campaigns)) for s in (MODERN, LEGACY)}
        kind = step[0]
        if kind == "event":
            _, server, fields = step
            changes = model.apply(server, fields, float(now))
            truth.event(server, fields)
        elif kind == "reserve":
            _, call_id = step
            server = ORIGIN[call_id]
            changes = model.reserve(server, call_id, CAMPAIGN[call_id], float(now))
            truth.known.add(call_id)
            if call_id not in truth.live_ids(server):
                truth.reservations[server][call_id] = now + RESERVATION_TIMEOUT
        elif kind == "fail":
            _, server, call_id = step
            changes = model.apply(server, OriginateResult(call_id, False, 5, "Local/x@y", "", call_id), now)
            truth.reservations[server].pop(call_id, None)
        elif kind == "resolve":
            pending = model.pending_lookups()
            assert pending == truth.pending()
            changes = model.resolve_campaigns(
                {i: CallOrigin(CAMPAIGN[i], ORIGIN[i]) if ORIGIN[i] else CAMPAIGN[i] for i in pending},
                float(now),
            )
            truth.known |= pending
        else:
            changes = model.expire(float(now))
            for reserved in truth.reservations.values():
                for call_id in [i for i, deadline in reserved.items() if deadline <= now]:
                    del reserved[call_id]
        check(model, truth)
        # the changes report exactly what moved, chained per server
        for server in (MODERN, LEGACY):
            mine = [c for c in changes if c.server == server]
            usage_before, campaigns_before = before[server]
            usage_after = model.usage(server)
            assert sum(c.delta for c in mine) == usage_after - usage_before
            if mine:
                assert mine[0].usage_before == usage_before and mine[-1].usage_after == usage_after
            campaigns_after = dict(model.server_view(server).campaigns)
            moved = {c for c in campaigns_before.keys() | campaigns_after.keys()
                     if campaigns_before.get(c, 0) != campaigns_after.get(c, 0)}
            assert {c.campaign for c in mine if c.campaign is not None} == moved
            for change in mine:
                if change.campaign is not None:
                    assert change.campaign_before == campaigns_before.get(change.campaign, 0)
                    assert change.campaign_after == campaigns_after.get(change.campaign, 0)


# -- snapshot reconciliation -----------------------------------------------------------------------


@st.composite
def snapshot_race(draw: st.DrawFn) -> tuple:
    server = draw(st.sampled_from([MODERN, LEGACY]))
    stream = [fields for _, fields in draw(server_stream(server, max_calls=5))]
    request = draw(st.integers(0, len(stream)))  # begin_snapshot here
    instant = draw(st.integers(request, len(stream)))  # Asterisk takes the snapshot here
    end = draw(st.integers(instant, len(stream)))  # CoreShowChannelsComplete arrives here
    lost = draw(st.sets(st.integers(0, max(request - 1, 0)), max_size=request))  # lost before reconnect
    row_slots = draw(st.lists(st.integers(instant, end), max_size=40))
    return server, stream, request, instant, end, lost, row_slots


def true_state(stream: list[ChannelFields]) -> dict[str, ChannelFields]:
    live: dict[str, ChannelFields] = {}
    dead: set[str] = set()
    for fields in stream:
        if isinstance(fields, ChannelHungUp):
            dead.add(fields.uniqueid)
            live.pop(fields.uniqueid, None)
        elif fields.uniqueid not in dead:
            live[fields.uniqueid] = fields
    return live


def plain(fields: ChannelFields) -> tuple:
    return (fields.channel, fields.linkedid, fields.state, fields.caller_id_name, fields.connected_line_name)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(snapshot_race())
def test_snapshot_reconciliation_reaches_the_true_state(race: tuple) -> None:
    server, stream, request, instant, end, lost, row_slots = race
    model = ChannelModel(tombstone_ttl=1e9)
    model.set_link(server, True, 0.0)
    for index in range(request):
        if index not in lost:
            model.apply(server, stream[index], float(index))
    model.begin_snapshot(server, "csc-1", float(request))
    at_instant = true_state(stream[:instant])
    rows = [
        SnapshotRow(
            f.channel, f.uniqueid, f.linkedid, f.state, f.caller_id_name, f.connected_line_name, "csc-1"
        )
        for f in at_instant.values()
    ]
    # rows are sent between the snapshot instant and the end, interleaved with racing events
    slots = sorted((row_slots + [end] * len(rows))[: len(rows)])
    pending_rows = list(zip(slots, rows, strict=True))
    for index in range(request, len(stream) + 1):
        while pending_rows and pending_rows[0][0] == index:
            model.apply(server, pending_rows.pop(0)[1], float(index))
        if index == end:
            model.apply(server, SnapshotEnd("csc-1", len(rows)), float(index))
            assert model.dialable(server)
        if index < len(stream):
            model.apply(server, stream[index], float(index))
    truth = true_state(stream)
    assert {u: plain(f) for u, f in model.live_channels(server).items()} == {
        u: plain(f) for u, f in truth.items()
    }
    recount = Truth.empty()
    recount.channels[server] = dict(truth)
    view = model.server_view(server)
    assert (view.usage, dict(view.dialer_calls), view.calls) == (
        recount.usage(server), recount.families(server), len(recount.calls(server))
    )
