"""Demand: AST_VDauto_dial.pl's goal / existing / make / shortage arithmetic (2.14), and its sources.

Rules this module keeps (spec 4.1-4.4a; AST_VDauto_dial.pl build 240917 line numbers in brackets;
``--shortage-source live``):

* Per server S, the campaigns with counted agents on S are processed in the Perl's order: by the
  string ``<shared rank>---<first agent's UNIX_TIMESTAMP(last_call_time)>---<campaign>`` [822-827]
  (the rank is ``0`` unless shared dialing is on and the campaign is an active SHARED_* one).
  ``active_line_counter`` starts at THE used-lines figure of S (``lines.used_lines``: every
  ``vicidial_auto_calls`` row VICIdial counts, V calls from the model) and grows by each
  campaign's positive ``make`` [1469-1472]. Without the order key (a snapshot built without it)
  the order is ``campaign_id`` and ``CAMPAIGN_ORDER`` is recorded.
* Every term of the formula, in the Perl's order, each recorded in ``terms`` and the explanation:

  ======================================  ========================================================
  agents [857-902]                        READY/DONE = ready; others INCALL with a vac row, else
                                          DEAD; SHARED agents count for their dial campaign
  in-call tally threshold [1036-1085]     agents = ready + INCALL within the threshold (agents of
                                          every server), INCALL-diff kept for existing, agents
                                          without a call on every server added back
  drop in-group agents [1093-1134]        agents and ready first reduced by 1, then agents of other
                                          campaigns (any server) with the group in closer_campaigns
  available-only tally [1145-1165]        agents = ready (ratio tally, or a threshold hit; the
                                          NON-PAUSED threshold compares with a count incl. DEAD);
                                          else agents - DEAD (+ threshold dead)
  dial level threshold [1170-1186]        dial level 1
  diff target [1136-1144, 1189]           added to agents unless ADAPT_CALC_ONLY
  goal [1193-1215]                        level x agents (+ XFER/CLOSER calls if available-only),
                                          0 if inactive, ``sprintf("%.0f")``: half to even
  existing [1219-1417]                    exist_IN (closer groups' IN calls on S, if inbound
                                          allowed; every server for ALL_SERVERS) + exist_OUT
                                          (C's and its IN_GROUP drop group's calls on S) + waiting
                                          chats (*_WITH_CHAT); BLENDED: READY agents and exist_IN
                                          > 0 -> exist_OUT only; minus the INCALL-diff
  make / shortage [1419-1467]             MVT, TRUNK LIMIT (MAXIMUM_LIMIT) or OTHER LIMIT override;
                                          a later override *replaces* the MVT shortage
  write-back [1640-1682]                  forced 0 for level < 1 or MANUAL|INBOUND_MAN, inbound
                                          queue no-dial, inbound no-agents no-dial
  ======================================  ========================================================

* Write-back, two modes. ``parity=True`` is what the Perl leaves in the table: the value is
  written only when it differs from the stored one (``previous``; a missing row is inserted as
  0), the forced zeros apply only to such a write, a negative value is written and MySQL stores 0.
  The default (corrected) applies the forced zeros on every computation (``ZERO_OVERRIDE_ALWAYS``
  when that changes the number) and stores a negative value as 0.
* A term that cannot be computed from the inputs is named ``NOT_MODELLED`` on the result with the
  reason (``NotModelled``): only those that apply to the campaign are listed.
* ``--shortage-source stats``: ``Demand.from_stats`` takes the fresh positive
  ``vicidial_campaign_server_stats`` rows exactly as the Perl FILL reads them (spec 2.2.3).
* Pure: ``compute_server_shortages`` reads one server's inputs; a trigger recomputes only the
  server whose counts moved and swaps its rows into ``Demand`` with ``Demand.with_server``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from enum import Enum
from types import MappingProxyType
from typing import Any

from fillreactor.core.cluster import (
    AgentTally,
    CampaignConfig,
    CampaignServer,
    ClusterSnapshot,
    DropGroupAgents,
    InboundNoAgents,
    IncallThreshold,
    LiveCounts,
)
from fillreactor.core.lines import campaign_calls, used_lines

MANUAL_METHODS = frozenset({"MANUAL", "INBOUND_MAN"})
_MANUAL = re.compile("MANUAL|INBOUND_MAN")  # AST_VDauto_dial.pl 1642: a regex, not a set
_QUEUE_NO_DIAL = re.compile("ENABLED|ALL_SERVERS")  # AST_VDauto_dial.pl 1650


class ShortageDeviation(Enum):
    """Where the corrected shortage differs from the value ``AST_VDauto_dial.pl`` would leave."""

    NEGATIVE_SHORTAGE_CLAMPED = (
        "negative shortage stored as 0 (the Perl writes it negative; non-strict MySQL stores 0)"
    )
    ZERO_OVERRIDE_ALWAYS = (
        "forced zero (manual, level < 1, inbound no-dial) applied on every computation"
        " (the Perl only when the value changed)"
    )
    CAMPAIGN_ORDER = (
        "campaigns on a server take lines in campaign_id order: the Perl's order key"
        " (first agent's last_call_time) is not in the snapshot"
    )
    NOT_MODELLED = "a term could not be computed from the inputs (see not_modelled)"


class ZeroReason(Enum):
    """The write-back overrides that force the shortage to 0 (AST_VDauto_dial.pl 1640-1674)."""

    MANUAL_DIAL = "Manual Dial Override: dial level < 1 or dial method MANUAL/INBOUND_MAN"
    INBOUND_QUEUE_NO_DIAL = "Inbound Queue No-Dial Override: inbound calls or callbacks waiting"
    INBOUND_NO_AGENTS_NO_DIAL = "Inbound No-Agents No-Dial Override: too few inbound agents ready"


@dataclass(frozen=True, slots=True)
class NotModelled:
    """A term of the formula the inputs cannot give, named on the result (``NOT_MODELLED``)."""

    term: str
    reason: str

    def __str__(self) -> str:
        return f"NOT_MODELLED {self.term}: {self.reason}"


SHARED_MAX_CALLS = NotModelled(
    "shared max calls",
    "the SHARED_* make cap (AST_VDauto_dial.pl 1474-1488) is applied after the line counter and"
    " the shortage are set: it only lowers the calls AST_VDauto_dial.pl places itself, so `make`"
    " here is before that cap",
)


def perl_round(value: float) -> int:
    """Perl ``sprintf("%.0f", value)``: C printf rounding, half to even on the binary value."""
    return int(f"{value:.0f}")


# Threshold name -> which count it is compared with ("threshold_agents > count" triggers).
AVAILABLE_ONLY_COUNT = {
    "LOGGED-IN_AGENTS": "logged_in",
    "NON-PAUSED_AGENTS": "agents",
    "WAITING_AGENTS": "ready",
}
"""AST_VDauto_dial.pl 1153-1165: NON-PAUSED compares with the agent count, DEAD agents included."""
DIAL_LEVEL_COUNT = {
    "LOGGED-IN_AGENTS": "logged_in",
    "NON-PAUSED_AGENTS": "ready+incall",
    "WAITING_AGENTS": "ready",
}
"""AST_VDauto_dial.pl 1170-1186."""


def _threshold_hits(
    table: Mapping[str, str], setting: str, agents_needed: int, counts: Mapping[str, int]
) -> list[str]:
    return [name for name, count in table.items() if name in setting and agents_needed > counts[count]]


NO_THRESHOLD = IncallThreshold()
NO_DROP_AGENTS = DropGroupAgents()
NO_INBOUND_INPUTS = InboundNoAgents()


# slots, not frozen (like the events): built per campaign on every recompute, and nobody mutates one
@dataclass(slots=True)
class CampaignInputs:
    """Everything one (campaign, server) computation reads, gathered from snapshot and live counts."""

    tally: AgentTally
    max_trunks: int
    logged_in: int = 0
    ready_agents: int = 0
    """READY agents of C on S, no freshness filter (the BLENDED override, 905-914)."""
    incall_threshold: IncallThreshold = NO_THRESHOLD
    drop_group_agents: DropGroupAgents = NO_DROP_AGENTS
    xfer_closer: int = 0
    exist_out: int = 0
    """C's (and its IN_GROUP drop group's) calls on S, EXIST statuses, shared drops included."""
    shared_drops: int = 0
    """The part of ``exist_out`` that is fresh shared drops (reporting)."""
    exist_in: int = 0
    exist_in_all: int = 0
    exist_in_live: int = 0
    waiting_chats: int = 0
    queued_callbacks: int = 0
    inbound_no_agents: InboundNoAgents | None = NO_INBOUND_INPUTS
    """``None``: the inputs could not be read (``NOT_MODELLED`` when the campaign uses it)."""
    maximum_limit: int | None = None
    dedicated_other: int = 0
    not_modelled: tuple[NotModelled, ...] = ()
    order_unknown: bool = False
    """The Perl's campaign order key is not in the snapshot (``CAMPAIGN_ORDER``)."""
    shared_dialing: bool = False
    """``allow_shared_dial > 0`` and a SHARED_* campaign: its make is capped after the shortage."""


@dataclass(slots=True)  # not frozen: see CampaignInputs
class ShortageTerms:
    """Every term of one computation, named as the Perl's debug output names them."""

    agents_on_server: int
    ready: int
    incall: int
    dead: int
    logged_in: int
    incall_threshold_seconds: int
    incall_within: int
    incall_dead_all_servers: int
    incall_diff: int
    drop_group: str | None
    drop_group_ready: int
    drop_group_incall: int
    available_only: bool
    agents: int
    """The agent count the goal multiplies (the Perl log's ``agents:``)."""
    dial_level: float
    diff_target: int
    xfer_closer: int
    goal: int
    exist_in: int
    exist_in_all: int
    exist_in_live: int
    waiting_chats: int
    queued_callbacks: int
    exist_out: int
    shared_drops: int
    blended_override: bool
    existing: int
    lines_before: int
    make_goal: int
    make: int
    line_goal: int
    max_trunks: int
    overrides: tuple[str, ...]
    computed: int
    """The shortage before the write-back rules."""
    previous: int | None
    zero_reasons: tuple[str, ...]
    written: bool
    """Parity: the Perl's UPDATE of the value runs (it differs from the stored one)."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class ShortageResult:
    campaign: str
    server: str
    goal: int
    existing: int
    make: int
    shortage: int
    """The value stored (corrected, or the Perl's value left in the table with ``parity``)."""
    line_goal: int
    explanation: tuple[str, ...]
    deviations: tuple[ShortageDeviation, ...] = ()
    terms: ShortageTerms | None = None
    not_modelled: tuple[NotModelled, ...] = ()

    @property
    def zero_reason(self) -> str:
        """Why the stored value is 0 (empty when it is not)."""
        terms = self.terms
        if self.shortage > 0:
            return ""
        if terms is None:
            return "no shortage"
        if terms.computed > 0:
            return "; ".join(ZeroReason[r].value for r in terms.zero_reasons)
        if terms.computed < 0:
            return (
                f"computed {terms.computed} (goal {terms.goal} < existing {terms.existing} while the"
                " lines exceed the trunks): stored as 0"
            )
        if terms.make_goal <= 0:
            return f"goal {terms.goal} - existing {terms.existing} = {terms.make_goal}: no calls to make"
        return (
            f"lines {terms.lines_before} + make {terms.make_goal} fit max_vicidial_trunks"
            f" {terms.max_trunks} and the trunk limits: no shortage"
        )


def evaluate(
    campaign: CampaignConfig,
    inputs: CampaignInputs,
    *,
    server: str,
    active_line_counter: int,
    previous_shortage: int | None = None,
    parity: bool = False,
) -> tuple[ShortageResult, int]:
    """Spec 4.1-4.4 for one (campaign, server). Returns the result and the new line counter."""
    why: list[str] = []
    tally = inputs.tally
    agents, ready, incall, dead = tally.counted, tally.ready, tally.incall, tally.dead
    logged_in = inputs.logged_in
    why.append(
        f"agents {agents} on {server}: READY/DONE {ready}, INCALL {incall}, DEAD {dead}"
        f" ({logged_in} agents of all campaigns)"
    )
    # -- in-call tally threshold [1036-1085] --
    threshold = campaign.incall_tally_threshold_seconds
    incall_diff = dead_all = within = 0
    if threshold > 0:
        within, dead_all = inputs.incall_threshold.within, inputs.incall_threshold.dead
        incall_diff = incall - within
        why.append(
            f"in-call tally threshold {threshold} s (agents of every server): {within} INCALL within,"
            f" diff {incall} - {within} = {incall_diff}, {dead_all} without a call;"
            f" agents = {ready} + {within}"
        )
        incall, agents = within, ready + within
    # -- drop in-group agents [1093-1134] --
    drop_ready = drop_incall = 0
    if campaign.drop_group_agents_counted:
        borrowed = inputs.drop_group_agents
        drop_ready, drop_incall = borrowed.ready, borrowed.incall
        if agents > 0:
            agents -= 1
        if ready > 0:
            ready -= 1
        agents += drop_ready + drop_incall
        ready += drop_ready
        incall += drop_incall
        why.append(
            f"drop in-group {campaign.drop_inbound_group}: agents and READY less 1, + READY {drop_ready}"
            f" + INCALL {drop_incall} agents of other campaigns: agents {agents}, READY {ready}"
        )
    diff = 0 if "ADAPT_CALC_ONLY" in campaign.dl_diff_target_method else campaign.adaptive_dl_diff_target
    # -- available-only tally [1145-1165] --
    active_only = False
    if campaign.available_only_ratio_tally:
        agents, active_only = ready, True
        why.append(f"available-only ratio tally: agents = READY {ready}")
    else:
        counts = {"logged_in": logged_in, "agents": agents, "ready": ready}
        hits = _threshold_hits(
            AVAILABLE_ONLY_COUNT,
            campaign.available_only_tally_threshold,
            campaign.available_only_tally_threshold_agents,
            counts,
        )
        if hits:
            agents, active_only = ready, True
            why.append(
                f"available-only threshold {hits[0]} ({campaign.available_only_tally_threshold_agents} >"
                f" {counts[AVAILABLE_ONLY_COUNT[hits[0]]]}): agents = READY {ready}"
            )
        else:
            before = agents
            agents = agents - dead + dead_all
            why.append(
                f"agents {before} - DEAD {dead}"
                + (f" + {dead_all}" if threshold > 0 else "")
                + f" = {agents}"
            )
        agents = max(agents, 0)
    # -- dial level threshold [1170-1186] --
    adlevel = campaign.auto_dial_level
    dl_counts = {"logged_in": logged_in, "ready+incall": ready + incall, "ready": ready}
    dl_hits = _threshold_hits(
        DIAL_LEVEL_COUNT, campaign.dial_level_threshold, campaign.dial_level_threshold_agents, dl_counts
    )
    if dl_hits:
        adlevel = 1.0
        why.append(f"dial level threshold {dl_hits[0]}: dial level 1")
    # -- diff target and goal [1189-1215] --
    if diff:
        agents = max(0, agents + diff)
        why.append(f"diff target {diff:+d}: agents {agents}")
    goal_value = adlevel * agents
    xfer = inputs.xfer_closer if active_only else 0
    goal_value += xfer
    if not campaign.active:
        goal_value = 0
        why.append("campaign inactive: goal 0")
    goal = perl_round(goal_value)
    why.append(f"goal = {adlevel:g} x {agents}" + (f" + {xfer} XFER/CLOSER" if xfer else "") + f" -> {goal}")
    # -- existing [1219-1417] --
    iqnd = campaign.inbound_queue_no_dial
    exist_in = inputs.exist_in
    existing = exist_in + inputs.exist_out
    parts = f"exist_IN {exist_in} + exist_OUT {inputs.exist_out}"
    if "ALL_SERVERS" in iqnd:
        existing = inputs.exist_in_all + inputs.exist_out
        parts = f"exist_IN all servers {inputs.exist_in_all} + exist_OUT {inputs.exist_out}"
    if "CHAT" in iqnd:
        existing += inputs.waiting_chats
        parts += f" + waiting chats {inputs.waiting_chats}"
    blended = inputs.ready_agents > 0 and exist_in > 0
    if blended:
        existing = inputs.exist_out
        parts += f"; BLENDED-OUTBOUND-AGENTS-WAITING OVERRIDE ({inputs.ready_agents} READY): exist_OUT only"
    if incall_diff > 0 and existing >= incall_diff:
        existing -= incall_diff
        parts += f"; - INCALL diff {incall_diff}"
    why.append(f"existing {existing} ({parts})")
    # -- make and shortage [1419-1467] --
    max_trunks = inputs.max_trunks
    make = goal - existing
    make_goal = make
    shortage = 0
    line_goal = active_line_counter + make
    overrides: list[str] = []
    why.append(f"make {make}, lines {active_line_counter} + {make} = {line_goal}")
    if line_goal > max_trunks:
        make = min(make, max_trunks - active_line_counter)
        shortage = min(line_goal - max_trunks, make_goal)
        overrides.append("MVT")
        why.append(
            f"MVT override: {line_goal} > max_vicidial_trunks {max_trunks}: make {make}, shortage {shortage}"
        )
    limit = inputs.maximum_limit
    if limit is not None:
        if limit < goal:
            shortage = min(goal - limit, make_goal)
            make = limit - existing
            line_goal = limit
            overrides.append("TRUNK LIMIT")
            why.append(
                f"TRUNK LIMIT override: MAXIMUM_LIMIT {limit} < goal {goal}: make {make}, shortage {shortage}"
            )
    else:
        allowed = max_trunks - inputs.dedicated_other
        if allowed < line_goal:
            shortage = min(line_goal - allowed, make_goal)
            line_goal = allowed
            make = min(make, line_goal - active_line_counter)
            overrides.append("OTHER LIMIT")
            why.append(
                f"OTHER LIMIT override: {inputs.dedicated_other} trunks dedicated to other campaigns,"
                f" allowed {allowed}: make {make}, shortage {shortage}"
            )
    lines_before = active_line_counter
    if make > 0:
        active_line_counter += make
    not_modelled = list(inputs.not_modelled)
    # -- write-back overrides [1640-1674]; inbound terms are 0 unless inbound is allowed (1278-1285) --
    zero: list[ZeroReason] = []
    if adlevel < 1 or _MANUAL.search(campaign.dial_method):
        zero.append(ZeroReason.MANUAL_DIAL)
    if (_QUEUE_NO_DIAL.search(iqnd) and (inputs.exist_in_live > 0 or inputs.queued_callbacks > 0)) or (
        "CHAT" in iqnd and inputs.waiting_chats > 0
    ):
        zero.append(ZeroReason.INBOUND_QUEUE_NO_DIAL)
    if _no_agents_triggered(campaign, inputs, why, not_modelled):
        zero.append(ZeroReason.INBOUND_NO_AGENTS_NO_DIAL)
    computed = shortage
    deviations: list[ShortageDeviation] = []
    written = True
    if parity:
        old = previous_shortage if previous_shortage is not None else 0  # a missing row is inserted as 0
        if computed != old:
            value = 0 if zero else computed
            for reason in zero:
                why.append(f"{reason.value}: shortage {computed} -> 0")
        else:
            value, written = old, False
            if zero and computed:
                why.append(
                    f"unchanged {computed}: the Perl writes only update_time, {zero[0].name} not applied"
                )
    else:
        value = 0 if zero else computed
        for reason in zero:
            if computed:
                why.append(f"{reason.value}: shortage {computed} -> 0")
        if zero and computed and previous_shortage == computed:
            deviations.append(ShortageDeviation.ZERO_OVERRIDE_ALWAYS)
            why.append(f"[{ShortageDeviation.ZERO_OVERRIDE_ALWAYS.name}] the Perl would keep {computed}")
    stored = value
    if value < 0:
        stored = 0
        if not parity:
            deviations.append(ShortageDeviation.NEGATIVE_SHORTAGE_CLAMPED)
        why.append(f"shortage {value} < 0 stored as 0 (local_trunk_shortage is UNSIGNED)")
    if inputs.shared_dialing and make > 0:
        not_modelled.append(SHARED_MAX_CALLS)
    if inputs.order_unknown:
        deviations.append(ShortageDeviation.CAMPAIGN_ORDER)
        why.append(f"[{ShortageDeviation.CAMPAIGN_ORDER.name}] {ShortageDeviation.CAMPAIGN_ORDER.value}")
    if not_modelled:
        deviations.append(ShortageDeviation.NOT_MODELLED)
        why.extend(str(item) for item in not_modelled)
    why.append(
        f"LOCAL TRUNK SHORTAGE: {stored}|{'' if previous_shortage is None else previous_shortage}"
        f"  ({line_goal} - {max_trunks})"
    )
    terms = ShortageTerms(
        agents_on_server=tally.counted,
        ready=ready,
        incall=incall,
        dead=dead,
        logged_in=logged_in,
        incall_threshold_seconds=threshold,
        incall_within=within,
        incall_dead_all_servers=dead_all,
        incall_diff=incall_diff,
        drop_group=campaign.drop_inbound_group if campaign.drop_group_agents_counted else None,
        drop_group_ready=drop_ready,
        drop_group_incall=drop_incall,
        available_only=active_only,
        agents=agents,
        dial_level=adlevel,
        diff_target=diff,
        xfer_closer=xfer,
        goal=goal,
        exist_in=exist_in,
        exist_in_all=inputs.exist_in_all,
        exist_in_live=inputs.exist_in_live,
        waiting_chats=inputs.waiting_chats,
        queued_callbacks=inputs.queued_callbacks,
        exist_out=inputs.exist_out,
        shared_drops=inputs.shared_drops,
        blended_override=blended,
        existing=existing,
        lines_before=lines_before,
        make_goal=make_goal,
        make=make,
        line_goal=line_goal,
        max_trunks=max_trunks,
        overrides=tuple(overrides),
        computed=computed,
        previous=previous_shortage,
        zero_reasons=tuple(r.name for r in zero),
        written=written,
    )
    result = ShortageResult(
        campaign.campaign_id,
        server,
        goal,
        existing,
        make,
        stored,
        line_goal,
        tuple(why),
        tuple(deviations),
        terms,
        tuple(not_modelled),
    )
    return result, active_line_counter


def _no_agents_triggered(
    campaign: CampaignConfig, inputs: CampaignInputs, why: list[str], not_modelled: list[NotModelled]
) -> bool:
    """The inbound no-agents no-dial trigger (AST_VDauto_dial.pl 1297-1364)."""
    container = campaign.inbound_no_agents_no_dial_container
    threshold = campaign.inbound_no_agents_no_dial_threshold
    if "DISABLED" in container or not container or threshold <= 0:
        return False
    found = inputs.inbound_no_agents
    if found is None:  # its inputs could not be read: gather_inputs named it NOT_MODELLED
        return False
    if len(found.entry) <= 2:
        return False
    if found.users > 0 and found.ready >= threshold:
        return False
    why.append(f"inbound no-agents no-dial: {found.ready} inbound agents ready < threshold {threshold}")
    return True


def shortage_for_campaign(
    campaign: CampaignConfig,
    tally: AgentTally,
    *,
    server: str,
    max_trunks: int,
    existing: int,
    active_line_counter: int,
    logged_in: int = 0,
    xfer_closer: int = 0,
    maximum_limit: int | None = None,
    dedicated_other: int = 0,
    previous_shortage: int | None = None,
    parity: bool = False,
) -> tuple[ShortageResult, int]:
    """Spec 4.2-4.4 for one (campaign, server) of an outbound-only campaign: ``existing`` is its
    exist_OUT. Returns the result and the new line counter (``evaluate`` takes every input)."""
    inputs = CampaignInputs(
        tally,
        max_trunks,
        logged_in=logged_in,
        xfer_closer=xfer_closer,
        exist_out=existing,
        maximum_limit=maximum_limit,
        dedicated_other=dedicated_other,
    )
    return evaluate(
        campaign,
        inputs,
        server=server,
        active_line_counter=active_line_counter,
        previous_shortage=previous_shortage,
        parity=parity,
    )


def _missing(snapshot: ClusterSnapshot, name: str, term: str) -> list[NotModelled]:
    reason = snapshot.missing_inputs.get(name)
    return [NotModelled(term, reason)] if reason else []


def gather_inputs(
    snapshot: ClusterSnapshot, live: LiveCounts, campaign: CampaignConfig, server: str
) -> CampaignInputs:
    """The inputs of one (campaign, server) from the snapshot and THE line figures (lines.py)."""
    cid = campaign.campaign_id
    key = (cid, server)
    config = snapshot.servers[server]
    rows = snapshot.row_lines
    own = {cid}
    drop_group = campaign.drop_group_calls
    if drop_group is not None:
        own.add(drop_group)
    exist_out = sum(campaign_calls(snapshot, live, c, server) for c in own)
    shared = 0
    not_modelled: list[NotModelled] = []
    if snapshot.system.allow_shared_dial > 0:
        shared = rows.shared_existing.get(key, 0)  # campaign_id = C only (1369)
        not_modelled += _missing(snapshot, "vicidial_shared_drops", "shared drops")
        if campaign.dial_method.startswith("SHARED_") and campaign.active:
            not_modelled += _missing(snapshot, "shared_dial_rank", "shared dial rank (campaign order)")
    exist_in = exist_in_all = exist_in_live = chats = callbacks = 0
    if campaign.campaign_allow_inbound:
        groups = set(campaign.closer_groups)
        exist_in = sum(rows.inbound.get((g, server), 0) for g in groups)
        exist_in_all = sum(rows.inbound_all.get(g, 0) for g in groups)
        exist_in_live = sum(rows.inbound_live.get(g, 0) for g in groups)
        chats = sum(snapshot.waiting_chats.get(g, 0) for g in groups)
        callbacks = sum(snapshot.queued_callbacks.get(g, 0) for g in groups)
        if "CHAT" in campaign.inbound_queue_no_dial:
            not_modelled += _missing(snapshot, "vicidial_live_chats", "waiting chats")
        if _QUEUE_NO_DIAL.search(campaign.inbound_queue_no_dial):
            not_modelled += _missing(snapshot, "vicidial_inbound_callback_queue", "queued inbound callbacks")
    no_agents: InboundNoAgents | None = snapshot.inbound_no_agents.get(cid, InboundNoAgents())
    container = campaign.inbound_no_agents_no_dial_container
    if "inbound_no_agents_no_dial" in snapshot.missing_inputs:  # the settings themselves are unknown
        not_modelled += _missing(snapshot, "inbound_no_agents_no_dial", "inbound no-agents no-dial")
    elif (
        container
        and "DISABLED" not in container
        and "vicidial_live_inbound_agents" in snapshot.missing_inputs
    ):
        not_modelled += _missing(snapshot, "vicidial_live_inbound_agents", "inbound no-agents no-dial")
        no_agents = None
    return CampaignInputs(
        snapshot.agents.get(key, AgentTally()),
        config.max_vicidial_trunks,
        logged_in=snapshot.logged_in_agents.get(server, 0),
        ready_agents=snapshot.ready_agents.get(key, 0),
        incall_threshold=snapshot.incall_threshold.get(cid, IncallThreshold()),
        drop_group_agents=snapshot.drop_group_agents.get(cid, DropGroupAgents()),
        xfer_closer=sum(snapshot.auto_calls.xfer_closer.get((c, server), 0) for c in own),
        exist_out=exist_out + shared,
        shared_drops=shared,
        exist_in=exist_in,
        exist_in_all=exist_in_all,
        exist_in_live=exist_in_live,
        waiting_chats=chats,
        queued_callbacks=callbacks,
        inbound_no_agents=no_agents,
        maximum_limit=snapshot.maximum_limit(cid, server),
        dedicated_other=snapshot.dedicated_other(cid, server),
        not_modelled=tuple(not_modelled),
    )


def server_campaign_order(snapshot: ClusterSnapshot, server: str) -> tuple[tuple[str, ...], bool]:
    """The campaigns with agents on a server in the Perl's processing order, and whether that
    order is known (AST_VDauto_dial.pl 822-827, 846)."""
    campaigns = snapshot.campaigns_on_server.get(server, ())
    keys: dict[str, str] = {}
    for campaign_id in campaigns:
        epoch = snapshot.agent_call_epochs.get((campaign_id, server))
        if epoch is None:
            return campaigns, len(campaigns) < 2
        rank = "0"
        config = snapshot.campaigns.get(campaign_id)
        if (
            snapshot.system.allow_shared_dial > 0
            and config is not None
            and config.active
            and config.dial_method.startswith("SHARED_")
        ):
            rank = f"{config.shared_dial_rank:02d}"
        keys[campaign_id] = f"{rank}---{epoch}---{campaign_id}---"
    return tuple(sorted(campaigns, key=keys.__getitem__)), True


def _case_variants(campaigns: Iterable[str]) -> set[str]:
    seen: dict[str, str] = {}
    variants: set[str] = set()
    for campaign_id in campaigns:
        folded = campaign_id.upper()
        if folded in seen:
            variants |= {campaign_id, seen[folded]}
        seen[folded] = campaign_id
    return variants


CASE_VARIANTS = (
    "campaign ids that differ only in letter case are one campaign for the Perl (its agent match is a"
    " case-insensitive regex, AST_VDauto_dial.pl 862, and SQL compares case-insensitively);"
    " counted apart here"
)


def compute_server_shortages(
    snapshot: ClusterSnapshot,
    live: LiveCounts,
    server: str,
    *,
    previous: Mapping[CampaignServer, int] | None = None,
    parity: bool = False,
) -> tuple[ShortageResult, ...]:
    """All campaigns with counted agents on one server, in the Perl's order (spec 4.1)."""
    config = snapshot.servers.get(server)
    if config is None:
        return ()
    line_counter = used_lines(snapshot, live, server)
    order, order_known = server_campaign_order(snapshot, server)
    variants = _case_variants(order)
    results = []
    for campaign_id in order:
        campaign = snapshot.campaigns.get(campaign_id)
        missing_row = campaign is None
        if campaign is None:  # the Perl reads no settings: dial level 0, nothing else applies
            campaign = CampaignConfig(campaign_id, auto_dial_level=0.0, dial_method="")
        inputs = gather_inputs(snapshot, live, campaign, server)
        inputs.order_unknown = not order_known
        inputs.shared_dialing = (
            campaign.dial_method.startswith("SHARED_") and snapshot.system.allow_shared_dial > 0
        )
        if campaign_id in variants:
            inputs.not_modelled += (NotModelled("campaign id case", CASE_VARIANTS),)
        if missing_row:
            inputs.not_modelled += (
                NotModelled("campaign settings", "no vicidial_campaigns row: the Perl reads dial level 0"),
            )
        result, line_counter = evaluate(
            campaign,
            inputs,
            server=server,
            active_line_counter=line_counter,
            previous_shortage=None if previous is None else previous.get((campaign_id, server), 0),
            parity=parity,
        )
        results.append(result)
    return tuple(results)


@dataclass(frozen=True)
class Demand:
    """Positive shortages per campaign and server: what the planner fills.

    ``by_campaign[C][S] > 0`` means S is short for C ("full" for C in the FILL's words).
    """

    by_campaign: Mapping[str, Mapping[str, int]]

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[CampaignServer, int]]) -> Demand:
        nested: dict[str, dict[str, int]] = {}
        for (campaign, server), shortage in pairs:
            if shortage > 0:
                nested.setdefault(campaign, {})[server] = nested.get(campaign, {}).get(server, 0) + shortage
        return cls(MappingProxyType({c: MappingProxyType(nested[c]) for c in sorted(nested)}))

    @classmethod
    def from_stats(cls, rows: Iterable[tuple[str, str, int]]) -> Demand:
        """``--shortage-source stats``: fresh ``(campaign_id, server_ip, local_trunk_shortage)`` rows.

        The shell selects ``update_time > now - 1200 s AND local_trunk_shortage > 0`` like the Perl;
        duplicate rows (the table has no unique key) are summed, as the Perl's ``sum()`` does.
        """
        return cls.from_pairs(((c, s), n) for c, s, n in rows)

    @classmethod
    def from_results(cls, results: Iterable[ShortageResult]) -> Demand:
        return cls.from_pairs(((r.campaign, r.server), r.shortage) for r in results)

    def total(self, campaign: str) -> int:
        return sum(self.by_campaign.get(campaign, EMPTY_SERVERS).values())

    def full_servers(self, campaign: str) -> Mapping[str, int]:
        return self.by_campaign.get(campaign, EMPTY_SERVERS)

    def campaigns(self) -> tuple[str, ...]:
        """The short campaigns in the order the Perl FILL's ``GROUP BY campaign_id`` gives them."""
        return fill_campaign_order(self.by_campaign)

    def shortage(self, campaign: str, server: str) -> int:
        return self.by_campaign.get(campaign, EMPTY_SERVERS).get(server, 0)

    def with_server(self, server: str, results: Iterable[ShortageResult]) -> Demand:
        """This demand with one server's rows replaced (campaigns absent from ``results`` → 0)."""
        fresh = {r.campaign: r.shortage for r in results if r.shortage > 0}
        out = dict(self.by_campaign)
        touched = {c for c, on in self.by_campaign.items() if server in on} | set(fresh)
        for campaign in touched:
            servers = dict(self.by_campaign.get(campaign, EMPTY_SERVERS))
            servers.pop(server, None)
            if campaign in fresh:
                servers[server] = fresh[campaign]
            if servers:
                out[campaign] = MappingProxyType(servers)
            else:
                out.pop(campaign, None)
        return Demand(MappingProxyType({c: out[c] for c in sorted(out)}))


EMPTY_SERVERS: Mapping[str, int] = MappingProxyType({})


def fill_campaign_order(campaigns: Iterable[str]) -> tuple[str, ...]:
    """``GROUP BY campaign_id`` order in MariaDB's case-insensitive collations (latin1_swedish_ci,
    utf8mb4_general_ci): the ids VICIdial allows (letters, digits, ``-``, ``_``) sort as their
    upper-case form; ids equal but for case (one group in SQL) keep code-point order."""
    return tuple(sorted(campaigns, key=lambda c: (c.upper(), c)))


def compute_shortages(
    snapshot: ClusterSnapshot,
    live: LiveCounts,
    *,
    servers: Iterable[str] | None = None,
    previous: Mapping[CampaignServer, int] | None = None,
    parity: bool = False,
) -> Mapping[CampaignServer, ShortageResult]:
    """Every (campaign, server) shortage of the given servers (default: all), ``--shortage-source live``."""
    out: dict[CampaignServer, ShortageResult] = {}
    for server in sorted(snapshot.servers if servers is None else servers):
        for result in compute_server_shortages(snapshot, live, server, previous=previous, parity=parity):
            out[(result.campaign, result.server)] = result
    return MappingProxyType(out)
