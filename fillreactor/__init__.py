"""fillreactor: an event-driven replacement for VICIdial's balance FILL dialer.

The package is a pure core (``fillreactor.core``: AMI event normalisation, the channel-count
model, the shortage formula, the FILL planner) inside a thin I/O shell (AMI links, the store,
the dialer, the service). The AMI simulator (``fillreactor.simulator``) and the test helpers
(``fillreactor.testing``) ship with it so tests, the demo and the benchmarks share them.
"""

__version__ = "0.1.0"
