"""The AMI simulator: simulated Asterisk 22 servers for tests, the demo and benchmarks.

Rules this package keeps: it behaves as the captures in ``fixtures/asterisk22`` show (login,
actions, the per-call event sequences, Uniqueids); it never depends on the rest of fillreactor
except the shared wire format (``fillreactor.core.message``) and call ids (``fillreactor.core.callid``).
"""

from fillreactor.simulator.calls import OriginateRequest, SimulatedCall, parse_callerid
from fillreactor.simulator.channels import Channel
from fillreactor.simulator.cluster import SimulatedCluster
from fillreactor.simulator.faults import FaultInjector
from fillreactor.simulator.load import DialLevelLoad
from fillreactor.simulator.outcomes import CallTiming, Outcome, OutcomeRules
from fillreactor.simulator.server import AmiSession, ServerConfig, SimulatedAsterisk
from fillreactor.simulator.timebase import TimeBase

__all__ = [
    "AmiSession",
    "CallTiming",
    "Channel",
    "DialLevelLoad",
    "FaultInjector",
    "OriginateRequest",
    "Outcome",
    "OutcomeRules",
    "ServerConfig",
    "SimulatedAsterisk",
    "SimulatedCall",
    "SimulatedCluster",
    "TimeBase",
    "parse_callerid",
]
