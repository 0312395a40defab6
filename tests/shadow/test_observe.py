"""The cheap reads of what the Perl FILL did (fillreactor.store.observe), on the real MariaDB."""

from __future__ import annotations

from datetime import timedelta

from fillreactor.store import observe
from fillreactor.store.database import Database, DatabaseAddress

B, C = "10.10.10.12", "10.10.10.13"


async def open_db(dsn) -> Database:
    return await Database.open(DatabaseAddress.from_dsn(dsn))


async def manager_row(seed, callerid: str, note: str, action: str = "Originate", server: str = B) -> int:
    return await seed.insert(
        "vicidial_manager", server_ip=server, action=action, callerid=callerid, status="NEW", cmd_line_k=note
    )


async def test_new_balance_calls_by_increasing_id(database_dsn, seed) -> None:
    db = await open_db(database_dsn)
    try:
        assert await observe.last_auto_call_id(db) == 0
        first = await seed.auto_call(B, "CAMP", lead_id=1, call_type="OUTBALANCE")
        await seed.auto_call(B, "CAMP", lead_id=2, call_type="OUT")  # the local dialer's: not FILL's
        third = await seed.auto_call(C, "CAMP", lead_id=3, call_type="OUTBALANCE")
        fourth = await seed.auto_call(C, "CAMP", lead_id=4, call_type="OUTBALANCE")
        assert await observe.last_auto_call_id(db) == fourth
        rows = await observe.new_balance_calls(db, 0)
        assert [(r.auto_call_id, r.server_ip, r.status) for r in rows] == [
            (first, B, "SENT"), (third, C, "SENT"), (fourth, C, "SENT")
        ]  # fmt: skip
        assert rows[0].callerid.startswith("V") and rows[0].call_time is not None
        assert [r.auto_call_id for r in await observe.new_balance_calls(db, first)] == [third, fourth]
        assert [r.auto_call_id for r in await observe.new_balance_calls(db, first, limit=1)] == [third]
        assert await observe.new_balance_calls(db, fourth) == []
        assert [r.auto_call_id for r in await observe.balance_calls(db)] == [first, third, fourth]
        await seed.execute("DELETE FROM vicidial_auto_calls WHERE auto_call_id = %s", (third,))
        assert await observe.present_auto_calls(db, [first, third, fourth, 999]) == {first, fourth}
        assert await observe.present_auto_calls(db, []) == set()
    finally:
        await db.close()


async def test_fill_originates_only(database_dsn, seed) -> None:
    db = await open_db(database_dsn)
    try:
        fill = await manager_row(
            seed, "V1", "VDACnote: CAMP|1|1|3125550001|OUTBALANCE|MAIN|50|10.10.10.11|CAMPAIGN_CID"
        )
        await manager_row(seed, "V2", "VDACnote: CAMP|2|1|3125550002|OUT|MAIN|50|10.10.10.12|CAMPAIGN_CID")
        await manager_row(seed, "V1", "", action="Hangup")
        last = await manager_row(
            seed, "V3", "VDACnote: CAMP|3|1|3125550003|OUTBALANCE|MAIN|50|10.10.10.11|", server=C
        )
        assert await observe.last_manager_id(db) == last
        rows = await observe.new_fill_originates(db, 0)
        assert [(r.man_id, r.callerid, r.server_ip, r.status) for r in rows] == [
            (fill, "V1", B, "NEW"),
            (last, "V3", C, "NEW"),
        ]
        assert [r.man_id for r in await observe.new_fill_originates(db, fill)] == [last]
    finally:
        await db.close()


async def test_reads_use_the_primary_keys(database_dsn, seed) -> None:
    """vicidial_manager grows all day: its new rows are a range of its primary key. The live-calls
    MEMORY table is looked up by primary key; its "newer than" read is a test over the rows in memory
    (a HASH primary key has no order), which sends only the new rows."""
    db = await open_db(database_dsn)
    try:
        for lead in range(1, 40):
            await seed.auto_call(B, "CAMP", lead_id=lead, call_type="OUTBALANCE")
            await manager_row(seed, f"V{lead}", "VDACnote: CAMP|1|1|1|OUTBALANCE|MAIN|50|x|")
        explain = "EXPLAIN " + observe.NEW_ORIGINATES_SQL
        (plan,) = await db.fetch_dicts(explain, (30, observe.VDACNOTE_OUTBALANCE, 500))
        assert (plan["type"], plan["key"]) == ("range", "PRIMARY")
        (plan,) = await db.fetch_dicts("EXPLAIN " + observe.PRESENT_SQL.format(marks="%s, %s, %s"), (1, 2, 3))
        assert (plan["type"], plan["key"]) == ("range", "PRIMARY")
        (plan,) = await db.fetch_dicts("EXPLAIN " + observe.NEW_BALANCE_CALLS_SQL, (30, 500))
        assert plan["type"] == "ALL"  # see the docstring: in memory, over the live calls only
    finally:
        await db.close()


async def test_shortage_rows_with_their_age_and_balance_trunk_fill(database_dsn, seed) -> None:
    db = await open_db(database_dsn)
    try:
        now = seed.now()
        await seed.campaign_server_stats("CAMP", "10.10.10.11", 10, update_time=now - timedelta(seconds=30))
        await seed.campaign_server_stats("CAMP", "10.10.10.21", 0)  # no shortage: not read
        await seed.campaign_server_stats("OLD", "10.10.10.11", 4, update_time=now - timedelta(seconds=1300))
        rows = await observe.shortage_rows(db)
        assert [(r.campaign_id, r.server_ip, r.shortage) for r in rows] == [("CAMP", "10.10.10.11", 10)]
        assert 30 <= rows[0].age <= 32  # the database's clock and this one are the same host's
        await seed.campaign("CAMP", balance_trunk_fill=7)
        await seed.campaign("OTHER")
        assert await observe.balance_trunk_fill(db) == {"CAMP": 7, "OTHER": 0}
    finally:
        await db.close()
