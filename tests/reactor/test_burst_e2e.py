"""A burst of 1,000 balance calls across four servers: limits, needs and leads hold (issue 9 point 7).

By hand (spec 4.2/4.4): A has 100 READY agents at dial level 10 -> goal 1000; A keeps no calls of
its own and has 0 trunks: make 1000, line goal 0 + 1000 > 0 -> shortage min(1000 - 0, 1000) = 1000.
Balance servers B..E, 250 trunks each, ranks 4..1: 250 calls each (spec 2.4), 1000 in all.
"""

from __future__ import annotations

from collections import Counter

import pytest
from e2e_helpers import CAMPAIGN, live_cluster

from fillreactor.simulator import CallTiming

pytestmark = pytest.mark.timeout(180)

SERVERS = ("10.10.10.12", "10.10.10.13", "10.10.10.14", "10.10.10.15")


async def test_a_burst_of_1000_calls_keeps_every_limit(database_dsn, seed) -> None:
    balance = tuple((250, 0, rank) for rank in (4, 3, 2, 1))
    async with live_cluster(
        database_dsn, seed, servers=5, agent_calls=0, agents=100, level="10", agent_trunks=0,
        balance=balance, leads=1050, timing=CallTiming(ring=1.0, talk=None, vdad_wait=None),
    ) as cluster:  # answered calls stay up: every placed call is live till the end
        service = cluster.service
        most: Counter[str] = Counter()

        def watch(server: str, _event: object, _read_at: float) -> None:
            # after every AMI event: the model's count of lines in use on each balance server
            usage = service.core.model.usage(server)
            most[server] = max(most[server], usage)

        service.event_observers.append(watch)
        await cluster.eventually(lambda: sum(len(cluster.fill_originates(ip)) for ip in SERVERS) >= 1000, 60)
        await cluster.eventually(lambda: not service._dial_tasks, 30)
        per_server = {ip: len(cluster.fill_originates(ip)) for ip in SERVERS}
        assert per_server == dict.fromkeys(SERVERS, 250)
        assert all(most[ip] <= 250 for ip in SERVERS), most
        action_ids = [r.action_id for ip in SERVERS for r in cluster.fill_originates(ip)]
        assert len(set(action_ids)) == 1000  # no call id twice
        rows = await cluster.rows(
            "SELECT lead_id, callerid, server_ip FROM vicidial_auto_calls WHERE call_type = 'OUTBALANCE'"
        )
        leads = [r["lead_id"] for r in rows]
        assert len(leads) == len(set(leads)) == 1000  # no lead dialed twice
        hopper = await cluster.rows("SELECT status, COUNT(*) AS n FROM vicidial_hopper GROUP BY status")
        assert {r["status"]: r["n"] for r in hopper} == {"READY": 50}  # nothing lost in QUEUE/INCALL
        manager = await cluster.rows(
            "SELECT callerid FROM vicidial_manager WHERE action = 'Originate' AND status = 'SENT'"
        )
        assert {m["callerid"] for m in manager} == {r["callerid"] for r in rows}
        counted = await cluster.rows(
            "SELECT COUNT(*) AS n FROM vicidial_list WHERE called_count = 1 AND called_since_last_reset = 'Y'"
        )
        assert counted[0]["n"] == 1000
        fill = await cluster.rows(
            "SELECT balance_trunk_fill FROM vicidial_campaign_stats WHERE campaign_id = %s", (CAMPAIGN,)
        )
        assert fill[0]["balance_trunk_fill"] == 1000
