"""Two `fillreactor run` processes against one cluster: exactly one dials; kill it, the other takes over.

Real processes, so "kill" is SIGKILL: the leader's MySQL session dies with it and the server frees
``GET_LOCK('fillreactor')`` (issue 9 point 5). The standby keeps its links and model current and
retries the lock every ``lock_check`` seconds.

By hand (spec 4.4/2.4, as in test_service_e2e.py): the shortage on A is 10; only B balances with
(30 - 22) = 8 available: 8 calls. After the kill, 3 of B's calls hang up: the new leader places 3.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path

import pytest
from e2e_helpers import CAMPAIGN, TIMING, A, fast_settings, seed_cluster

from fillreactor.simulator import SimulatedCluster
from fillreactor.store.database import Database, DatabaseAddress
from fillreactor.testing.vicidial import AgentDialer, AgentHeartbeat, CallCleanup

pytestmark = pytest.mark.timeout(90)

FILLREACTOR = [sys.executable, "-m", "fillreactor"]


def write_configs(tmp: Path, dsn, name: str = "fillreactor") -> tuple[Path, Path]:
    conf = tmp / "astguiclient.conf"
    conf.write_text(
        f"VARserver_ip => {A}\nVARDB_server => {dsn.host}\nVARDB_port => {dsn.port}\n"
        f"VARDB_user => {dsn.user}\nVARDB_pass => {dsn.password}\nVARDB_database => {dsn.database}\n"
        f"PATHhome => {tmp}\nPATHlogs => {tmp}\n"
    )
    settings = fast_settings()
    ini = tmp / f"{name}.conf"
    names = ("agents_refresh", "config_refresh", "stats_refresh", "lock_check", "ping_interval",
             "ping_timeout", "reconnect_max_wait", "stale_claim_age", "hopper_retry", "lock_name")
    ini.write_text(
        "[fillreactor]\n"
        + "".join(f"{n} = {getattr(settings, n)}\n" for n in names)
        + f"status_socket = {tmp}/{name}.sock\n"
    )
    return conf, ini


async def start(conf: Path, ini: Path, log: Path) -> asyncio.subprocess.Process:
    handle = log.open("wb")
    return await asyncio.create_subprocess_exec(
        *FILLREACTOR, "run", "--conf", str(conf), "--config", str(ini), "--log-level", "INFO",
        stdout=handle, stderr=handle, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


async def eventually(condition, timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.05)  # polling the simulator's records from another process's work


async def test_one_instance_dials_the_other_takes_over_when_it_is_killed(
    database_dsn, seed, tmp_path: Path
) -> None:
    settings = fast_settings()
    conf, ini = write_configs(tmp_path, database_dsn, "first")
    _, second_ini = write_configs(tmp_path, database_dsn, "second")
    async with SimulatedCluster(2, time_scale=0.1, timing=TIMING) as sims:
        await seed_cluster(seed, sims, balance=((30, 22, 2),))
        database = await Database.open(DatabaseAddress.from_dsn(database_dsn))
        helpers = [CallCleanup(database, list(sims)), AgentHeartbeat(database)]
        dialer = AgentDialer(database, sims[0], A, CAMPAIGN, target=20, first_lead_id=500_000)
        for helper in (*helpers, dialer):
            helper.start()
        b = sims[1]

        def originates() -> list:
            return [r for r in b.originates if r.session_id is not None]

        first = await start(conf, ini, tmp_path / "first.log")
        second = None
        try:
            await eventually(lambda: len(originates()) == 8)
            leader_sessions = {r.session_id for r in originates()}
            second = await start(conf, second_ini, tmp_path / "second.log")
            await b.wait_for_sessions(2)  # the standby is logged in too
            assert second.returncode is None
            first.send_signal(signal.SIGKILL)
            await first.wait()
            for record in originates()[:3]:
                assert record.call is not None
                record.call.request_hangup(16)
            await eventually(lambda: len(originates()) == 11, timeout=30)
            new = originates()[8:]
            assert all(r.session_id not in leader_sessions for r in new)  # the standby placed them
            holder = await database.fetch_value("SELECT IS_USED_LOCK(%s)", (settings.lock_name,))
            assert holder is not None
            assert await database.fetch_value(
                "SELECT COUNT(*) FROM vicidial_hopper WHERE status IN ('QUEUE', 'INCALL')"
            ) == 0
        finally:
            for process in (first, second):
                if process is not None and process.returncode is None:
                    process.send_signal(signal.SIGTERM)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(process.wait(), 20)
            await dialer.stop()
            for helper in helpers:
                await helper.stop()
            await database.close()
        assert second is not None and second.returncode == 0, (tmp_path / "second.log").read_text()[-2000:]
