"""The live reactor end to end: simulated Asterisk servers, the real MariaDB, the real service.

Expected numbers, by hand (spec 4.4 and 2.4): A has 20 trunks and 10 READY agents at level 3
(goal 30). Its own dialer keeps 20 calls of the campaign: make = 30 - 20 = 10, line goal
20 + 10 = 30 > 20 -> shortage min(30 - 20, 10) = 10. B (rank 2): available (30 - 22) - 0 = 8;
C (rank 1): available 30. So 8 calls on B, 2 on C.
"""

from __future__ import annotations

import asyncio

import pytest
from e2e_helpers import CAMPAIGN, A, B, C, fast_settings, live_cluster, numbers

from fillreactor.simulator import Outcome

pytestmark = pytest.mark.timeout(90)


async def test_a_shortage_on_a_fills_b_then_c_by_rank_and_capacity(database_dsn, seed) -> None:
    async with live_cluster(database_dsn, seed) as cluster:
        await cluster.eventually(lambda: sent(cluster) >= 10)
        assert len(cluster.fill_originates(B)) == 8
        assert len(cluster.fill_originates(C)) == 2
        rows = await cluster.rows(
            "SELECT server_ip, campaign_id, status, call_type FROM vicidial_auto_calls"
            " WHERE call_type = 'OUTBALANCE' ORDER BY auto_call_id"
        )
        # B's and C's entries of the plan are dialed at once: their rows interleave
        assert sorted(r["server_ip"] for r in rows) == [B] * 8 + [C] * 2
        assert {(r["campaign_id"], r["status"]) for r in rows} == {(CAMPAIGN, "SENT")}
        manager = await cluster.rows(
            "SELECT server_ip, status, cmd_line_b FROM vicidial_manager ORDER BY man_id"
        )
        assert [m["status"] for m in manager] == ["SENT"] * 10  # the audit trail of AMI originates
        assert {m["cmd_line_b"] for m in manager} == {"Exten: 138368"}  # Asterisk 22: routing prefix 13
        assert len(cluster.service.latency.samples) == 2  # one reaction per plan entry (B, C)


def sent(cluster) -> int:
    """Originates fillreactor sent to B and C (the simulators' records)."""
    return len(cluster.fill_originates(B)) + len(cluster.fill_originates(C))


def fill_calls(cluster, server_ip: str) -> list:
    """The live simulated calls fillreactor originated on a server."""
    return [r.call for r in cluster.fill_originates(server_ip) if r.call is not None and r.call.live]


async def test_a_freed_line_is_refilled_on_the_hangup_without_a_timer(database_dsn, seed) -> None:
    # Only B balances: need 10, B's available (30 - 22) = 8 -> 8 calls, 2 unmet. No store refresh
    # can help here (30 s apart): when one of B's calls hangs up, B's available is 8 - 7 = 1 and the
    # next call goes out from the Hangup event itself (spec 2.4 with 7 OUTBALANCE calls in flight).
    settings = fast_settings(agents_refresh=30.0, config_refresh=30.0, stats_refresh=30.0)
    async with live_cluster(database_dsn, seed, balance=((30, 22, 2),), settings=settings) as cluster:
        await cluster.eventually(lambda: len(fill_calls(cluster, B)) == 8)
        first = len(cluster.fill_originates(B))
        assert first == 8
        plans_before = cluster.service.core.counters.plans
        fill_calls(cluster, B)[0].request_hangup(16)
        await cluster.eventually(lambda: len(cluster.fill_originates(B)) == first + 1)
        # only the start-up read and the one before the leader dials: no timer did it
        assert cluster.service.counters["refreshes"] == 2
        assert cluster.service.core.counters.plans > plans_before
        reasons = [r.detail for r in cluster.trace.records if r.kind == "threshold"]
        assert any("ended" in r or "freed" in r for r in reasons[1:]), reasons


async def test_when_the_shortage_goes_away_nothing_more_is_filled(database_dsn, seed) -> None:
    async with live_cluster(database_dsn, seed) as cluster:
        await cluster.eventually(lambda: sent(cluster) == 10)
        # every agent pauses: goal 0, make -20 -> shortage 0 (spec 4.2/4.4)
        await seed.execute("UPDATE vicidial_live_agents SET status = 'PAUSED'")
        core = cluster.service.core
        await cluster.eventually(lambda: core.demand().total(CAMPAIGN) == 0)
        before = sent(cluster)
        for call in fill_calls(cluster, B)[:3]:
            call.request_hangup(16)
        await cluster.eventually(lambda: cluster.service.core.model.usage(B) <= 5)
        plans = core.counters.plans
        await cluster.eventually(lambda: core.counters.plans > plans or not core.wants_plan)
        assert sent(cluster) == before


async def test_a_failed_originate_releases_its_line_and_is_replaced(database_dsn, seed) -> None:
    # the first lead's number is congested on every server: OriginateResponse Failure reason 8
    async with live_cluster(database_dsn, seed, start_service=False) as cluster:
        for sim in cluster.sims:
            sim.rules.overrides["91" + numbers(1)[0]] = Outcome.CONGESTION  # dial prefix 9, phone code 1
        await asyncio.wait_for(cluster.service.started.wait(), 10)

        def failed() -> list:
            return [
                r
                for ip in (B, C)
                for r in cluster.fill_originates(ip)
                if r.call is not None and r.call.reason == 8
            ]

        # the failure's OriginateResponse may come before its Hangups (AMI.md 6a.4): wait for both
        await cluster.eventually(
            lambda: failed()
            and not failed()[0].call.live
            and len(fill_calls(cluster, B)) + len(fill_calls(cluster, C)) == 10
        )
        assert len(failed()) == 1
        assert cluster.service.core.model.usage(B) + cluster.service.core.model.usage(C) == 10
        total = len(cluster.fill_originates(B)) + len(cluster.fill_originates(C))
        assert total == 11  # 10 live + the congested one, replaced at once


async def test_a_dropped_link_gets_nothing_until_it_has_resynced(database_dsn, seed) -> None:
    # Only B balances (8 calls). Its AMI session is cut and, while fillreactor is not connected,
    # two of its calls hang up: the model cannot see it. Only the resync after the reconnect shows
    # 6 live calls; then, and on the new session only, the 2 missing calls go out.
    async with live_cluster(database_dsn, seed, balance=((30, 22, 2),)) as cluster:
        await cluster.eventually(lambda: len(fill_calls(cluster, B)) == 8)
        sim = cluster.sim(B)
        (old_session,) = {r.session_id for r in cluster.fill_originates(B)}
        sim.faults.go_silent()  # nothing reaches fillreactor; its Ping goes unanswered
        for call in fill_calls(cluster, B)[:2]:
            call.request_hangup(16)
        await cluster.eventually(lambda: len(fill_calls(cluster, B)) == 6)
        assert len(cluster.fill_originates(B)) == 8  # no new call while the link is dead
        sim.faults.drop()
        sim.faults.resume()
        await cluster.eventually(lambda: len(fill_calls(cluster, B)) == 8, timeout=20)
        new = [r for r in cluster.fill_originates(B) if r.session_id != old_session]
        assert len(new) == 2 and len(cluster.fill_originates(B)) == 10
        down = ("link", B, "not dialable")
        assert any((r.kind, r.server, r.detail) == down for r in cluster.trace.records)


async def test_a_graceful_restart_stops_filling_there_until_it_is_back(database_dsn, seed) -> None:
    # Only B balances. `core restart now`: Hangups for every channel, then Shutdown; Originates are
    # refused ("Asterisk is shutting down") or not sent; after the boot and the resync the 8 calls
    # are placed again on B.
    async with live_cluster(database_dsn, seed, balance=((30, 22, 2),)) as cluster:
        await cluster.eventually(lambda: len(fill_calls(cluster, B)) == 8)
        sim = cluster.sim(B)
        outage = await sim.faults.graceful_shutdown(restart=True)
        await outage.wait_up()
        await cluster.eventually(lambda: len(fill_calls(cluster, B)) == 8, timeout=20)
        during = [r for r in cluster.fill_originates(B) if r.boot == 1 and r.received_at >= outage.began_at]
        assert all(not r.accepted for r in during)  # anything sent while going down was refused
        after = [r for r in cluster.fill_originates(B) if r.boot == 2 and r.accepted]
        assert len(after) == 8


async def test_a_crashed_agent_server_falls_back_to_its_stats_rows(database_dsn, seed) -> None:
    # AST_VDauto_dial.pl's last row for A says 4; the live formula says 10. While A is down its
    # demand is that row (issue 9 point 3); once A is back and resynced, live again.
    async with live_cluster(database_dsn, seed) as cluster:
        await seed.campaign_server_stats(CAMPAIGN, A, 4)
        core = cluster.service.core
        await cluster.eventually(lambda: dict(core.demand().full_servers(CAMPAIGN)) == {A: 10})
        outage = await cluster.sim(A).faults.crash(down_for=30.0)  # 3 s of real time
        await cluster.eventually(lambda: dict(core.demand().full_servers(CAMPAIGN)) == {A: 4})
        await outage.wait_up()
        await cluster.eventually(lambda: dict(core.demand().full_servers(CAMPAIGN)) == {A: 10}, timeout=20)


async def test_a_balance_server_added_to_servers_is_picked_up_without_a_restart(database_dsn, seed) -> None:
    # Only B balances at first (8 of the 10 needed). Adding C's servers row while the service runs
    # starts its link within config_refresh; once resynced, C takes the 2 calls B could not.
    async with live_cluster(database_dsn, seed, balance=((30, 22, 2),)) as cluster:
        await cluster.eventually(lambda: len(fill_calls(cluster, B)) == 8)
        assert C not in cluster.service.links
        sim_c = cluster.sims[2]
        await seed.server(
            "bal2", C, max_vicidial_trunks=30, vicidial_balance_active="Y", vicidial_balance_rank=1,
            asterisk_version="22.10.1", telnet_host="127.0.0.1", telnet_port=sim_c.port,
        )
        await cluster.eventually(lambda: len(fill_calls(cluster, C)) == 2)
        assert C in cluster.service.links and len(cluster.fill_originates(B)) == 8
        await seed.execute("DELETE FROM servers WHERE server_ip = %s", (C,))
        await cluster.eventually(lambda: C not in cluster.service.links)


async def test_a_dry_run_plans_but_claims_writes_and_originates_nothing(database_dsn, seed) -> None:
    async with live_cluster(database_dsn, seed, service_options={"dry_run": True}) as cluster:
        await cluster.eventually(
            lambda: any(r.kind == "plan" and "10.10.10.12 +8" in r.detail for r in cluster.trace.records)
        )
        assert not cluster.service.core.dialing and cluster.service.leader is None
        assert sent(cluster) == 0
        assert await cluster.rows("SELECT * FROM vicidial_manager") == []
        hopper = await cluster.rows("SELECT DISTINCT status FROM vicidial_hopper")
        assert hopper == [{"status": "READY"}]


async def test_the_leader_reads_its_lock_with_the_refresh_and_still_sees_it_lost(database_dsn, seed) -> None:
    # lock_check 0.5 s, agents_refresh 0.2 s: each refresh reads the lock's holder in its UNION, so
    # the leader's own lock statement waits for its keepalive (60 s). Killing the lock's connection
    # frees the lock: the next refresh reads it free, the leader loop checks and takes it again.
    settings = fast_settings(lock_check=0.5)
    async with live_cluster(database_dsn, seed, settings=settings) as cluster:
        await cluster.eventually(lambda: sent(cluster) >= 10)
        service = cluster.service
        lock = service.leader
        assert lock is not None and lock.fence is not None
        checks: list[bool] = []
        still_held = lock.still_held

        async def counted() -> bool:
            checks.append(held := await still_held())
            return held

        lock.still_held = counted  # type: ignore[method-assign]
        refreshes = service.counters["refreshes"]
        await cluster.eventually(lambda: service.counters["refreshes"] >= refreshes + 10)  # ~2 s, 4 checks
        assert checks == [] and service.is_leader
        first = lock.fence.connection_id
        await seed.execute(f"KILL CONNECTION {first}")
        await cluster.eventually(lambda: lock.fence is not None and lock.fence.connection_id != first)
        assert checks == [False]  # the check the freed lock called for, then a new GET_LOCK
