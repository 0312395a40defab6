"""What counts as a line (fillreactor/core/lines.py), and the property of issue 6 point 6.

The property: for any state, the shortage computed from ``vicidial_auto_calls`` rows (as
AST_VDauto_dial.pl counts them, ``LiveCounts.from_rows``) equals the one computed from the channel
model when the model holds the same calls: the V rows as live channels on the server they were
placed on (some also showing an IAX2 leg on the other server, some still reservations of our own
originates), the M and Y rows as channels too (counted from their rows, as the rule says).
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from fillreactor.core.cluster import (
    AgentTally,
    AutoCallCounts,
    CampaignConfig,
    ClusterSnapshot,
    DropGroupAgents,
    IncallThreshold,
    LiveCounts,
    ServerConfig,
    ServerTrunk,
    SystemSettings,
    TrunkRestriction,
)
from fillreactor.core.events import ChannelCreated
from fillreactor.core.lines import LINE_STATUSES, breakdown, campaign_calls, used_lines
from fillreactor.core.model import ChannelModel
from fillreactor.core.origin import CallOrigin
from fillreactor.core.shortage import compute_shortages

S1, S2 = "10.0.0.1", "10.0.0.2"
STATUSES = ("SENT", "RINGING", "LIVE", "XFER", "PAUSED", "CLOSER", "BUSY", "DISCONNECT", "IVR")


def snapshot_of(rows: list[tuple], **kw) -> ClusterSnapshot:
    return ClusterSnapshot(
        SystemSettings(),
        {S1: ServerConfig(S1, 20), S2: ServerConfig(S2, 20)},
        {},
        auto_calls=AutoCallCounts.from_rows(rows),
        **kw,
    )


# rows of S1 -> (used lines, C's existing calls): each row family and status, vdad 763 and 1388
LINE_CASES = {
    "v-live": ([(S1, "C", "OUT", "LIVE", "V", 3)], (3, 3)),
    "outbalance-xfer": ([(S1, "C", "OUTBALANCE", "XFER", "V", 2)], (2, 2)),
    "manual-m-xfer": ([(S1, "C", "OUT", "XFER", "M", 4)], (4, 4)),
    "inbound-y-live-other-campaign": ([(S1, "G", "IN", "LIVE", "Y", 6)], (6, 0)),
    "ivr-is-a-line-not-existing": ([(S1, "C", "IN", "IVR", "Y", 2), (S1, "C", "OUT", "IVR", "V", 1)], (3, 0)),
    "paused-busy-disconnect-count-nowhere": (
        [(S1, "C", "OUT", s, "V", 1) for s in ("PAUSED", "BUSY", "DISCONNECT")],
        (0, 0),
    ),
    "other-id-counted-from-rows": ([(S1, "C", "OUT", "SENT", "", 2)], (2, 2)),
    "rows-of-another-server": ([(S2, "C", "OUT", "LIVE", "V", 5)], (0, 0)),
}


def test_line_cases() -> None:
    for name, (rows, (lines, existing)) in LINE_CASES.items():
        snapshot = snapshot_of(rows)
        live = LiveCounts.from_rows(snapshot.auto_calls)
        assert (used_lines(snapshot, live, S1), campaign_calls(snapshot, live, "C", S1)) == (
            lines,
            existing,
        ), name
        # no AMI view of S1 at all: the same figures, from the rows
        assert used_lines(snapshot, LiveCounts(), S1) == lines, name


def test_live_v_calls_replace_the_v_rows() -> None:
    # 3 V rows and 2 M rows on S1; the model sees 5 V calls (2 reservations not yet in the
    # table): lines = 5 + 2 M rows = 7, C's existing = 5 (model) + 2 (M rows).
    snapshot = snapshot_of([(S1, "C", "OUT", "LIVE", "V", 3), (S1, "C", "OUT", "XFER", "M", 2)])
    live = LiveCounts(usage={S1: 5}, campaign_usage={("C", S1): 5})
    assert (used_lines(snapshot, live, S1), campaign_calls(snapshot, live, "C", S1)) == (7, 7)
    view = breakdown(snapshot, live, S1)
    assert (view.used, view.model_v, dict(view.rows_by_family), view.shared_drops) == (7, 5, {"M": 2}, 0)


def test_shared_drops_only_with_shared_dialing() -> None:
    drops = AutoCallCounts.from_rows([(S1, "C", "OUT", "LIVE", 2)])
    off = snapshot_of([], shared_drops=drops)
    assert used_lines(off, LiveCounts(), S1) == 0
    shared = ClusterSnapshot(
        SystemSettings(allow_shared_dial=1), {S1: ServerConfig(S1, 20)}, {}, shared_drops=drops
    )
    assert used_lines(shared, LiveCounts(), S1) == 2


# -- the property ----------------------------------------------------------------------------------

CAMPAIGNS = ("C", "D")
GROUPS = ("G",)
SERVERS = (S1, S2)


@st.composite
def states(draw: st.DrawFn):
    configs = {}
    for cid in CAMPAIGNS:
        configs[cid] = CampaignConfig(
            cid,
            dial_method=draw(st.sampled_from(["RATIO", "RATIO", "MANUAL", "SHARED_RATIO"])),
            auto_dial_level=draw(st.sampled_from([0.5, 1.0, 2.0, 2.5, 3.0])),
            available_only_ratio_tally=draw(st.booleans()),
            available_only_tally_threshold=draw(
                st.sampled_from(["DISABLED", "NON-PAUSED_AGENTS", "WAITING_AGENTS"])
            ),
            available_only_tally_threshold_agents=draw(st.integers(0, 8)),
            closer_campaigns=" G -",
            campaign_allow_inbound=draw(st.booleans()),
            inbound_queue_no_dial=draw(
                st.sampled_from(["DISABLED", "ENABLED", "ALL_SERVERS", "ENABLED_WITH_CHAT"])
            ),
            drop_call_seconds=draw(st.sampled_from([-1, 5])),
            drop_action=draw(st.sampled_from(["AUDIO", "IN_GROUP"])),
            drop_inbound_group="G",
            incall_tally_threshold_seconds=draw(st.sampled_from([0, 60])),
        )
    agents, trunks = {}, {}
    for cid in CAMPAIGNS:
        for ip in SERVERS:
            if draw(st.booleans()):
                agents[(cid, ip)] = AgentTally(
                    draw(st.integers(0, 8)), draw(st.integers(0, 4)), draw(st.integers(0, 2))
                )
            if draw(st.integers(0, 3)) == 0:
                trunks[(cid, ip)] = ServerTrunk(
                    ip, cid, draw(st.integers(0, 8)), draw(st.sampled_from(list(TrunkRestriction)))
                )
    rows = []
    for ip in SERVERS:
        for campaign in (*CAMPAIGNS, *GROUPS):
            for _ in range(draw(st.integers(0, 3))):
                call_type = "IN" if campaign in GROUPS else draw(st.sampled_from(["OUT", "OUTBALANCE", "IN"]))
                family = draw(st.sampled_from(["V", "V", "M", "Y", ""]))
                rows.append(
                    (
                        ip,
                        campaign,
                        call_type,
                        draw(st.sampled_from(STATUSES)),
                        family,
                        draw(st.integers(1, 4)),
                    )
                )
    shared = AutoCallCounts.from_rows(
        [(ip, c, "OUT", "LIVE", draw(st.integers(0, 2))) for ip in SERVERS for c in CAMPAIGNS]
    )
    snapshot = ClusterSnapshot(
        SystemSettings(allow_shared_dial=draw(st.integers(0, 1))),
        {ip: ServerConfig(ip, draw(st.integers(0, 30))) for ip in SERVERS},
        configs,
        trunks=trunks,
        agents=agents,
        logged_in_agents={ip: sum(t.counted for (c, s), t in agents.items() if s == ip) for ip in SERVERS},
        auto_calls=AutoCallCounts.from_rows(rows),
        agent_call_epochs={key: str(draw(st.integers(1_700_000_000, 1_700_000_099))) for key in agents},
        ready_agents={key: draw(st.integers(0, 3)) for key in agents},
        incall_threshold={
            c: IncallThreshold(draw(st.integers(0, 4)), draw(st.integers(0, 2))) for c in CAMPAIGNS
        },
        drop_group_agents={
            c: DropGroupAgents(draw(st.integers(0, 3)), draw(st.integers(0, 2))) for c in CAMPAIGNS
        },
        waiting_chats={"G": draw(st.integers(0, 1))},
        shared_drops=shared,
    )
    bridged = draw(st.sets(st.integers(0, 200), max_size=20))  # these V calls also show an IAX2 leg
    reserved = draw(st.sets(st.integers(0, 200), max_size=20))  # these are our originates, not up yet
    previous = {(c, ip): draw(st.integers(0, 12)) for c in CAMPAIGNS for ip in SERVERS}
    return snapshot, rows, bridged, reserved, previous


def model_holding(rows: list[tuple], bridged: set[int], reserved: set[int]) -> ChannelModel:
    """A channel model fed the live calls of the rows: V calls on the server they were placed on
    (an IAX2 leg on the other server for some, a reservation instead of channels for some of the
    OUTBALANCE ones), M/Y calls as channels, then every lookup answered from the rows."""
    model = ChannelModel()
    origins: dict[str, CallOrigin] = {}
    serial = 0
    for ip in SERVERS:
        model.add_server(ip)
    for server, campaign, call_type, status, family, count in rows:
        if status not in LINE_STATUSES or family not in ("V", "M", "Y"):
            continue  # no live channel (hung up / not yet dialed) or an id AMI does not carry
        for _ in range(count):
            serial += 1
            call_id = f"{family}11261010{serial:011d}"
            if family == "V" and call_type == "OUTBALANCE" and serial in reserved:
                model.reserve(server, call_id, campaign, 0.0)
                continue
            uid = f"1700000000.{serial}"
            model.apply(server, ChannelCreated("Local/9@default-1;1", uid, uid, 6, call_id, ""), 0.0)
            if family == "V" and serial in bridged:
                other = S2 if server == S1 else S1
                leg = f"1700000001.{serial}"
                model.apply(other, ChannelCreated("IAX2/agent-1", leg, leg, 6, call_id, ""), 0.0)
            origins[call_id] = CallOrigin(campaign, server, call_type)
    model.resolve_campaigns({i: origins[i] for i in model.pending_lookups()}, 0.0)
    return model


@settings(max_examples=300)
@given(states())
def test_shortage_from_rows_equals_shortage_from_the_model(case) -> None:
    snapshot, rows, bridged, reserved, previous = case
    from_rows = LiveCounts.from_rows(snapshot.auto_calls)
    from_model = model_holding(rows, bridged, reserved).counts()
    for ip in SERVERS:
        assert used_lines(snapshot, from_model, ip) == used_lines(snapshot, from_rows, ip)
    for parity in (False, True):
        expected = compute_shortages(snapshot, from_rows, previous=previous, parity=parity)
        assert compute_shortages(snapshot, from_model, previous=previous, parity=parity) == expected
