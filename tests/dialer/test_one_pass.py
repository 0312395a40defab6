"""One pass (``run --once`` through ``fillreactor.once.run_once``) against seeded VICIdial states.

Every scenario runs in strict and in non-strict SQL mode (the ``sql_mode`` fixture) and checks the
exact rows of every table the pass touches. Expected values are worked by hand below from
spec/VICIDIAL_FILL.md (sections cited) and bin/AST_VDauto_dial_FILL.pl 2.14 (lines cited); the row
templates are in ``dialer_helpers`` (spec 5.4, 5.5, 2.7 t).

The cluster of ``fill_cluster`` unless said otherwise: FILL host and agent server 10.10.10.11
(local_gmt -5.00, ext_context default, answer_transfer_agent 8365, vd_server_logs Y), balance
servers .12 (rank 2) and .13 (rank 1) with 23 trunks each, Asterisk 18 everywhere; campaign
FILLTEST (dial_prefix 9, campaign_cid 0000000000, campaign_vdad_exten 8368, queue_priority 50,
dial_timeout 60) with 4 READY agents, list 1001, leads 1..n with phone 312555<n-1> (code 1,
gmt -5.00, state IL) and READY hopper rows hopper_id = lead_id; the pass runs at 2026-11-26
10:15:52 in UTC (no DST), so last_local_call_time = now + (-5 - -5) h = now (lines 877-887).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from dialer_helpers import (
    B1,
    B2,
    CAMPAIGN,
    HOST,
    LIST,
    NOW,
    Call,
    assert_calls,
    assert_leads_dialed,
    assert_nothing_written,
    call_id,
    fill_cluster,
    fresh_stats,
    hopper_rows,
    ready,
)

pytestmark = [
    pytest.mark.timeout(60),
    # a value the server had to coerce (cut, clamp, replace) is a value not written explicitly
    pytest.mark.filterwarnings("error:Data truncated"),
    pytest.mark.filterwarnings("error:Out of range"),
    pytest.mark.filterwarnings("error:Incorrect"),
]


def number(lead: int) -> str:
    """The seeder's generated phone numbers: 312555 + a 4-digit serial from 0."""
    return f"312555{lead - 1:04d}"


def dialed(
    *leads: int, count: int = 1, cslr: str = "Y", when: datetime = NOW
) -> dict[int, tuple[int, str, datetime]]:
    """First call of a fresh lead: called_count 0+1, N -> Y (lines 864-875), LLCT = now (see module doc)."""
    return {lead: (count, cslr, when) for lead in leads}


async def test_calls_go_to_the_highest_ranked_server(one_pass, seed) -> None:
    # spec 2.3-2.4: needed = 6 - 0; .12 (rank 2) first: available 23-0-0 = 23, temp_avail 23,
    # DIAL min(23, 6, 23) = 6; balance_trunk_fill = 0 + 6 (2.8)
    await fill_cluster(seed)
    result = await one_pass.run()
    assert result.code == 0, result.text
    calls = [Call(n, B1, number(n)) for n in range(1, 7)]
    assert_calls(result.tables, calls, NOW, result.window)
    assert_leads_dialed(result.tables, dialed(*range(1, 7)), untouched=range(7, 21))
    assert result.tables.hopper == ready(range(7, 21))  # deleted by lead_id (2.7 m)
    assert result.tables.balance_fill == {CAMPAIGN: 6}
    assert result.tables.calldate == {CAMPAIGN: NOW}  # line 1519
    assert result.tables.lastcalldate == {LIST: NOW}  # 2.11 (LIST_LASTCALLDATE_PASS_START)
    assert result.tables.ascb == []
    assert "placed 6" in result.text


async def test_equal_ranks_go_by_server_ip_as_text(one_pass, seed) -> None:
    # 2.4: ORDER BY vicidial_balance_rank DESC, server_ip -- as strings, '10.10.10.10' < '10.10.10.9'
    await seed.system_settings()
    await seed.server("agent1", HOST, max_vicidial_trunks=6, asterisk_version="18.21.0")
    for sid, ip, trunks, rank in (
        ("b9", "10.10.10.9", 2, 3),
        ("b10", "10.10.10.10", 3, 3),
        ("b20", "10.10.10.20", 10, 1),
    ):
        await seed.server(
            sid,
            ip,
            max_vicidial_trunks=trunks,
            vicidial_balance_active="Y",
            vicidial_balance_rank=rank,
            asterisk_version="18.21.0",
        )
    await seed.campaign(CAMPAIGN)
    await seed.lead_list(LIST, CAMPAIGN)
    leads = await seed.leads(LIST, 10)
    await seed.hopper(CAMPAIGN, leads)
    await seed.live_agents(4, HOST, CAMPAIGN)
    await seed.campaign_server_stats(CAMPAIGN, HOST, 7, update_time=NOW - timedelta(seconds=5))
    result = await one_pass.run()
    assert result.code == 0, result.text
    # .10: min(3, 7, 3) = 3; .9: min(2, 4, 2) = 2; .20: min(10, 2, 10) = 2
    servers = ["10.10.10.10"] * 3 + ["10.10.10.9"] * 2 + ["10.10.10.20"] * 2
    calls = [Call(n, ip, number(n)) for n, ip in enumerate(servers, start=1)]
    assert_calls(result.tables, calls, NOW, result.window)
    assert result.tables.hopper == ready(range(8, 11))
    assert result.tables.balance_fill == {CAMPAIGN: 7}


async def test_maximum_limit_caps_the_campaign_on_a_server(one_pass, seed) -> None:
    # 2.4: MAXIMUM_LIMIT -> available = dedicated 2 on .12; .13 gets 5 - 2 = 3 (23 - 0 - 0 available)
    await fill_cluster(seed, local_trunk_shortage=5)
    await seed.server_trunk(B1, CAMPAIGN, 2, "MAXIMUM_LIMIT")
    result = await one_pass.run()
    calls = [Call(1, B1, number(1)), Call(2, B1, number(2))] + [Call(n, B2, number(n)) for n in (3, 4, 5)]
    assert_calls(result.tables, calls, NOW, result.window)
    assert result.tables.balance_fill == {CAMPAIGN: 5}


async def test_offlimits_trunks_are_kept_free(one_pass, seed) -> None:
    # 2.4: .12 has 10 trunks, 7 off limits: available (10 - 7) - 0 = 3; .13: 10 -> the other 2
    await fill_cluster(seed, local_trunk_shortage=5, balance_server_trunks=10)
    await seed.execute("UPDATE servers SET balance_trunks_offlimits = 7 WHERE server_ip = %s", (B1,))
    result = await one_pass.run()
    calls = [Call(n, B1, number(n)) for n in (1, 2, 3)] + [Call(n, B2, number(n)) for n in (4, 5)]
    assert_calls(result.tables, calls, NOW, result.window)


async def test_other_campaigns_dedicated_trunks_are_not_used(one_pass, seed) -> None:
    # 2.4: OVERFLOW: available = (10 - 0) - 6 dedicated to OTHER on .12 = 4; the campaign's own
    # OVERFLOW_ALLOWED dedication on .13 is not used at all: 10 available there; 6 - 4 = 2 on .13
    await fill_cluster(seed, local_trunk_shortage=6, balance_server_trunks=10)
    await seed.server_trunk(B1, "OTHER", 6, "OVERFLOW_ALLOWED")
    await seed.server_trunk(B2, CAMPAIGN, 3, "OVERFLOW_ALLOWED")
    result = await one_pass.run()
    calls = [Call(n, B1, number(n)) for n in (1, 2, 3, 4)] + [Call(n, B2, number(n)) for n in (5, 6)]
    assert_calls(result.tables, calls, NOW, result.window)
    assert result.tables.balance_fill == {CAMPAIGN: 6}


async def test_existing_outbalance_rows_lower_the_need_and_the_room(one_pass, seed) -> None:
    # 2.3.4: needed = 6 - 2 OUTBALANCE rows = 4. .12 (5 trunks): available 5 - 2 own OUTBALANCE = 3,
    # temp_avail = 5 - 2 - 1 other call = 2 -> DIAL 2; .13: min(5, 2, 5) = 2. fill = 2 + 4 = 6.
    await fill_cluster(seed, local_trunk_shortage=6, balance_server_trunks=5)
    await seed.auto_calls(2, B1, CAMPAIGN, call_type="OUTBALANCE", lead_id=901)
    await seed.auto_call(B1, "OTHER", lead_id=950)
    result = await one_pass.run()
    calls = [Call(1, B1, number(1)), Call(2, B1, number(2)), Call(3, B2, number(3)), Call(4, B2, number(4))]
    assert_calls(result.tables, calls, NOW, result.window, first_auto_call_id=4, existing_auto_calls=3)
    assert [row["lead_id"] for row in result.tables.auto_calls[:3]] == [901, 902, 950]  # untouched
    assert result.tables.balance_fill == {CAMPAIGN: 6}


async def test_paused_agents_mean_no_dialing(one_pass, seed) -> None:
    # 2.5: LVA count of non-PAUSED agents is 0: nothing placed, hopper untouched. The Perl writes
    # balance_trunk_fill = 0 + the tally 6; the corrected plan does not tally calls it will not place
    # (planner Correction.NO_AGENTS_NOT_TALLIED): 0 + 0.
    await fill_cluster(seed, agents=0)
    await seed.live_agents(3, HOST, CAMPAIGN, status="PAUSED")
    await seed.execute("UPDATE vicidial_campaign_stats SET balance_trunk_fill = 9")
    result = await one_pass.run()
    assert result.code == 0, result.text
    assert_nothing_written(result.tables)
    assert result.tables.hopper == ready(range(1, 21))
    assert result.tables.balance_fill == {CAMPAIGN: 0}
    assert result.tables.calldate == {CAMPAIGN: None} and result.tables.lastcalldate == {LIST: None}


async def test_a_shared_agent_dialing_for_the_campaign_opens_the_gate(one_pass, seed) -> None:
    # 2.5 (new): (campaign_id=C OR dial_campaign_id=C) AND status NOT IN('PAUSED')
    await fill_cluster(seed, agents=0, local_trunk_shortage=2)
    await seed.live_agent(HOST, "OTHER", dial_campaign_id=CAMPAIGN, status="INCALL")
    result = await one_pass.run()
    assert_calls(result.tables, [Call(1, B1, number(1)), Call(2, B1, number(2))], NOW, result.window)


async def test_stale_stats_reset_every_balance_fill(one_pass, seed) -> None:
    # 2.2.3: update_time > now - 1200 s, strictly: a row exactly 1200 s old is not read; no shortage
    # -> UPDATE vicidial_campaign_stats SET balance_trunk_fill='0' for every campaign (2.2.7)
    await fill_cluster(seed)
    await seed.campaign("OTHERC", balance_trunk_fill=4)
    await fresh_stats(seed, NOW, age=1200)
    await seed.execute(
        "UPDATE vicidial_campaign_stats SET balance_trunk_fill = 9 WHERE campaign_id = %s", (CAMPAIGN,)
    )
    result = await one_pass.run()
    assert result.code == 0, result.text
    assert_nothing_written(result.tables)
    assert result.tables.hopper == ready(range(1, 21))
    assert result.tables.balance_fill == {CAMPAIGN: 0, "OTHERC": 0}


@pytest.mark.parametrize("switch", ["outbound_autodial_active", "disable_auto_dial"])
async def test_kill_switches_stop_dialing_and_leave_balance_fill(one_pass, seed, switch) -> None:
    # 2.2.6: outbound_autodial_active < 1 or disable_auto_dial > 0: no dialing, balance_trunk_fill NOT reset
    await fill_cluster(seed)
    if switch == "outbound_autodial_active":
        await seed.execute("UPDATE system_settings SET outbound_autodial_active = '0'")
    else:
        await seed.execute("UPDATE system_settings SET disable_auto_dial = '1'")
    await seed.execute("UPDATE vicidial_campaign_stats SET balance_trunk_fill = 9")
    result = await one_pass.run()
    assert result.code == 0, result.text
    assert_nothing_written(result.tables)
    assert result.tables.hopper == ready(range(1, 21))
    assert result.tables.balance_fill == {CAMPAIGN: 9}


async def test_a_short_hopper_places_what_it_has(one_pass, seed) -> None:
    # 2.7.1: the claim LIMIT 6 takes the 3 READY rows; balance_trunk_fill is the planned tally (2.8): 6
    await fill_cluster(seed, leads=3)
    result = await one_pass.run()
    assert_calls(result.tables, [Call(n, B1, number(n)) for n in (1, 2, 3)], NOW, result.window)
    assert result.tables.hopper == []
    assert result.tables.balance_fill == {CAMPAIGN: 6}
    assert "claimed 3, placed 3" in result.text


async def test_a_missing_lead_row_goes_back_to_ready(one_pass, seed) -> None:
    # 2.7d: no vicidial_list row -> nothing for that lead. The Perl leaves the row INCALL (9.3.9);
    # fillreactor releases it to READY with user '' (RowCorrection.MISSING_LEAD_RELEASED).
    await fill_cluster(seed, leads=4, local_trunk_shortage=3)
    await seed.hopper(CAMPAIGN, [999], priority=5)  # hopper_id 5, claimed first (priority DESC)
    result = await one_pass.run()
    assert_calls(result.tables, [Call(1, B1, number(1)), Call(2, B1, number(2))], NOW, result.window)
    assert result.tables.hopper == hopper_rows(
        (3, 3, "READY", None), (4, 4, "READY", None), (5, 999, "READY", "")
    )
    assert result.tables.balance_fill == {CAMPAIGN: 3}


async def test_a_duplicate_hopper_lead_is_dialed_once(one_pass, seed, logs_dir) -> None:
    # 2.7b: rows 4 (lead 1, priority 5), 1 (lead 1), 2 (lead 2) are claimed; lead 1 is dialed once
    # and its DELETE by lead_id takes both its rows; the duplicate's slot places nothing (2 calls).
    await fill_cluster(seed, leads=3, local_trunk_shortage=3)
    await seed.hopper(CAMPAIGN, [1], priority=5)
    result = await one_pass.run()
    assert_calls(result.tables, [Call(1, B1, number(1)), Call(2, B1, number(2))], NOW, result.window)
    assert result.tables.hopper == ready([3])
    # lines 675-686 (vd_server_logs Y): "<now>-----<leads so far>-----<lead>"; the line names the
    # duplicated lead (RowCorrection.DUPLICATE_LOG_NAMES_DUPLICATE)
    log = (logs_dir / "VDFC_DUPLICATE.2026-11-26").read_text()
    assert log == "2026-11-26 10:15:52-----|1|-----1\n"


async def test_alt_and_addr3_numbers_are_dialed(one_pass, seed) -> None:
    # 2.7h: hopper ALT + campaign ALT_AND_ADDR3 -> digits(alt_phone); ADDR3 -> digits(address3)
    await fill_cluster(seed, leads=3, local_trunk_shortage=3)
    await seed.execute("UPDATE vicidial_campaigns SET auto_alt_dial = 'ALT_AND_ADDR3'")
    await seed.execute("UPDATE vicidial_list SET alt_phone = '312-555-7777' WHERE lead_id = 1")
    await seed.execute("UPDATE vicidial_list SET address3 = 'home 312.555.8888' WHERE lead_id = 2")
    await seed.execute("UPDATE vicidial_hopper SET alt_dial = 'ALT' WHERE lead_id = 1")
    await seed.execute("UPDATE vicidial_hopper SET alt_dial = 'ADDR3' WHERE lead_id = 2")
    result = await one_pass.run()
    calls = [
        Call(1, B1, "3125557777", alt_dial="ALT"),
        Call(2, B1, "3125558888", alt_dial="ADDR3"),
        Call(3, B1, number(3)),
    ]
    assert_calls(result.tables, calls, NOW, result.window)


async def test_alt_number_needs_the_campaign_setting(one_pass, seed) -> None:
    # 2.7h: hopper ALT but campaign auto_alt_dial ADDR3_ONLY: /ALT/ does not match it -> main number
    await fill_cluster(seed, leads=1, local_trunk_shortage=1)
    await seed.execute("UPDATE vicidial_campaigns SET auto_alt_dial = 'ADDR3_ONLY'")
    await seed.execute("UPDATE vicidial_list SET alt_phone = '3125557777'")
    await seed.execute("UPDATE vicidial_hopper SET alt_dial = 'ALT'")
    result = await one_pass.run()
    assert_calls(result.tables, [Call(1, B1, number(1), alt_dial="ALT")], NOW, result.window)


async def test_extended_numbers_are_dialed(one_pass, seed) -> None:
    # RowCorrection.EXTENDED_ALT_DIALED: as AST_VDauto_dial.pl 1905-1927 (the Perl FILL dials the
    # main number): X2 -> alt_phone_count 2; XLAST -> the highest count; X9 with no row -> main number
    await fill_cluster(seed, leads=3, local_trunk_shortage=3)
    await seed.execute("UPDATE vicidial_campaigns SET auto_alt_dial = 'ALT_AND_EXTENDED'")
    for lead, alt in ((1, "X2"), (2, "XLAST"), (3, "X9")):
        await seed.execute("UPDATE vicidial_hopper SET alt_dial = %s WHERE lead_id = %s", (alt, lead))
    for lead, count, code, phone in (
        (1, 1, "1", "312-555-1001"),
        (1, 2, "44", "20 7946 0000"),
        (2, 1, "1", "3125552001"),
        (2, 3, "1", "(773) 555-2003"),
        (3, 1, "1", "3125553001"),
    ):
        await seed.insert(
            "vicidial_list_alt_phones",
            lead_id=lead,
            phone_code=code,
            phone_number=phone,
            alt_phone_count=count,
        )
    result = await one_pass.run()
    calls = [
        Call(1, B1, "2079460000", phone_code="44", alt_dial="X2"),
        Call(2, B1, "7735552003", alt_dial="XLAST"),
        Call(3, B1, number(3), alt_dial="X9"),
    ]
    assert_calls(result.tables, calls, NOW, result.window)


async def test_no_caller_id_number_when_none_qualifies(one_pass, seed) -> None:
    # 2.9.1: campaign_cid of length 6 is not > 6; no list/custom/group CID -> CIDstring = VqueryCID (2.7r)
    await fill_cluster(seed, leads=1, local_trunk_shortage=1)
    await seed.execute("UPDATE vicidial_campaigns SET campaign_cid = '312555'")
    result = await one_pass.run()
    assert_calls(result.tables, [Call(1, B1, number(1), cid="", cid_type="")], NOW, result.window)
    assert result.tables.manager[0]["cmd_line_f"] == f"Callerid: {call_id(NOW, 1)}"


async def test_list_cid_override(one_pass, seed) -> None:
    # 2.9.3: vicidial_lists.campaign_cid_override of length > 6 -> LIST_CID, sent as it is (not digits)
    await fill_cluster(seed, leads=1, local_trunk_shortage=1)
    await seed.execute("UPDATE vicidial_lists SET campaign_cid_override = '(312)5550101'")
    result = await one_pass.run()
    assert_calls(
        result.tables, [Call(1, B1, number(1), cid="(312)5550101", cid_type="LIST_CID")], NOW, result.window
    )


async def test_custom_cid_from_the_security_phrase(one_pass, seed) -> None:
    # 2.9.4a: use_custom_cid Y -> digits(security_phrase) when longer than 6, else the campaign CID stays
    await fill_cluster(seed, leads=2, local_trunk_shortage=2)
    await seed.execute("UPDATE vicidial_campaigns SET use_custom_cid = 'Y'")
    await seed.execute("UPDATE vicidial_list SET security_phrase = 'cid 312-555-0199' WHERE lead_id = 1")
    await seed.execute("UPDATE vicidial_list SET security_phrase = '12-34-56' WHERE lead_id = 2")
    result = await one_pass.run()
    calls = [Call(1, B1, number(1), cid="3125550199", cid_type="CUSTOM_CID"), Call(2, B1, number(2))]
    assert_calls(result.tables, calls, NOW, result.window)


async def _areacode(seed, owner: str, areacode: str, cid: str, count: int, active: str = "Y") -> None:
    await seed.insert(
        "vicidial_campaign_cid_areacodes",
        campaign_id=owner,
        areacode=areacode,
        outbound_cid=cid,
        active=active,
        call_count_today=count,
    )


async def test_cid_group_areacode_takes_the_longest_areacode_and_the_least_used(one_pass, seed) -> None:
    # 2.9.2 AREACODE: areacode IN (31, 312, 3125, 31255) AND active='Y', the last row of
    # ORDER BY CAST(areacode) ASC, call_count_today DESC: areacode 3125, count 4 -> 3125550003 (4 -> 5);
    # the next call sees 9 and 5 -> 3125550003 again (-> 6)
    await fill_cluster(seed, leads=2, local_trunk_shortage=2)
    await seed.execute("UPDATE vicidial_campaigns SET cid_group_id = 'GRP1'")
    await seed.insert("vicidial_cid_groups", cid_group_id="GRP1", cid_group_type="AREACODE")
    await _areacode(seed, "GRP1", "312", "3125550001", 5)
    await _areacode(seed, "GRP1", "3125", "3125550002", 9)
    await _areacode(seed, "GRP1", "3125", "3125550003", 4)
    await _areacode(seed, "GRP1", "31255", "3125550004", 0, active="N")
    await _areacode(seed, "GRP1", "313", "3135550005", 0)
    result = await one_pass.run()
    calls = [Call(n, B1, number(n), cid="3125550003", cid_type="CID_GROUP") for n in (1, 2)]
    assert_calls(result.tables, calls, NOW, result.window)
    counts = {(r["areacode"], r["outbound_cid"]): r["call_count_today"] for r in result.tables.areacodes}
    assert counts == {
        ("312", "3125550001"): 5,
        ("3125", "3125550002"): 9,
        ("3125", "3125550003"): 6,
        ("31255", "3125550004"): 0,
        ("313", "3135550005"): 0,
    }


async def test_list_cid_group_by_state(one_pass, seed) -> None:
    # 2.9.2 STATE via the list's cid_group_id (2.9.3 LIST_CID_GROUP): areacode IN('IL'), the least used
    await fill_cluster(seed, leads=2, local_trunk_shortage=2)
    await seed.execute("UPDATE vicidial_lists SET cid_group_id = 'GRPS'")
    await seed.insert("vicidial_cid_groups", cid_group_id="GRPS", cid_group_type="STATE")
    await _areacode(seed, "GRPS", "IL", "8475550001", 3)
    await _areacode(seed, "GRPS", "IL", "8475550002", 1)
    await _areacode(seed, "GRPS", "CA", "9165550003", 0)
    result = await one_pass.run()
    calls = [Call(n, B1, number(n), cid="8475550002", cid_type="LIST_CID_GROUP") for n in (1, 2)]
    assert_calls(result.tables, calls, NOW, result.window)
    counts = {r["outbound_cid"]: r["call_count_today"] for r in result.tables.areacodes}
    assert counts == {"8475550001": 3, "8475550002": 3, "9165550003": 0}


async def test_cid_group_two_of_type_none_rotates(one_pass, seed) -> None:
    # 2.9.4b-c: cid_group_id GRPE finds no row for 312 -> nothing; cid_group_id_two GRPN (NONE): every
    # active row, the least used; vicidial_cid_groups.cid_auto_rotate_calls + 1 per call
    await fill_cluster(seed, leads=2, local_trunk_shortage=2)
    await seed.execute("UPDATE vicidial_campaigns SET cid_group_id = 'GRPE', cid_group_id_two = 'GRPN'")
    await seed.insert("vicidial_cid_groups", cid_group_id="GRPE", cid_group_type="AREACODE")
    await seed.insert("vicidial_cid_groups", cid_group_id="GRPN", cid_group_type="NONE")
    await _areacode(seed, "GRPE", "999", "9995550000", 0)
    await _areacode(seed, "GRPN", "ANY1", "7735550001", 2)
    await _areacode(seed, "GRPN", "ANY2", "7735550002", 0)
    result = await one_pass.run()
    calls = [Call(n, B1, number(n), cid="7735550002", cid_type="CID_GROUP_TWO") for n in (1, 2)]
    assert_calls(result.tables, calls, NOW, result.window)
    counts = {r["outbound_cid"]: r["call_count_today"] for r in result.tables.areacodes}
    assert counts == {"9995550000": 0, "7735550001": 2, "7735550002": 2}
    assert {r["cid_group_id"]: r["cid_auto_rotate_calls"] for r in result.tables.cid_groups} == {
        "GRPE": 0,
        "GRPN": 2,
    }


async def test_campaign_areacode_cid(one_pass, seed) -> None:
    # 2.9.4d: use_custom_cid AREACODE -> the campaign's own areacode rows: 312 beats 31 -> AC_CID
    await fill_cluster(seed, leads=2, local_trunk_shortage=2)
    await seed.execute("UPDATE vicidial_campaigns SET use_custom_cid = 'AREACODE'")
    await _areacode(seed, CAMPAIGN, "31", "3105550000", 0)
    await _areacode(seed, CAMPAIGN, "312", "3125559999", 0)
    result = await one_pass.run()
    calls = [Call(n, B1, number(n), cid="3125559999", cid_type="AC_CID") for n in (1, 2)]
    assert_calls(result.tables, calls, NOW, result.window)
    counts = {r["outbound_cid"]: r["call_count_today"] for r in result.tables.areacodes}
    assert counts == {"3105550000": 0, "3125559999": 2}


async def test_dial_prefixes_campaign_list_and_x(one_pass, seed) -> None:
    # 2.7n: campaign dial_prefix 8; list 1002 dial_prefix 7 overrides it; list 1003 'X' means none (1237)
    await fill_cluster(seed, leads=1, local_trunk_shortage=3)
    await seed.execute("UPDATE vicidial_campaigns SET dial_prefix = '8'")
    await seed.lead_list(1002, CAMPAIGN, dial_prefix="7")
    await seed.lead_list(1003, CAMPAIGN, dial_prefix="X")
    lead2 = await seed.lead(1002)
    lead3 = await seed.lead(1003)
    await seed.hopper(CAMPAIGN, [lead2, lead3])
    result = await one_pass.run()
    calls = [
        Call(1, B1, number(1), dial_string="813125550000"),
        Call(lead2, B1, number(2), list_id=1002, dial_string="713125550001"),
        Call(lead3, B1, number(3), list_id=1003, dial_string="13125550002"),
    ]
    assert_calls(result.tables, calls, NOW, result.window)
    assert result.tables.lastcalldate == {1001: NOW, 1002: NOW, 1003: NOW}


async def test_omit_phone_code_and_the_default_prefix(one_pass, seed) -> None:
    # 2.7n/p: an empty campaign dial_prefix keeps 9; omit_phone_code Y -> prefix + number
    await fill_cluster(seed, leads=1, local_trunk_shortage=1)
    await seed.execute("UPDATE vicidial_campaigns SET dial_prefix = '', omit_phone_code = 'Y'")
    result = await one_pass.run()
    assert_calls(result.tables, [Call(1, B1, number(1), dial_string="93125550000")], NOW, result.window)


async def test_routing_prefix_by_asterisk_version_and_the_fallback_exten(one_pass, seed) -> None:
    # 2.7s: parse_asterisk_version: 1.8.32 -> minor 8: no prefix; 13.38 -> minor 13 > 11: routing_prefix
    # (55 here). campaign_vdad_exten '' -> the FILL host's answer_transfer_agent 8365 (2.7n).
    await fill_cluster(seed, leads=4, local_trunk_shortage=4)
    await seed.execute(
        "UPDATE servers SET asterisk_version = '1.8.32.3', max_vicidial_trunks = 2 WHERE server_ip = %s",
        (B1,),
    )
    await seed.execute(
        "UPDATE servers SET asterisk_version = '13.38.3', routing_prefix = '55' WHERE server_ip = %s", (B2,)
    )
    await seed.execute("UPDATE vicidial_campaigns SET campaign_vdad_exten = ''")
    result = await one_pass.run()
    calls = [Call(n, B1, number(n), exten="8365") for n in (1, 2)] + [
        Call(n, B2, number(n), exten="558365") for n in (3, 4)
    ]
    assert_calls(result.tables, calls, NOW, result.window)


async def test_the_dial_timeout_lead_container(one_pass, seed) -> None:
    # 2.7e: the container's lines (\r \t ' " \ stripped, ';' comments cut, ' => ' -> '=>'): vendor VIP
    # -> 45 s; SLOW -> 3, not > 4: the campaign's 30 s; "QUOTED" (quotes stripped) -> 50 s; after
    # manual_dial_field the field is still vendor_lead_code (that line is skipped); others 30 s; x 1000
    await seed.system_settings()
    await seed.server("agent1", HOST, max_vicidial_trunks=6, asterisk_version="18.21.0")
    await seed.server(
        "balance1", B1, vicidial_balance_active="Y", vicidial_balance_rank=2, asterisk_version="18.21.0"
    )
    await seed.campaign(CAMPAIGN, dial_timeout=30, dial_timeout_lead_container="DTL1")
    await seed.insert(
        "vicidial_settings_containers",
        container_id="DTL1",
        container_entry=(
            "; timeouts by vendor\r\nauto_dial_field => vendor_lead_code\r\nVIP => 45\r\n"
            'SLOW=>3 ; too short\r\nmanual_dial_field => source_id\r\n"QUOTED" => 50\r\n'
        ),
    )
    await seed.lead_list(LIST, CAMPAIGN)
    leads = [await seed.lead(LIST, vendor_lead_code=v) for v in ("VIP", "SLOW", "QUOTED", "OTHER")]
    await seed.hopper(CAMPAIGN, leads)
    await seed.live_agents(2, HOST, CAMPAIGN)
    await seed.campaign_server_stats(CAMPAIGN, HOST, 4, update_time=NOW - timedelta(seconds=5))
    result = await one_pass.run()
    calls = [
        Call(n, B1, number(n), timeout=t)
        for n, t in zip(leads, ("45000", "30000", "50000", "30000"), strict=True)
    ]
    assert_calls(result.tables, calls, NOW, result.window)


async def test_scheduled_callback_auto_reschedule(one_pass, seed) -> None:
    # 2.7l: the campaign's scheduled_callbacks_auto_reschedule DAY: the lead's first LIVE ANYONE callback
    # (lowest callback_id) -> vicidial_recent_ascb_calls; a USERONLY callback is not taken
    await fill_cluster(seed, leads=3, local_trunk_shortage=3)
    await seed.execute("UPDATE vicidial_campaigns SET scheduled_callbacks_auto_reschedule = 'DAY'")
    cb_time = datetime(2026, 11, 26, 9, 0, 0)
    for lead, recipient, status in (
        (1, "ANYONE", "LIVE"),
        (1, "ANYONE", "LIVE"),
        (2, "USERONLY", "LIVE"),
        (3, "ANYONE", "INACTIVE"),
    ):
        await seed.insert(
            "vicidial_callbacks",
            lead_id=lead,
            list_id=LIST,
            campaign_id=CAMPAIGN,
            status=status,
            callback_time=cb_time,
            recipient=recipient,
            lead_status="CALLBK",
        )
    result = await one_pass.run()
    assert_calls(result.tables, [Call(n, B1, number(n)) for n in (1, 2, 3)], NOW, result.window)
    rows = result.tables.ascb
    assert [{k: v for k, v in rows[0].items() if k != "call_date"}] == [
        {
            "callback_date": cb_time,
            "callback_id": 1,
            "caller_code": call_id(NOW, 1),
            "lead_id": 1,
            "server_ip": B1,
            "orig_status": "CALLBK",
            "reschedule": "DAY",
            "list_id": LIST,
            "rescheduled": "U",
        }
    ]
    assert len(rows) == 1 and result.window.holds(rows[0]["call_date"])  # call_date=NOW() (line 974)


async def test_a_callback_hopper_row_looks_up_its_callback(one_pass, seed) -> None:
    # 2.7l: hopper source 'C' with the setting DISABLED: looked up too; reschedule holds the setting
    await fill_cluster(seed, leads=2, local_trunk_shortage=2)
    await seed.execute("UPDATE vicidial_hopper SET source = 'C' WHERE lead_id = 2")
    await seed.insert(
        "vicidial_callbacks",
        lead_id=1,
        list_id=LIST,
        status="LIVE",
        recipient="ANYONE",
        callback_time=datetime(2026, 11, 27, 9, 0),
        lead_status="CBHOLD",
    )
    await seed.insert(
        "vicidial_callbacks",
        lead_id=2,
        list_id=LIST,
        status="LIVE",
        recipient="ANYONE",
        callback_time=datetime(2026, 11, 27, 10, 0),
        lead_status="CALLBK",
    )
    result = await one_pass.run()
    assert_calls(result.tables, [Call(n, B1, number(n)) for n in (1, 2)], NOW, result.window)
    # lead 1's callback is not looked up (source '', setting DISABLED)
    assert [
        (r["lead_id"], r["callback_id"], r["reschedule"], r["orig_status"]) for r in result.tables.ascb
    ] == [(2, 2, "DISABLED", "CALLBK")]


async def test_called_since_last_reset_progression(one_pass, seed) -> None:
    # lines 864-875: N->Y, Y->Y1, Y1->Y2, Y9->Y10, Y10->'Y11' which a non-strict server stores as the
    # ENUM error value '' (spec 6.9); D->Y; called_count + 1 held at 65535 (SMALLINT UNSIGNED)
    await fill_cluster(seed, leads=0, local_trunk_shortage=6)
    leads = []
    for cslr, count in (("N", 0), ("Y", 5), ("Y1", 65535), ("Y9", 2), ("Y10", 9), ("D", 1)):
        leads.append(await seed.lead(LIST, called_since_last_reset=cslr, called_count=count))
    await seed.hopper(CAMPAIGN, leads)
    result = await one_pass.run()
    assert_calls(result.tables, [Call(n, B1, number(n)) for n in leads], NOW, result.window)
    assert_leads_dialed(
        result.tables,
        {
            1: (1, "Y", NOW),
            2: (6, "Y1", NOW),
            3: (65535, "Y2", NOW),
            4: (3, "Y10", NOW),
            5: (10, "", NOW),
            6: (2, "Y", NOW),
        },
    )


@pytest.mark.parametrize(
    ("now", "offsets"),
    [
        # EDT (DST): LOCAL_GMT_OFF = -5 + 1 = -4 (get_time_now 1651-1657); LLCT = now - (-4 - gmt) h
        (
            datetime(2026, 7, 15, 10, 0, 0),
            {
                "-7.00": datetime(2026, 7, 15, 7, 0),
                "5.50": datetime(2026, 7, 15, 19, 30),
                "-4.00": datetime(2026, 7, 15, 10, 0),
                "-10.00": datetime(2026, 7, 15, 4, 0),
            },
        ),
        # EST: LOCAL_GMT_OFF = -5
        (
            datetime(2026, 1, 15, 10, 0, 0),
            {"-8.00": datetime(2026, 1, 15, 7, 0), "-5.00": datetime(2026, 1, 15, 10, 0)},
        ),
        # 03:30 EDT, just after the spring change (07:30 UTC): -4 - -5 = 1 h back is 06:30 UTC = 01:30 EST
        # (localtime of the shifted epoch, not 02:30); -4 - -3 = -1 h is 08:30 UTC = 04:30 EDT
        (
            datetime(2026, 3, 8, 3, 30, 0),
            {"-5.00": datetime(2026, 3, 8, 1, 30), "-3.00": datetime(2026, 3, 8, 4, 30)},
        ),
    ],
)
async def test_last_local_call_time_follows_gmt_offsets_and_dst(one_pass, seed, now, offsets) -> None:
    await fill_cluster(seed, now=now, leads=0, local_trunk_shortage=len(offsets))
    leads = [await seed.lead(LIST, gmt_offset_now=gmt) for gmt in offsets]
    await seed.hopper(CAMPAIGN, leads)
    result = await one_pass.run(now=now, zone="America/New_York")
    assert_calls(result.tables, [Call(n, B1, number(n)) for n in leads], now, result.window)
    assert_leads_dialed(
        result.tables, {lead: (1, "Y", llct) for lead, llct in zip(leads, offsets.values(), strict=True)}
    )
    assert result.tables.calldate == {CAMPAIGN: now}


async def test_the_24_hour_limit_state(one_pass, seed) -> None:
    # 2.7q: call_limit_24hour 1: vicidial_phone_codes by country_code = phone_code and the first 3 digits;
    # state VARCHAR(4) 'LND' is stored in the VARCHAR(2) column as 'LN'; no row -> ''
    await fill_cluster(seed, leads=1, local_trunk_shortage=3)
    await seed.execute("UPDATE system_settings SET call_limit_24hour = '1'")
    for code, area, state in ((1, "312", "IL"), (44, "207", "LND"), (1, "847", "IL")):
        await seed.insert(
            "vicidial_phone_codes", country_code=code, areacode=area, state=state, country="USA"
        )
    lead2 = await seed.lead(LIST, phone_code="44", phone_numbers=None, phone_number="2075550000")
    lead3 = await seed.lead(LIST, phone_number="6465550000")
    await seed.hopper(CAMPAIGN, [lead2, lead3])
    result = await one_pass.run()
    calls = [
        Call(1, B1, number(1), tf_state="IL"),
        Call(lead2, B1, "2075550000", phone_code="44", tf_state="LND"),
        Call(lead3, B1, "6465550000"),
    ]
    assert_calls(result.tables, calls, NOW, result.window)


async def test_long_values_are_cut_as_a_non_strict_server_cuts_them(one_pass, seed) -> None:
    # 6.7/6.12/6.15: a 30-digit ADDR3 number in vac/24h/daily phone_number VARCHAR(18); the VDACnote
    # (105 characters here) in cmd_line_k VARCHAR(100); a 40-digit custom CID in dial_cid_log VARCHAR(20)
    await fill_cluster(seed, leads=1, local_trunk_shortage=1)
    long_number = "1" * 10 + "2" * 10 + "3" * 10
    long_cid = "4" * 40
    await seed.execute("UPDATE vicidial_campaigns SET auto_alt_dial = 'ADDR3_ONLY', use_custom_cid = 'Y'")
    await seed.execute(
        "UPDATE vicidial_list SET phone_code = '1234567890', address3 = %s, security_phrase = %s",
        (long_number, long_cid),
    )
    await seed.execute("UPDATE vicidial_hopper SET alt_dial = 'ADDR3'")
    result = await one_pass.run()
    call = Call(
        1, B1, long_number, phone_code="1234567890", alt_dial="ADDR3", cid=long_cid, cid_type="CUSTOM_CID"
    )
    assert_calls(result.tables, [call], NOW, result.window)
    note = result.tables.manager[0]["cmd_line_k"]
    assert len(note) == 100 and note.endswith("|10.10.10.11|CUSTO")


async def test_two_campaigns_share_the_lines_they_plan(one_pass, seed) -> None:
    # 2.2-2.4 per campaign in campaign_id order; CAMPB sees CAMPA's 3 calls on .12 (4 trunks) as
    # VAC_server_NONcamp: temp_avail 4 - 0 - 3 = 1 -> 1 on .12, the other on .13. vm ids keep that order.
    await seed.system_settings()
    await seed.server("agent1", HOST, max_vicidial_trunks=6, asterisk_version="18.21.0")
    await seed.server(
        "balance1",
        B1,
        max_vicidial_trunks=4,
        vicidial_balance_active="Y",
        vicidial_balance_rank=2,
        asterisk_version="18.21.0",
    )
    await seed.server(
        "balance2", B2, vicidial_balance_active="Y", vicidial_balance_rank=1, asterisk_version="18.21.0"
    )
    for campaign, list_id, shortage in (("CAMPA", 2001, 3), ("CAMPB", 2002, 2)):
        await seed.campaign(campaign)
        await seed.lead_list(list_id, campaign)
        await seed.hopper(campaign, await seed.leads(list_id, 3))
        await seed.live_agents(2, HOST, campaign)
        await seed.campaign_server_stats(campaign, HOST, shortage, update_time=NOW - timedelta(seconds=5))
    result = await one_pass.run()
    calls = [Call(n, B1, number(n), campaign="CAMPA", list_id=2001) for n in (1, 2, 3)] + [
        Call(4, B1, number(4), campaign="CAMPB", list_id=2002),
        Call(5, B2, number(5), campaign="CAMPB", list_id=2002),
    ]
    assert_calls(result.tables, calls, NOW, result.window)
    assert result.tables.hopper == hopper_rows((6, 6, "READY", None), campaign="CAMPB")
    assert result.tables.balance_fill == {"CAMPA": 3, "CAMPB": 2}
    assert result.tables.calldate == {"CAMPA": NOW, "CAMPB": NOW}
    assert result.tables.lastcalldate == {2001: NOW, 2002: NOW}


async def test_need_already_met_writes_the_in_flight_count(one_pass, seed) -> None:
    # 2.3.4: needed = 6 - 6 OUTBALANCE rows = 0: the gate (line 481) fails, nothing is dialed; the
    # balance_trunk_fill UPDATE (lines 1511-1515) is outside the gate: 6 + 0
    await fill_cluster(seed)
    await seed.auto_calls(6, B2, CAMPAIGN, call_type="OUTBALANCE", lead_id=901)
    result = await one_pass.run()
    assert result.tables.manager == []
    assert result.tables.balance_fill == {CAMPAIGN: 6}
