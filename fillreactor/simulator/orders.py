"""Event orders: the captured order of a call's phase, or a seeded, realistic variation of it.

Real calls of one outcome show dozens of event orders (spec/AMI.md A§6a.4). Asterisk 12+ publishes
a channel's events on that channel's own topic, so **one channel's events keep their order**, while
events of different channels (and the OriginateResponse, sent by the originate thread, and the
DeviceStateChange events of the device-state topic) interleave differently from call to call.

Rules this module keeps (pure: no I/O, no asyncio, randomness only from the ``random.Random`` given):

* A phase is a list of ``Step`` values in a captured order (``fixtures/asterisk22``). Each step has a
  *lane*: the role of the channel whose event it is (``d1 d2 t1 t2``), ``x`` for DeviceStateChange,
  ``b`` for bridge create/destroy, ``o`` for the OriginateResponse.
* ``mode="captured"`` plays every table as it is, so every sequence equals a recorded one.
* ``mode="varied"`` (the default) draws a new order per call:

  1. every step but the OriginateResponse gets the key ``index + gauss(0, jitter)``, then raised
     (in table order) to stay after the previous step of its lane, after the Newchannel of every
     channel it names, after the step its ``after`` label names and, for a Hangup, after every
     earlier step that names the hung-up channel; the steps are sorted by key. So a channel's own
     events keep their order and no event names a channel before its Newchannel or after its
     Hangup (checked by ``order_problems``);
  2. a *failure* OriginateResponse is placed after exactly ``k`` of the phase's Hangups, ``k`` drawn
     from ``failure_response_weights[phase]`` (busy: before any Hangup in 18% of calls, measured;
     the other weights are the simulator's choice, made so that every ``k`` from 0 to 4 occurs), and
     never before position ``earliest`` (1 for busy and congestion: after the step that decides
     the failure; 0 where the response may lead the phase);
  3. a *success* OriginateResponse is placed anywhere in its window (by default between the answer
     of the trunk leg and the BridgeCreate: both captured positions lie in it).

* Other seeded choices (``uniqueid_gap``, ``target_first``) are read by the call script
  (``fillreactor.simulator.calls``); the probabilities live here so one object holds every order knob.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

CAPTURED = "captured"
VARIED = "varied"
ORDER_MODES = (CAPTURED, VARIED)

# Lanes that are not a channel.
DEVICE_LANE = "x"
BRIDGE_LANE = "b"
RESPONSE_LANE = "o"

# Phases whose failure OriginateResponse is placed by weights (k = Hangups before it: 0, 1, 2, ...).
DEFAULT_FAILURE_WEIGHTS: dict[str, tuple[float, ...]] = {
    "busy": (0.18, 0.12, 0.40, 0.15, 0.15),  # k=0 in ~18% of busy calls (AMI.md 6a.4); captured k=2
    "congestion": (0.15, 0.15, 0.40, 0.15, 0.15),  # captured k=2
    "no_answer": (0.15, 0.40, 0.15, 0.15, 0.15),  # captured k=1
    "bad_target": (0.6, 0.2, 0.2),  # two channels only; captured k=0
    "hangup_action": (0.2, 0.2, 0.2, 0.2, 0.2),
    "shutdown": (0.2, 0.2, 0.2, 0.2, 0.2),
}


@dataclass
class OrderRules:
    """How a server orders the events of its calls. Mutable: tests may change it on a running server."""

    mode: str = VARIED
    jitter: float = 1.5  # standard deviation, in positions, of a step's key in the varied mode
    failure_response_weights: dict[str, tuple[float, ...]] = field(
        default_factory=lambda: dict(DEFAULT_FAILURE_WEIGHTS)
    )
    uniqueid_gap: float = 0.05  # calls whose trunk pair does not follow the originated pair (6a.9: 1-9%)
    target_first: float = 0.85  # AMI Hangup: the targeted leg's Hangup is the first one (6a.3: "usually")

    def __post_init__(self) -> None:
        if self.mode not in ORDER_MODES:
            raise ValueError(f"order mode must be one of {ORDER_MODES}, not {self.mode!r}")
        if self.jitter < 0:
            raise ValueError("jitter cannot be negative")

    @property
    def captured(self) -> bool:
        return self.mode == CAPTURED


@dataclass(eq=False, slots=True)
class Step:
    """One event of a phase. ``run`` updates the simulated channels and emits the event."""

    lane: str
    run: Callable[[], None]
    names: tuple[str, ...] = ()  # the channel roles the event names
    creates: str | None = None  # Newchannel of this role
    ends: str | None = None  # Hangup of this role
    response: bool = False  # the OriginateResponse
    label: str = ""  # a name other steps (``after``) and windows refer to
    event: str = ""  # the event name (for reading orders in tests and errors)
    after: str = ""  # the label of an earlier step this one always follows

    def __repr__(self) -> str:
        return f"Step({self.event or '?'} {'/'.join(self.names) or self.lane})"


def arrange(
    steps: Sequence[Step],
    rules: OrderRules,
    rng: random.Random,
    *,
    failure_weights: Sequence[float] | None = None,
    window: tuple[str, str] | None = None,
    earliest: int = 1,
) -> list[Step]:
    """The emission order of one phase (see the module rules).

    ``failure_weights``: the phase ends in a failure OriginateResponse placed by Hangup count, at
    position ``earliest`` or later (1: after the phase's first step, the one that decides it).
    ``window``: labels (after, before) bounding a success OriginateResponse.
    """
    if rules.captured or len(steps) < 2:
        return list(steps)
    response = next((step for step in steps if step.response), None)
    others = [step for step in steps if step is not response]
    merged = _merge(others, rules.jitter, rng)
    if response is None:
        return merged
    if failure_weights is not None:
        position = _failure_position(merged, failure_weights, rng, earliest)
    else:
        position = _window_position(merged, window, rng)
    merged.insert(position, response)
    return merged


def _merge(steps: list[Step], jitter: float, rng: random.Random) -> list[Step]:
    keys: dict[int, float] = {}
    last_of_lane: dict[str, float] = {}
    created_at: dict[str, float] = {}
    named_at: dict[str, float] = {}  # role -> largest key of a step naming it so far
    labelled: dict[str, float] = {}
    gap = 1e-6
    for index, step in enumerate(steps):
        key = index + (rng.gauss(0.0, jitter) if jitter else 0.0)
        floor = last_of_lane.get(step.lane)
        if floor is not None:
            key = max(key, floor + gap)
        if step.after and step.after in labelled:
            key = max(key, labelled[step.after] + gap)
        for role in step.names:
            if role in created_at:
                key = max(key, created_at[role] + gap)
        if step.ends is not None and step.ends in named_at:
            key = max(key, named_at[step.ends] + gap)
        keys[id(step)] = key
        last_of_lane[step.lane] = key
        if step.label:
            labelled[step.label] = key
        if step.creates is not None:
            created_at[step.creates] = key
        for role in step.names:
            named_at[role] = max(named_at.get(role, key), key)
    return sorted(steps, key=lambda step: keys[id(step)])


def _failure_position(merged: list[Step], weights: Sequence[float], rng: random.Random, earliest: int) -> int:
    hangups = [index for index, step in enumerate(merged) if step.ends is not None]
    usable = list(weights[: len(hangups) + 1]) or [1.0]
    if sum(usable) <= 0:
        usable = [1.0] * len(usable)
    k = rng.choices(range(len(usable)), weights=usable)[0]
    low = 0 if k == 0 else hangups[k - 1] + 1
    high = hangups[k] if k < len(hangups) else len(merged)
    low = min(max(low, earliest), len(merged))  # never before the step that decides the failure
    return rng.randint(low, max(low, high))


def _window_position(merged: list[Step], window: tuple[str, str] | None, rng: random.Random) -> int:
    low, high = 1, len(merged)
    if window is not None:
        after, before = window
        for index, step in enumerate(merged):
            if step.label == after:
                low = index + 1
            elif step.label == before:
                high = index
    return rng.randint(low, max(low, high))


def hangups_before_response(order: Sequence[Step]) -> int | None:
    """How many Hangups precede the OriginateResponse in ``order`` (None: no response)."""
    count = 0
    for step in order:
        if step.response:
            return count
        if step.ends is not None:
            count += 1
    return None


def order_problems(order: Sequence[Step], captured: Sequence[Step], alive: Sequence[str] = ()) -> list[str]:
    """What is wrong with ``order`` against the table ``captured`` (empty = a consistent order).

    Checks: the same steps; each lane in table order; nothing names a channel before its
    Newchannel or after its Hangup (``alive``: roles live before the phase starts).
    """
    problems: list[str] = []
    if sorted(map(id, order)) != sorted(map(id, captured)):
        return ["not the same steps"]
    rank = {id(step): index for index, step in enumerate(captured)}
    last: dict[str, int] = {}
    for step in order:
        if step.response:
            continue
        previous = last.get(step.lane)
        if previous is not None and rank[id(step)] < previous:
            problems.append(f"lane {step.lane} out of order at {step!r}")
        last[step.lane] = rank[id(step)]
    live = set(alive)
    for step in order:
        if step.creates is not None:
            live.add(step.creates)
        for role in step.names:
            if role not in live:
                problems.append(f"{step!r} names {role}, which is not live")
        if step.ends is not None:
            live.discard(step.ends)
    return problems
