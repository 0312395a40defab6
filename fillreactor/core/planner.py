"""The FILL plan: which balance server gets how many OUTBALANCE calls of which campaign.

Rules this module keeps (spec 2.2-2.6, 2.8, 2.12; corrections of spec 9.3 as DESIGN.md decides):

* Kill switches first: ``outbound_autodial_active < 1`` or ``disable_auto_dial > 0`` → no calls and
  ``balance_trunk_fill`` is left alone. No balance server at all, or no campaign with a positive
  shortage → no calls and ``balance_trunk_fill`` of every campaign is reset to 0.
* Campaigns are planned in ``campaign_id`` order (the Perl's GROUP BY order); any subset may be
  planned (the triggered ones). Calls planned for an earlier campaign occupy lines that later
  campaigns of the same plan see, as the Perl's vac inserts do.
* Per campaign C: ``needed = shortage_C - OUTBALANCE rows of C (any server, any status)``; servers
  short for C are excluded; the rest are asked in ``vicidial_balance_rank DESC, server_ip`` order::

      available = dedicated_C            if C's row on B is MAXIMUM_LIMIT
                = MVT - offlimits - dedicated_other   otherwise (OVERFLOW_ALLOWED or no row)
      available = max(0, available - OUTBALANCE rows of C on B)
      temp_avail = MVT - used_lines_B                  (used_lines: see RESERVATIONS_COUNTED)
      dial = min(available, needed - tally, temp_avail);  tally += dial

  ``balance_trunk_fill`` = OUTBALANCE rows of C + tally, written for campaigns that passed the
  ``balance servers left and needed > 0`` gate (spec 2.8; the Perl's placement of that UPDATE
  relative to the gate is assumed inside it).
* ``Mode.PARITY`` is the Perl arithmetic to the letter, defects included (unclamped temp_avail,
  per-server VALIDATE cap = needed, tally counted before the agent gate, no live counts). The
  default ``Mode.CORRECTED`` applies every ``Correction`` and records in each step where one changed
  the Perl's number on the same state, so a plan can always say why it differs.
* Pure: the plan is a frozen value; ``Plan.explain()`` renders the Perl-log-like lines on demand.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType

from fillreactor.core.cluster import ClusterSnapshot, LiveCounts, TrunkRestriction
from fillreactor.core.shortage import Demand


class Correction(Enum):
    """Every way a corrected plan may differ from the Perl FILL's arithmetic on the same inputs."""

    TEMP_AVAIL_CLAMPED = (
        "temp_avail clamped at 0: an over-full server gives 0, not a negative DIAL that lowers the tally"
    )
    TOTAL_CAPPED_AT_NEED = (
        "the tally never decreases, so the calls of a campaign over all servers never exceed its need"
        " (the Perl caps each server at needed only)"
    )
    RESERVATIONS_COUNTED = (
        "used lines = max(vicidial_auto_calls rows, live dialer calls + reservations); OUTBALANCE in"
        " flight = max(rows, fillreactor's own live OUTBALANCE calls)"
    )
    NOT_DIALABLE = "AMI link not live and resynced: the server gets 0 calls"
    NO_AGENTS_NOT_TALLIED = (
        "no non-paused agent for the campaign: nothing is planned or tallied"
        " (the Perl tallies the calls it then does not place)"
    )


class Mode(Enum):
    CORRECTED = "corrected"
    PARITY = "parity"


class PlanStatus(Enum):
    DIALING_DISABLED = "SYSTEM AUTO-DIAL DISABLED, NO DIALING"
    RESET = "No Balance Servers available or No Shortages"
    PLANNED = "planned"


class CampaignOutcome(Enum):
    PLANNED = "planned"
    NOT_SHORT = "no shortage"
    NO_SERVERS_OR_NEED = "No Balance Servers available that do not have a shortage, or no fill calls required"
    NO_AGENTS = "No Agents logged in, not dialing"


@dataclass(frozen=True, slots=True)
class PlanEntry:
    campaign: str
    server: str
    calls: int


@dataclass(slots=True)  # not frozen: one is built per server asked, frozen ones cost 3x (see events.py)
class ServerStep:
    """One candidate server's arithmetic for one campaign (the Perl's per-server log line)."""

    server: str
    available: int
    temp_avail: int
    wanted: int
    dial: int
    tally: int
    perl_dial: int
    """What the Perl arithmetic gives on the same state (same tally, same lines used)."""
    corrections: tuple[Correction, ...] = ()
    placed: bool = True
    """False when the step's DIAL is not placed (parity: the agent gate comes after the tally)."""

    def line(self, needed: int) -> str:
        text = f"Server {self.server}  AVAIL {self.available}  DIAL {self.dial}  tally {self.tally}/{needed}"
        if self.temp_avail < self.wanted and self.temp_avail < self.available:
            text += f"  (lines free {self.temp_avail})"
        for correction in self.corrections:
            text += f"  [{correction.name}: Perl DIAL {self.perl_dial}]"
        if not self.placed and self.dial > 0:
            text += "  (not placed: no agents)"
        return text


@dataclass(frozen=True, slots=True)
class CampaignPlan:
    campaign: str
    outcome: CampaignOutcome
    shortage: int = 0
    balance_in_flight: int = 0
    needed: int = 0
    full_servers: tuple[str, ...] = ()
    agents: int = 0
    steps: tuple[ServerStep, ...] = ()
    tally: int = 0
    not_asked: int = 0
    """Candidate servers after the need was met (the corrected plan stops asking)."""
    balance_trunk_fill: int | None = None
    corrections: tuple[Correction, ...] = ()

    def explain(self) -> list[str]:
        lines = [
            f"CAMPAIGN: {self.campaign}  shortage {self.shortage}  VAC_balance_fill {self.balance_in_flight}"
            f"  needed {self.needed}  agents {self.agents}"
        ]
        if self.full_servers:
            lines.append(f"  SERVERS WITH TRUNK FULL for {self.campaign}: {', '.join(self.full_servers)}")
        for correction in self.corrections:
            lines.append(f"  [{correction.name}] {correction.value}")
        if self.outcome is not CampaignOutcome.PLANNED:
            lines.append(f"  {self.outcome.value}")
        lines.extend("  " + step.line(self.needed) for step in self.steps)
        if self.not_asked:
            lines.append(f"  need met: {self.not_asked} further balance servers not asked")
        if self.balance_trunk_fill is not None:
            lines.append(
                f"  balance_trunk_fill = {self.balance_in_flight} + {self.tally} = {self.balance_trunk_fill}"
            )
        return lines


@dataclass(frozen=True)
class Plan:
    mode: Mode
    status: PlanStatus
    entries: tuple[PlanEntry, ...] = ()
    campaigns: tuple[CampaignPlan, ...] = ()
    reset_balance_fill: bool = False
    balance_trunk_fill: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))

    def total(self, campaign: str) -> int:
        return sum(e.calls for e in self.entries if e.campaign == campaign)

    def calls_on(self, server: str) -> int:
        return sum(e.calls for e in self.entries if e.server == server)

    def explain(self) -> tuple[str, ...]:
        if self.status is not PlanStatus.PLANNED:
            return (self.status.value,)
        lines: list[str] = []
        for campaign in self.campaigns:
            lines.extend(campaign.explain())
        return tuple(lines)


EMPTY_LIVE = LiveCounts()
MAXIMUM_LIMIT = TrunkRestriction.MAXIMUM_LIMIT


def _index_by_campaign(pairs: Mapping[tuple[str, str], int]) -> dict[str, dict[str, int]]:
    index: dict[str, dict[str, int]] = {}
    for (campaign, server), count in pairs.items():
        index.setdefault(campaign, {})[server] = count
    return index


def plan(
    snapshot: ClusterSnapshot,
    demand: Demand,
    live: LiveCounts | None = None,
    *,
    campaigns: Iterable[str] | None = None,
    mode: Mode = Mode.CORRECTED,
) -> Plan:
    """Plan the FILL calls for ``campaigns`` (default: every campaign with a shortage)."""
    if not snapshot.system.autodial_enabled:
        return Plan(mode, PlanStatus.DIALING_DISABLED)
    if snapshot.balance_server_count == 0 or not demand.by_campaign:
        return Plan(mode, PlanStatus.RESET, reset_balance_fill=True)
    parity = mode is Mode.PARITY
    live = EMPTY_LIVE if (live is None or parity) else live
    wanted = demand.campaigns() if campaigns is None else sorted(set(campaigns))
    vac_outbalance = snapshot.outbalance_by_campaign
    own_outbalance = _index_by_campaign(live.own_outbalance) if live.own_outbalance else {}
    rows_on_server = snapshot.auto_calls.rows_on_server
    trunks = snapshot.trunks
    dedicated_on_server = snapshot.dedicated_on_server
    usage = live.usage
    dialable = live.dialable
    planned_on: dict[str, int] = {}  # lines this plan already gave to earlier campaigns
    entries: list[PlanEntry] = []
    results: list[CampaignPlan] = []
    fills: dict[str, int] = {}

    for campaign in wanted:
        full = demand.full_servers(campaign)
        shortage = sum(full.values())
        if shortage <= 0:
            results.append(CampaignPlan(campaign, CampaignOutcome.NOT_SHORT))
            continue
        in_flight_rows = vac_outbalance.get(campaign, EMPTY_COUNTS)
        own = own_outbalance.get(campaign, EMPTY_COUNTS)
        in_flight: Mapping[str, int] = in_flight_rows
        if own:
            in_flight = {s: max(in_flight_rows.get(s, 0), own.get(s, 0)) for s in {*in_flight_rows, *own}}
        balance_in_flight = sum(in_flight.values())
        campaign_corrections: list[Correction] = []
        if balance_in_flight != sum(in_flight_rows.values()):
            campaign_corrections.append(Correction.RESERVATIONS_COUNTED)
        needed = shortage - balance_in_flight
        full_names = tuple(sorted(full))
        agents = snapshot.fill_agents.get(campaign, 0)
        candidates = [b for b in snapshot.balance_order if b.server_ip not in full]
        if not candidates or needed <= 0:
            results.append(
                CampaignPlan(
                    campaign,
                    CampaignOutcome.NO_SERVERS_OR_NEED,
                    shortage,
                    balance_in_flight,
                    needed,
                    full_names,
                    agents,
                    corrections=tuple(campaign_corrections),
                )
            )
            continue
        if agents <= 0 and not parity:
            campaign_corrections.append(Correction.NO_AGENTS_NOT_TALLIED)
            results.append(
                CampaignPlan(
                    campaign,
                    CampaignOutcome.NO_AGENTS,
                    shortage,
                    balance_in_flight,
                    needed,
                    full_names,
                    agents,
                    balance_trunk_fill=balance_in_flight,
                    corrections=tuple(campaign_corrections),
                )
            )
            fills[campaign] = balance_in_flight
            continue

        tally = 0
        steps: list[ServerStep] = []
        not_asked = 0
        for position, server in enumerate(candidates):
            ip = server.server_ip
            if not parity and tally >= needed:
                not_asked = len(candidates) - position
                break
            # snapshot.maximum_limit / dedicated_other, inlined: one lookup per step of a hot loop
            own_trunk = trunks.get((campaign, ip))
            if own_trunk is not None and own_trunk.restriction is MAXIMUM_LIMIT:
                available = own_trunk.dedicated_trunks
            else:
                dedicated_other = dedicated_on_server.get(ip, 0)
                if own_trunk is not None:
                    dedicated_other -= own_trunk.dedicated_trunks
                available = server.max_vicidial_trunks - server.balance_trunks_offlimits - dedicated_other
            wanted_here = needed - tally
            planned_here = planned_on.get(ip, 0)
            vac_rows = rows_on_server.get(ip, 0)
            perl_temp_avail = server.max_vicidial_trunks - vac_rows - planned_here
            perl_available = max(0, available - in_flight_rows.get(ip, 0))
            perl_dial = min(perl_available, wanted_here, perl_temp_avail, max(0, needed))
            corrections: tuple[Correction, ...] = ()
            if parity:
                dial, temp_avail, available = perl_dial, perl_temp_avail, perl_available
            else:
                available = max(0, available - in_flight.get(ip, 0))
                live_used = usage.get(ip, 0)
                raw_temp_avail = server.max_vicidial_trunks - max(vac_rows, live_used) - planned_here
                temp_avail = max(0, raw_temp_avail)
                dial = min(available, wanted_here, temp_avail)
                if dial != perl_dial:
                    found: list[Correction] = []
                    if perl_temp_avail < 0 or raw_temp_avail < 0:
                        found.append(Correction.TEMP_AVAIL_CLAMPED)
                    if live_used > vac_rows or available != perl_available:
                        found.append(Correction.RESERVATIONS_COUNTED)
                    corrections = tuple(found)
                if dial > 0 and ip not in dialable:
                    dial = 0
                    corrections = (*corrections, Correction.NOT_DIALABLE)
            tally += dial
            placed = agents > 0
            steps.append(
                ServerStep(
                    ip, available, temp_avail, wanted_here, dial, tally, perl_dial, corrections, placed
                )
            )
            if dial > 0 and placed:
                entries.append(PlanEntry(campaign, ip, dial))
                planned_on[ip] = planned_here + dial
        # Guard for TOTAL_CAPPED_AT_NEED: holds by construction once temp_avail is clamped.
        assert parity or 0 <= tally <= needed, (campaign, tally, needed)
        outcome = CampaignOutcome.PLANNED if agents > 0 else CampaignOutcome.NO_AGENTS
        fill = balance_in_flight + tally
        fills[campaign] = fill
        results.append(
            CampaignPlan(
                campaign,
                outcome,
                shortage,
                balance_in_flight,
                needed,
                full_names,
                agents,
                tuple(steps),
                tally,
                not_asked,
                fill,
                tuple(campaign_corrections),
            )
        )
    return Plan(
        mode,
        PlanStatus.PLANNED,
        tuple(entries),
        tuple(results),
        balance_trunk_fill=MappingProxyType(fills),
    )


EMPTY_COUNTS: Mapping[str, int] = MappingProxyType({})
