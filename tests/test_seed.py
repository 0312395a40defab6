"""Every seeding call of ``fillreactor.testing.seed`` writes exactly the rows it promises."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from fillreactor.testing.seed import Seeder

NOON = datetime(2024, 9, 2, 12, 0, 0)


async def test_system_settings_is_a_single_row(seed: Seeder) -> None:
    await seed.system_settings(outbound_calls_per_second=20)
    await seed.system_settings(outbound_calls_per_second=30, call_limit_24hour="1")
    rows = await seed.rows(
        "system_settings",
        columns=["outbound_calls_per_second", "call_limit_24hour", "disable_auto_dial", "noanswer_log"],
    )
    assert rows == [
        {
            "outbound_calls_per_second": 30,
            "call_limit_24hour": "1",
            "disable_auto_dial": "0",
            "noanswer_log": "N",
        }
    ]


async def test_server(seed: Seeder) -> None:
    ip = await seed.server(
        "bal1",
        "10.0.0.2",
        max_vicidial_trunks=40,
        vicidial_balance_active="Y",
        vicidial_balance_rank=3,
        balance_trunks_offlimits=2,
        asterisk_version="18.21.0",
        telnet_host="127.0.0.1",
        telnet_port=15038,
    )
    assert ip == "10.0.0.2"
    (row,) = await seed.rows("servers")
    assert {
        k: row[k]
        for k in (
            "server_id",
            "server_ip",
            "active",
            "max_vicidial_trunks",
            "vicidial_balance_active",
            "vicidial_balance_rank",
            "balance_trunks_offlimits",
            "asterisk_version",
            "routing_prefix",
            "telnet_host",
            "telnet_port",
            "ASTmgrUSERNAME",
            "ASTmgrSECRET",
            "ext_context",
            "local_gmt",
            "answer_transfer_agent",
        )
    } == {
        "server_id": "bal1",
        "server_ip": "10.0.0.2",
        "active": "Y",
        "max_vicidial_trunks": 40,
        "vicidial_balance_active": "Y",
        "vicidial_balance_rank": 3,
        "balance_trunks_offlimits": 2,
        "asterisk_version": "18.21.0",
        "routing_prefix": "13",
        "telnet_host": "127.0.0.1",
        "telnet_port": 15038,
        "ASTmgrUSERNAME": "cron",
        "ASTmgrSECRET": "1234",
        "ext_context": "default",
        "local_gmt": "-5.00",
        "answer_transfer_agent": "8365",
    }


async def test_campaign_writes_campaign_and_stats_rows(seed: Seeder) -> None:
    assert (
        await seed.campaign("CAMP1", auto_dial_level="2.5", queue_priority=70, balance_trunk_fill=4)
        == "CAMP1"
    )
    (campaign,) = await seed.rows("vicidial_campaigns")
    assert {
        k: campaign[k]
        for k in (
            "campaign_id",
            "campaign_name",
            "active",
            "dial_method",
            "auto_dial_level",
            "dial_timeout",
            "dial_prefix",
            "campaign_cid",
            "campaign_vdad_exten",
            "queue_priority",
            "auto_alt_dial",
            "cid_group_id",
            "use_custom_cid",
        )
    } == {
        "campaign_id": "CAMP1",
        "campaign_name": "Campaign CAMP1",
        "active": "Y",
        "dial_method": "RATIO",
        "auto_dial_level": "2.5",
        "dial_timeout": 60,
        "dial_prefix": "9",
        "campaign_cid": "0000000000",
        "campaign_vdad_exten": "8368",
        "queue_priority": 70,
        "auto_alt_dial": "NONE",
        "cid_group_id": "---DISABLED---",
        "use_custom_cid": "N",
    }
    assert await seed.rows("vicidial_campaign_stats", columns=["campaign_id", "balance_trunk_fill"]) == [
        {"campaign_id": "CAMP1", "balance_trunk_fill": 4}
    ]


async def test_lead_list(seed: Seeder) -> None:
    assert await seed.lead_list(202, "CAMP1", dial_prefix="8") == 202
    assert await seed.rows(
        "vicidial_lists",
        columns=["list_id", "list_name", "campaign_id", "active", "dial_prefix", "cid_group_id"],
    ) == [
        {
            "list_id": 202,
            "list_name": "List 202",
            "campaign_id": "CAMP1",
            "active": "Y",
            "dial_prefix": "8",
            "cid_group_id": "---DISABLED---",
        }
    ]


def test_phone_numbers_are_deterministic_per_seeder() -> None:
    seeder = Seeder(connection=None)  # type: ignore[arg-type]  # no SQL is run
    assert [seeder.next_phone_number() for _ in range(3)] == ["3125550000", "3125550001", "3125550002"]
    assert seeder.next_phone_number("415") == "4155550003"


async def test_leads(seed: Seeder) -> None:
    ids = await seed.leads(101, 3, entry_date=NOON, first_name="Ann")
    assert ids == [1, 2, 3]
    more = await seed.leads(102, phone_numbers=["7735550199"], entry_date=NOON, status="CALLBK")
    assert more == [4]
    rows = await seed.rows(
        "vicidial_list",
        columns=[
            "lead_id",
            "entry_date",
            "status",
            "list_id",
            "entry_list_id",
            "gmt_offset_now",
            "phone_code",
            "phone_number",
            "state",
            "called_since_last_reset",
            "called_count",
            "first_name",
        ],
    )
    base = {
        "entry_date": NOON,
        "gmt_offset_now": Decimal("-5.00"),
        "phone_code": "1",
        "state": "IL",
        "called_since_last_reset": "N",
        "called_count": 0,
    }
    assert rows == [
        {
            **base,
            "lead_id": 1,
            "status": "NEW",
            "list_id": 101,
            "entry_list_id": 101,
            "phone_number": "3125550000",
            "first_name": "Ann",
        },
        {
            **base,
            "lead_id": 2,
            "status": "NEW",
            "list_id": 101,
            "entry_list_id": 101,
            "phone_number": "3125550001",
            "first_name": "Ann",
        },
        {
            **base,
            "lead_id": 3,
            "status": "NEW",
            "list_id": 101,
            "entry_list_id": 101,
            "phone_number": "3125550002",
            "first_name": "Ann",
        },
        {
            **base,
            "lead_id": 4,
            "status": "CALLBK",
            "list_id": 102,
            "entry_list_id": 102,
            "phone_number": "7735550199",
            "first_name": None,
        },
    ]


async def test_many_leads_span_insert_batches(seed: Seeder) -> None:
    ids = await seed.leads(101, 1203)
    assert ids == list(range(1, 1204))
    assert await seed.count("vicidial_list") == 1203
    last = await seed.rows("vicidial_list", columns=["lead_id", "phone_number"], lead_id=1203)
    assert last == [{"lead_id": 1203, "phone_number": "3125551202"}]


async def test_hopper_copies_lead_fields(seed: Seeder) -> None:
    lead_ids = await seed.leads(101, 2, vendor_lead_code="VLC9")
    hopper_ids = await seed.hopper("CAMP1", lead_ids, priority=5, alt_dial="MAIN", source="S")
    assert hopper_ids == [1, 2]
    missing = await seed.hopper("CAMP1", [999], list_id=7, status="QUEUE", user="VDFC_10.0.0.2")
    assert missing == [3]
    rows = await seed.rows("vicidial_hopper", order_by="hopper_id")
    common = {
        "campaign_id": "CAMP1",
        "gmt_offset_now": Decimal("-5.00"),
        "state": "IL",
        "alt_dial": "MAIN",
        "priority": 5,
        "source": "S",
        "vendor_lead_code": "VLC9",
        "status": "READY",
        "user": None,
        "list_id": 101,
    }
    assert rows == [
        {**common, "hopper_id": 1, "lead_id": 1},
        {**common, "hopper_id": 2, "lead_id": 2},
        {
            "hopper_id": 3,
            "lead_id": 999,
            "campaign_id": "CAMP1",
            "status": "QUEUE",
            "user": "VDFC_10.0.0.2",
            "list_id": 7,
            "gmt_offset_now": Decimal("0.00"),
            "state": "",
            "alt_dial": "NONE",
            "priority": 0,
            "source": "",
            "vendor_lead_code": "",
        },
    ]


async def test_live_agents(seed: Seeder) -> None:
    ids = await seed.live_agents(2, "10.0.0.1", "CAMP1")
    stale = datetime.now().replace(microsecond=0) - timedelta(minutes=5)
    shared = await seed.live_agent(
        "10.0.0.1",
        "CAMP1",
        user="bob",
        status="INCALL",
        dial_campaign_id="CAMP2",
        last_update_time=stale,
        outbound_autodial="N",
        last_call_time=NOON,
    )
    assert ids == [1, 2] and shared == 3
    rows = await seed.rows(
        "vicidial_live_agents",
        columns=[
            "live_agent_id",
            "user",
            "server_ip",
            "conf_exten",
            "extension",
            "status",
            "campaign_id",
            "dial_campaign_id",
            "outbound_autodial",
            "lead_id",
        ],
    )
    assert rows == [
        {
            "live_agent_id": 1,
            "user": "agent001",
            "server_ip": "10.0.0.1",
            "conf_exten": "8600051",
            "extension": "SIP/agent001",
            "status": "READY",
            "campaign_id": "CAMP1",
            "dial_campaign_id": "",
            "outbound_autodial": "Y",
            "lead_id": 0,
        },
        {
            "live_agent_id": 2,
            "user": "agent002",
            "server_ip": "10.0.0.1",
            "conf_exten": "8600052",
            "extension": "SIP/agent002",
            "status": "READY",
            "campaign_id": "CAMP1",
            "dial_campaign_id": "",
            "outbound_autodial": "Y",
            "lead_id": 0,
        },
        {
            "live_agent_id": 3,
            "user": "bob",
            "server_ip": "10.0.0.1",
            "conf_exten": "8600053",
            "extension": "SIP/bob",
            "status": "INCALL",
            "campaign_id": "CAMP1",
            "dial_campaign_id": "CAMP2",
            "outbound_autodial": "N",
            "lead_id": 0,
        },
    ]
    # Fresh agents are stamped by the server's clock; the explicit one kept its time.
    fresh = await seed.fetch_all(
        "SELECT live_agent_id FROM vicidial_live_agents WHERE last_update_time > NOW() - INTERVAL 10 SECOND"
        " ORDER BY live_agent_id"
    )
    assert fresh == [{"live_agent_id": 1}, {"live_agent_id": 2}]
    assert (
        await seed.rows("vicidial_live_agents", columns=["last_update_time", "last_call_time"], user="bob")
    ) == [{"last_update_time": stale, "last_call_time": NOON}]


async def test_server_trunk(seed: Seeder) -> None:
    await seed.server_trunk("10.0.0.2", "CAMP1", 5, "MAXIMUM_LIMIT")
    await seed.server_trunk("10.0.0.3", "CAMP1", 2)
    assert await seed.rows("vicidial_server_trunks") == [
        {
            "server_ip": "10.0.0.2",
            "campaign_id": "CAMP1",
            "dedicated_trunks": 5,
            "trunk_restriction": "MAXIMUM_LIMIT",
        },
        {
            "server_ip": "10.0.0.3",
            "campaign_id": "CAMP1",
            "dedicated_trunks": 2,
            "trunk_restriction": "OVERFLOW_ALLOWED",
        },
    ]


async def test_campaign_server_stats_allows_duplicates_like_vicidial(seed: Seeder) -> None:
    await seed.campaign_server_stats("CAMP1", "10.0.0.1", 7, update_time=NOON)
    await seed.campaign_server_stats("CAMP1", "10.0.0.1", 3, update_time=NOON)
    await seed.campaign_server_stats("CAMP1", "10.0.0.4")
    rows = await seed.rows("vicidial_campaign_server_stats", order_by=["server_ip", "local_trunk_shortage"])
    assert rows[:2] == [
        {"campaign_id": "CAMP1", "server_ip": "10.0.0.1", "update_time": NOON, "local_trunk_shortage": 3},
        {"campaign_id": "CAMP1", "server_ip": "10.0.0.1", "update_time": NOON, "local_trunk_shortage": 7},
    ]
    assert rows[2]["local_trunk_shortage"] == 0 and rows[2]["update_time"] > NOON


async def test_auto_calls(seed: Seeder) -> None:
    first = await seed.auto_call(
        "10.0.0.2",
        "CAMP1",
        lead_id=12345,
        status="LIVE",
        call_type="OUTBALANCE",
        call_time=NOON,
        phone_number="3125551212",
        uniqueid="1725300000.1",
        channel="Local/913125551212@default-00000001;2",
    )
    more = await seed.auto_calls(2, "10.0.0.1", "CAMP1", call_time=NOON, lead_id=7)
    assert first == 1 and more == [2, 3]
    rows = await seed.rows(
        "vicidial_auto_calls",
        columns=[
            "auto_call_id",
            "server_ip",
            "campaign_id",
            "status",
            "lead_id",
            "callerid",
            "call_type",
            "phone_code",
            "phone_number",
            "call_time",
            "alt_dial",
            "queue_priority",
            "uniqueid",
            "channel",
            "stage",
        ],
    )
    assert rows == [
        {
            "auto_call_id": 1,
            "server_ip": "10.0.0.2",
            "campaign_id": "CAMP1",
            "status": "LIVE",
            "lead_id": 12345,
            "callerid": "V9021200000000012345",
            "call_type": "OUTBALANCE",
            "phone_code": "1",
            "phone_number": "3125551212",
            "call_time": NOON,
            "alt_dial": "MAIN",
            "queue_priority": 50,
            "uniqueid": "1725300000.1",
            "channel": "Local/913125551212@default-00000001;2",
            "stage": "START",
        },
        {
            "auto_call_id": 2,
            "server_ip": "10.0.0.1",
            "campaign_id": "CAMP1",
            "status": "SENT",
            "lead_id": 7,
            "callerid": "V9021200000000000007",
            "call_type": "OUT",
            "phone_code": "1",
            "phone_number": "3125550000",
            "call_time": NOON,
            "alt_dial": "MAIN",
            "queue_priority": 50,
            "uniqueid": None,
            "channel": None,
            "stage": "START",
        },
        {
            "auto_call_id": 3,
            "server_ip": "10.0.0.1",
            "campaign_id": "CAMP1",
            "status": "SENT",
            "lead_id": 8,
            "callerid": "V9021200000000000008",
            "call_type": "OUT",
            "phone_code": "1",
            "phone_number": "3125550001",
            "call_time": NOON,
            "alt_dial": "MAIN",
            "queue_priority": 50,
            "uniqueid": None,
            "channel": None,
            "stage": "START",
        },
    ]


async def test_cluster(seed: Seeder) -> None:
    cluster = await seed.cluster(agents=3, leads=5, local_trunk_shortage=4)
    assert cluster.server_ips == ("10.10.10.11", "10.10.10.12", "10.10.10.13")
    assert cluster.lead_ids == (1, 2, 3, 4, 5) and cluster.hopper_ids == (1, 2, 3, 4, 5)
    assert cluster.live_agent_ids == (1, 2, 3)
    assert await seed.rows(
        "servers",
        columns=[
            "server_id",
            "server_ip",
            "max_vicidial_trunks",
            "vicidial_balance_active",
            "vicidial_balance_rank",
        ],
    ) == [
        {
            "server_id": "agent1",
            "server_ip": "10.10.10.11",
            "max_vicidial_trunks": 6,
            "vicidial_balance_active": "N",
            "vicidial_balance_rank": 0,
        },
        {
            "server_id": "balance1",
            "server_ip": "10.10.10.12",
            "max_vicidial_trunks": 23,
            "vicidial_balance_active": "Y",
            "vicidial_balance_rank": 2,
        },
        {
            "server_id": "balance2",
            "server_ip": "10.10.10.13",
            "max_vicidial_trunks": 23,
            "vicidial_balance_active": "Y",
            "vicidial_balance_rank": 1,
        },
    ]
    assert await seed.rows(
        "vicidial_campaign_server_stats", columns=["campaign_id", "server_ip", "local_trunk_shortage"]
    ) == [{"campaign_id": "FILLTEST", "server_ip": "10.10.10.11", "local_trunk_shortage": 4}]
    assert await seed.count("vicidial_hopper", campaign_id="FILLTEST", status="READY") == 5
    assert await seed.count("vicidial_live_agents", server_ip="10.10.10.11", status="READY") == 3
    assert await seed.count("vicidial_campaign_stats", campaign_id="FILLTEST") == 1
    assert await seed.count("system_settings") == 1
    assert await seed.rows(
        "vicidial_campaigns", columns=["campaign_id", "dial_method", "auto_dial_level"]
    ) == [{"campaign_id": "FILLTEST", "dial_method": "RATIO", "auto_dial_level": "3"}]


async def test_each_test_starts_from_empty_tables_and_ids_from_one(seed: Seeder) -> None:
    # Earlier tests in this module left rows and advanced counters; the reset undid both.
    assert await seed.count("vicidial_list") == 0
    assert await seed.leads(101, 1) == [1]
    assert await seed.auto_call("10.0.0.1", "C") == 1


async def test_rows_filters(seed: Seeder) -> None:
    await seed.leads(101, 3)
    await seed.leads(102, 1)
    assert [r["lead_id"] for r in await seed.rows("vicidial_list", columns=["lead_id"], list_id=101)] == [
        1,
        2,
        3,
    ]
    assert [r["lead_id"] for r in await seed.rows("vicidial_list", columns=["lead_id"], lead_id=[2, 4])] == [
        2,
        4,
    ]
    assert await seed.rows("vicidial_list", columns=["lead_id"], lead_id=[]) == []
    assert await seed.count("vicidial_list", user=None) == 4
    with pytest.raises(ValueError, match="unknown table"):
        await seed.rows("mysql.user")
    with pytest.raises(ValueError, match="bad column"):
        await seed.rows("vicidial_list", **{"lead_id; DROP": 1})


async def test_pool_fixture_reads_what_seed_wrote(seed: Seeder, db_pool) -> None:  # type: ignore[no-untyped-def]
    await seed.leads(101, 2)
    async with db_pool.acquire() as connection, connection.cursor() as cursor:
        await cursor.execute("SELECT COUNT(*) FROM vicidial_list WHERE list_id = %s", (101,))
        assert await cursor.fetchone() == (2,)
