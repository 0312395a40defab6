"""The capture lab's dialplan as data: what each leg of a call runs (``shared/asterisk/cluster.sh``).

Rules this module keeps (the dialplan the recordings of spec/AMI.md part A ran):

* ``[default] _9X.`` (the originated pair's ``;2``): 1 NoOp, 2 Dial(Local/${EXTEN:1}@trunk,90),
  3 NoOp(DIALSTATUS=.. HANGUPCAUSE=..), 4 GotoIf busy, 5 GotoIf congestion, 6 Hangup, 7 Busy(5),
  8 Congestion(5).
* The VDAD extensions the answered ``;1`` runs (``VDAD_EXTENSIONS``): 8365 NoOp, Answer,
  UserEvent(VDADTransfer), Wait(5), Hangup; 8368 the same without the UserEvent; 8369 Answer,
  Wait(60), Hangup (no UserEvent, ``;1`` at Priority 2 while it waits); 8367 Hangup at once;
  ``13XXXX`` (VICIdial's routing prefix) Goto(default,XXXX,1). ``Wait(5)`` is the call's
  ``vdad_wait`` (``CallTiming``); an extension not listed behaves as 8365.
* ``[trunk]`` (the trunk pair's ``;2``, ``TRUNK_PROGRAMS``): an answered number runs NoOp, Ringing,
  Wait(ring), Answer, Wait(talk), Hangup(16); ``…0000`` Ringing, Wait(1), Busy(10); ``…1111``
  Wait(1), Congestion(10); ``…9999`` Ringing, Wait(300), Hangup. Those three patterns are
  ``_1NXXNXX…``: a 10-digit number first runs ``Goto(1${EXTEN},1)`` at priority 1, so its ``;2``
  then shows ``Exten 1<number>`` (at Priority 2 while it rings).
* Application data are format strings over ``server``, ``name``/``num`` (the CallerID, '' when
  unknown), ``number``, ``trunk``, ``wait``.
"""

from __future__ import annotations

from dataclasses import dataclass

from fillreactor.simulator.outcomes import Outcome


@dataclass(frozen=True)
class App:
    """One priority of an extension: the application and its data (a format string)."""

    name: str
    data: str = ""


VDAD_EXTENSIONS: dict[str, tuple[App, ...]] = {
    "8365": (
        App("NoOp", '{server} VDAD transfer CID="{name}" <{num}>'),
        App("Answer"),
        App("UserEvent", "VDADTransfer,Server: {server},CallerIDName: {name}"),
        App("Wait", "{wait}"),
        App("Hangup"),
    ),
    "8368": (
        App("NoOp", '{server} VDAD 8368 CID="{name}" <{num}>'),
        App("Answer"),
        App("Wait", "{wait}"),
        App("Hangup"),
    ),
    "8369": (App("Answer"), App("Wait", "60"), App("Hangup")),
    "8367": (App("Hangup"),),
}
DEFAULT_VDAD_EXTENSION = "8365"
ROUTING_PREFIX = "13"  # servers.routing_prefix default: 138368 -> 8368
FIXED_WAIT = {"8369": 60.0}  # extensions whose Wait does not come from CallTiming.vdad_wait

# The [trunk] programs by outcome, before the Answer for an answered number.
TRUNK_PROGRAMS: dict[Outcome, tuple[App, ...]] = {
    Outcome.ANSWER: (
        App("NoOp", "{server} TRUNK call to {trunk} from {num}"),
        App("Ringing"),
        App("Wait", "{ring}"),
        App("Answer"),
        App("Wait", "{talk}"),
        App("Hangup", "16"),
    ),
    Outcome.BUSY: (App("Ringing"), App("Wait", "1"), App("Busy", "10")),
    Outcome.CONGESTION: (App("Wait", "1"), App("Congestion", "10")),
    Outcome.NO_ANSWER: (App("Ringing"), App("Wait", "300"), App("Hangup")),
}

# [default] _9X. priorities after the Dial returns.
AFTER_DIAL_NOOP = 3
GOTO_BUSY = 4
GOTO_CONGESTION = 5
BUSY_PRIORITY = 7
CONGESTION_PRIORITY = 8


@dataclass(frozen=True)
class VdadProgram:
    """What the answered ``;1`` runs: ``steps`` until its Hangup, which is priority ``hangup_priority``."""

    exten: str  # the extension the steps run in (after a routing-prefix Goto)
    steps: tuple[tuple[int, App, str], ...]  # (priority, app, the Exten shown) before the Hangup
    hangup_priority: int
    user_event: bool
    fixed_wait: float | None  # a Wait that does not come from vdad_wait


def vdad_program(exten: str) -> VdadProgram:
    """The program of Originate ``Exten`` (a routing prefix is followed by its Goto)."""
    steps: list[tuple[int, App, str]] = []
    target = exten
    if exten.startswith(ROUTING_PREFIX) and exten[len(ROUTING_PREFIX) :] in VDAD_EXTENSIONS:
        target = exten[len(ROUTING_PREFIX) :]
        steps.append((1, App("Goto", f"default,{target},1"), exten))
    apps = VDAD_EXTENSIONS.get(target, VDAD_EXTENSIONS[DEFAULT_VDAD_EXTENSION])
    for priority, app in enumerate(apps[:-1], start=1):
        steps.append((priority, app, target))
    return VdadProgram(
        exten=target,
        steps=tuple(steps),
        hangup_priority=len(apps),
        user_event=any(app.name == "UserEvent" for app in apps),
        fixed_wait=FIXED_WAIT.get(target),
    )


def trunk_goto(trunk: str, outcome: Outcome) -> str | None:
    """The ``1<number>`` a 10-digit busy/congestion/no-answer trunk number jumps to, else None."""
    if outcome in (Outcome.BUSY, Outcome.CONGESTION, Outcome.NO_ANSWER):
        if len(trunk) == 10 and not trunk.startswith("1"):
            return "1" + trunk
    return None
