"""Helpers for the reactor tests: a small cluster snapshot and the AMI events of calls."""

from __future__ import annotations

import itertools
from datetime import datetime

from fillreactor.core.callid import build_call_id
from fillreactor.core.cluster import (
    AgentTally,
    CampaignConfig,
    ClusterSnapshot,
    ServerConfig,
    SystemSettings,
)
from fillreactor.core.events import ChannelCreated, ChannelHungUp, SnapshotEnd
from fillreactor.core.origin import CallOrigin
from fillreactor.reactor.core import (
    LINK_LOGGED_IN,
    LINK_RESYNC_STARTED,
    LINK_RESYNCED,
    ReactorCore,
)

A, B, C = "10.10.10.11", "10.10.10.12", "10.10.10.13"
WHEN = datetime(2026, 12, 1, 10, 0, 0)


def cluster(
    *, agents: int = 10, level: float = 3.0, campaigns: tuple[str, ...] = ("DEMO",)
) -> ClusterSnapshot:
    """A (20 trunks, agents of each campaign), B (30, rank 2, 22 off-limits), C (30, rank 1)."""
    servers = {
        A: ServerConfig(A, max_vicidial_trunks=20),
        B: ServerConfig(B, max_vicidial_trunks=30, balance_active=True, balance_rank=2,
                        balance_trunks_offlimits=22, asterisk_version="22.10.1"),
        C: ServerConfig(C, max_vicidial_trunks=30, balance_active=True, balance_rank=1,
                        asterisk_version="22.10.1"),
    }
    return ClusterSnapshot(
        SystemSettings(),
        servers,
        {c: CampaignConfig(c, auto_dial_level=level) for c in campaigns},
        agents={(c, A): AgentTally(ready=agents) for c in campaigns},
        logged_in_agents={A: agents * len(campaigns)},
        fill_agents=dict.fromkeys(campaigns, agents),
    )


def origin(campaign: str, server: str) -> object:
    """A lookup result as the model takes it (a CallOrigin once the model takes those)."""
    import inspect

    from fillreactor.core.model import ChannelModel

    if "CallOrigin" in inspect.getsource(ChannelModel.resolve_campaigns):
        return CallOrigin(campaign, server, "OUT")
    return campaign


_unique = itertools.count(1)


class Calls:
    """Builds the events of V calls on one server (one Local channel each, enough for the model)."""

    def __init__(self, server: str, first_lead: int = 1) -> None:
        self.server = server
        self.leads = itertools.count(first_lead)
        self.live: dict[str, str] = {}  # call id -> uniqueid

    def start(self) -> tuple[str, ChannelCreated]:
        lead = next(self.leads)
        call_id = build_call_id(WHEN, lead)
        uid = f"1795688000.{next(_unique)}"
        self.live[call_id] = uid
        event = ChannelCreated(f"Local/9312555{lead:04d}@default-{lead:08x};1", uid, uid, 4, call_id, call_id)
        return call_id, event

    def end(self, call_id: str) -> ChannelHungUp:
        uid = self.live.pop(call_id)
        return ChannelHungUp("Local/x@default-1;1", uid, uid, 6, call_id, call_id, 16, "Normal Clearing")


def link_up(core: ReactorCore, server: str, now: float) -> None:
    """Login and an empty, accepted CoreShowChannels resync."""
    core.on_link(server, LINK_LOGGED_IN, now)
    core.on_link(server, LINK_RESYNC_STARTED, now, f"resync-{server}")
    core.on_event(server, SnapshotEnd(f"resync-{server}", 0), now)
    core.on_link(server, LINK_RESYNCED, now)


def fill_server(core: ReactorCore, calls: Calls, count: int, campaign: str, now: float) -> list[str]:
    """``count`` V calls of ``campaign`` on the calls' server, their campaign looked up."""
    ids = []
    for _ in range(count):
        call_id, event = calls.start()
        core.on_event(calls.server, event, now)
        ids.append(call_id)
    core.on_lookups({cid: origin(campaign, calls.server) for cid in core.pending_lookups()}, now)
    return ids
