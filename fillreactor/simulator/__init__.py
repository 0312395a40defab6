"""The AMI simulator: simulated Asterisk 22 servers for tests, the demo and benchmarks.

Rules this package keeps: it behaves as the captures in ``fixtures/asterisk22`` and spec/AMI.md
part A (6a included) show (login, actions, every event of a call in a captured or a seeded varied
order, the volumes, delivery per event, graceful shutdown and crash, Uniqueids); it never depends
on the rest of fillreactor except the shared wire format (``fillreactor.core.message``) and call ids
(``fillreactor.core.callid``). Where the measurements leave a choice open, the module that makes it
says so.

The modules, one idea each: ``server`` (the AMI endpoint, sessions, actions, delivery, records),
``calls`` (one call's phases as captured tables), ``orders`` (captured or varied orders),
``dialplan`` (the lab's dialplan as data), ``channels`` (event shapes), ``outcomes`` (what a number
does), ``faults`` (every fault and outage), ``records`` (what was originated), ``load`` (the
servers' own dialers), ``cluster``, ``timebase`` and ``cli`` (``fillreactor simulate``).
"""

from fillreactor.simulator.calls import OriginateRequest, SimulatedCall, parse_callerid
from fillreactor.simulator.channels import Channel
from fillreactor.simulator.cluster import SimulatedCluster
from fillreactor.simulator.faults import FaultInjector, Outage
from fillreactor.simulator.load import DialLevelLoad
from fillreactor.simulator.orders import OrderRules
from fillreactor.simulator.outcomes import CallTiming, Outcome, OutcomeRules
from fillreactor.simulator.records import OriginateRecord
from fillreactor.simulator.server import AmiSession, ServerConfig, ServerNotRunning, SimulatedAsterisk
from fillreactor.simulator.timebase import TimeBase

__all__ = [
    "AmiSession",
    "CallTiming",
    "Channel",
    "DialLevelLoad",
    "FaultInjector",
    "OrderRules",
    "OriginateRecord",
    "OriginateRequest",
    "Outage",
    "Outcome",
    "OutcomeRules",
    "ServerConfig",
    "ServerNotRunning",
    "SimulatedAsterisk",
    "SimulatedCall",
    "SimulatedCluster",
    "TimeBase",
    "parse_callerid",
]
