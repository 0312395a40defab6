"""``fillreactor demo``: the real service, a simulated cluster, a scratch database, bounded in time.

Expected numbers by hand (spec 4.4, 2.4): 10 agents x level 3 = 30 wanted on 20 trunks, the agent
server's own dialer holding its 20: shortage 10. The rank-2 server has 30 - 22 off-limits = 8 lines
for balance calls, the rank-1 server takes the other 2.
"""

from __future__ import annotations

import pytest

from fillreactor.cli import main
from fillreactor.demo import run_demo
from fillreactor.testing.database import database_exists, test_dsn

pytestmark = pytest.mark.timeout(120)


async def test_the_demo_runs_the_service_and_cleans_up() -> None:
    lines: list[str] = []
    stats = await run_demo(seconds=3.0, time_scale=0.05, out=lines.append)
    plans = [
        line
        for line in lines
        if line.startswith("  plan DEMO: shortage 10 in flight 0") and not line.endswith("(not dialing)")
    ]
    assert plans and plans[0].endswith("needed 10 -> 10.10.10.12 +8, 10.10.10.13 +2")
    assert stats.originates["10.10.10.12"] >= 8 and stats.originates["10.10.10.13"] >= 2
    assert stats.over_limit == []
    assert stats.most_fill_live <= 10  # never more FILL calls live than the shortage
    assert stats.rows["vicidial_manager"] == sum(stats.originates.values())  # one audit row per call
    database = lines[0].split("scratch database ")[1].split()[0]
    assert lines[-1] == f"scratch database {database} dropped"
    assert not database_exists(test_dsn(), database)


def test_demo_rejects_nonsense_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--seconds", "0"]) == 2
    assert "must be positive" in capsys.readouterr().out
