"""The schema matches spec/VICIDIAL_FILL.md section 6, column by column, as MariaDB 10.11 reports it.

The expectations are written from the spec text (not read back from the database): for every column
the spec lists, (COLUMN_TYPE, COLUMN_DEFAULT, IS_NULLABLE) as information_schema shows them. MariaDB
quotes string defaults (``'N'``), prints numeric ones bare (``23``), reports a nullable column
without a default as the string ``NULL`` and a NOT NULL column without one as SQL NULL (None).
"""

from __future__ import annotations

from typing import Any

import pymysql
import pytest

from fillreactor.schema import TABLES, schema_sql, schema_statements, split_statements
from fillreactor.testing.database import Dsn, connect_sync

Column = tuple[str, str | None, str]


def nullable(column_type: str, default: str = "NULL") -> Column:
    return (column_type, default, "YES")


def required(column_type: str, default: str | None = None) -> Column:
    return (column_type, default, "NO")


TIMESTAMP_NOW = required("timestamp", "current_timestamp()")
YN = "enum('Y','N')"
THRESHOLD = "enum('DISABLED','LOGGED-IN_AGENTS','NON-PAUSED_AGENTS','WAITING_AGENTS')"

# table -> (complete, {column: (type, default, nullable)}); complete=True when the spec lists every column.
EXPECTED: dict[str, tuple[bool, dict[str, Column]]] = {
    # 6.1
    "servers": (
        False,
        {
            "server_id": required("varchar(10)"),
            "server_ip": required("varchar(15)"),
            "active": nullable(YN),
            "asterisk_version": nullable("varchar(20)", "'1.4.21.2'"),
            "max_vicidial_trunks": nullable("smallint(4)", "23"),
            "telnet_host": required("varchar(20)", "'localhost'"),
            "telnet_port": required("int(5)", "5038"),
            "ASTmgrUSERNAME": required("varchar(20)", "'cron'"),
            "ASTmgrSECRET": required("varchar(20)", "'1234'"),
            "ASTmgrUSERNAMEupdate": required("varchar(20)", "'updatecron'"),
            "ASTmgrUSERNAMElisten": required("varchar(20)", "'listencron'"),
            "ASTmgrUSERNAMEsend": required("varchar(20)", "'sendcron'"),
            "local_gmt": nullable("varchar(6)", "'-5.00'"),
            "answer_transfer_agent": required("varchar(20)", "'8365'"),
            "ext_context": required("varchar(20)", "'default'"),
            "vd_server_logs": nullable(YN, "'Y'"),
            "vicidial_balance_active": nullable(YN, "'N'"),
            "balance_trunks_offlimits": nullable("smallint(5) unsigned", "0"),
            "outbound_calls_per_second": nullable("smallint(3) unsigned", "5"),
            "vicidial_balance_rank": nullable("tinyint(3) unsigned", "0"),
            "routing_prefix": nullable("varchar(10)", "'13'"),
            "conf_engine": nullable("enum('MEETME','CONFBRIDGE')", "'MEETME'"),
            "vicidial_recording_limit": nullable("mediumint(8)", "60"),
        },
    ),
    # 6.2
    "system_settings": (
        False,
        {
            "version": nullable("varchar(50)"),
            "outbound_calls_per_second": nullable("smallint(3) unsigned", "10"),
            "outbound_autodial_active": nullable("enum('1','0')", "'1'"),
            "disable_auto_dial": nullable("enum('0','1')", "'0'"),
            "use_non_latin": nullable("enum('0','1')", "'0'"),
            "call_limit_24hour": nullable("enum('0','1')", "'0'"),
            "hopper_hold_inserts": nullable("enum('0','1','2','3','4','5','6','7')", "'0'"),
            "allow_shared_dial": nullable("enum('0','1','2','3','4','5','6')", "'0'"),
            "agent_search_method": nullable("enum('0','1','2','3','4','5','6')", "'0'"),
            "enhanced_disconnect_logging": nullable("enum('0','1','2','3','4','5','6')", "'0'"),
            "noanswer_log": nullable(YN, "'N'"),
            "enable_drop_lists": nullable("enum('0','1','2')", "'0'"),
        },
    ),
    # 6.3
    "vicidial_campaigns": (
        False,
        {
            "campaign_id": required("varchar(8)"),
            "active": nullable(YN),
            "dial_method": nullable(
                "enum('MANUAL','RATIO','ADAPT_HARD_LIMIT','ADAPT_TAPERED','ADAPT_AVERAGE','INBOUND_MAN','SHARED_RATIO',"
                "'SHARED_ADAPT_HARD_LIMIT','SHARED_ADAPT_TAPERED','SHARED_ADAPT_AVERAGE')",
                "'MANUAL'",
            ),
            "auto_dial_level": nullable("varchar(6)", "'0'"),
            "available_only_ratio_tally": nullable(YN, "'N'"),
            "available_only_tally_threshold": nullable(THRESHOLD, "'DISABLED'"),
            "available_only_tally_threshold_agents": nullable("smallint(5) unsigned", "0"),
            "dial_level_threshold": nullable(THRESHOLD, "'DISABLED'"),
            "dial_level_threshold_agents": nullable("smallint(5) unsigned", "0"),
            "adaptive_dl_diff_target": nullable("smallint(3)", "0"),
            "dl_diff_target_method": nullable("enum('ADAPT_CALC_ONLY','CALLS_PLACED')", "'ADAPT_CALC_ONLY'"),
            "adaptive_dropped_percentage": nullable("varchar(4)", "'3'"),
            "adaptive_maximum_level": nullable("varchar(6)", "'3.0'"),
            "adaptive_latest_server_time": nullable("varchar(4)", "'2100'"),
            "adaptive_intensity": nullable("varchar(6)", "'0'"),
            "dial_timeout": nullable("tinyint(3) unsigned", "60"),
            "dial_prefix": nullable("varchar(20)", "'9'"),
            "omit_phone_code": nullable(YN, "'N'"),
            "campaign_cid": nullable("varchar(20)", "'0000000000'"),
            "use_custom_cid": nullable(
                "enum('Y','N','AREACODE','USER_CUSTOM_1','USER_CUSTOM_2','USER_CUSTOM_3','USER_CUSTOM_4','USER_CUSTOM_5')",
                "'N'",
            ),
            "cid_group_id": nullable("varchar(20)", "'---DISABLED---'"),
            "cid_group_id_two": nullable("varchar(20)", "'---DISABLED---'"),
            "campaign_vdad_exten": nullable("varchar(20)", "'8368'"),
            "auto_alt_dial": nullable(
                "enum('NONE','ALT_ONLY','ADDR3_ONLY','ALT_AND_ADDR3','ALT_AND_EXTENDED','ALT_AND_ADDR3_AND_EXTENDED',"
                "'EXTENDED_ONLY','MULTI_LEAD')",
                "'NONE'",
            ),
            "auto_alt_dial_statuses": nullable("varchar(255)", "' B N NA DC -'"),
            "queue_priority": nullable("tinyint(2)", "50"),
            "closer_campaigns": nullable("text"),
            "campaign_allow_inbound": nullable(YN, "'N'"),
            "inbound_queue_no_dial": nullable(
                "enum('DISABLED','ENABLED','ALL_SERVERS','ENABLED_WITH_CHAT','ALL_SERVERS_WITH_CHAT')",
                "'DISABLED'",
            ),
            "drop_call_seconds": nullable("tinyint(3)", "5"),
            "drop_action": nullable(
                "enum('HANGUP','MESSAGE','VOICEMAIL','IN_GROUP','AUDIO','CALLMENU','VMAIL_NO_INST')",
                "'AUDIO'",
            ),
            "drop_inbound_group": nullable("varchar(20)", "'---NONE---'"),
            "campaign_calldate": nullable("datetime"),
            "scheduled_callbacks_auto_reschedule": nullable("varchar(10)", "'DISABLED'"),
            "dial_timeout_lead_container": nullable("varchar(40)", "'DISABLED'"),
            "hopper_hold_inserts": nullable("enum('ENABLED','DISABLED','AUTONEXT')", "'DISABLED'"),
            "incall_tally_threshold_seconds": nullable("smallint(5) unsigned", "0"),
            "auto_alt_threshold": nullable("tinyint(3) unsigned", "0"),
            "agent_search_method": nullable("varchar(2)", "''"),
            "next_agent_call": nullable("varchar(40)", "'longest_wait_time'"),
            "local_call_time": nullable("varchar(10)", "'9am-9pm'"),
            "hopper_level": nullable("int(8) unsigned", "1"),
        },
    ),
    # 6.4
    "vicidial_campaign_stats": (
        False,
        {
            "campaign_id": required("varchar(20)"),
            "update_time": TIMESTAMP_NOW,
            "differential_onemin": nullable("varchar(20)", "'0'"),
            "agents_average_onemin": nullable("varchar(20)", "'0'"),
            "balance_trunk_fill": nullable("smallint(5) unsigned", "0"),
            "drops_today": nullable("decimal(12,3)", "0.000"),
        },
    ),
    # 6.5
    "vicidial_campaign_server_stats": (
        True,
        {
            "campaign_id": required("varchar(20)"),
            "server_ip": required("varchar(15)"),
            "update_time": TIMESTAMP_NOW,
            "local_trunk_shortage": nullable("smallint(5) unsigned", "0"),
        },
    ),
    # 6.6
    "vicidial_server_trunks": (
        True,
        {
            "server_ip": required("varchar(15)"),
            "campaign_id": required("varchar(20)"),
            "dedicated_trunks": nullable("smallint(5) unsigned", "0"),
            "trunk_restriction": nullable("enum('MAXIMUM_LIMIT','OVERFLOW_ALLOWED')", "'OVERFLOW_ALLOWED'"),
        },
    ),
    # 6.7
    "vicidial_auto_calls": (
        True,
        {
            "auto_call_id": required("int(9) unsigned"),
            "server_ip": required("varchar(15)"),
            "campaign_id": nullable("varchar(20)"),
            "status": nullable(
                "enum('SENT','RINGING','LIVE','XFER','PAUSED','CLOSER','BUSY','DISCONNECT','IVR')", "'PAUSED'"
            ),
            "lead_id": required("int(9) unsigned"),
            "uniqueid": nullable("varchar(20)"),
            "callerid": nullable("varchar(20)"),
            "channel": nullable("varchar(100)"),
            "phone_code": nullable("varchar(10)"),
            "phone_number": nullable("varchar(18)"),
            "call_time": nullable("datetime"),
            "call_type": nullable("enum('IN','OUT','OUTBALANCE')", "'OUT'"),
            "stage": nullable("varchar(20)", "'START'"),
            "last_update_time": TIMESTAMP_NOW,
            "alt_dial": nullable("varchar(6)", "'NONE'"),
            "queue_priority": nullable("tinyint(2)", "0"),
            "agent_only": nullable("varchar(20)", "''"),
            "agent_grab": nullable("varchar(20)", "''"),
            "queue_position": nullable("smallint(4) unsigned", "1"),
            "extension": nullable("varchar(100)", "''"),
            "agent_grab_extension": nullable("varchar(100)", "''"),
        },
    ),
    # 6.8
    "vicidial_hopper": (
        True,
        {
            "hopper_id": required("int(9) unsigned"),
            "lead_id": required("int(9) unsigned"),
            "campaign_id": nullable("varchar(8)"),
            "status": nullable(
                "enum('READY','QUEUE','INCALL','DONE','HOLD','DNC','RHOLD','RQUEUE')", "'READY'"
            ),
            "user": nullable("varchar(20)"),
            "list_id": required("bigint(14) unsigned"),
            "gmt_offset_now": nullable("decimal(4,2)", "0.00"),
            "state": nullable("varchar(2)", "''"),
            "alt_dial": nullable("varchar(6)", "'NONE'"),
            "priority": nullable("tinyint(2)", "0"),
            "source": nullable("varchar(1)", "''"),
            "vendor_lead_code": nullable("varchar(20)", "''"),
        },
    ),
    # 6.9
    "vicidial_list": (
        True,
        {
            "lead_id": required("int(9) unsigned"),
            "entry_date": nullable("datetime"),
            "modify_date": TIMESTAMP_NOW,
            "status": nullable("varchar(6)"),
            "user": nullable("varchar(20)"),
            "vendor_lead_code": nullable("varchar(20)"),
            "source_id": nullable("varchar(50)"),
            "list_id": required("bigint(14) unsigned", "0"),
            "gmt_offset_now": nullable("decimal(4,2)", "0.00"),
            "called_since_last_reset": nullable(
                "enum('Y','N','Y1','Y2','Y3','Y4','Y5','Y6','Y7','Y8','Y9','Y10','D')", "'N'"
            ),
            "phone_code": nullable("varchar(10)"),
            "phone_number": required("varchar(18)"),
            "title": nullable("varchar(4)"),
            "first_name": nullable("varchar(30)"),
            "middle_initial": nullable("varchar(1)"),
            "last_name": nullable("varchar(30)"),
            "address1": nullable("varchar(100)"),
            "address2": nullable("varchar(100)"),
            "address3": nullable("varchar(100)"),
            "city": nullable("varchar(50)"),
            "state": nullable("varchar(2)"),
            "province": nullable("varchar(50)"),
            "postal_code": nullable("varchar(10)"),
            "country_code": nullable("varchar(3)"),
            "gender": nullable("enum('M','F','U')", "'U'"),
            "date_of_birth": nullable("date"),
            "alt_phone": nullable("varchar(12)"),
            "email": nullable("varchar(70)"),
            "security_phrase": nullable("varchar(100)"),
            "comments": nullable("varchar(255)"),
            "called_count": nullable("smallint(5) unsigned", "0"),
            "last_local_call_time": nullable("datetime"),
            "rank": required("smallint(5)", "0"),
            "owner": nullable("varchar(20)", "''"),
            "entry_list_id": required("bigint(14) unsigned", "0"),
        },
    ),
    # 6.10
    "vicidial_lists": (
        False,
        {
            "list_id": required("bigint(14) unsigned"),
            "campaign_id": nullable("varchar(8)"),
            "active": nullable(YN),
            "list_lastcalldate": nullable("datetime"),
            "campaign_cid_override": nullable("varchar(20)", "''"),
            "cid_group_id": nullable("varchar(20)", "'---DISABLED---'"),
            "dial_prefix": nullable("varchar(20)", "''"),
            "auto_alt_threshold": nullable("tinyint(3)", "-1"),
            "local_call_time": required("varchar(10)", "'campaign'"),
            "expiration_date": nullable("date", "'2099-12-31'"),
        },
    ),
    # 6.11
    "vicidial_list_alt_phones": (
        True,
        {
            "alt_phone_id": required("int(9) unsigned"),
            "lead_id": required("int(9) unsigned"),
            "phone_code": nullable("varchar(10)"),
            "phone_number": nullable("varchar(18)"),
            "alt_phone_note": nullable("varchar(30)"),
            "alt_phone_count": nullable("smallint(5) unsigned"),
            "active": nullable(YN, "'Y'"),
        },
    ),
    # 6.12
    "vicidial_manager": (
        True,
        {
            "man_id": required("int(9) unsigned"),
            "uniqueid": nullable("varchar(20)"),
            "entry_date": nullable("datetime"),
            "status": nullable("enum('NEW','QUEUE','SENT','UPDATED','DEAD')"),
            "response": nullable(YN),
            "server_ip": required("varchar(15)"),
            "channel": nullable("varchar(100)"),
            "action": nullable("varchar(20)"),
            "callerid": nullable("varchar(20)"),
            "cmd_line_b": nullable("varchar(100)"),
            "cmd_line_c": nullable("varchar(100)"),
            "cmd_line_d": nullable("varchar(200)"),
            "cmd_line_e": nullable("varchar(100)"),
            "cmd_line_f": nullable("varchar(100)"),
            "cmd_line_g": nullable("varchar(100)"),
            "cmd_line_h": nullable("varchar(100)"),
            "cmd_line_i": nullable("varchar(50)"),
            "cmd_line_j": nullable("varchar(50)"),
            "cmd_line_k": nullable("varchar(100)"),
        },
    ),
    # 6.13
    "vicidial_live_agents": (
        True,
        {
            "live_agent_id": required("int(9) unsigned"),
            "user": nullable("varchar(20)"),
            "server_ip": required("varchar(15)"),
            "conf_exten": nullable("varchar(20)"),
            "extension": nullable("varchar(100)"),
            "status": nullable("enum('READY','QUEUE','INCALL','PAUSED','CLOSER','MQUEUE')", "'PAUSED'"),
            "lead_id": required("int(9) unsigned"),
            "campaign_id": nullable("varchar(8)"),
            "uniqueid": nullable("varchar(20)"),
            "callerid": nullable("varchar(20)"),
            "channel": nullable("varchar(100)"),
            "random_id": nullable("int(8) unsigned"),
            "last_call_time": nullable("datetime"),
            "last_update_time": TIMESTAMP_NOW,
            "last_call_finish": nullable("datetime"),
            "closer_campaigns": nullable("text"),
            "call_server_ip": nullable("varchar(15)"),
            "user_level": nullable("tinyint(3) unsigned", "0"),
            "comments": nullable("varchar(20)"),
            "campaign_weight": nullable("tinyint(1)", "0"),
            "calls_today": nullable("smallint(5) unsigned", "0"),
            "last_state_change": nullable("datetime"),
            "outbound_autodial": nullable(YN, "'N'"),
            "ra_user": nullable("varchar(20)", "''"),
            "ra_extension": nullable("varchar(100)", "''"),
            "ring_callerid": nullable("varchar(20)", "''"),
            "campaign_grade": nullable("tinyint(2) unsigned", "1"),
            "dial_campaign_id": nullable("varchar(8)", "''"),
        },
    ),
}

# 6.14: live_channels and live_sip_channels share one definition.
_LIVE_CHANNEL_COLUMNS: dict[str, Column] = {
    "channel": required("varchar(100)"),
    "server_ip": required("varchar(15)"),
    "channel_group": nullable("varchar(30)"),
    "extension": nullable("varchar(100)"),
    "channel_data": nullable("varchar(100)"),
}
EXPECTED["live_channels"] = (True, _LIVE_CHANNEL_COLUMNS)
EXPECTED["live_sip_channels"] = (True, _LIVE_CHANNEL_COLUMNS)

# 6.15
EXPECTED.update(
    {
        "call_log": (
            True,
            {
                "uniqueid": required("varchar(20)"),
                "channel": nullable("varchar(100)"),
                "channel_group": nullable("varchar(30)"),
                "type": nullable("varchar(10)"),
                "server_ip": nullable("varchar(15)"),
                "extension": nullable("varchar(100)"),
                "number_dialed": nullable("varchar(15)"),
                "caller_code": nullable("varchar(20)"),
                "start_time": nullable("datetime"),
                "start_epoch": nullable("int(10)"),
                "end_time": nullable("datetime"),
                "end_epoch": nullable("int(10)"),
                "length_in_sec": nullable("int(10)"),
                "length_in_min": nullable("double(8,2)"),
            },
        ),
        "vicidial_dial_log": (
            True,
            {
                "caller_code": required("varchar(30)"),
                "lead_id": nullable("int(9) unsigned", "0"),
                "server_ip": nullable("varchar(15)"),
                "call_date": nullable("datetime"),
                "extension": nullable("varchar(100)", "''"),
                "channel": nullable("varchar(100)", "''"),
                "context": nullable("varchar(100)", "''"),
                "timeout": nullable("mediumint(7) unsigned", "0"),
                "outbound_cid": nullable("varchar(100)", "''"),
                "sip_hangup_cause": nullable("smallint(4) unsigned", "0"),
                "sip_hangup_reason": nullable("varchar(50)", "''"),
                "uniqueid": nullable("varchar(20)", "''"),
            },
        ),
        "vicidial_dial_cid_log": (
            True,
            {
                "caller_code": required("varchar(30)"),
                "call_date": nullable("datetime"),
                "call_type": nullable("enum('OUT','OUTBALANCE','MANUAL','OVERRIDE','3WAY')", "'OUT'"),
                "call_alt": nullable("varchar(20)", "''"),
                "outbound_cid": nullable("varchar(20)", "''"),
                "outbound_cid_type": nullable("varchar(20)", "''"),
            },
        ),
        "vicidial_lead_24hour_calls": (
            True,
            {
                "lead_id": required("int(9) unsigned"),
                "list_id": nullable("bigint(14) unsigned", "0"),
                "call_date": nullable("datetime"),
                "phone_number": nullable("varchar(18)"),
                "phone_code": nullable("varchar(10)"),
                "state": nullable("varchar(2)"),
                "call_type": nullable("enum('MANUAL','AUTO','')", "''"),
            },
        ),
        "vicidial_lead_call_daily_counts": (
            True,
            {
                "lead_id": required("int(9) unsigned"),
                "list_id": nullable("bigint(14) unsigned", "0"),
                "called_count_total": nullable("tinyint(3) unsigned", "0"),
                "called_count_auto": nullable("tinyint(3) unsigned", "0"),
                "called_count_manual": nullable("tinyint(3) unsigned", "0"),
                "modify_date": nullable("datetime"),
            },
        ),
        "vicidial_phone_number_call_daily_counts": (
            True,
            {
                "phone_number": required("varchar(18)"),
                "called_count": nullable("tinyint(3) unsigned", "0"),
                "modify_date": nullable("datetime"),
            },
        ),
        "vicidial_recent_ascb_calls": (
            False,
            {
                "call_date": nullable("datetime"),
                "callback_date": nullable("datetime"),
                "callback_id": nullable("int(9) unsigned"),
                "caller_code": nullable("varchar(30)"),
                "server_ip": nullable("varchar(60)"),
                "orig_status": nullable("varchar(6)", "'CALLBK'"),
                "reschedule": nullable("varchar(10)"),
                "rescheduled": nullable("enum('U','P','Y','N')", "'U'"),
            },
        ),
        "vicidial_campaign_cid_areacodes": (
            True,
            {
                "campaign_id": required("varchar(20)"),
                "areacode": required("varchar(5)"),
                "outbound_cid": nullable("varchar(20)"),
                "active": nullable("enum('Y','N','')", "''"),
                "cid_description": nullable("varchar(50)"),
                "call_count_today": nullable("mediumint(7)", "0"),
            },
        ),
        "vicidial_cid_groups": (
            False,
            {
                "cid_group_id": required("varchar(20)"),
                "cid_group_type": nullable("enum('AREACODE','STATE','NONE')", "'AREACODE'"),
                "cid_auto_rotate_minutes": nullable("mediumint(7) unsigned", "0"),
                "cid_auto_rotate_minimum": nullable("mediumint(7) unsigned", "0"),
                "cid_auto_rotate_calls": nullable("mediumint(7) unsigned", "0"),
                "cid_last_auto_rotate": nullable("datetime"),
                "cid_auto_rotate_cid": nullable("varchar(20)", "''"),
            },
        ),
        "cid_channels_recent": (
            True,
            {
                "caller_id_name": required("varchar(30)"),
                "connected_line_name": required("varchar(30)"),
                "server_ip": nullable("varchar(15)"),
                "call_date": nullable("datetime"),
                "channel": nullable("varchar(100)", "''"),
                "dest_channel": nullable("varchar(100)", "''"),
                "linkedid": nullable("varchar(20)", "''"),
                "dest_uniqueid": nullable("varchar(20)", "''"),
                "uniqueid": nullable("varchar(20)", "''"),
            },
        ),
        "vicidial_campaign_stats_debug": (
            False,
            {
                "debug_output": nullable("text"),
                "adapt_output": nullable("text"),
            },
        ),
    }
)

MEMORY_TABLES = {
    "vicidial_campaign_server_stats",
    "live_channels",
    "live_sip_channels",
    "parked_channels",
    "vicidial_auto_calls",
    "vicidial_hopper",
}

# Tables the brief adds beyond section 6 (minimal definitions); checked for presence and engine.
OTHER_TABLES = {
    "parked_channels",
    "vicidial_settings_containers",
    "vicidial_callbacks",
    "vicidial_phone_codes",
    "vicidial_statuses",
    "vicidial_campaign_statuses",
    "vicidial_log",
    "vicidial_log_extended",
}


@pytest.fixture(scope="module")
def catalog(test_database: Any) -> dict[str, Any]:
    """information_schema facts of the session database, read once."""
    dsn: Dsn = test_database.dsn
    connection = connect_sync(dsn)
    try:
        with connection.cursor(pymysql.cursors.DictCursor) as cursor:
            cursor.execute(
                "SELECT TABLE_NAME, COLUMN_NAME, COLUMN_TYPE, COLUMN_DEFAULT, IS_NULLABLE, EXTRA"
                " FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s"
                " ORDER BY TABLE_NAME, ORDINAL_POSITION",
                (dsn.database,),
            )
            columns = cursor.fetchall()
            cursor.execute(
                "SELECT TABLE_NAME, ENGINE FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s",
                (dsn.database,),
            )
            engines = {row["TABLE_NAME"]: row["ENGINE"] for row in cursor.fetchall()}
            cursor.execute(
                "SELECT TABLE_NAME, INDEX_NAME, NON_UNIQUE, SEQ_IN_INDEX, COLUMN_NAME"
                " FROM information_schema.STATISTICS"
                " WHERE TABLE_SCHEMA = %s ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX",
                (dsn.database,),
            )
            indexes: dict[str, dict[str, dict[str, Any]]] = {}
            for row in cursor.fetchall():
                index = indexes.setdefault(row["TABLE_NAME"], {}).setdefault(
                    row["INDEX_NAME"], {"unique": not row["NON_UNIQUE"], "columns": []}
                )
                index["columns"].append(row["COLUMN_NAME"])
    finally:
        connection.close()
    by_table: dict[str, dict[str, Column]] = {}
    extras: dict[tuple[str, str], str] = {}
    for row in columns:
        by_table.setdefault(row["TABLE_NAME"], {})[row["COLUMN_NAME"]] = (
            row["COLUMN_TYPE"],
            row["COLUMN_DEFAULT"],
            row["IS_NULLABLE"],
        )
        extras[(row["TABLE_NAME"], row["COLUMN_NAME"])] = row["EXTRA"]
    return {"columns": by_table, "engines": engines, "indexes": indexes, "extras": extras}


def _index_shapes(catalog: dict[str, Any], table: str) -> list[tuple[bool, tuple[str, ...]]]:
    return sorted((ix["unique"], tuple(ix["columns"])) for ix in catalog["indexes"].get(table, {}).values())


# -- the schema file itself ----------------------------------------------------------------------


def test_tables_are_listed_in_file_order_once_each() -> None:
    assert len(TABLES) == len(set(TABLES))
    assert TABLES[0] == "servers"
    assert set(EXPECTED) | OTHER_TABLES <= set(TABLES)
    assert len(schema_statements()) == len(TABLES)


def test_statements_split_outside_quotes_and_comments() -> None:
    sql = "-- a; comment\nCREATE TABLE a (x VARCHAR(3) DEFAULT ';');\n/* b; */ SELECT '\\';', `c;d`;\n"
    assert split_statements(sql) == ["CREATE TABLE a (x VARCHAR(3) DEFAULT ';')", "SELECT '\\';', `c;d`"]


def test_schema_text_is_the_package_data_file() -> None:
    assert schema_sql().startswith("--")
    assert "CREATE TABLE vicidial_hopper" in schema_sql()


# -- what MariaDB made of it ---------------------------------------------------------------------


@pytest.mark.parametrize("table", sorted(EXPECTED))
def test_columns_match_section_6(catalog: dict[str, Any], table: str) -> None:
    complete, expected = EXPECTED[table]
    actual = catalog["columns"][table]
    assert {name: actual.get(name) for name in expected} == expected
    if complete:
        assert list(actual) == list(expected), "the spec lists every column of this table, in this order"


def test_every_schema_table_was_created(catalog: dict[str, Any]) -> None:
    assert set(catalog["engines"]) == set(TABLES)


@pytest.mark.parametrize("table", TABLES)
def test_engine(catalog: dict[str, Any], table: str) -> None:
    assert catalog["engines"][table] == ("MEMORY" if table in MEMORY_TABLES else "MyISAM")


def test_auto_increment_ids(catalog: dict[str, Any]) -> None:
    for table, column in [
        ("vicidial_auto_calls", "auto_call_id"),
        ("vicidial_hopper", "hopper_id"),
        ("vicidial_list", "lead_id"),
        ("vicidial_list_alt_phones", "alt_phone_id"),
        ("vicidial_manager", "man_id"),
        ("vicidial_live_agents", "live_agent_id"),
    ]:
        assert catalog["extras"][(table, column)] == "auto_increment", table


def test_timestamps_update_themselves(catalog: dict[str, Any]) -> None:
    for table, column in [
        ("vicidial_campaign_stats", "update_time"),
        ("vicidial_campaign_server_stats", "update_time"),
        ("vicidial_auto_calls", "last_update_time"),
        ("vicidial_list", "modify_date"),
        ("vicidial_live_agents", "last_update_time"),
    ]:
        assert catalog["extras"][(table, column)] == "on update current_timestamp()", table


def test_servers_has_unique_server_id_and_no_primary_key(catalog: dict[str, Any]) -> None:
    indexes = catalog["indexes"]["servers"]
    assert "PRIMARY" not in indexes
    assert indexes["server_id"] == {"unique": True, "columns": ["server_id"]}


def test_campaign_server_stats_has_no_unique_key(catalog: dict[str, Any]) -> None:
    # AST_VDauto_dial.pl inserts a row per (campaign, server) when missing; duplicates are possible.
    assert _index_shapes(catalog, "vicidial_campaign_server_stats") == [
        (False, ("campaign_id",)),
        (False, ("server_ip",)),
    ]


def test_primary_keys(catalog: dict[str, Any]) -> None:
    expected = {
        "vicidial_campaigns": ["campaign_id"],
        "vicidial_campaign_stats": ["campaign_id"],
        "vicidial_auto_calls": ["auto_call_id"],
        "vicidial_hopper": ["hopper_id"],
        "vicidial_list": ["lead_id"],
        "vicidial_lists": ["list_id"],
        "vicidial_list_alt_phones": ["alt_phone_id"],
        "vicidial_manager": ["man_id"],
        "vicidial_live_agents": ["live_agent_id"],
        "call_log": ["uniqueid"],
        "vicidial_cid_groups": ["cid_group_id"],
    }
    for table, columns in expected.items():
        assert catalog["indexes"][table]["PRIMARY"]["columns"] == columns, table


def test_secondary_indexes(catalog: dict[str, Any]) -> None:
    def non_unique(table: str) -> set[tuple[str, ...]]:
        return {cols for unique, cols in _index_shapes(catalog, table) if not unique}

    assert non_unique("vicidial_server_trunks") == {("campaign_id",), ("server_ip",)}
    assert non_unique("vicidial_auto_calls") == {
        ("uniqueid",),
        ("callerid",),
        ("call_time",),
        ("last_update_time",),
    }
    assert non_unique("vicidial_hopper") == {("lead_id",)}
    assert non_unique("vicidial_list") == {
        ("phone_number",),
        ("list_id",),
        ("called_since_last_reset",),
        ("status",),
        ("gmt_offset_now",),
        ("postal_code",),
        ("last_local_call_time",),
        ("rank",),
        ("owner",),
        ("phone_number", "list_id"),
        ("list_id", "phone_number"),
        ("list_id", "status"),
    }
    assert catalog["indexes"]["vicidial_list"]["phone_list"]["columns"] == ["phone_number", "list_id"]
    assert catalog["indexes"]["vicidial_list"]["list_phone"]["columns"] == ["list_id", "phone_number"]
    assert catalog["indexes"]["vicidial_list"]["list_status"]["columns"] == ["list_id", "status"]
    assert non_unique("vicidial_list_alt_phones") == {("lead_id",), ("phone_number",)}
    assert non_unique("vicidial_manager") == {("callerid",), ("uniqueid",), ("server_ip", "status")}
    assert catalog["indexes"]["vicidial_manager"]["serverstat"]["columns"] == ["server_ip", "status"]
    assert non_unique("vicidial_live_agents") == {
        ("random_id",),
        ("last_call_time",),
        ("last_update_time",),
        ("last_call_finish",),
        ("lead_id",),
        ("user",),
    }
    assert catalog["indexes"]["vicidial_live_agents"]["vlali"]["columns"] == ["lead_id"]
    assert catalog["indexes"]["vicidial_live_agents"]["vlaus"]["columns"] == ["user"]
    assert _index_shapes(catalog, "live_channels") == []
    assert _index_shapes(catalog, "live_sip_channels") == []
    assert non_unique("call_log") == {
        ("caller_code",),
        ("server_ip",),
        ("channel",),
        ("start_time",),
        ("end_time",),
    }
    assert non_unique("vicidial_dial_log") == {("caller_code",), ("lead_id",), ("call_date",)}


def test_unique_keys_of_the_lifecycle_tables(catalog: dict[str, Any]) -> None:
    def unique(table: str) -> set[tuple[str, ...]]:
        return {cols for is_unique, cols in _index_shapes(catalog, table) if is_unique}

    assert catalog["indexes"]["vicidial_lead_call_daily_counts"]["vlcdc_lead"] == {
        "unique": True,
        "columns": ["lead_id"],
    }
    assert unique("vicidial_phone_number_call_daily_counts") == {("phone_number",)}
    assert unique("vicidial_recent_ascb_calls") == {("caller_code",)}
    assert catalog["indexes"]["vicidial_campaign_cid_areacodes"]["campareacode"] == {
        "unique": True,
        "columns": ["campaign_id", "areacode", "outbound_cid"],
    }
    assert unique("vicidial_campaign_stats_debug") == {("campaign_id", "server_ip")}


def test_live_agents_stay_myisam_because_of_text(catalog: dict[str, Any]) -> None:
    assert catalog["columns"]["vicidial_live_agents"]["closer_campaigns"][0] == "text"
    assert catalog["engines"]["vicidial_live_agents"] == "MyISAM"
    for table in MEMORY_TABLES:
        assert not any(
            t[0].endswith("text") or t[0].endswith("blob") for t in catalog["columns"][table].values()
        )


def test_minimal_tables_carry_the_columns_fill_reads(catalog: dict[str, Any]) -> None:
    columns = catalog["columns"]
    assert columns["vicidial_settings_containers"]["container_entry"][0] == "text"
    assert {
        "callback_id",
        "lead_id",
        "list_id",
        "campaign_id",
        "status",
        "entry_time",
        "callback_time",
        "recipient",
        "user",
    } <= set(columns["vicidial_callbacks"])
    assert {"country_code", "areacode", "state", "country"} <= set(columns["vicidial_phone_codes"])
    for table in ("vicidial_statuses", "vicidial_campaign_statuses"):
        assert columns[table]["scheduled_callback"] == nullable(YN, "'N'")
    assert list(columns["vicidial_log"]) == [
        "uniqueid",
        "lead_id",
        "list_id",
        "campaign_id",
        "call_date",
        "start_epoch",
        "end_epoch",
        "length_in_sec",
        "status",
        "phone_code",
        "phone_number",
        "user",
        "comments",
        "processed",
        "user_group",
        "term_reason",
        "alt_dial",
        "called_count",
    ]
    assert {"uniqueid", "server_ip", "call_date", "lead_id", "caller_code", "custom_call_id"} <= set(
        columns["vicidial_log_extended"]
    )
