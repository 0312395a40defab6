"""Event orders vary from call to call, reproducibly (issue 8 point 4, spec/AMI.md 6a.4).

The pure part (``orders.arrange`` on the call's phase tables) is checked over many seeds: each
channel's events keep their order, nothing names a channel outside its life, and the failure
OriginateResponse falls after 0 to 4 of the call's Hangups, before any of them in ~18% of busy calls.
End to end, a server with the default (varied) orders sends many different orders, each consistent,
and the same seed gives the same orders again.
"""

from __future__ import annotations

import random
from collections import Counter

import pytest
from ami_sim_helpers import call_sequences, comparable_call, messages_of_call
from hypothesis import given, settings
from hypothesis import strategies as st

from fillreactor.simulator import (
    CallTiming,
    OrderRules,
    OriginateRequest,
    Outcome,
    OutcomeRules,
    ServerConfig,
    SimulatedAsterisk,
    SimulatedCall,
    TimeBase,
)
from fillreactor.simulator.orders import arrange, hangups_before_response, order_problems


class TableHost:
    """Just enough of a server to build a call's phase tables (nothing is emitted)."""

    name = "dialer1"
    time = TimeBase(1.0, start_epoch=1795688152.0)

    def emit(self, pairs: object) -> None:  # pragma: no cover - tables are never run here
        raise AssertionError("not run")

    def new_uniqueid(self) -> str:  # pragma: no cover
        return "0.0"

    def new_local_sequence(self) -> int:  # pragma: no cover
        return 0

    def add_channel(self, channel: object) -> None:  # pragma: no cover
        pass

    def remove_channel(self, channel: object) -> None:  # pragma: no cover
        pass


async def busy_table() -> list:
    request = OriginateRequest(
        "Local/918005550000@default", "8365", "default", callerid="V1126101010000000111"
    )
    call = SimulatedCall(TableHost(), request, Outcome.BUSY, CallTiming(), send_originate_response=True)
    return call._busy_steps()


async def test_captured_mode_plays_the_table_as_it_is() -> None:
    table = await busy_table()
    assert arrange(table, OrderRules("captured"), random.Random(1), failure_weights=(1.0,)) == table
    assert (
        hangups_before_response(table) == 2
    )  # the captured busy call (dialer1 .4): after ;2 and the trunk ;1


@settings(max_examples=200)
@given(seed=st.integers(0, 2**32 - 1))
async def test_every_varied_order_keeps_each_channels_order_and_lifetimes(seed: int) -> None:
    table = await busy_table()
    order = arrange(table, OrderRules(), random.Random(seed), failure_weights=(0.2,) * 5)
    # all four channels are live when the busy end phase starts (created in the setup phase)
    assert order_problems(order, table, alive=("d1", "d2", "t1", "t2")) == []


async def test_busy_failure_response_comes_before_any_hangup_in_about_18_percent_of_calls() -> None:
    table = await busy_table()
    rules = OrderRules()
    weights = rules.failure_response_weights["busy"]
    counts = Counter(
        hangups_before_response(arrange(table, rules, random.Random(seed), failure_weights=weights))
        for seed in range(4000)
    )
    assert set(counts) == {0, 1, 2, 3, 4}  # a failure whose channels are all live ... all gone
    assert counts[0] / 4000 == pytest.approx(0.18, abs=0.02)  # spec/AMI.md 6a.4


async def test_many_calls_of_one_outcome_show_many_consistent_orders() -> None:
    rules = OutcomeRules(timing=CallTiming(ring=1.0, talk=8.0, vdad_wait=5.0))  # varied: the default
    assert not rules.orders.captured
    async with SimulatedAsterisk(ServerConfig(name="dialer1"), time=TimeBase(0.002), rules=rules) as server:
        calls = [server.place_call("918005550000", f"V11261010100000003{i:02d}") for i in range(40)]
        calls += [server.place_call("918005551212", f"V11261010100000004{i:02d}") for i in range(40)]
        await server.wait_calls_finished()
        stream = server.events_since(0)
    sequences = call_sequences(stream)
    busy = {tuple(sequences[call.linkedid]) for call in calls[:40]}
    answered = {tuple(sequences[call.linkedid]) for call in calls[40:]}
    assert len(busy) >= 12 and len(answered) >= 12  # "dozens of orders" (6a.4)
    assert {call.hangups_before_response for call in calls[:40]} == {0, 1, 2, 3, 4}
    assert {call.reason for call in calls[:40]} == {5} and {call.reason for call in calls[40:]} == {4}
    # every order is consistent: nothing names a Uniqueid before its Newchannel or after its Hangup
    live: set[str] = set()
    for message in stream:
        if message.event == "Newchannel":
            live.add(message.get("Uniqueid"))
        for key in ("Uniqueid", "DestUniqueid", "LocalOneUniqueid", "LocalTwoUniqueid"):
            uniqueid = message.get(key)
            if uniqueid and uniqueid != "<unknown>" and message.event != "OriginateResponse":
                assert uniqueid in live, f"{message.event} names {uniqueid} outside its life"
        if message.event == "Hangup":
            live.discard(message.get("Uniqueid"))
    assert not live


async def orders_of_a_run(seed: int) -> list[list[list[tuple[str, str]]]]:
    rules = OutcomeRules(timing=CallTiming(ring=1.0, talk=3.0, vdad_wait=5.0))
    config = ServerConfig(name="dialer1", seed=seed)
    async with SimulatedAsterisk(config, time=TimeBase(0.002), rules=rules) as server:
        # distinct numbers, so the DeviceStateChange events of each call are its own
        calls = [
            server.place_call(f"91{i:03d}555{suffix}", f"V11261010100000005{i:02d}")
            for i, suffix in enumerate(["1212", "0000", "1111", "9999"] * 3)
        ]
        await server.wait_calls_finished()
        stream = server.events_since(0)
    return [comparable_call(messages_of_call(stream, call.linkedid or "")) for call in calls]


async def test_the_same_seed_gives_the_same_orders_and_another_seed_others() -> None:
    first, again, other = await orders_of_a_run(7), await orders_of_a_run(7), await orders_of_a_run(8)
    assert first == again
    assert first != other
