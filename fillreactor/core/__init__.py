"""The pure core: no sockets, no database, no asyncio, no clock of its own.

Everything here is deterministic: time is passed in as a number of seconds, inputs are plain
values, and every function returns what it changed. That is what lets the core be tested
exhaustively and replayed from recorded AMI fixtures.
"""
