"""Start-up recovery of stale VDFC_ claims (issue 7 point 5): released, or finished when the call went out."""

from __future__ import annotations

from datetime import timedelta

from dialer_helpers import B1, B2, CAMPAIGN, HOST, NOW, Call, assert_calls, call_id, fill_cluster, hopper_rows

from fillreactor.dialer import recover_stale_claims
from fillreactor.store import calls as store_calls

COLUMNS = ["hopper_id", "lead_id", "campaign_id", "status", "user"]


async def originate_row(seed, lead_id: int, entry_date, status: str = "SENT", server_ip: str = B1) -> None:
    """The vicidial_manager Originate row a FILL call leaves (spec 5.4), for a lead."""
    await seed.insert(
        "vicidial_manager",
        entry_date=entry_date,
        status=status,
        response="N",
        server_ip=server_ip,
        action="Originate",
        callerid=call_id(entry_date, lead_id),
        cmd_line_k=f"VDACnote: {CAMPAIGN}|{lead_id}|1|3125550000|OUTBALANCE|MAIN|50|{HOST}|CAMPAIGN_CID",
    )


async def stale_hopper(seed) -> None:
    """Rows as a crash leaves them: lead 1 QUEUE (claimed, never written); lead 2 INCALL with its
    Originate written; lead 3 INCALL without; lead 4 INCALL whose only Originate is 2 hours old (another
    call); lead 5 claimed by the local dialer (VDAD_, not ours); lead 6 READY."""
    await fill_cluster(seed, leads=6)
    for lead, status, user in (
        (1, "QUEUE", f"VDFC_{B1}"),
        (2, "INCALL", f"VDFC_{B1}"),
        (3, "INCALL", f"VDFC_{B2}"),
        (4, "INCALL", f"VDFC_{B2}"),
        (5, "QUEUE", f"VDAD_{HOST}"),
    ):
        await seed.execute(
            "UPDATE vicidial_hopper SET status = %s, user = %s WHERE lead_id = %s", (status, user, lead)
        )
    await originate_row(seed, 2, NOW - timedelta(seconds=30))
    await originate_row(seed, 4, NOW - timedelta(hours=2))


async def test_stale_claims_are_released_or_finished(store_db, seed) -> None:
    await stale_hopper(seed)
    recovery = await recover_stale_claims(store_db, now=NOW, min_age=0)
    assert sorted(c.lead_id for c in recovery.released) == [1, 3, 4]
    assert [c.lead_id for c in recovery.deleted] == [2]
    # released as VICIdial's scripts release rows: READY, user '' (AST_VDhopper.pl 964)
    assert await seed.rows("vicidial_hopper", columns=COLUMNS, order_by="hopper_id") == hopper_rows(
        (1, 1, "READY", ""),
        (3, 3, "READY", ""),
        (4, 4, "READY", ""),
        (5, 5, "QUEUE", f"VDAD_{HOST}"),
        (6, 6, "READY", None),
    )


async def test_a_dead_originate_row_is_no_proof_the_call_went_out(store_db, seed) -> None:
    # DEAD: an Originate refused and undone, or written by --dial-via ami and not sent yet when the
    # process died (the row turns SENT only once the bytes are written): the lead goes back to READY
    await fill_cluster(seed, leads=2)
    await seed.execute(
        "UPDATE vicidial_hopper SET status = 'INCALL', user = %s WHERE lead_id = 1", (f"VDFC_{B1}",)
    )
    await originate_row(seed, 1, NOW - timedelta(seconds=5), status="DEAD")
    recovery = await recover_stale_claims(store_db, now=NOW, min_age=0)
    assert [c.lead_id for c in recovery.released] == [1] and recovery.deleted == []


async def test_only_claims_unchanged_after_the_age_are_stale(store_db, seed) -> None:
    # no hopper timestamp: a claim is stale when it is still there, unchanged, min_age later. Meanwhile
    # (another FILL still working) lead 1's row is dialed and deleted and lead 3's becomes QUEUE again.
    await stale_hopper(seed)
    waited: list[float] = []

    async def meanwhile(seconds: float) -> None:
        waited.append(seconds)
        await seed.execute("DELETE FROM vicidial_hopper WHERE lead_id = 1")
        await seed.execute("UPDATE vicidial_hopper SET status = 'QUEUE' WHERE lead_id = 3")

    recovery = await recover_stale_claims(store_db, now=NOW, min_age=30, sleep=meanwhile)
    assert waited == [30]
    assert [c.lead_id for c in recovery.released] == [4]
    assert [c.lead_id for c in recovery.deleted] == [2]
    assert await seed.rows("vicidial_hopper", columns=COLUMNS, order_by="hopper_id") == hopper_rows(
        (3, 3, "QUEUE", f"VDFC_{B2}"),
        (4, 4, "READY", ""),
        (5, 5, "QUEUE", f"VDAD_{HOST}"),
        (6, 6, "READY", None),
    )


async def test_a_pass_recovers_first_and_dials_the_released_leads(one_pass, seed) -> None:
    # the pass releases lead 1 (QUEUE) and lead 3 (INCALL, no Originate), deletes lead 2's row, and its
    # claim (priority 0, hopper_id order) then takes 1, 3, 4, 6 for the shortage of 6 (lead 5 is VDAD's)
    await stale_hopper(seed)
    # keep only lead 2's Originate row (lead 4's is 2 hours old: not this call's anyway)
    await seed.execute("DELETE FROM vicidial_manager WHERE callerid LIKE %s", ("%0000000004",))
    result = await one_pass.run()
    assert result.code == 0, result.text
    assert "recovered stale claims: 3 released to READY, 1 deleted" in result.text
    calls = [Call(n, B1, f"312555{n - 1:04d}") for n in (1, 3, 4, 6)]
    existing = await seed.rows("vicidial_manager", order_by="man_id")
    assert [r["callerid"] for r in existing[:1]] == [call_id(NOW - timedelta(seconds=30), 2)]
    assert_calls_after_recovery(result, calls)
    assert result.tables.hopper == hopper_rows((5, 5, "QUEUE", f"VDAD_{HOST}"))


def assert_calls_after_recovery(result, calls) -> None:
    # the recovery's own Originate row (lead 2) is man_id 1; the pass's rows follow
    tables = result.tables
    tables.manager = tables.manager[1:]
    for n, row in enumerate(tables.manager, start=1):
        row["man_id"] = n
    assert_calls(tables, calls, NOW, result.window)


async def auto_call_row(seed, lead_id: int, entry_date, server_ip: str = B1) -> None:
    """The vicidial_auto_calls row of a written FILL call (spec 5.5)."""
    await seed.insert(
        "vicidial_auto_calls", server_ip=server_ip, campaign_id=CAMPAIGN, status="SENT", lead_id=lead_id,
        callerid=call_id(entry_date, lead_id), call_type="OUTBALANCE", call_time=entry_date,
    )


async def unconfirmed_attempts(seed) -> str:
    """Leads 1-3 INCALL, each with a DEAD Originate row and its vicidial_auto_calls row on B1: written,
    and maybe sent (a crash between the write and the SENT mark, or an Originate with no reply)."""
    await fill_cluster(seed, leads=3)
    when = NOW - timedelta(seconds=5)
    for lead in (1, 2, 3):
        await seed.execute(
            "UPDATE vicidial_hopper SET status = 'INCALL', user = %s WHERE lead_id = %s", (f"VDFC_{B1}", lead)
        )
        await originate_row(seed, lead, when, status="DEAD")
        await auto_call_row(seed, lead, when)
    return call_id(when, 0)[:-10]


async def test_an_unconfirmed_attempt_is_decided_by_what_its_server_saw(store_db, seed) -> None:
    # B1's AMI saw lead 1's call, did not see lead 2's, and cannot tell for lead 3 (not resynced yet)
    prefix = await unconfirmed_attempts(seed)
    answers = {f"{prefix}{1:010d}": True, f"{prefix}{2:010d}": False, f"{prefix}{3:010d}": None}
    asked: list[tuple[str, str]] = []

    def went_out(call: str, server: str) -> bool | None:
        asked.append((call, server))
        return answers[call]

    recovery = await recover_stale_claims(store_db, now=NOW, min_age=0, went_out=went_out)
    assert sorted(asked) == [(cid, B1) for cid in sorted(answers)]
    assert [c.lead_id for c in recovery.deleted] == [1]
    assert [c.lead_id for c in recovery.released] == [2]
    assert [c.lead_id for c in recovery.undecided] == [3]
    assert await seed.rows("vicidial_hopper", columns=COLUMNS, order_by="hopper_id") == hopper_rows(
        (2, 2, "READY", ""), (3, 3, "INCALL", f"VDFC_{B1}")
    )
    # lead 1's row is SENT (it went out), lead 2's stays DEAD and its vac row is gone (not in flight)
    manager = await seed.rows("vicidial_manager", columns=["callerid", "status"], order_by="man_id")
    assert [r["status"] for r in manager] == ["SENT", "DEAD", "DEAD"]
    vac = await seed.rows("vicidial_auto_calls", columns=["lead_id"], order_by="auto_call_id")
    assert [r["lead_id"] for r in vac] == [1, 3]


async def test_without_an_ami_view_an_unconfirmed_attempt_is_left_alone(store_db, seed) -> None:
    # `run --once` has no AMI view: it neither redials nor deletes a lead that may have gone out
    await unconfirmed_attempts(seed)
    recovery = await recover_stale_claims(store_db, now=NOW, min_age=0)
    assert (recovery.deleted, recovery.released) == ([], [])
    assert [c.lead_id for c in recovery.undecided] == [1, 2, 3]
    assert len(await seed.rows("vicidial_auto_calls")) == 3


async def test_the_sent_mark_names_the_server(store_db, seed) -> None:
    # one call id (same lead, same second) refused on B2 and sent on B1: only B1's row turns SENT
    await fill_cluster(seed, leads=1)
    await originate_row(seed, 1, NOW, status="DEAD", server_ip=B2)
    await originate_row(seed, 1, NOW, status="DEAD", server_ip=B1)
    await store_calls.mark_attempt_sent(store_db, call_id(NOW, 1), B1)
    manager = await seed.rows("vicidial_manager", columns=["server_ip", "status"], order_by="man_id")
    assert manager == [{"server_ip": B2, "status": "DEAD"}, {"server_ip": B1, "status": "SENT"}]


async def test_an_auto_calls_row_without_its_originate_row_is_undone_without_asking(store_db, seed) -> None:
    # stopped between the vicidial_auto_calls insert and the vicidial_manager one (dialer._chunk):
    # the Originate row comes first in both ways of sending, so this call never left; its SENT vac row
    # would count as a line on B1 (AST_VDauto_dial.pl counts SENT rows) until something deleted it.
    # Even `run --once`, with no AMI view, undoes it and releases the lead.
    await fill_cluster(seed, leads=2)
    await seed.execute(
        "UPDATE vicidial_hopper SET status = 'INCALL', user = %s WHERE lead_id IN (1, 2)", (f"VDFC_{B1}",)
    )
    when = NOW - timedelta(seconds=5)
    await auto_call_row(seed, 1, when)
    await auto_call_row(seed, 2, when)
    await originate_row(seed, 2, when, status="DEAD")  # lead 2: written and maybe sent
    recovery = await recover_stale_claims(store_db, now=NOW, min_age=0)
    assert [c.lead_id for c in recovery.released] == [1]
    assert [c.lead_id for c in recovery.undecided] == [2]
    vac = await seed.rows("vicidial_auto_calls", columns=["lead_id"], order_by="auto_call_id")
    assert [r["lead_id"] for r in vac] == [2]
    assert await seed.rows("vicidial_hopper", columns=COLUMNS, order_by="hopper_id") == hopper_rows(
        (1, 1, "READY", ""), (2, 2, "INCALL", f"VDFC_{B1}")
    )
