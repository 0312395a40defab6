"""The real Asterisk 22 captures drive the model (fixtures/asterisk22, annotated in the sample).

Each ``*.raw`` file is one AMI connection's received bytes. It is framed with ``iter_messages``,
normalised with ``normalise_raw`` and applied in order; ``begin_snapshot`` is called where the
CoreShowChannels request was answered (``Message: Channels will follow``), which is as late as
the received bytes show it. Expectations come from asterisk22-sample.txt:

* dialer1 (5038): V…110 answered, V…111 busy (OriginateResponse Reason 5 between its Hangups),
  V…199 answered; CoreShowChannels ``ListItems: 8`` = 2 calls x 4 Local halves, then a Status
  list with another ActionID, then every call hangs up.
* dialer2 (5039): V…120 answered, V…121 congestion; ``ListItems: 4`` then ``ListItems: 0``.
* dialer3 (5040): V…130 answered, V…131 no answer, V…132 unknown context; ``ListItems: 8``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fillreactor.core.events import Event, OriginateResult, SnapshotEnd
from fillreactor.core.message import AmiMessage, iter_messages
from fillreactor.core.model import ChannelModel
from fillreactor.core.normalise import normalise_raw
from fillreactor.core.usage import UsageChange

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "asterisk22"
SERVER = "127.0.0.1"


def replay(port: int) -> Iterator[tuple[str | None, Event | None]]:
    """(ActionID of a snapshot request just answered, or the event) for each message, in order."""
    data = (FIXTURES / f"asterisk22-dialer-{port}.raw").read_bytes()
    for frame in iter_messages(data):
        if frame.startswith(b"Response:") and b"Channels will follow" in frame:
            yield AmiMessage.from_bytes(frame).action_id, None
            continue
        event = normalise_raw(frame)
        if event is not None:
            yield None, event


Counts = dict[str, tuple[int, int, int]]


def run(port: int, model: ChannelModel) -> tuple[list[int], list[UsageChange], Counts]:
    """Usage after every event, all changes, and (usage, calls, channels) at each SnapshotEnd."""
    usages: list[int] = []
    changes: list[UsageChange] = []
    at_end: dict[str, tuple[int, int, int]] = {}
    for now, (snapshot_request, event) in enumerate(replay(port)):
        if snapshot_request is not None:
            model.begin_snapshot(SERVER, snapshot_request, float(now))
            continue
        assert event is not None
        changes.extend(model.apply(SERVER, event, float(now)))
        usages.append(model.usage(SERVER))
        if isinstance(event, SnapshotEnd):
            view = model.server_view(SERVER)
            at_end[event.action_id] = (event.list_items, view.calls, view.channels)
    return usages, changes, at_end


def distinct(values: list[int]) -> list[int]:
    return [v for i, v in enumerate(values) if i == 0 or v != values[i - 1]]


@pytest.mark.parametrize(
    ("port", "usage_steps", "snapshots"),
    [
        # the Status list (StatusComplete, another ActionID) is ignored: same counts
        (5038, [0, 1, 2, 3, 2, 1, 0], {"dialer1-csc-1": (8, 2, 8), "dialer1-status-1": (8, 2, 8)}),
        (5039, [0, 1, 2, 1, 0], {"dialer2-csc-1": (4, 1, 4), "dialer2-csc-2": (0, 0, 0)}),
        (5040, [0, 1, 2, 3, 2, 1, 0], {"dialer3-csc-1": (8, 2, 8)}),
    ],
)
def test_capture_usage_over_time(port: int, usage_steps: list[int], snapshots: dict) -> None:
    model = ChannelModel()
    model.set_link(SERVER, True, 0.0)
    usages, changes, at_end = run(port, model)
    assert distinct(usages) == usage_steps
    assert max(usages) == max(usage_steps)
    # at every CoreShowChannels point the model holds ListItems/4 calls of 4 Local halves each
    assert at_end == snapshots
    for list_items, calls, channels in at_end.values():
        assert calls * 4 == list_items == channels
    view = model.server_view(SERVER)
    assert view.snapshot.state == "loaded" and model.dialable(SERVER)
    assert (view.usage, view.calls, view.channels, view.trunk_channels) == (0, 0, 0, 0)  # all Local
    # the changes chain from 0 back to 0 in unit steps, never double counting
    assert sum(change.delta for change in changes) == 0
    assert all(abs(change.delta) == 1 for change in changes)
    assert [c.usage_after for c in changes] == usage_steps[1:]


def test_dialer1_snapshot_point_and_ignored_status_list() -> None:
    model = ChannelModel()
    model.set_link(SERVER, True, 0.0)
    seen_status_end = False
    for now, (snapshot_request, event) in enumerate(replay(5038)):
        if snapshot_request is not None:
            model.begin_snapshot(SERVER, snapshot_request, float(now))
            assert not model.dialable(SERVER)
            continue
        assert event is not None
        changes = model.apply(SERVER, event, float(now))
        if isinstance(event, SnapshotEnd) and event.action_id == "dialer1-csc-1":
            assert changes == ()  # the event stream had it right: the snapshot moves nothing
            assert model.dialable(SERVER)
            view = model.server_view(SERVER)
            assert (view.usage, view.dialer_calls["V"], view.calls) == (2, 2, 2)
            assert model.pending_lookups() == {"V1126101010000000110", "V1126101010000000199"}
        if isinstance(event, SnapshotEnd) and event.action_id == "dialer1-status-1":
            seen_status_end = True
            assert changes == () and model.usage(SERVER) == 2
    assert seen_status_end
    assert model.server_view(SERVER).tombstones == 12  # 3 calls x 4 channels


@pytest.mark.parametrize(
    ("port", "call_ids"),
    [
        (5038, ["V1126101010000000110", "V1126101010000000111", "V1126101010000000199"]),
        (5039, ["V1126101010000000120", "V1126101010000000121"]),
        (5040, ["V1126101010000000130", "V1126101010000000131", "V1126101010000000132"]),
    ],
)
def test_capture_with_reservations_never_double_counts(port: int, call_ids: list[str]) -> None:
    model = ChannelModel()
    for call_id in call_ids:
        model.reserve(SERVER, call_id, "FILLTEST", 0.0)
    assert model.usage(SERVER) == len(call_ids)
    usages, changes, _ = run(port, model)
    # each reservation turned into its live call: usage only goes down from the start
    assert max(usages) == len(call_ids)
    assert all(change.delta <= 0 for change in changes)
    assert all(change.campaign == "FILLTEST" for change in changes)
    view = model.server_view(SERVER)
    assert (view.usage, view.reservations, dict(view.campaigns)) == (0, 0, {})
    assert model.pending_lookups() == set()
    assert model.expire(1000.0) == ()


def test_failed_originate_releases_a_reservation_whose_channels_never_appeared() -> None:
    """dialer3's unknown-context OriginateResponse, replayed for a reservation on a server whose
    channels we never saw (e.g. events lost): the CallerIDName releases it."""
    model = ChannelModel()
    model.reserve("elsewhere", "V1126101010000000132", "FILLTEST", 0.0)
    failures = [e for _, e in replay(5040) if isinstance(e, OriginateResult) and not e.success]
    assert [f.reason for f in failures] == [0, 3]
    released = model.apply("elsewhere", failures[0], 1.0)
    assert released == (UsageChange("elsewhere", 1, 0, "FILLTEST", 1, 0),)
