"""A scripted FILL scenario driven through ``ReactorCore``, for the trace's golden output.

The cluster and its numbers (spec 4.4, 2.4, worked by hand): A has 20 trunks and 10 READY agents of
DEMO at dial level 3 (goal 30). Its 20 calls give make = 30 - 20 = 10, line goal 30 > 20, so the
shortage is min(30 - 20, 10) = 10. B (rank 2, 30 trunks, 22 off limits): available 8; C (rank 1,
30 trunks): available 30. The plan: B +8, C +2.

Then: two originates go out to B (reservations: B's usage 0 -> 1 -> 2), one to C is refused by
Asterisk (released at once), one call on A hangs up (A's usage 20 -> 19), and B's link goes down.
Times are seconds after the core started (it starts at 100.0).
"""

from __future__ import annotations

from datetime import datetime

from fillreactor.core.callid import build_call_id
from fillreactor.core.cluster import AgentTally, CampaignConfig, ClusterSnapshot, ServerConfig, SystemSettings
from fillreactor.core.events import ChannelCreated, ChannelHungUp, SnapshotEnd
from fillreactor.core.origin import CallOrigin
from fillreactor.reactor.core import (
    LINK_DOWN,
    LINK_LOGGED_IN,
    LINK_RESYNC_STARTED,
    LINK_RESYNCED,
    ReactorCore,
)
from fillreactor.reactor.trace import TraceCollector

A, B, C = "10.10.10.11", "10.10.10.12", "10.10.10.13"
CAMPAIGN = "DEMO"
WHEN = datetime(2026, 12, 1, 10, 0, 0)
START = 100.0


def snapshot() -> ClusterSnapshot:
    servers = {
        A: ServerConfig(A, max_vicidial_trunks=20, asterisk_version="22.10.1"),
        B: ServerConfig(
            B,
            max_vicidial_trunks=30,
            balance_active=True,
            balance_rank=2,
            balance_trunks_offlimits=22,
            asterisk_version="22.10.1",
        ),
        C: ServerConfig(
            C, max_vicidial_trunks=30, balance_active=True, balance_rank=1, asterisk_version="22.10.1"
        ),
    }
    return ClusterSnapshot(
        SystemSettings(),
        servers,
        {CAMPAIGN: CampaignConfig(CAMPAIGN, auto_dial_level=3.0)},
        agents={(CAMPAIGN, A): AgentTally(ready=10)},
        logged_in_agents={A: 10},
        fill_agents={CAMPAIGN: 10},
    )


def channel(lead: int) -> tuple[str, str, str]:
    call_id = build_call_id(WHEN, lead)
    return call_id, f"Local/9312555{lead:04d}@default-{lead:08x};1", f"1795688000.{lead}"


def run_scenario() -> TraceCollector:
    collector = TraceCollector()
    core = ReactorCore(dialing=True, trace=collector, started_at=START)
    for server in (A, B, C):
        core.on_link(server, LINK_LOGGED_IN, START)
        core.on_link(server, LINK_RESYNC_STARTED, START, f"resync-{server}")
        core.on_event(server, SnapshotEnd(f"resync-{server}", 0), START)
        core.on_link(server, LINK_RESYNCED, START)
    core.on_snapshot(snapshot(), START)
    for lead in range(1, 21):
        call_id, name, uid = channel(lead)
        core.on_event(A, ChannelCreated(name, uid, uid, 4, call_id, call_id), START + 1.0)
    core.on_lookups({cid: CallOrigin(CAMPAIGN, A, "OUT") for cid in core.pending_lookups()}, START + 1.0)
    while core.next_plan(START + 1.0) is not None:
        pass
    core.call_sent(B, build_call_id(WHEN, 901), CAMPAIGN, START + 1.010)
    core.call_sent(B, build_call_id(WHEN, 902), CAMPAIGN, START + 1.011)
    core.call_sent(C, build_call_id(WHEN, 903), CAMPAIGN, START + 1.012)
    core.call_refused(C, build_call_id(WHEN, 903), "Channel unavailable", START + 1.020)
    call_id, name, uid = channel(20)
    core.on_event(A, ChannelHungUp(name, uid, uid, 6, call_id, call_id, 16, "Normal Clearing"), START + 2.0)
    while core.next_plan(START + 2.0) is not None:
        pass
    core.on_link(B, LINK_DOWN, START + 3.0, "connection lost")
    return collector
