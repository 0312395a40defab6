"""Pacing: the token bucket's arithmetic, and the dialer spacing its calls by it on a virtual clock."""

from __future__ import annotations

import asyncio

import pytest
from dialer_helpers import B1, B2, CAMPAIGN, HOST, NOW, fill_cluster, pass_at

from fillreactor.clock import VirtualClock
from fillreactor.core.outbound_call import OutboundCall
from fillreactor.core.pacing import TokenBucket, default_capacity, fill_rate, server_rate
from fillreactor.core.planner import PlanEntry
from fillreactor.dialer import CallOutcome, Dialer, SendResult


@pytest.mark.parametrize(
    ("cps", "rate"), [(None, 40.0), (0, 40.0), (1, 1.0), (10, 10.0), (1000, 1000.0), (1001, 40.0)]
)
def test_the_fill_rate_rule(cps, rate) -> None:
    # lines 347-350: 0 < cps < 1001 -> 1000/cps ms between calls, else 25 ms (40/s)
    assert fill_rate(cps) == rate


@pytest.mark.parametrize(("cps", "rate"), [(5, 5.0), (200, 200.0), (201, 40.0), (0, 40.0)])
def test_the_server_rate_rule(cps, rate) -> None:
    # AST_VDauto_dial.pl (spec 4.6): 0 < cps < 201, else 25 ms
    assert server_rate(cps) == rate


def test_the_bucket_arithmetic() -> None:
    # 40/s, capacity ceil(40 x 0.1) = 4: a burst of 4, then one every 1/40 = 25 ms
    bucket = TokenBucket(40, now=100.0)
    assert bucket.capacity == 4 == default_capacity(40)
    assert bucket.take(100.0, 4) and not bucket.take(100.0)
    assert bucket.wait_time(100.0) == pytest.approx(0.025)
    assert bucket.available(100.05) == 2  # 0.05 s x 40
    assert bucket.available(200.0) == 4  # never above capacity
    assert not bucket.take(200.0, 5) and bucket.available(200.0) == 4  # all or nothing
    assert bucket.available(150.0) == 4  # time going back is ignored
    bucket.set_rate(10, now=200.0)  # capacity ceil(1) = 1: the tokens held are cut to it
    assert (bucket.capacity, bucket.available(200.0)) == (1, 1)
    with pytest.raises(ValueError):
        bucket.wait_time(200.0, 2)


class TimedOriginator:
    """Records the virtual time of every Originate (the NEW-row path, as --dial-via manager)."""

    manager_status = "NEW"

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self.times: list[tuple[str, float]] = []

    def admit(self, server_ip: str) -> bool:
        return True

    async def originate(self, call: OutboundCall) -> SendResult:
        self.times.append((call.server_ip, round(self.clock.monotonic() - 1000.0, 6)))
        return SendResult(CallOutcome.SENT)


def virtual_sleep(clock: VirtualClock):
    async def sleep(seconds: float) -> None:
        clock.advance(seconds)
        await asyncio.sleep(0)

    return sleep


async def test_calls_are_spaced_by_the_system_rate(store_db, seed) -> None:
    # 20 calls/s: capacity ceil(20 x 0.1) = 2; a chunk waits for a whole burst: 2 calls every 0.1 s
    await fill_cluster(seed, leads=10, local_trunk_shortage=10)
    await seed.execute("UPDATE system_settings SET outbound_calls_per_second = 20")
    clock = VirtualClock(NOW)
    originator = TimedOriginator(clock)
    dialer = Dialer(store_db, originator, host_ip=HOST, clock=clock, sleep=virtual_sleep(clock))
    report = await dialer.dial([PlanEntry(CAMPAIGN, B1, 10)], now=pass_at(NOW))
    assert report.placed == 10
    assert [t for _, t in originator.times] == [pytest.approx(0.1 * (n // 2)) for n in range(10)]
    assert dialer.pacer.waits == 4
    # each chunk is written in its own statements, so the rows still come in call order
    rows = await seed.rows("vicidial_manager", columns=["man_id", "callerid"], order_by="man_id")
    assert [int(r["callerid"][-10:]) for r in rows] == list(range(1, 11))


async def test_per_server_pacing_also_holds_each_server_to_its_own_rate(store_db, seed) -> None:
    # system 1000/s (capacity 100); .12 at 5/s (capacity 1, one per 0.2 s), .13 at 200/s (capacity 20).
    # Chunks keep the call order, so .13's calls wait behind .12's: t = 0, 0.2, 0.4 on .12, then .13 at 0.4.
    await fill_cluster(seed, leads=5, local_trunk_shortage=5)
    await seed.execute("UPDATE system_settings SET outbound_calls_per_second = 1000")
    await seed.execute("UPDATE servers SET outbound_calls_per_second = 5 WHERE server_ip = %s", (B1,))
    await seed.execute("UPDATE servers SET outbound_calls_per_second = 200 WHERE server_ip = %s", (B2,))
    clock = VirtualClock(NOW)
    originator = TimedOriginator(clock)
    dialer = Dialer(
        store_db, originator, host_ip=HOST, clock=clock, sleep=virtual_sleep(clock), per_server_pacing=True
    )
    report = await dialer.dial([PlanEntry(CAMPAIGN, B1, 3), PlanEntry(CAMPAIGN, B2, 2)], now=pass_at(NOW))
    assert report.placed == 5
    assert originator.times == [
        (B1, 0.0),
        (B1, pytest.approx(0.2)),
        (B1, pytest.approx(0.4)),
        (B2, pytest.approx(0.4)),
        (B2, pytest.approx(0.4)),
    ]
