"""The reactor: AMI links -> channel model -> triggers -> planner -> dialer, in one event loop.

``core.ReactorCore`` is the state machine (no I/O, time passed in) that every driver shares: the
service (``service.Reactor``), ``fillreactor replay`` and shadow mode.
"""
