"""The real service on a real three-server Asterisk 22 cluster (``../shared/asterisk``), by hand.

Not part of the test suite (CI cannot build Asterisk). Start the cluster first::

    ASTERISK_PREFIX=/opt/asterisk22 ../shared/asterisk/cluster.sh start
    .venv/bin/python tests/real/check_on_asterisk.py [--seconds 40] [--prefix /opt/asterisk22]

dialer1 (AMI 5038) is the agent server A: 20 trunks, 10 READY agents at dial level 3 and none of
its own calls, so by hand (spec 4.4) A is short by min(30 - 20, 30) = 10. dialer2 (5039) is B:
rank 2, 30 trunks, 22 off limits, so 8 balance lines; dialer3 (5040) is C: rank 1, 30 lines. The
cluster's dialplan answers the trunk after 1-3 s and hangs the VDAD leg up after 5 s, so calls end
by themselves and fillreactor must refill them from the Hangup events. Two VICIdial stand-ins run
beside it: the agents' heartbeat and the deletion of an ended call's vicidial_auto_calls row.
The check samples each server's calls with ``core show channels`` (Asterisk's own count, not
fillreactor's) every second and requires B never above 8 FILL calls, C never above 30, 8 on B and
10 in all at some point. ``--crash-b T`` kills B's Asterisk at T s and starts it again 4 s later;
``--record PATH`` runs ``fillreactor record`` beside the service (fixtures/asterisk22-live).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from fillreactor.demo import demo_settings
from fillreactor.reactor.service import ReactorService
from fillreactor.store import Database, DatabaseAddress
from fillreactor.testing.database import Dsn, connect, create_database, drop_database, test_dsn
from fillreactor.testing.seed import Seeder
from fillreactor.testing.vicidial import AgentHeartbeat

A, B, C = "10.40.0.1", "10.40.0.2", "10.40.0.3"
PORTS = {A: 5038, B: 5039, C: 5040}
DIALER = {A: 1, B: 2, C: 3}
CAMPAIGN = "REALFILL"
LIMITS = {B: 8, C: 30}
NEED = 10
CLUSTER_SH = Path(__file__).resolve().parents[3] / "shared" / "asterisk" / "cluster.sh"


def fill_calls(prefix: str, server: str) -> int:
    """FILL calls live on ``server`` by Asterisk's own listing: each is one ``Local/9<number>@default``
    pair (the Originate's channel, ``;1`` and ``;2``)."""
    out = subprocess.run(
        ["bash", str(CLUSTER_SH), "cli", str(DIALER[server]), "core show channels concise"],
        capture_output=True, text=True, env={"ASTERISK_PREFIX": prefix, "PATH": "/usr/bin:/bin"}, check=False,
    ).stdout
    return len({m.group(1) for m in re.finditer(r"^(Local/9\d+@default-[0-9a-f]+);[12]!", out, re.M)})


async def seed_cluster(seed: Seeder) -> None:
    await seed.system_settings(outbound_calls_per_second=50)
    await seed.server("agent1", A, max_vicidial_trunks=20, asterisk_version="22.10.1",
                      telnet_host="127.0.0.1", telnet_port=PORTS[A], vd_server_logs="N")
    for name, ip, rank, offlimits in (("balance1", B, 2, 22), ("balance2", C, 1, 0)):
        await seed.server(name, ip, max_vicidial_trunks=30, vicidial_balance_active="Y",
                          vicidial_balance_rank=rank, balance_trunks_offlimits=offlimits,
                          asterisk_version="22.10.1", telnet_host="127.0.0.1", telnet_port=PORTS[ip])
    await seed.campaign(CAMPAIGN, auto_dial_level="3", dial_timeout=30)
    await seed.lead_list(8001, CAMPAIGN)
    numbers = [f"3125{n:06d}" for n in range(1, 2000) if n % 10_000 not in (0, 1111, 9999)][:1000]
    await seed.hopper(CAMPAIGN, await seed.leads(8001, phone_numbers=numbers))
    await seed.live_agents(10, A, CAMPAIGN)


def cluster_sh(prefix: str, *args: str) -> None:
    subprocess.run(["bash", str(CLUSTER_SH), *args], capture_output=True,
                   env={"ASTERISK_PREFIX": prefix, "PATH": "/usr/bin:/bin"}, check=True)


async def clean_ended_calls(database: Database, service: ReactorService) -> None:
    """VICIdial's stand-in: the vicidial_auto_calls row of an ended call goes (VICIdial's own scripts
    delete it at hangup), here when fillreactor's model no longer has the call and the row is 3 s old."""
    while True:
        rows = await database.fetch_all(
            "SELECT callerid, server_ip FROM vicidial_auto_calls WHERE call_type = 'OUTBALANCE'"
            " AND call_time < NOW() - INTERVAL 3 SECOND"
        )
        model = service.core.model
        for callerid, server_ip in rows:
            if not model.call_active(server_ip, callerid):
                await database.execute("DELETE FROM vicidial_auto_calls WHERE callerid = %s", (callerid,))
        await asyncio.sleep(0.5)


async def start_recorder(dsn: Dsn, path: str, seconds: float, workdir: Path) -> asyncio.subprocess.Process:
    """``fillreactor record`` beside the service, on the same database (it only reads)."""
    conf = workdir / "astguiclient.conf"
    conf.write_text(
        f"VARserver_ip => {A}\nVARDB_server => {dsn.host}\nVARDB_database => {dsn.database}\n"
        f"VARDB_user => {dsn.user}\nVARDB_pass => {dsn.password}\nVARDB_port => {dsn.port}\n"
    )
    settings = workdir / "fillreactor.conf"
    settings.write_text("[fillreactor]\nagents_refresh = 0.5\nconfig_refresh = 5\n")
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "fillreactor", "record", "--conf", str(conf), "--config", str(settings),
        "--seconds", str(seconds), "--output", path, "--note", "tests/real/check_on_asterisk.py",
    )


async def main(seconds: float, prefix: str, crash_at: float | None, record: str | None) -> int:
    for _ in range(30):  # calls of an earlier run are no FILL calls of this database's: let them end
        if not [s for s in (B, C) if await asyncio.to_thread(fill_calls, prefix, s)]:
            break
        await asyncio.sleep(1.0)
    else:
        print("FILL calls of an earlier run are still up on B or C: try again later")
        return 2
    dsn = await asyncio.to_thread(create_database, test_dsn())
    peaks = {B: 0, C: 0}
    together = 0
    try:
        connection = await connect(dsn)
        try:
            await seed_cluster(Seeder(connection))
        finally:
            connection.close()
        database = await Database.open(DatabaseAddress.from_dsn(dsn))
        service = ReactorService(dsn.astguiclient_conf(A), demo_settings(dsn.database or ""))
        heartbeat = AgentHeartbeat(database)
        heartbeat.start()
        stop = asyncio.Event()
        workdir = Path(tempfile.mkdtemp(prefix="fillreactor-real-"))
        recorder = None if record is None else await start_recorder(dsn, record, seconds, workdir)
        task = asyncio.get_running_loop().create_task(service.run(stop))
        cleanup = asyncio.get_running_loop().create_task(clean_ended_calls(database, service))
        try:
            await asyncio.wait_for(service.started.wait(), 20)
            for tick in range(int(seconds)):
                await asyncio.sleep(1.0)  # sampling Asterisk once a second, not synchronisation
                if crash_at is not None and tick == int(crash_at):
                    pid = (Path(prefix) / "cluster" / "dialer2" / "run" / "asterisk.pid").read_text().strip()
                    subprocess.run(["kill", "-9", pid], check=True)
                    print(f"t={tick + 1:3d}s  B's Asterisk killed (kill -9 {pid}); back in 4 s", flush=True)
                elif crash_at is not None and tick == int(crash_at) + 4:
                    await asyncio.to_thread(cluster_sh, prefix, "start", "2")
                    print(f"t={tick + 1:3d}s  B's Asterisk started again", flush=True)
                live = {s: await asyncio.to_thread(fill_calls, prefix, s) for s in (B, C)}
                for server, n in live.items():
                    peaks[server] = max(peaks[server], n)
                together = max(together, sum(live.values()))
                model = {s: service.core.model.usage(s) for s in (B, C)}
                print(f"t={tick + 1:3d}s  Asterisk: B {live[B]} C {live[C]}   model: B {model[B]}"
                      f" C {model[C]}   sent {service.core.counters.calls_sent}", flush=True)
        finally:
            stop.set()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 20)
            await heartbeat.stop()
            cleanup.cancel()
            await asyncio.gather(cleanup, return_exceptions=True)
            if recorder is not None:
                print(f"recorder exited with {await recorder.wait()}: {record}")
        rows = await database.fetch_all(
            "SELECT server_ip, status, COUNT(*) FROM vicidial_manager WHERE action = 'Originate'"
            " GROUP BY server_ip, status ORDER BY server_ip, status"
        )
        await database.close()
    finally:
        await asyncio.to_thread(drop_database, dsn)
    print(f"peak FILL calls on B {peaks[B]} (limit {LIMITS[B]}), C {peaks[C]}; most at once {together}")
    print("Originate rows:", ", ".join(f"{ip} {status} {n}" for ip, status, n in rows))
    ok = peaks[B] <= LIMITS[B] and peaks[B] == LIMITS[B] and together >= NEED and peaks[C] <= LIMITS[C]
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--prefix", default="/opt/asterisk22", help="the cluster's ASTERISK_PREFIX")
    parser.add_argument("--crash-b", type=float, default=None, metavar="T",
                        help="kill -9 B's Asterisk at T seconds and start it again 4 s later")
    parser.add_argument("--record", default=None, metavar="PATH",
                        help="also run `fillreactor record` into PATH (a fixture of the real traffic)")
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.seconds, args.prefix, args.crash_b, args.record)))
