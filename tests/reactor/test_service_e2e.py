"""The live reactor end to end: simulated Asterisk servers, the real MariaDB, the real service.

Expected numbers, by hand (spec 4.4 and 2.4): A has 20 trunks and 10 READY agents at level 3
(goal 30). Its own dialer keeps 20 calls of the campaign: make = 30 - 20 = 10, line goal
20 + 10 = 30 > 20 -> shortage min(30 - 20, 10) = 10. B (rank 2): available (30 - 22) - 0 = 8;
C (rank 1): available 30. So 8 calls on B, 2 on C.
"""

from __future__ import annotations

import pytest
from e2e_helpers import B, C, CAMPAIGN, live_cluster

pytestmark = pytest.mark.timeout(90)


async def test_a_shortage_on_a_fills_b_then_c_by_rank_and_capacity(database_dsn, seed) -> None:
    async with live_cluster(database_dsn, seed) as cluster:
        await cluster.eventually(lambda: len(cluster.fill_originates(B)) + len(cluster.fill_originates(C)) >= 10)
        assert len(cluster.fill_originates(B)) == 8
        assert len(cluster.fill_originates(C)) == 2
        rows = await cluster.rows(
            "SELECT server_ip, campaign_id, status, call_type FROM vicidial_auto_calls"
            " WHERE call_type = 'OUTBALANCE' ORDER BY auto_call_id"
        )
        assert [r["server_ip"] for r in rows] == [B] * 8 + [C] * 2
        assert {(r["campaign_id"], r["status"]) for r in rows} == {(CAMPAIGN, "SENT")}
        manager = await cluster.rows("SELECT server_ip, status, cmd_line_b FROM vicidial_manager ORDER BY man_id")
        assert [m["status"] for m in manager] == ["SENT"] * 10  # the audit trail of AMI originates
        assert {m["cmd_line_b"] for m in manager} == {"Exten: 138368"}  # Asterisk 22: routing prefix 13
        latency = cluster.service.latency
        assert len(latency.samples) == 10
