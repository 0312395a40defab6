"""The Perl FILL double (fillreactor.testing.perl_fill): its timer, its arithmetic, its rows.

``seed.cluster()`` (fillreactor.testing.seed): agent server 10.10.10.11, balance servers
10.10.10.12 (rank 2) and 10.10.10.13 (rank 1) with 23 trunks each, Asterisk 18.21.0, campaign
FILLTEST (dial_timeout 60, campaign_cid 0000000000, queue_priority 50, VDAD exten 8368), 4 READY
agents, a stats row with local_trunk_shortage 6. By hand (spec 2.3-2.4): needed 6 - 0 = 6; on
10.10.10.12 AVAIL 23 -> DIAL 6; tally 6; balance_trunk_fill 0 + 6 = 6.
"""

from __future__ import annotations

from datetime import timedelta

from fillreactor.core.callid import build_call_id
from fillreactor.simulator import SimulatedAsterisk
from fillreactor.store.database import Database, DatabaseAddress
from fillreactor.testing.perl_fill import PerlFillDouble, SteppedClock, routing_prefix_applies

HOST, B = "10.10.10.11", "10.10.10.12"


async def test_one_loop_writes_the_rows_the_perl_writes(database_dsn, seed) -> None:
    cluster = await seed.cluster()
    start = seed.now()
    clock = SteppedClock(start=start)
    db = await Database.open(DatabaseAddress.from_dsn(database_dsn))
    try:
        double = PerlFillDouble(db, host_ip=HOST, clock=clock)
        loop = await double.loop_once()
        assert [(c.server, c.lead_id) for c in loop.calls] == [(B, lead) for lead in range(700_001, 700_007)]
        first = build_call_id(start, 700_001)  # spec 5.3: CIDdate of the loop time, lead padded to 10
        manager = await seed.rows("vicidial_manager", order_by="man_id")
        assert len(manager) == 6
        row = manager[0]
        assert {k: row[k] for k in row if k != "man_id"} == {
            "uniqueid": "",
            "entry_date": start,
            "status": "NEW",
            "response": "N",
            "server_ip": B,
            "channel": "",
            "action": "Originate",
            "callerid": first,
            "cmd_line_b": "Exten: 138368",  # Asterisk 18 >= 12: routing prefix 13 (spec 2.7s)
            "cmd_line_c": "Context: default",
            "cmd_line_d": "Channel: Local/913120700001@default",  # prefix 9, phone code 1
            "cmd_line_e": "Priority: 1",
            "cmd_line_f": f'Callerid: "{first}" <0000000000>',
            "cmd_line_g": "Timeout: 60000",
            "cmd_line_h": "",
            "cmd_line_i": "",
            "cmd_line_j": "",
            "cmd_line_k": f"VDACnote: FILLTEST|700001|1|3120700001|OUTBALANCE|MAIN|50|{HOST}|CAMPAIGN_CID",
        }
        columns = "server_ip campaign_id status lead_id callerid phone_code phone_number call_time call_type"
        columns += " alt_dial queue_priority"
        calls = await seed.rows("vicidial_auto_calls", columns=columns.split(), order_by="auto_call_id")
        assert calls[0] == {
            "server_ip": B, "campaign_id": "FILLTEST", "status": "SENT", "lead_id": 700_001,
            "callerid": first, "phone_code": "1", "phone_number": "3120700001", "call_time": start,
            "call_type": "OUTBALANCE", "alt_dial": "MAIN", "queue_priority": 50,
        }  # fmt: skip
        assert [c["callerid"] for c in calls] == [m["callerid"] for m in manager]
        assert (await seed.rows("vicidial_campaign_stats", columns=["balance_trunk_fill"])) == [
            {"balance_trunk_fill": 6}
        ]
        # the hopper and the leads are left alone (the double numbers its own leads)
        assert await seed.count("vicidial_hopper", status="READY") == len(cluster.hopper_ids)
    finally:
        await db.close()


async def test_its_timer_runs_on_the_stepped_clock(database_dsn, seed) -> None:
    await seed.cluster()
    start = seed.now()
    clock = SteppedClock(start=start)
    db = await Database.open(DatabaseAddress.from_dsn(database_dsn))
    double = PerlFillDouble(db, host_ip=HOST, clock=clock)
    try:
        double.start()
        await double.wait_loops(1)
        assert double.next_at == 1000.0 + 2.5  # one loop, then the 2.5 s loop delay
        clock.advance(2.5)
        await double.wait_loops(2)
        # loop 2: 6 OUTBALANCE rows in flight, needed 6 - 6 = 0: the gate fails, no call, and
        # balance_trunk_fill = 6 + 0 is still written (spec 2.8)
        assert double.loops[1].calls == () and double.fills == {"FILLTEST": 6}
        assert double.loops[1].at == start + timedelta(seconds=2)  # 2.5 s on, the loop time to the second
        # no shortage left: every campaign's balance_trunk_fill is reset to 0 (spec 2.2.7)
        await seed.execute("DELETE FROM vicidial_campaign_server_stats")
        clock.advance(2.5)
        await double.wait_loops(3)
        assert (await seed.rows("vicidial_campaign_stats", columns=["balance_trunk_fill"])) == [
            {"balance_trunk_fill": 0}
        ]
        # auto-dial disabled: nothing placed and balance_trunk_fill left alone (spec 2.2.6)
        await seed.campaign_server_stats("FILLTEST", HOST, 6)
        await seed.execute("UPDATE vicidial_campaign_stats SET balance_trunk_fill = 3")
        await seed.execute("UPDATE system_settings SET outbound_autodial_active = '0'")
        clock.advance(2.5)
        await double.wait_loops(4)
        assert double.loops[3].calls == ()
        assert (await seed.rows("vicidial_campaign_stats", columns=["balance_trunk_fill"])) == [
            {"balance_trunk_fill": 3}
        ]
        assert await seed.count("vicidial_auto_calls") == 6
    finally:
        await double.stop()
        await db.close()


async def test_it_sends_its_own_rows_to_a_simulated_server(database_dsn, seed) -> None:
    await seed.cluster()
    start = seed.now()
    db = await Database.open(DatabaseAddress.from_dsn(database_dsn))
    try:
        async with SimulatedAsterisk() as sim:
            double = PerlFillDouble(db, host_ip=HOST, clock=SteppedClock(start=start), servers={B: sim})
            loop = await double.loop_once()
            assert all(call.sent for call in loop.calls)
            record = sim.originates[0]
            assert (record.channel, record.exten, record.session_id) == (
                "Local/913120700001@default",
                "138368",
                None,
            )
            assert record.callerid == f'"{build_call_id(start, 700_001)}" <0000000000>'
            statuses = await seed.rows("vicidial_manager", columns=["status"])
            assert {r["status"] for r in statuses} == {"SENT"}  # AST_manager_send.pl's NEW -> SENT
    finally:
        await db.close()


def test_routing_prefix_versions() -> None:
    # spec 2.7s: 1.x compares its second number with 11, later versions their first
    versions = ("1.4.21.2", "1.8.32", "11.25.3", "12.0.0", "13.38.3", "22.10.1", "")
    assert [routing_prefix_applies(v) for v in versions] == [False, False, False, True, True, True, False]
