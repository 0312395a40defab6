"""``fillreactor demo``: the core end to end against the simulated cluster, over real AMI sessions.

The demo connects panoramisk (with FastAMIProtocol) to three simulated servers, resyncs each with
CoreShowChannels, follows their own dialers' calls in the ChannelModel, and places the planned
OUTBALANCE calls on the balance servers. These tests check what it did, not how long it took.
"""

from __future__ import annotations

import pytest

from fillreactor.cli import main
from fillreactor.demo import run_demo


async def test_demo_fills_the_agent_servers_shortage_on_the_balance_servers_and_never_above_it() -> None:
    lines: list[str] = []
    stats = await run_demo(seconds=1.5, time_scale=0.02, out=lines.append)

    assert [line for line in lines if "logged in, resynced" in line] == [
        "10.10.10.11: logged in, resynced (0 channels)",
        "10.10.10.12: logged in, resynced (0 channels)",
        "10.10.10.13: logged in, resynced (0 channels)",
    ]
    plans = [line for line in lines if line.startswith("  plan DEMO")]
    # 10 agents x level 3 = 30 wanted, 20 trunks: shortage 10. The rank-2 server has 30 - 22
    # offlimits = 8 lines for balance calls, the rank-1 server takes the other 2.
    assert plans[0] == "  plan DEMO: shortage 10, in flight 0, needed 10 -> 10.10.10.12 +8, 10.10.10.13 +2"
    assert stats.originated >= 10
    assert stats.over_need == 0
    assert 0 < stats.most_in_flight <= 10
    assert lines[-1].startswith("done: ")


def test_demo_rejects_nonsense_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--seconds", "0"]) == 2
    assert "must be positive" in capsys.readouterr().out
