"""``fillreactor run`` as systemd runs it: a real process (.venv/bin/fillreactor) against simulated
Asterisk servers and the test database, under a fake NOTIFY_SOCKET.

* The notify protocol (sd_notify(3)): READY=1 once started, STATUS= lines, WATCHDOG=1 every half
  WATCHDOG_USEC, RELOADING=1 then READY=1 around a SIGHUP reload, STOPPING=1 at SIGTERM, exit 0.
* A SIGHUP reload takes the new file without dropping a link (the simulators count the logins).
* SIGTERM in the middle of a paced burst of dials leaves no hopper row in QUEUE or INCALL and no
  half-written call: every OUTBALANCE vicidial_auto_calls row has its vicidial_manager row and its
  Originate, and every lead is either dialed once or back in the hopper READY (spec 2.7, 5.1).

Cluster numbers: service_helpers (A short by 10: B +8, C +2), and for the burst by hand (spec 4.4):
40 READY agents at level 3 on A give a goal of 120; with A's 20 calls on its 20 trunks make = 100,
line goal 120 > 20, shortage min(120 - 20, 100) = 100, paced at 20 calls/s.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from service_helpers import (
    FAST,
    A,
    B,
    C,
    NotifyListener,
    conf_text,
    eventually,
    fillreactor_command,
    ini_text,
    subprocess_env,
    unique_lock,
    vicidial,
)

from fillreactor.service.systemd import STOP_TIMEOUT_SECONDS

pytestmark = pytest.mark.timeout(90)


@contextlib.asynccontextmanager
async def service_process(
    tmp_path: Path, dsn: Any, listener: NotifyListener | None, **settings: Any
) -> AsyncIterator[tuple[asyncio.subprocess.Process, Path, Path]]:
    """``fillreactor run`` in a process; yields it, its settings file and its stderr file."""
    home, logs = tmp_path / "home", tmp_path / "logs"
    home.mkdir(exist_ok=True)
    logs.mkdir(exist_ok=True)
    conf = tmp_path / "astguiclient.conf"
    conf.write_text(conf_text(dsn, server_ip=A, home=home, logs=logs))
    config = tmp_path / "fillreactor.conf"
    config.write_text(
        ini_text(
            **{**FAST, "lock_name": unique_lock(), "status_socket": str(tmp_path / "st.sock"), **settings}
        )
    )
    stderr_path = tmp_path / "stderr.log"
    env = subprocess_env(**(listener.environ(watchdog_usec=200_000) if listener else {}))
    with stderr_path.open("w") as stderr:
        process = await asyncio.create_subprocess_exec(
            *fillreactor_command("run", "--conf", str(conf), "--config", str(config)),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=stderr,
            env=env,
        )
    try:
        yield process, config, stderr_path
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def exit_code(process: asyncio.subprocess.Process, timeout: float = STOP_TIMEOUT_SECONDS) -> int:
    """The exit status, within the unit's TimeoutStopSec (after it systemd would SIGKILL)."""
    return await asyncio.wait_for(process.wait(), timeout)


async def test_notify_protocol_reload_and_stop_of_the_real_process(
    database_dsn, seed, tmp_path: Path
) -> None:
    listener = NotifyListener(tmp_path / "notify.sock")
    try:
        async with (
            vicidial(database_dsn, seed, host_logs="Y") as cluster,
            service_process(tmp_path, database_dsn, listener, trigger="event") as (
                process,
                config,
                stderr_path,
            ),
        ):
            ready = await listener.wait_for(lambda m: m.startswith("READY=1"), timeout=30)
            assert ready.split("\n")[1].startswith("STATUS=")
            await listener.wait_for(lambda m: listener.messages.count("WATCHDOG=1") >= 2, timeout=10)
            await eventually(
                lambda: len(cluster.fill_originates(B)) == 8 and len(cluster.fill_originates(C)) == 2,
                what="the fill of 10 calls: 8 on B, 2 on C",
            )
            await listener.wait_for(
                lambda m: m.startswith("STATUS=3/3 AMI servers live, 1 campaigns filling"), timeout=10
            )
            logins = [sim.logins for sim in cluster.sims]

            # SIGHUP: a new file is taken without dropping links
            text = config.read_text()
            assert "trigger = event\n" in text and "hopper_retry = 0.2\n" in text
            config.write_text(
                text.replace("trigger = event", "trigger = timer").replace(
                    "hopper_retry = 0.2", "hopper_retry = 2"
                )
                + "metrics_port = 9\n"
            )
            listener.drain()
            seen = len(listener.messages)
            process.send_signal(signal.SIGHUP)
            await listener.wait_for(lambda m: m.startswith("RELOADING=1\nMONOTONIC_USEC="), since=seen)
            reloading = next(
                i
                for i in range(seen, len(listener.messages))
                if listener.messages[i].startswith("RELOADING=1")
            )
            await listener.wait_for(lambda m: m.startswith("READY=1"), since=reloading + 1)
            await eventually(
                lambda: "reload: hopper_retry = 2.0" in stderr_path.read_text(), what="reload logged"
            )
            log = stderr_path.read_text()
            assert "<4>fillreactor: reload: trigger = 'timer'" in log
            assert "<4>fillreactor: reload: metrics_port changed: takes effect after a restart" in log
            assert [sim.logins for sim in cluster.sims] == logins  # no link was dropped

            # a bad file on SIGHUP: refused, the running settings stay, READY again
            config.write_text(config.read_text() + "plan_slice = forever\n")
            listener.drain()
            seen = len(listener.messages)
            process.send_signal(signal.SIGHUP)
            refused = await listener.wait_for(
                lambda m: m.startswith("READY=1\nSTATUS=reload refused"), since=seen
            )
            assert f"{config}: plan_slice = 'forever' is not allowed" in refused

            # the status socket answers while it runs (found through the settings file, mended)
            config.write_text(config.read_text().replace("plan_slice = forever\n", ""))
            status = await asyncio.create_subprocess_exec(
                *fillreactor_command("status", "--config", str(config), "--json"),
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=subprocess_env(),
            )
            out, err = await asyncio.wait_for(status.communicate(), 30)
            assert status.returncode == 0, err.decode()
            assert '"campaign_id": "OPSFILL"' in out.decode()

            process.send_signal(signal.SIGTERM)
            assert await exit_code(process) == 0
            await listener.wait_for(lambda m: m.startswith("STOPPING=1"), timeout=5)
            assert [sim.logins for sim in cluster.sims] == logins
        text = stderr_path.read_text()
        assert all(line[:3] in ("<3>", "<4>", "<6>", "<7>") for line in text.splitlines()), text
        assert "<6>fillreactor: fillreactor stopped" in text
        (fill_log,) = (tmp_path / "logs").glob("vdautodial_FILL.*")
        assert fill_log.name == f"vdautodial_FILL.{datetime.now():%Y-%m-%d}"
        assert "|fillreactor stopped|" in fill_log.read_text()
    finally:
        listener.close()


async def test_sigterm_during_a_burst_of_dials_leaves_nothing_half_done(
    database_dsn, seed, tmp_path: Path
) -> None:
    seeding = {"agents": 40, "balance": ((30, 0, 2), (100, 0, 1)), "calls_per_second": 20, "leads": 200}
    async with vicidial(database_dsn, seed, cleanup=False, **seeding) as cluster:
        async with service_process(tmp_path, database_dsn, None) as (process, _config, stderr_path):

            def sent() -> int:
                return len(cluster.fill_originates(B)) + len(cluster.fill_originates(C))

            await eventually(lambda: sent() >= 25, timeout=30, what="the burst under way")
            process.send_signal(signal.SIGTERM)
            assert await exit_code(process) == 0, stderr_path.read_text()
        placed = sent()
        assert 25 <= placed < 100  # stopped in the middle of the burst
        hopper = await cluster.rows("SELECT status, COUNT(*) AS n FROM vicidial_hopper GROUP BY status")
        assert {r["status"]: r["n"] for r in hopper} == {"READY": 200 - placed}
        auto = await cluster.rows(
            "SELECT callerid, lead_id FROM vicidial_auto_calls WHERE call_type = 'OUTBALANCE'"
        )
        manager = await cluster.rows("SELECT callerid, status FROM vicidial_manager")
        originated = {r.action_id for ip in (B, C) for r in cluster.fill_originates(ip)}
        assert {r["callerid"] for r in auto} == {r["callerid"] for r in manager} == originated
        assert {r["status"] for r in manager} == {"SENT"}
        assert len(auto) == placed
        # every dialed lead left the hopper, every other one is back READY: none lost, none twice
        waiting = {r["lead_id"] for r in await cluster.rows("SELECT lead_id FROM vicidial_hopper")}
        assert not waiting & {r["lead_id"] for r in auto}
