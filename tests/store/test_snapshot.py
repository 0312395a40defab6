"""Snapshot reads against seeded VICIdial rows: every part, reuse, stats demand, call lookups, and
the three worked examples of issue 6 (values measured by running the real AST_VDauto_dial.pl).

The worked examples use only names that existed before issue 6 (``load_snapshot``,
``ChannelModel``, ``LiveCounts(usage, campaign_usage)``, ``compute_server_shortages``), so the same
test bodies can be run against the earlier code to show they fail there.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from datetime import timedelta

import pytest

from fillreactor.core.cluster import AgentTally, LiveCounts, TrunkRestriction
from fillreactor.core.events import ChannelCreated
from fillreactor.core.model import ChannelModel
from fillreactor.core.origin import CallOrigin
from fillreactor.core.shortage import compute_server_shortages
from fillreactor.store import Database, DatabaseAddress
from fillreactor.store.snapshot import (
    SnapshotLoader,
    clean_container_entry,
    like_match,
    load_snapshot,
    lookup_call_origins,
    read_stats_demand,
    snapshot_from_parts,
)
from fillreactor.testing.database import Dsn

A = "10.0.0.1"


@pytest.fixture
async def database(database_dsn: Dsn):
    db = await Database.open(DatabaseAddress.from_dsn(database_dsn))
    try:
        yield db
    finally:
        await db.close()


def call_id(family: str, n: int) -> str:
    return f"{family}1126101010{n:09d}"


async def shortage_on(database: Database, server: str, campaign: str, live_ids: list[tuple[str, str]]) -> int:
    """The campaign's shortage on the server, the channel model holding ``live_ids``
    ((call id, campaign) of every live call on the server) as it would from AMI events."""
    snapshot = await load_snapshot(database)
    model = ChannelModel()
    for n, (cid, _) in enumerate(live_ids):
        uid = f"1700000000.{n}"
        model.apply(server, ChannelCreated("Local/9@default-00000001;1", uid, uid, 6, cid, ""), 0.0)
    model.resolve_campaigns({cid: c for cid, c in live_ids if cid.startswith("V")}, 0.0)
    live = LiveCounts(
        usage={ip: model.usage(ip) for ip in snapshot.servers},
        campaign_usage={
            (c, ip): model.campaign_usage(ip, c) for c in snapshot.campaigns for ip in snapshot.servers
        },
    )
    results = {r.campaign: r for r in compute_server_shortages(snapshot, live, server)}
    return results[campaign].shortage


async def test_worked_example_inbound_calls_take_lines(database: Database, seed) -> None:
    # Issue 6, real AST_VDauto_dial.pl: 6. 20 trunks, level 2 x 10 READY, 10 V calls of C and 6
    # inbound calls on A. Lines = every row (vdad 763): 16; goal 20, existing 10, make 10,
    # line 26 > 20 -> min(26 - 20, 10) = 6.
    await seed.server("a1", A, max_vicidial_trunks=20)
    await seed.campaign("WEX", auto_dial_level="2")
    await seed.live_agents(10, A, "WEX")
    live = []
    for n in range(10):
        await seed.auto_call(A, "WEX", lead_id=n + 1, callerid=call_id("V", n + 1), status="LIVE")
        live.append((call_id("V", n + 1), "WEX"))
    for n in range(6):
        await seed.auto_call(
            A, "INGRP", call_type="IN", lead_id=n + 50, callerid=call_id("Y", n + 50), status="LIVE"
        )
        live.append((call_id("Y", n + 50), "INGRP"))
    assert await shortage_on(database, A, "WEX", live) == 6


async def test_worked_example_manual_calls_are_existing(database: Database, seed) -> None:
    # Issue 6, real AST_VDauto_dial.pl: 4. 14 trunks, level 2, 6 READY + 4 INCALL agents on manual
    # calls (M ids, OUT/XFER rows of C), 12 V calls of C. Agents 10 (INCALL: a row exists), goal
    # 20; existing 12 + 4 = 16 (vdad 1388), lines 16, make 4, line 20 > 14 -> min(6, 4) = 4.
    await seed.server("a1", A, max_vicidial_trunks=14)
    await seed.campaign("WEX", auto_dial_level="2")
    await seed.live_agents(6, A, "WEX")
    live = []
    for n in range(4):
        manual = call_id("M", n + 100)
        await seed.live_agent(A, "WEX", status="INCALL", callerid=manual)
        await seed.auto_call(A, "WEX", lead_id=n + 100, callerid=manual, status="XFER")
        live.append((manual, "WEX"))
    for n in range(12):
        await seed.auto_call(A, "WEX", lead_id=n + 1, callerid=call_id("V", n + 1), status="LIVE")
        live.append((call_id("V", n + 1), "WEX"))
    assert await shortage_on(database, A, "WEX", live) == 4


async def test_worked_example_incall_tally_threshold(database: Database, seed) -> None:
    # Issue 6, real AST_VDauto_dial.pl: 0. Threshold 60 s, level 3, 4 READY + 6 INCALL agents all
    # on calls older than 60 s, 16 calls, 20 trunks. Agents 4 + 0 within = 4, goal 12; existing
    # 16 - (6 - 0) = 10 (vdad 1416), make 2, line 16 + 2 = 18 <= 20 -> 0.
    await seed.server("a1", A, max_vicidial_trunks=20)
    await seed.campaign("WEX", auto_dial_level="3", incall_tally_threshold_seconds=60)
    await seed.live_agents(4, A, "WEX")
    old_call = seed.now() - timedelta(seconds=120)
    live = []
    for n in range(16):
        await seed.auto_call(
            A, "WEX", lead_id=n + 1, callerid=call_id("V", n + 1), status="XFER" if n < 6 else "LIVE"
        )
        live.append((call_id("V", n + 1), "WEX"))
        if n < 6:
            await seed.live_agent(
                A, "WEX", status="INCALL", callerid=call_id("V", n + 1), last_call_time=old_call
            )
    assert await shortage_on(database, A, "WEX", live) == 0


async def test_every_part_of_a_seeded_cluster(database: Database, seed) -> None:
    cluster = await seed.cluster(agents=4, local_trunk_shortage=6)
    await seed.server_trunk(cluster.balance_server_ips[0], cluster.campaign_id, 5, "MAXIMUM_LIMIT")
    await seed.live_agent(cluster.agent_server_ip, cluster.campaign_id, status="PAUSED")
    await seed.live_agent(cluster.agent_server_ip, cluster.campaign_id, status="INCALL", callerid="M1")
    await seed.auto_call(
        cluster.balance_server_ips[0], cluster.campaign_id, call_type="OUTBALANCE", lead_id=7
    )
    snapshot = await load_snapshot(database)

    assert snapshot.system.outbound_calls_per_second == 10 and snapshot.system.autodial_enabled
    assert set(snapshot.servers) == set(cluster.server_ips)
    agent_server = snapshot.servers[cluster.agent_server_ip]
    assert (agent_server.max_vicidial_trunks, agent_server.balance_active) == (6, False)
    assert [s.server_ip for s in snapshot.balance_order] == list(cluster.balance_server_ips)  # rank 2 then 1
    assert snapshot.campaigns[cluster.campaign_id].auto_dial_level == 3.0
    trunk = snapshot.trunk(cluster.campaign_id, cluster.balance_server_ips[0])
    assert trunk is not None and (trunk.dedicated_trunks, trunk.restriction) == (
        5,
        TrunkRestriction.MAXIMUM_LIMIT,
    )
    # 4 READY counted; the PAUSED one is not; the INCALL one has no vicidial_auto_calls row: DEAD (spec 4.1)
    assert snapshot.agents[(cluster.campaign_id, cluster.agent_server_ip)] == AgentTally(
        ready=4, incall=0, dead=1
    )
    assert snapshot.logged_in_agents[cluster.agent_server_ip] == 5
    # FILL's gate counts every non-PAUSED agent (spec 2.5): 4 READY + 1 INCALL
    assert snapshot.fill_agents[cluster.campaign_id] == 5
    assert snapshot.auto_calls.outbalance[(cluster.campaign_id, cluster.balance_server_ips[0])] == 1
    assert snapshot.auto_calls.rows_on_server[cluster.balance_server_ips[0]] == 1
    # the row's callerid is a V id (the seeder builds one), status SENT
    assert dict(snapshot.auto_calls.groups) == {
        (cluster.balance_server_ips[0], cluster.campaign_id, "OUTBALANCE", "SENT", "V"): 1
    }
    # the optional inbound tables and columns this schema lacks are named, not guessed
    assert set(snapshot.missing_inputs) == await absent_inputs(seed)
    assert snapshot.stored_shortages == ()  # only read when asked


async def test_callerid_families_and_statuses(database: Database, seed) -> None:
    await seed.auto_call(A, "C", callerid=call_id("V", 1), status="LIVE")
    await seed.auto_call(A, "C", callerid=call_id("M", 2), status="XFER")
    await seed.auto_call(A, "G", callerid=call_id("Y", 3), status="IVR", call_type="IN")
    await seed.auto_call(A, "C", callerid="v1126101010000000004", status="LIVE")  # not a V id: lower case
    await seed.auto_call(A, "C", callerid="J1126101010000000005", status="BUSY")
    snapshot = await load_snapshot(database)
    assert dict(snapshot.auto_calls.groups) == {
        (A, "C", "OUT", "LIVE", "V"): 1,
        (A, "C", "OUT", "XFER", "M"): 1,
        (A, "G", "IN", "IVR", "Y"): 1,
        (A, "C", "OUT", "LIVE", ""): 1,
        (A, "C", "OUT", "BUSY", ""): 1,
    }
    lines = snapshot.row_lines
    assert (lines.v_lines[A], lines.off_ami_lines[A], lines.off_ami_existing[("C", A)]) == (1, 3, 2)


async def test_campaign_order_keys_from_the_first_agent(database: Database, seed) -> None:
    await seed.server("a1", A)
    for campaign in ("EARLY", "LATE", "NULLS"):
        await seed.campaign(campaign)
    now = seed.now()
    await seed.live_agent(A, "LATE", last_call_time=now - timedelta(seconds=10))
    await seed.live_agent(A, "EARLY", last_call_time=now - timedelta(seconds=300))
    await seed.live_agent(A, "EARLY", last_call_time=now - timedelta(seconds=5))
    await seed.live_agent(A, "NULLS", last_call_time=now)
    await seed.execute("UPDATE vicidial_live_agents SET last_call_time = NULL WHERE campaign_id = 'NULLS'")
    snapshot = await load_snapshot(database)
    epochs = snapshot.agent_call_epochs
    assert epochs[("NULLS", A)] == ""
    assert int(epochs[("EARLY", A)]) == int(epochs[("LATE", A)]) - 290
    assert [r.campaign for r in compute_server_shortages(snapshot, LiveCounts(), A)] == [
        "NULLS",
        "EARLY",
        "LATE",
    ]


async def test_threshold_ready_and_drop_group_parts(database: Database, seed) -> None:
    await seed.server("a1", A)
    await seed.server("b1", "10.0.0.2")
    await seed.campaign(
        "TH",
        incall_tally_threshold_seconds=60,
        campaign_allow_inbound="Y",
        closer_campaigns=" IG1 -",
        drop_call_seconds=-1,
        drop_action="IN_GROUP",
        drop_inbound_group="DROP_G",
    )
    now = seed.now()
    # in-call threshold (vdad 1052-1071): agents of every server, INCALL/QUEUE, fresh
    await seed.auto_call("10.0.0.2", "TH", callerid=call_id("V", 1))
    await seed.auto_call(A, "TH", callerid=call_id("V", 2))
    await seed.live_agent(
        "10.0.0.2",
        "TH",
        status="INCALL",
        callerid=call_id("V", 1),
        last_call_time=now - timedelta(seconds=30),
    )
    await seed.live_agent(
        A, "TH", status="INCALL", callerid=call_id("V", 2), last_call_time=now - timedelta(seconds=90)
    )
    await seed.live_agent(A, "TH", status="QUEUE", callerid="V9999999999999999999")  # no row: dead
    await seed.live_agent(
        A, "TH", status="INCALL", callerid="X", last_update_time=now - timedelta(seconds=60)
    )  # stale
    # READY agents for the BLENDED override (vdad 905-914): no freshness filter
    await seed.live_agent(A, "TH", status="READY", last_update_time=now - timedelta(seconds=60))
    await seed.live_agent(A, "OTHER", status="READY", dial_campaign_id="TH")
    # drop in-group agents (vdad 1097-1131): other campaigns, any server, group in closer_campaigns
    await seed.live_agent("10.0.0.2", "OTHER", status="READY", closer_campaigns=" IG1 DROP_G -")
    await seed.live_agent("10.0.0.2", "OTHER", status="CLOSER", closer_campaigns=" DROP_G -")
    await seed.live_agent("10.0.0.2", "OTHER", status="INCALL", closer_campaigns=" DROP_G -")
    await seed.live_agent("10.0.0.2", "OTHER", status="PAUSED", closer_campaigns=" DROP_G -")
    await seed.live_agent("10.0.0.2", "OTHER", status="READY", closer_campaigns=" DROPXG -")  # _ is escaped
    await seed.live_agent(A, "TH", status="READY", closer_campaigns=" DROP_G -")  # own campaign
    snapshot = await load_snapshot(database)
    threshold = snapshot.incall_threshold["TH"]
    assert (threshold.within, threshold.dead) == (1, 1)
    assert snapshot.ready_agents[("TH", A)] == 3  # the stale READY, the dial-campaign one, the own one
    drop = snapshot.drop_group_agents["TH"]
    assert (drop.ready, drop.incall) == (2, 1)


async def test_duplicate_trunk_rows_and_stored_rows_in_table_order(database: Database, seed) -> None:
    await seed.server_trunk(A, "C", 4)
    await seed.server_trunk(A, "C", 6, "MAXIMUM_LIMIT")
    await seed.server_trunk(A, "C", 9)
    await seed.campaign_server_stats("C", A, 7)
    await seed.campaign_server_stats("C", A, 3)
    snapshot = await load_snapshot(database, stored_shortages=True)
    assert [t.dedicated_trunks for t in snapshot.trunk_rows] == [4, 6, 9]
    assert snapshot.trunk("C", A).dedicated_trunks == 9  # FILL keeps the last row (FILL 526-536)
    assert snapshot.maximum_limit("C", A) == 6  # AST_VDauto_dial.pl's MAXIMUM_LIMIT read (931-944)
    assert snapshot.dedicated_other("D", A) == 19  # sum() of every row (vdad 947-957)
    assert [(s.campaign_id, s.local_trunk_shortage) for s in snapshot.stored_shortages] == [
        ("C", 7),
        ("C", 3),
    ]


OPTIONAL = {
    "vicidial_live_inbound_agents": ("vicidial_live_inbound_agents", None),
    "vicidial_live_chats": ("vicidial_live_chats", None),
    "vicidial_inbound_callback_queue": ("vicidial_inbound_callback_queue", None),
    "vicidial_shared_drops": ("vicidial_shared_drops", None),
    "inbound_no_agents_no_dial": ("vicidial_campaigns", "inbound_no_agents_no_dial_threshold"),
    "shared_dial_rank": ("vicidial_campaigns", "shared_dial_rank"),
}


async def absent_inputs(seed) -> set[str]:
    """The optional inputs this test schema does not have (asked of information_schema)."""
    rows = await seed.fetch_all(
        "SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE()"
    )
    present = {(r["TABLE_NAME"], r["COLUMN_NAME"]) for r in rows}
    tables = {table for table, _ in present}
    return {
        name
        for name, (table, column) in OPTIONAL.items()
        if (column is None and table not in tables) or (column is not None and (table, column) not in present)
    }


@asynccontextmanager
async def optional_tables(seed, ddl: dict[str, str]):
    """Create the optional VICIdial tables this schema lacks for one test, then drop them."""
    created = []
    try:
        for name, columns in ddl.items():
            exists = await seed.fetch_all(
                "SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s",
                [name],
            )
            if not exists:
                await seed.execute(f"CREATE TABLE {name} ({columns})")
                created.append(name)
        yield
    finally:
        for name in created:
            await seed.execute(f"DROP TABLE {name}")


async def test_optional_inbound_tables_when_present(database: Database, seed) -> None:
    ddl = {
        "vicidial_live_chats": "group_id VARCHAR(20), status VARCHAR(20)",
        "vicidial_inbound_callback_queue": "group_id VARCHAR(20), icbq_status VARCHAR(10), lead_id INT",
        "vicidial_shared_drops": (
            "server_ip VARCHAR(15), campaign_id VARCHAR(20), call_type VARCHAR(10), status VARCHAR(10),"
            " lead_id INT, drop_time DATETIME"
        ),
    }
    async with optional_tables(seed, ddl):
        await seed.system_settings(allow_shared_dial="1")
        await seed.campaign("IN1", campaign_allow_inbound="Y", closer_campaigns=" G1 -")
        for status in ("WAITING", "WAITING", "LIVE"):
            await seed.execute(
                "INSERT INTO vicidial_live_chats (group_id, status) VALUES ('G1', %s)", [status]
            )
        for status in ("NEW", "LIVE", "SENDING", "DONE"):
            await seed.execute(
                "INSERT INTO vicidial_inbound_callback_queue (group_id, icbq_status, lead_id)"
                " VALUES ('G1', %s, 0)",
                [status],
            )
        now = seed.now()
        await seed.execute(
            "INSERT INTO vicidial_shared_drops (server_ip, campaign_id, call_type, status, lead_id,"
            " drop_time) VALUES (%s, 'IN1', 'OUT', 'LIVE', 0, %s), (%s, 'IN1', 'OUT', 'LIVE', 0, %s)",
            [A, now, A, now - timedelta(seconds=60)],
        )
        snapshot = await load_snapshot(database)
        absent = await absent_inputs(seed)
    assert dict(snapshot.waiting_chats) == {"G1": 2}
    assert dict(snapshot.queued_callbacks) == {"G1": 3}
    assert snapshot.row_lines.shared_lines == {A: 1}  # the 60 s old drop is not fresh (5 s)
    assert set(snapshot.missing_inputs) == absent
    assert not absent & {"vicidial_live_chats", "vicidial_inbound_callback_queue", "vicidial_shared_drops"}


async def test_inbound_no_agents_inputs(database: Database, seed) -> None:
    ddl = {
        "vicidial_live_inbound_agents": (
            "user VARCHAR(20), group_id VARCHAR(20), daily_limit SMALLINT DEFAULT -1, calls_today SMALLINT"
        )
    }
    added = "inbound_no_agents_no_dial" in await absent_inputs(seed)
    if added:
        await seed.execute(
            "ALTER TABLE vicidial_campaigns"
            " ADD COLUMN inbound_no_agents_no_dial_container VARCHAR(40) DEFAULT '---DISABLED---',"
            " ADD COLUMN inbound_no_agents_no_dial_threshold SMALLINT DEFAULT 0"
        )
    try:
        async with optional_tables(seed, ddl):
            await seed.campaign(
                "NA", inbound_no_agents_no_dial_container="INAND", inbound_no_agents_no_dial_threshold=2
            )
            await seed.insert(
                "vicidial_settings_containers", container_id="INAND", container_entry="G1\r\n G2\n\n"
            )
            for user, group, limit, today in (
                ("u1", "G1", "-1", 9),
                ("u2", "G2", "5", 5),
                ("u3", "G2", "5", 4),
            ):
                await seed.execute(
                    "INSERT INTO vicidial_live_inbound_agents (user, group_id, daily_limit, calls_today)"
                    " VALUES (%s, %s, %s, %s)",
                    [user, group, limit, today],
                )
            await seed.live_agent(A, "NA", user="u1", status="READY")
            await seed.live_agent(A, "NA", user="u2", status="READY")  # over its daily limit: not a user
            await seed.live_agent(A, "NA", user="u3", status="INCALL")
            snapshot = await load_snapshot(database)
    finally:
        if added:
            await seed.execute(
                "ALTER TABLE vicidial_campaigns DROP COLUMN inbound_no_agents_no_dial_container,"
                " DROP COLUMN inbound_no_agents_no_dial_threshold"
            )
    inputs = snapshot.inbound_no_agents["NA"]
    assert (inputs.entry, inputs.users, inputs.ready) == ("G1','G2", 2, 1)
    assert "inbound_no_agents_no_dial" not in snapshot.missing_inputs


def test_container_entry_cleaned_as_the_perl_does() -> None:
    # AST_VDauto_dial.pl 1311-1317
    assert clean_container_entry("G1\r\n G2\n\n") == "G1','G2"
    assert clean_container_entry("A\nB\n") == "A','B"
    assert clean_container_entry("") == ""


def test_like_match() -> None:
    assert like_match("% DROP\\_G %", " IG1 drop_g -")
    assert not like_match("% DROP\\_G %", " DROPXG -")
    assert like_match("% A_C %", " ABC -") and not like_match("% A %", None)


async def test_parts_rebuild_the_same_snapshot(database: Database, seed) -> None:
    await seed.cluster()
    await seed.server_trunk("10.10.10.12", "FILLTEST", 3)
    loader = SnapshotLoader(database, stored_shortages=True)
    snapshot = await loader.load()
    assert snapshot_from_parts(loader.last_parts) == snapshot


async def test_stale_agents_are_not_counted(database: Database, seed) -> None:
    await seed.server("a1", "10.0.0.1")
    await seed.campaign("C1")
    await seed.live_agent("10.0.0.1", "C1", last_update_time=seed.now() - timedelta(seconds=30))
    snapshot = await load_snapshot(database)
    assert ("C1", "10.0.0.1") not in snapshot.agents


async def test_unchanged_reload_returns_the_same_object(database: Database, seed) -> None:
    await seed.cluster()
    loader = SnapshotLoader(database)
    first = await loader.load()
    assert await loader.load() is first
    await seed.execute("UPDATE servers SET max_vicidial_trunks = 40 WHERE server_ip = '10.10.10.13'")
    third = await loader.load()
    assert third is not first and third.servers["10.10.10.13"].max_vicidial_trunks == 40
    assert third.campaigns is first.campaigns  # an unchanged part is reused
    assert (loader.loads, loader.unchanged_loads) == (3, 1)


async def test_a_refresh_without_config_keeps_the_configuration_parts(database: Database, seed) -> None:
    # between config_refresh ticks only the dynamic parts are read, in one UNION ALL statement
    await seed.cluster()
    loader = SnapshotLoader(database)
    first = await loader.load()
    await seed.execute("UPDATE servers SET max_vicidial_trunks = 40 WHERE server_ip = '10.10.10.13'")
    await seed.live_agent("10.10.10.11", "FILLTEST", status="READY")
    before = database.counts.reads
    second = await loader.load(config=False)
    assert database.counts.reads - before == 1  # agents, fill agents, auto calls, OUTBALANCE ids
    assert second.servers is first.servers and second.servers["10.10.10.13"].max_vicidial_trunks != 40
    assert second.agents != first.agents  # the new READY agent is counted
    third = await loader.load()
    assert third.servers["10.10.10.13"].max_vicidial_trunks == 40


async def test_the_refresh_reads_who_holds_the_leader_lock(database: Database, seed) -> None:
    await seed.cluster()
    loader = SnapshotLoader(database, lock_name="fillreactor-snapshot-test")
    await loader.load()
    assert loader.lock_holder is None  # free
    rows = await seed.fetch_all("SELECT GET_LOCK(%s, 0) AS got, CONNECTION_ID() AS id", (loader.lock_name,))
    try:
        assert rows[0]["got"] == 1
        await loader.load(config=False)
        assert loader.lock_holder == rows[0]["id"]
    finally:
        await seed.execute("SELECT RELEASE_LOCK('fillreactor-snapshot-test')")


async def test_mixed_collations_fall_back_to_one_statement_per_part(database: Database, seed) -> None:
    # a cluster whose tables were converted at different times: MariaDB refuses a UNION of columns
    # of two collations ("Illegal mix of collations for operation 'UNION'"); the snapshot is the same
    await seed.cluster(agents=3)
    await seed.auto_call("10.10.10.12", "FILLTEST", call_type="OUTBALANCE", lead_id=7)
    expected = await SnapshotLoader(database).load()
    alter = "ALTER TABLE {table} MODIFY server_ip VARCHAR(15) {collation} NOT NULL"
    collations = {"vicidial_auto_calls": "utf8mb4_unicode_ci", "vicidial_live_agents": "utf8mb4_general_ci"}
    try:
        for table, collation in collations.items():
            await seed.execute(alter.format(table=table, collation=f"COLLATE {collation}"))
        loader = SnapshotLoader(database, lock_name="fillreactor-snapshot-test")
        assert await loader.load() == expected
        assert loader._union is False
        assert await loader.load(config=False) == expected
        assert loader.lock_holder is None  # read on its own statement too
    finally:  # the session's database outlives the test: the schema's definition again (vicidial.sql)
        for table in collations:
            await seed.execute(alter.format(table=table, collation=""))


async def test_stats_demand_is_the_perl_read(database: Database, seed) -> None:
    now = seed.now()
    await seed.campaign_server_stats("B", "10.0.0.1", 4, update_time=now)
    await seed.campaign_server_stats("B", "10.0.0.1", 2, update_time=now)  # no unique key: summed
    await seed.campaign_server_stats("a", "10.0.0.2", 3, update_time=now - timedelta(seconds=1199))
    await seed.campaign_server_stats("A", "10.0.0.3", 5, update_time=now - timedelta(seconds=1201))  # stale
    await seed.campaign_server_stats("C", "10.0.0.3", 0, update_time=now)  # not short
    demand = await read_stats_demand(database, now)
    assert dict(demand.full_servers("B")) == {"10.0.0.1": 6}
    assert dict(demand.full_servers("a")) == {"10.0.0.2": 3}
    assert demand.total("A") == 0 and demand.total("C") == 0
    assert demand.campaigns() == ("a", "B")  # GROUP BY campaign_id order, case-insensitive


async def test_call_origin_lookup(database: Database, seed) -> None:
    await seed.auto_call("10.0.0.2", "C1", callerid="V1126101010000000001", call_type="OUTBALANCE")
    await seed.auto_call("10.0.0.1", "C1", callerid="V1126101010000000002")
    await seed.auto_call("10.0.0.3", "C2", callerid="V1126101010000000002")  # re-inserted: newest wins
    found = await lookup_call_origins(
        database, ["V1126101010000000001", "V1126101010000000002", "V1126101010000000003"]
    )
    assert found == {
        "V1126101010000000001": CallOrigin("C1", "10.0.0.2", "OUTBALANCE"),
        "V1126101010000000002": CallOrigin("C2", "10.0.0.3", "OUT"),
        "V1126101010000000003": None,
    }
