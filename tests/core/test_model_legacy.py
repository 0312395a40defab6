"""The model fed by legacy (Asterisk 1.4) events, whose Hangup/Newcallerid carry no state."""

from __future__ import annotations

from fillreactor.core.events import (
    LIST_ITEMS_UNKNOWN,
    STATE_RING,
    STATE_UNKNOWN,
    CallerIdChanged,
    ChannelCreated,
    SnapshotEnd,
    SnapshotRow,
)
from fillreactor.core.model import ChannelModel

CALL_ID = "V1126101010000000110"
SERVER = "10.0.0.1"


def test_a_stateless_caller_id_event_keeps_the_known_state() -> None:
    model = ChannelModel()
    model.apply(SERVER, ChannelCreated("SIP/trunk-1", "1.1", "", STATE_RING, "", ""), 0.0)
    changes = model.apply(SERVER, CallerIdChanged("SIP/trunk-1", "1.1", "", STATE_UNKNOWN, CALL_ID, ""), 0.0)
    assert model.live_channels(SERVER)["1.1"].state == STATE_RING
    assert [(c.usage_before, c.usage_after) for c in changes] == [(0, 1)]


def test_a_snapshot_whose_server_does_not_say_its_row_count_is_accepted() -> None:
    model = ChannelModel()
    model.set_link(SERVER, True, 0.0)
    model.begin_snapshot(SERVER, "status-1", 0.0)
    model.apply(SERVER, SnapshotRow("SIP/trunk-1", "1.1", "", STATE_RING, CALL_ID, "", "status-1"), 0.0)
    model.apply(SERVER, SnapshotEnd("status-1", LIST_ITEMS_UNKNOWN), 0.0)
    assert model.dialable(SERVER)
    assert model.usage(SERVER) == 1
