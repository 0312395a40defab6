"""``fillreactor demo``: the core, live, against a simulated three-server cluster.

What it shows: three simulated Asterisk servers (``fillreactor.simulator``) whose own dialers
place calls; one panoramisk session per server with ``FastAMIProtocol`` streams their events into
the ``ChannelModel``; ``TriggerState`` turns each usage change into the campaigns that need a plan;
the ``planner`` decides, and the demo originates the planned OUTBALANCE calls on the balance
servers over AMI (``Async``, ActionID = the call id, a reservation in the model until the channels
show up). The cluster facts a database would hold (servers, campaigns, agents) are fixed here,
and nothing is written to a database: the store, the VICIdial row writes, the leader lock and the
service come with the live reactor.

Rules this module keeps:

* Event handling is synchronous and O(1) per event (the model), and never raises into the protocol.
* Triggers are coalesced: usage changes only mark campaigns; one plan runs per loop iteration.
* Every originate is reserved in the model before it is sent, and its failure (a failed
  OriginateResponse, consumed by panoramisk's action future) is fed back to the model.
* A server gets calls only once its link is logged in and resynced with CoreShowChannels.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import panoramisk

from fillreactor.ami.fast_protocol import FastAMIProtocol, event_of
from fillreactor.core.callid import build_call_id, lead_id_of
from fillreactor.core.cluster import (
    AgentTally,
    CampaignConfig,
    ClusterSnapshot,
    LiveCounts,
    ServerConfig,
    SystemSettings,
)
from fillreactor.core.events import Event, OriginateResult
from fillreactor.core.model import ChannelModel
from fillreactor.core.planner import Plan, PlanStatus, plan
from fillreactor.core.triggers import TriggerState
from fillreactor.core.usage import UsageChange
from fillreactor.simulator import CallTiming, DialLevelLoad, SimulatedAsterisk, SimulatedCluster

DEMO_CAMPAIGN = "DEMO"
OTHER_CAMPAIGN = "OTHER"
AGENT_SERVER = "10.10.10.11"
BALANCE_SERVERS = ("10.10.10.12", "10.10.10.13")
# Lead-id ranges tell the demo which campaign a server's own dialer calls belong to, standing in
# for the vicidial_auto_calls.callerid lookup the store will do.
OWN_LEAD_BASE = {AGENT_SERVER: 1, BALANCE_SERVERS[0]: 1_000_000, BALANCE_SERVERS[1]: 2_000_000}
FILL_LEAD_BASE = 5_000_000


def demo_snapshot(agents: int, level: float) -> ClusterSnapshot:
    """The database side of the demo: one agent server short of trunks, two balance servers."""
    servers = {
        AGENT_SERVER: ServerConfig(AGENT_SERVER, max_vicidial_trunks=20),
        BALANCE_SERVERS[0]: ServerConfig(
            BALANCE_SERVERS[0],
            max_vicidial_trunks=30,
            balance_active=True,
            balance_rank=2,
            balance_trunks_offlimits=22,
            asterisk_version="22.10.1",
        ),
        BALANCE_SERVERS[1]: ServerConfig(
            BALANCE_SERVERS[1],
            max_vicidial_trunks=30,
            balance_active=True,
            balance_rank=1,
            asterisk_version="22.10.1",
        ),
    }
    campaigns = {
        DEMO_CAMPAIGN: CampaignConfig(DEMO_CAMPAIGN, auto_dial_level=level),
        OTHER_CAMPAIGN: CampaignConfig(OTHER_CAMPAIGN, auto_dial_level=1.0),
    }
    tallies = {
        (DEMO_CAMPAIGN, AGENT_SERVER): AgentTally(ready=agents),
        (OTHER_CAMPAIGN, BALANCE_SERVERS[0]): AgentTally(ready=8),
        (OTHER_CAMPAIGN, BALANCE_SERVERS[1]): AgentTally(ready=8),
    }
    return ClusterSnapshot(
        SystemSettings(),
        servers,
        campaigns,
        agents=tallies,
        logged_in_agents={AGENT_SERVER: agents, BALANCE_SERVERS[0]: 8, BALANCE_SERVERS[1]: 8},
        fill_agents={DEMO_CAMPAIGN: agents, OTHER_CAMPAIGN: 16},
    )


@dataclass
class DemoStats:
    events: int = 0
    plans: int = 0
    originated: int = 0
    answered: int = 0
    failed: int = 0
    most_in_flight: int = 0
    most_needed: int = 0
    over_need: int = 0  # plans that asked for more than the need: must stay 0
    lines: list[str] = field(default_factory=list)


class DemoReactor:
    """The event → model → trigger → plan → originate loop, for the demo only."""

    def __init__(
        self, snapshot: ClusterSnapshot, out: Callable[[str], None], *, explain: bool = False
    ) -> None:
        self.snapshot = snapshot
        self.explain = explain
        self.model = ChannelModel()
        self.out = out
        self.stats = DemoStats()
        self.loop = asyncio.get_running_loop()
        self.managers: dict[str, panoramisk.Manager] = {}
        self.triggers: TriggerState | None = None
        self.pending: set[str] = set()
        self.plan_scheduled = False
        self.lead_ids = itertools.count(FILL_LEAD_BASE)
        self.tasks: set[asyncio.Task[None]] = set()

    # -- events --------------------------------------------------------------------------------
    def sink_for(self, server_ip: str) -> Callable[[Event], None]:
        def sink(event: Event) -> None:
            self.stats.events += 1
            self.on_changes(self.model.apply(server_ip, event, self.loop.time()))

        return sink

    def on_changes(self, changes: tuple[UsageChange, ...]) -> None:
        if self.model.pending_lookups():
            changes = (*changes, *self.model.resolve_campaigns(self.lookup_campaigns(), self.loop.time()))
        if changes and self.triggers is not None:
            self.pending |= self.triggers.on_usage(changes)
            self.schedule_plan()

    def lookup_campaigns(self) -> dict[str, str | None]:
        """Stand-in for the batched ``vicidial_auto_calls.callerid`` lookup of the store."""
        found: dict[str, str | None] = {}
        for call_id in self.model.pending_lookups():
            lead = lead_id_of(call_id)
            found[call_id] = DEMO_CAMPAIGN if lead < OWN_LEAD_BASE[BALANCE_SERVERS[0]] else OTHER_CAMPAIGN
        return found

    # -- links ---------------------------------------------------------------------------------
    async def connect(self, server_ip: str, sim: SimulatedAsterisk, username: str, secret: str) -> None:
        manager = panoramisk.Manager(
            host=sim.host,
            port=sim.port,
            username=username,
            secret=secret,
            events="call,system",
            ping_delay=3600,
            protocol_factory=FastAMIProtocol,
            on_event=self.sink_for(server_ip),
        )
        self.managers[server_ip] = manager
        await manager.connect()
        await asyncio.wait_for(manager.authenticated_future, 5)
        now = self.loop.time()
        self.model.set_link(server_ip, True, now)
        action_id = f"resync-{server_ip}"
        self.model.begin_snapshot(server_ip, action_id, now)
        rows = await asyncio.wait_for(
            manager.send_action({"Action": "CoreShowChannels", "ActionID": action_id}), 5
        )
        # the rows were consumed by the action's future: feed them to the model ourselves
        for message in rows:
            event = event_of(message)
            if event is not None:
                self.on_changes(self.model.apply(server_ip, event, self.loop.time()))
        self.out(f"{server_ip}: logged in, resynced ({self.model.server_view(server_ip).channels} channels)")

    def start_triggers(self) -> None:
        live = TriggerState(self.snapshot, self.live_counts())
        self.triggers = live
        for server_ip in self.managers:
            self.pending |= live.set_dialable(server_ip, self.model.dialable(server_ip))
        self.pending |= set(live.demand.campaigns())
        self.schedule_plan()

    def live_counts(self) -> LiveCounts:
        usage = {ip: self.model.usage(ip) for ip in self.snapshot.servers}
        campaign_usage = {
            (c, ip): self.model.campaign_usage(ip, c) for c in self.snapshot.campaigns for ip in usage
        }
        dialable = frozenset(ip for ip in usage if self.model.dialable(ip))
        return LiveCounts(usage, campaign_usage, dialable)

    # -- planning ------------------------------------------------------------------------------
    def schedule_plan(self) -> None:
        if self.pending and not self.plan_scheduled:
            self.plan_scheduled = True
            self.loop.call_soon(self.run_plan)

    def run_plan(self) -> None:
        self.plan_scheduled = False
        campaigns, self.pending = self.pending, set()
        triggers = self.triggers
        if triggers is None or not campaigns:
            return
        # the balance calls fillreactor placed are OUTBALANCE calls in flight (no database rows here)
        own = {(DEMO_CAMPAIGN, ip): self.model.campaign_usage(ip, DEMO_CAMPAIGN) for ip in BALANCE_SERVERS}
        live = dataclasses.replace(triggers.live(), own_outbalance=own)
        result = plan(self.snapshot, triggers.demand, live, campaigns=campaigns)
        triggers.record_plan(result)
        self.stats.plans += 1
        self.report_plan(result)
        for entry in result.entries:
            for _ in range(entry.calls):
                self.originate(entry.server, entry.campaign)

    def report_plan(self, result: Plan) -> None:
        if result.status is not PlanStatus.PLANNED:
            self.out(f"  plan: {result.status.value}")
            return
        for campaign in result.campaigns:
            self.stats.most_needed = max(self.stats.most_needed, campaign.needed)
            if result.total(campaign.campaign) > max(campaign.needed, 0):
                self.stats.over_need += 1
        if not result.entries:
            return
        if self.explain:
            for line in result.explain():
                self.out(f"  plan | {line}")
            return
        for campaign in result.campaigns:
            calls = ", ".join(
                f"{e.server} +{e.calls}" for e in result.entries if e.campaign == campaign.campaign
            )
            if calls:
                self.out(
                    f"  plan {campaign.campaign}: shortage {campaign.shortage}, in flight "
                    f"{campaign.balance_in_flight}, needed {campaign.needed} -> {calls}"
                )

    # -- dialing -------------------------------------------------------------------------------
    def originate(self, server_ip: str, campaign: str) -> None:
        lead_id = next(self.lead_ids)
        call_id = build_call_id(datetime.now(), lead_id)
        self.on_changes(self.model.reserve(server_ip, call_id, campaign, self.loop.time()))
        self.stats.originated += 1
        task = self.loop.create_task(self.send_originate(server_ip, call_id, lead_id))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def send_originate(self, server_ip: str, call_id: str, lead_id: int) -> None:
        number = f"9312555{lead_id % 10_000:04d}"  # …0000 is busy in the simulator's rules
        action = {
            "Action": "Originate",
            "ActionID": call_id,
            "Channel": f"Local/{number}@default",
            "Exten": "8368",
            "Context": "default",
            "Priority": "1",
            "Callerid": f'"{call_id}" <3125550000>',
            "Timeout": "30000",
            "Async": "true",
        }
        try:
            messages = await asyncio.wait_for(self.managers[server_ip].send_action(action), 60)
        except (TimeoutError, asyncio.CancelledError):
            return  # the reservation times out in the model
        # the OriginateResponse was consumed by the action's future: the model still needs it
        for message in messages if isinstance(messages, list) else [messages]:
            event = event_of(message)
            if isinstance(event, OriginateResult):
                if event.success:
                    self.stats.answered += 1
                else:
                    self.stats.failed += 1
                self.on_changes(self.model.apply(server_ip, event, self.loop.time()))

    # -- reporting -----------------------------------------------------------------------------
    def status_line(self, elapsed: float) -> str:
        parts = []
        for ip in self.snapshot.servers:
            view = self.model.server_view(ip)
            mvt = self.snapshot.servers[ip].max_vicidial_trunks
            per_campaign = ", ".join(f"{c} {n}" for c, n in sorted(view.campaigns.items()) if n)
            parts.append(f"{ip} {view.usage:>2}/{mvt} lines ({per_campaign or 'idle'})")
        in_flight = sum(self.model.campaign_usage(ip, DEMO_CAMPAIGN) for ip in BALANCE_SERVERS)
        self.stats.most_in_flight = max(self.stats.most_in_flight, in_flight)
        shortage = self.triggers.demand.total(DEMO_CAMPAIGN) if self.triggers else 0
        return f"t={elapsed:4.1f}s  " + " | ".join(parts) + f" | DEMO shortage {shortage}, fill {in_flight}"

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for manager in self.managers.values():
            manager.close()


async def run_demo(
    *,
    seconds: float = 12.0,
    time_scale: float = 0.25,
    agents: int = 10,
    level: float = 3.0,
    explain: bool = False,
    out: Callable[[str], None] = print,
) -> DemoStats:
    """Run the demo for ``seconds`` of real time; returns what happened (tests read it)."""
    snapshot = demo_snapshot(agents, level)
    out(
        f"fillreactor demo: agent server {AGENT_SERVER} (20 trunks, {agents} agents of {DEMO_CAMPAIGN} at "
        f"dial level {level}), balance servers {', '.join(BALANCE_SERVERS)}; no database is written"
    )
    timing = CallTiming(ring=2.0, talk=8.0, vdad_wait=6.0)
    async with SimulatedCluster(3, time_scale=time_scale, timing=timing) as cluster:
        reactor = DemoReactor(snapshot, out, explain=explain)
        loads = []
        try:
            for sim, ip in zip(cluster, snapshot.servers, strict=True):
                await reactor.connect(ip, sim, cluster.username, cluster.secret)
                concurrency = 20 if ip == AGENT_SERVER else 8
                load = DialLevelLoad(
                    sim, calls_per_second=6.0, max_concurrent=concurrency, first_lead_id=OWN_LEAD_BASE[ip]
                )
                load.start()
                loads.append(load)
            reactor.start_triggers()
            started = reactor.loop.time()
            ticks = max(1, round(seconds))
            for _ in range(ticks):
                await asyncio.sleep(seconds / ticks)  # pacing the printout, not synchronisation
                out(reactor.status_line(reactor.loop.time() - started))
        finally:
            for load in loads:
                await load.stop()
            await reactor.close()
    stats = reactor.stats
    out(
        f"done: {stats.events} events, {stats.plans} plans, {stats.originated} balance calls originated "
        f"({stats.answered} answered, {stats.failed} failed), at most {stats.most_in_flight} in flight"
    )
    return stats


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seconds", type=float, default=12.0, help="how long to run (real seconds)")
    parser.add_argument(
        "--time-scale", type=float, default=0.25, help="real seconds per simulated second (calls run faster)"
    )
    parser.add_argument("--agents", type=int, default=10, help="agents of the DEMO campaign")
    parser.add_argument("--level", type=float, default=3.0, help="dial level of the DEMO campaign")
    parser.add_argument("--explain", action="store_true", help="print every plan's full explanation")


def run(args: argparse.Namespace) -> int:
    if args.seconds <= 0 or args.time_scale <= 0 or args.agents < 0 or args.level < 0:
        print("fillreactor demo: --seconds and --time-scale must be positive, --agents and --level >= 0")
        return 2
    asyncio.run(
        run_demo(
            seconds=args.seconds,
            time_scale=args.time_scale,
            agents=args.agents,
            level=args.level,
            explain=args.explain,
        )
    )
    return 0
