"""The FILL plan: which balance server gets how many OUTBALANCE calls of which campaign.

Rules this module keeps (spec 2.2-2.6, 2.8, 2.12; AST_VDauto_dial_FILL.pl build 231129 lines in
brackets; corrections of spec 9.3 as DESIGN.md decides):

* Kill switches first: ``outbound_autodial_active < 1`` or ``disable_auto_dial > 0`` → no calls and
  ``balance_trunk_fill`` is left alone [357-361]. No balance server at all, or no campaign with a
  positive shortage → no calls and ``balance_trunk_fill`` of every campaign is reset to 0 [1530-1538].
* Campaigns are planned in the order of the Perl's ``GROUP BY campaign_id`` [315] (MariaDB's
  case-insensitive collation: ``shortage.fill_campaign_order``); any subset may be planned (the
  triggered ones). Calls placed for an earlier campaign occupy lines that later campaigns of the
  same plan see, as the Perl's vac inserts do.
* Per campaign C: ``needed = shortage_C - OUTBALANCE rows of C (any server, any status)`` [440];
  servers short for C are excluded; the rest are asked in ``vicidial_balance_rank DESC, server_ip``
  order [497-513]::

      available = dedicated_C            if C's row on B is MAXIMUM_LIMIT
                = MVT - offlimits - dedicated_other   otherwise (OVERFLOW_ALLOWED or no row)
      available = max(0, available - OUTBALANCE rows of C on B)
      temp_avail = MVT - lines used on B
      DIAL = min(available, needed - tally), then min(DIAL, temp_avail);  tally += DIAL   [591-613]

  The agent gate (non-PAUSED agents of C, any server [618-630]) and the VALIDATE cap
  (``needed - 0``: the count of calls placed only grows in staggered mode [641-648]) apply only
  when placing: the tally has already taken the uncapped DIAL.
* ``balance_trunk_fill`` = OUTBALANCE rows of C + tally is written for **every** shortage campaign
  of the plan, also one that fails the ``balance servers left and needed > 0`` gate (the UPDATE
  sits after the gate [1512-1515]); a negative value is stored as 0 (the column is UNSIGNED).
  ``Plan.balance_trunk_fill`` holds exactly the values to store.
* ``Mode.PARITY`` is that arithmetic to the letter, defects included (unclamped temp_avail that
  lowers the tally, per-server VALIDATE cap, tally counted before the agent gate, lines = every
  ``vicidial_auto_calls`` row on B, no live counts). The default ``Mode.CORRECTED`` applies every
  ``Correction``; it also runs the Perl arithmetic on the same state and records, per step and per
  campaign, each correction that changed the Perl's number, so a plan always says why it differs.
* Pure: the plan is a frozen value; ``Plan.explain()`` renders the Perl-log-like lines on demand.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType

from fillreactor.core.cluster import ClusterSnapshot, LiveCounts, ServerConfig, TrunkRestriction
from fillreactor.core.lines import used_lines
from fillreactor.core.shortage import Demand, fill_campaign_order


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
        "lines used = the one used-lines figure (live V calls placed on the server + reservations +"
        " every other vicidial_auto_calls row in a live status), not every row on the server;"
        " OUTBALANCE in flight = the rows without the calls fillreactor saw end, plus its own live"
        " calls that have no row yet (max(rows, own calls) where call ids are not known)"
    )
    NOT_DIALABLE = (
        "AMI link not live and resynced, or its circuit breaker is open: the server gets 0 calls"
    )
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
    """The DIAL added to the tally (parity: uncapped, possibly negative)."""
    tally: int
    perl_dial: int
    """What the Perl arithmetic gives at this server on the same state (its own running tally)."""
    corrections: tuple[Correction, ...] = ()
    placed: bool = True
    """False when the step's DIAL is not placed (parity: the agent gate comes after the tally)."""
    calls: int = 0
    """Calls placed at this step (after the VALIDATE cap and the agent gate)."""
    validate_cap: int | None = None
    """Parity: the VALIDATE cap that lowered the DIAL when placing, else None."""

    def line(self, needed: int) -> str:
        text = f"Server {self.server}  AVAIL {self.available}  DIAL {self.dial}  tally {self.tally}/{needed}"
        if self.temp_avail < self.wanted and self.temp_avail < self.available:
            text += f"  (lines free {self.temp_avail})"
        if self.validate_cap is not None and self.placed:
            text += f"  VALIDATE OVERRIDE: |{self.dial}|{self.validate_cap}|  calls {self.calls}"
        for correction in self.corrections:
            text += f"  [{correction.name}: Perl DIAL {self.perl_dial}]"
        if not self.placed and self.dial > 0:
            text += "  (not placed: No Agents logged in, not dialing)"
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
    """The value to store (never negative); None for a campaign that is not short."""
    corrections: tuple[Correction, ...] = ()
    perl_calls: int | None = None
    """Corrected mode: the calls the Perl would place for this campaign on the same state."""

    def explain(self) -> list[str]:
        lines = [
            f"CAMPAIGN: {self.campaign}  shortage {self.shortage}  VAC_balance_fill {self.balance_in_flight}"
            f"  needed {self.needed}  agents {self.agents}"
        ]
        if self.full_servers:
            lines.append(f"  SERVERS WITH TRUNK FULL for {self.campaign}: {', '.join(self.full_servers)}")
        for correction in self.corrections:
            lines.append(f"  [{correction.name}] {correction.value}")
        if self.perl_calls is not None and self.corrections:
            lines.append(f"  the Perl would place {self.perl_calls} calls on this state")
        if self.outcome is not CampaignOutcome.PLANNED:
            lines.append(f"  {self.outcome.value}")
        lines.extend("  " + step.line(self.needed) for step in self.steps)
        if self.not_asked:
            lines.append(f"  need met: {self.not_asked} further balance servers not asked")
        if self.balance_trunk_fill is not None:
            raw = self.balance_in_flight + self.tally
            stored = "" if raw == self.balance_trunk_fill else f" (stored {self.balance_trunk_fill})"
            lines.append(f"  balance_trunk_fill = {self.balance_in_flight} + {self.tally} = {raw}{stored}")
        return lines


@dataclass(frozen=True)
class Plan:
    mode: Mode
    status: PlanStatus
    entries: tuple[PlanEntry, ...] = ()
    campaigns: tuple[CampaignPlan, ...] = ()
    reset_balance_fill: bool = False
    balance_trunk_fill: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    """Campaign -> the value to store in vicidial_campaign_stats.balance_trunk_fill (never negative)."""

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
EMPTY_COUNTS: Mapping[str, int] = MappingProxyType({})


def _index_by_campaign(pairs: Mapping[tuple[str, str], int]) -> dict[str, dict[str, int]]:
    index: dict[str, dict[str, int]] = {}
    for (campaign, server), count in pairs.items():
        index.setdefault(campaign, {})[server] = count
    return index


def _trunks_available(snapshot: ClusterSnapshot, campaign: str, server: ServerConfig) -> int:
    """AVAIL before the OUTBALANCE rows: the MAXIMUM_LIMIT dedication, else MVT - offlimits -
    other campaigns' dedications [591-597]. The FILL reads the last row of the key [526-536]."""
    own_trunk = snapshot.trunks.get((campaign, server.server_ip))
    if own_trunk is not None and own_trunk.restriction is MAXIMUM_LIMIT:
        return own_trunk.dedicated_trunks
    dedicated_other = snapshot.dedicated_on_server.get(server.server_ip, 0) - snapshot.dedicated_of_key.get(
        (campaign, server.server_ip), 0
    )
    return server.max_vicidial_trunks - server.balance_trunks_offlimits - dedicated_other


@dataclass(slots=True)
class _PerlRun:
    """The Perl's loop for one campaign: per candidate (same order) its DIAL, wanted, temp_avail."""

    dials: list[int]
    wanted: list[int]
    temp_avail: list[int]
    available: list[int]
    calls_at: list[int]
    tally: int
    calls: int

    def steps(self, candidates: list[ServerConfig], agents: int, needed: int) -> list[ServerStep]:
        """The parity plan's steps (built only when they are the plan)."""
        cap = max(0, needed)
        out = []
        tally = 0
        for k, server in enumerate(candidates):
            dial = self.dials[k]
            tally += dial
            out.append(
                ServerStep(
                    server.server_ip,
                    self.available[k],
                    self.temp_avail[k],
                    self.wanted[k],
                    dial,
                    tally,
                    dial,
                    (),
                    agents > 0,
                    self.calls_at[k],
                    cap if agents > 0 and dial > cap else None,
                )
            )
        return out


NO_RUN = _PerlRun([], [], [], [], [], 0, 0)


def _perl_campaign(
    snapshot: ClusterSnapshot,
    campaign: str,
    needed: int,
    candidates: list[ServerConfig],
    in_flight_rows: Mapping[str, int],
    planned_on: Mapping[str, int],
    agents: int,
) -> _PerlRun:
    """The Perl's loop over candidate servers for one campaign, to the letter [591-648]."""
    rows_on_server = snapshot.auto_calls.rows_on_server
    trunks = snapshot.trunks
    dedicated_on_server = snapshot.dedicated_on_server
    dedicated_of_key = snapshot.dedicated_of_key
    tally = calls = 0
    dials: list[int] = []
    wanted_at: list[int] = []
    temp_at: list[int] = []
    available_at: list[int] = []
    calls_at: list[int] = []
    cap = max(0, needed)  # VALIDATEcalls_to_place: needed - 0 in normal mode [641-643]
    for server in candidates:
        ip = server.server_ip
        # _trunks_available, inlined: this loop runs over every balance server per campaign
        own_trunk = trunks.get((campaign, ip))
        if own_trunk is not None and own_trunk.restriction is MAXIMUM_LIMIT:
            available = own_trunk.dedicated_trunks
        else:
            dedicated_other = dedicated_on_server.get(ip, 0) - dedicated_of_key.get((campaign, ip), 0)
            available = server.max_vicidial_trunks - server.balance_trunks_offlimits - dedicated_other
        available -= in_flight_rows.get(ip, 0)
        if available < 0:
            available = 0
        wanted = needed - tally
        temp_avail = server.max_vicidial_trunks - rows_on_server.get(ip, 0) - planned_on.get(ip, 0)
        dial = wanted if available >= wanted else available
        if temp_avail < dial:
            dial = temp_avail
        tally += dial
        placed_here = (dial if dial < cap else cap) if agents > 0 and dial > 0 else 0
        calls += placed_here
        dials.append(dial)
        wanted_at.append(wanted)
        temp_at.append(temp_avail)
        available_at.append(available)
        calls_at.append(placed_here)
    return _PerlRun(dials, wanted_at, temp_at, available_at, calls_at, tally, calls)


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
    wanted = demand.campaigns() if campaigns is None else fill_campaign_order(set(campaigns))
    vac_outbalance = snapshot.outbalance_by_campaign
    own_outbalance = _index_by_campaign(live.own_outbalance) if live.own_outbalance else {}
    exact_in_flight = (
        _index_by_campaign(live.outbalance_in_flight) if live.outbalance_in_flight is not None else None
    )
    rows_on_server = snapshot.auto_calls.rows_on_server
    dialable = live.dialable
    used_cache: dict[str, int] = {}
    planned_on: dict[str, int] = {}  # calls this plan already gave to earlier campaigns
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
        rows_in_flight = sum(in_flight_rows.values())
        full_names = tuple(sorted(full))
        agents = snapshot.fill_agents.get(campaign, 0)
        candidates = [b for b in snapshot.balance_order if b.server_ip not in full]
        perl_needed = shortage - rows_in_flight
        gate_open = bool(candidates) and perl_needed > 0  # [481]
        perl = (
            _perl_campaign(snapshot, campaign, perl_needed, candidates, in_flight_rows, planned_on, agents)
            if gate_open
            else NO_RUN
        )
        if parity:
            outcome = CampaignOutcome.NO_SERVERS_OR_NEED
            if gate_open:
                outcome = CampaignOutcome.PLANNED if agents > 0 else CampaignOutcome.NO_AGENTS
            perl_steps = perl.steps(candidates, agents, perl_needed) if gate_open else []
            for step in perl_steps:
                if step.calls > 0:
                    entries.append(PlanEntry(campaign, step.server, step.calls))
                    planned_on[step.server] = planned_on.get(step.server, 0) + step.calls
            fill = max(0, rows_in_flight + perl.tally)
            fills[campaign] = fill
            results.append(
                CampaignPlan(
                    campaign,
                    outcome,
                    shortage,
                    rows_in_flight,
                    perl_needed,
                    full_names,
                    agents,
                    tuple(perl_steps),
                    perl.tally,
                    balance_trunk_fill=fill,
                )
            )
            continue

        own = own_outbalance.get(campaign, EMPTY_COUNTS)
        in_flight: Mapping[str, int] = in_flight_rows
        if exact_in_flight is not None:
            in_flight = exact_in_flight.get(campaign, EMPTY_COUNTS)
        elif own:
            in_flight = {s: max(in_flight_rows.get(s, 0), own.get(s, 0)) for s in {*in_flight_rows, *own}}
        balance_in_flight = sum(in_flight.values())
        campaign_corrections: list[Correction] = []
        if balance_in_flight != rows_in_flight:
            campaign_corrections.append(Correction.RESERVATIONS_COUNTED)
        needed = shortage - balance_in_flight
        if not candidates or needed <= 0:
            fills[campaign] = balance_in_flight
            results.append(
                CampaignPlan(
                    campaign,
                    CampaignOutcome.NO_SERVERS_OR_NEED,
                    shortage,
                    balance_in_flight,
                    needed,
                    full_names,
                    agents,
                    balance_trunk_fill=balance_in_flight,
                    corrections=tuple(campaign_corrections),
                    perl_calls=perl.calls,
                )
            )
            continue
        if agents <= 0:
            if gate_open and perl.tally != 0:
                campaign_corrections.append(Correction.NO_AGENTS_NOT_TALLIED)
            fills[campaign] = balance_in_flight
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
                    perl_calls=perl.calls,
                )
            )
            continue

        tally = 0
        steps: list[ServerStep] = []
        not_asked = 0
        for position, server in enumerate(candidates):
            ip = server.server_ip
            if tally >= needed:
                not_asked = len(candidates) - position
                break
            available = max(0, _trunks_available(snapshot, campaign, server) - in_flight.get(ip, 0))
            wanted_here = needed - tally
            planned_here = planned_on.get(ip, 0)
            used = used_cache.get(ip)
            if used is None:
                used = used_cache[ip] = used_lines(snapshot, live, ip)
            raw_temp_avail = server.max_vicidial_trunks - used - planned_here
            temp_avail = max(0, raw_temp_avail)
            dial = min(available, wanted_here, temp_avail)
            perl_dial = perl.dials[position] if gate_open else dial
            found: list[Correction] = []
            if gate_open and dial != perl_dial:
                if perl.temp_avail[position] < 0 or raw_temp_avail < 0:
                    found.append(Correction.TEMP_AVAIL_CLAMPED)
                if perl.wanted[position] > wanted_here:
                    found.append(Correction.TOTAL_CAPPED_AT_NEED)
                if used != rows_on_server.get(ip, 0) or in_flight.get(ip, 0) != in_flight_rows.get(ip, 0):
                    found.append(Correction.RESERVATIONS_COUNTED)
                if not found:  # the need itself differs (own OUTBALANCE calls counted)
                    found.extend(campaign_corrections)
            if dial > 0 and ip not in dialable:
                dial = 0
                found.append(Correction.NOT_DIALABLE)
            tally += dial
            steps.append(
                ServerStep(
                    ip, available, temp_avail, wanted_here, dial, tally, perl_dial, tuple(found), True, dial
                )
            )
            if dial > 0:
                entries.append(PlanEntry(campaign, ip, dial))
                planned_on[ip] = planned_here + dial
        # Guard for TOTAL_CAPPED_AT_NEED: holds by construction once temp_avail is clamped.
        assert 0 <= tally <= needed, (campaign, tally, needed)
        if perl.calls > needed and Correction.TOTAL_CAPPED_AT_NEED not in campaign_corrections:
            campaign_corrections.append(Correction.TOTAL_CAPPED_AT_NEED)
        fill = balance_in_flight + tally
        fills[campaign] = fill
        results.append(
            CampaignPlan(
                campaign,
                CampaignOutcome.PLANNED,
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
                perl.calls,
            )
        )
    return Plan(
        mode,
        PlanStatus.PLANNED,
        tuple(entries),
        tuple(results),
        balance_trunk_fill=MappingProxyType(fills),
    )
