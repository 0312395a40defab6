"""``fillreactor status``: bars drawn by hand, and the real thing asked over the socket of a running
instance (serve() in this loop, the CLI in a subprocess).

The running cluster's numbers are service_helpers' (spec 4.4, 2.4): A is short by 10 with its 20
calls on 20 trunks; B takes 8 (30 trunks, 22 off limits: its threshold is 30 - 22 = 8), C takes 2.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from service_helpers import (
    CAMPAIGN,
    A,
    B,
    C,
    eventually,
    fillreactor_command,
    running_service,
    subprocess_env,
)

from fillreactor.service.status import StatusServer, Unreachable, ask, render, usage_bar

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize(
    ("args", "bar"),
    [
        # 6 live + 2 reserved of 30 at one cell per line; the threshold mark after cell 8
        ((8, 2, 30, 8), "[######++|......................]"),
        ((20, 0, 20, None), "[" + "#" * 30 + "]"),
        ((25, 0, 20, None), "[" + "#" * 30 + "]!"),  # over its limit
        ((0, 0, 30, 30), "[" + "." * 30 + "]"),  # the threshold at the limit: no mark
        ((3, 0, None, None), "[" + "?" * 30 + "]"),  # no limit known yet
    ],
)
def test_usage_bars(args, bar) -> None:
    assert usage_bar(*args) == bar


def test_a_narrow_bar_scales_the_lines_to_its_cells() -> None:
    # 10 cells for 30 lines: 3 lines a cell; 15 used -> 5 cells, threshold 21 -> mark after cell 7
    assert usage_bar(15, 0, 30, 21, width=10) == "[#####..|...]"


DOCUMENT = {
    "version": "0.1.0",
    "pid": 4242,
    "dialing": True,
    "why_not_dialing": "",
    "leader": True,
    "shortage_source": "live",
    "dial_via": "ami",
    "trigger": "event",
    "latency_ms": {"p50": 2.5, "p99": 7.25, "samples": 10},
    "servers": [
        {
            "server_ip": A,
            "usage": 20,
            "reservations": 0,
            "limit": 20,
            "balance": False,
            "families": {"V": 20},
            "link": "ready",
            "dialable": True,
            "threshold": None,
        },
        {
            "server_ip": B,
            "usage": 8,
            "reservations": 2,
            "limit": 30,
            "balance": True,
            "families": {"V": 6},
            "link": "ready",
            "dialable": True,
            "threshold": 8,
        },
        {
            "server_ip": C,
            "usage": 0,
            "reservations": 0,
            "limit": 30,
            "balance": True,
            "families": {},
            "link": "down",
            "dialable": False,
            "threshold": 30,
        },
    ],
    "campaigns": [
        {"campaign_id": "SALES", "shortage": 10, "short_on": {A: 10}, "fill_in_flight": 8, "need": 2}
    ],
}


def test_the_status_text_of_a_document() -> None:
    # 10 cells for 30 lines (3 a cell): B 6 live -> 2 '#', 8 used -> 3 cells, threshold 8 -> mark after 3
    assert render(DOCUMENT, width=10) == (
        "fillreactor 0.1.0 (pid 4242): dialing; leader; shortage live, dial via ami, trigger event\n"
        "reaction latency p50 2.5 ms, p99 7.25 ms (10 calls)\n"
        "\n"
        "server          link          lines used    used/limit  calls\n"
        "10.10.10.11     ready         [##########]       20/20  V 20\n"
        "10.10.10.12     ready         [##+|.......]       8/30  V 6  (2 reserved, balance, threshold 8)\n"
        "10.10.10.13     down          [..........]        0/30  -  (balance, threshold 30, not dialable)\n"
        "\n"
        "campaign   shortage   need fill in flight  short on\n"
        "SALES            10      2              8  10.10.10.11 10\n"
    )


def test_not_dialing_says_why() -> None:
    text = render(
        {
            **DOCUMENT,
            "dialing": False,
            "why_not_dialing": "standby: another instance holds the lock",
            "leader": False,
            "servers": [],
            "campaigns": [],
        }
    )
    assert text.splitlines()[0].endswith(
        "NOT dialing (standby: another instance holds the lock); standby; "
        "shortage live, dial via ami, trigger event"
    )
    assert "(no servers yet: the first snapshot has not been read)" in text
    assert "(no campaign is short or filling)" in text


def test_nobody_listening_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(Unreachable, match="no such socket: is it running"):
        ask(tmp_path / "none.sock")


async def test_a_stale_socket_file_is_replaced_and_a_live_one_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "status.sock"
    first = StatusServer(path, lambda: {"servers": [], "n": 1})
    assert await first.start()
    second = StatusServer(path, lambda: {"servers": [], "n": 2})
    assert not await second.start()  # someone answers there: not taken over
    doc = await asyncio.to_thread(ask, path)
    assert doc["n"] == 1
    first._server.close()  # the first instance dies without cleaning up: its socket file stays
    await first._server.wait_closed()
    assert path.exists()
    assert await second.start()
    assert (await asyncio.to_thread(ask, path))["n"] == 2
    await second.close()
    assert not path.exists()


async def run_cli(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        *fillreactor_command(*args),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=subprocess_env(),
    )
    out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_status_against_a_running_instance(database_dsn, seed, tmp_path: Path) -> None:
    async with running_service(database_dsn, seed, tmp_path) as running:
        cluster, service = running.cluster, running.service
        model = service.core.model
        await eventually(
            lambda: (
                len(cluster.fill_originates(B)) + len(cluster.fill_originates(C)) >= 10
                and (model.usage(A), model.usage(B), model.usage(C)) == (20, 8, 2)
            ),
            what="the ten FILL calls, A's own 20 calls up",
        )
        socket = running.settings.status_socket
        code, out, err = await run_cli("status", "--socket", socket, "--json")
        assert code == 0, err
        document = json.loads(out)
        servers = {s["server_ip"]: s for s in document["servers"]}
        assert {ip: (s["usage"], s["limit"], s["threshold"]) for ip, s in servers.items()} == {
            A: (20, 20, None),
            B: (8, 30, 8),
            C: (2, 30, 30),
        }
        assert {s["link"] for s in servers.values()} == {"ready"}
        (campaign,) = document["campaigns"]
        assert (campaign["campaign_id"], campaign["shortage"], campaign["fill_in_flight"]) == (
            CAMPAIGN,
            10,
            10,
        )
        assert campaign["short_on"] == {A: 10}
        assert document["dialing"] is True and document["leader"] is True

        code, out, err = await run_cli("status", "--socket", socket, "--watch", "0.05", "--count", "2")
        assert code == 0, err
        assert out.count("fillreactor ") == 2  # two refreshes, each a whole status
        assert f"{B:<15} ready         [########|" in out
        assert f"{CAMPAIGN:<10} {10:>8}" in out
        assert service is not None
        assert await running.stop() == 0
    code, _, err = await run_cli("status", "--socket", socket)
    assert code == 1 and "no fillreactor instance answers" in err


def test_a_shadow_run_shows_its_summary_line() -> None:
    from fillreactor.service.status import render

    status = {
        "dialing": False, "why_not_dialing": "shadow mode", "servers": [], "campaigns": [],
        "shadow": {
            "perl_placed": 12, "fill_asked": 11, "fill_open": 1, "matched": 10,
            "lead_ms": {"p50": 1840.0, "p99": 2460.0},
            "fill_only": {"stale shortage": 1}, "perl_only": {"overdial on a full server": 2},
            "over_limit_s": 6.5,
        },
    }
    assert render(status).splitlines()[-1] == (
        "shadow: the Perl placed 12, fillreactor asked 11 (1 open), matched 10 (lead p50 1840.0 ms, p99"
        " 2460.0 ms), fillreactor only 1, Perl only 2, over limit 6.5 s"
    )
