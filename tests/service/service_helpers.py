"""Helpers for the operations tests: a FILL cluster (simulated Asterisk + the test database + the
VICIdial stand-ins), config files, a fake ``NOTIFY_SOCKET``, and the ``fillreactor`` command.

The cluster is the one worked by hand in tests/reactor (spec 4.4, 2.4): A (10.10.10.11) has 20
trunks and 10 READY agents of the campaign at dial level 3 (goal 30) and keeps 20 calls of its own:
make = 30 - 20 = 10, line goal 30 > 20, so its shortage is min(30 - 20, 10) = 10. B (rank 2, 30
trunks, 22 off limits) can take 8, C (rank 1, 30 trunks) 30: the FILL places 8 on B and 2 on C.

Nothing here sleeps to synchronise: ``eventually`` polls a condition (the database cannot be
awaited) with a bound, ``NotifyListener.wait_for`` awaits datagrams.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fillreactor.astguiclient import AstguiclientConf
from fillreactor.service.settings import Settings
from fillreactor.simulator import CallTiming, SimulatedAsterisk, SimulatedCluster
from fillreactor.store.database import Database, DatabaseAddress
from fillreactor.testing.database import Dsn
from fillreactor.testing.seed import Seeder
from fillreactor.testing.settings import QUICK
from fillreactor.testing.vicidial import AgentDialer, AgentHeartbeat, CallCleanup

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
A, B, C = "10.10.10.11", "10.10.10.12", "10.10.10.13"
IPS = (A, B, C, "10.10.10.14", "10.10.10.15")
CAMPAIGN = "OPSFILL"
LIST_ID = 3001
TIME_SCALE = 0.1  # a real second is ten simulated ones
TIMING = CallTiming(ring=1.0, talk=40.0, vdad_wait=40.0)

# issue 10's subcommands, as fillreactor/cli.py is to wire them (cli_runner.py adds the missing ones)
PROPOSED_SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "systemd-unit": ("fillreactor.service.unit_cli", "print the systemd unit for this installation"),
    "check": (
        "fillreactor.service.check",
        "check the configuration, database, AMI and that the Perl FILL is off",
    ),
    "status": ("fillreactor.service.status", "show what the running instance sees (lines, links, campaigns)"),
}

FAST = QUICK  # the settings of a quick test service (fillreactor.testing.settings)


def unique_lock() -> str:
    """A leader lock of its own: other test runs on this MariaDB must not make this one a standby."""
    return f"frtest-{uuid.uuid4().hex[:16]}"


def fast_settings(**overrides: Any) -> Settings:
    return Settings().with_values({**FAST, "lock_name": unique_lock(), **overrides})


def ini_text(**values: Any) -> str:
    """A fillreactor.conf with these settings (lists comma separated, flags yes/no)."""
    lines = ["[fillreactor]"]
    for name, value in values.items():
        if isinstance(value, bool):
            value = "yes" if value else "no"
        elif isinstance(value, (list, tuple)):
            value = ", ".join(value)
        lines.append(f"{name} = {value}")
    return "\n".join(lines) + "\n"


def conf_text(
    dsn: Dsn,
    *,
    server_ip: str = A,
    home: str | Path = "/usr/share/astguiclient",
    logs: str | Path = "/var/log/astguiclient",
    keepalives: str = "",
) -> str:
    text = (
        "# astguiclient.conf written by tests/service\n"
        f"PATHhome => {home}\nPATHlogs => {logs}\nVARserver_ip => {server_ip}\n"
        f"VARDB_server => {dsn.host}\nVARDB_database => {dsn.database}\nVARDB_user => {dsn.user}\n"
        f"VARDB_pass => {dsn.password}\nVARDB_port => {dsn.port}\n"
    )
    if keepalives:
        text += f"VARactive_keepalives => {keepalives}\n"
    return text


def conf_for(
    dsn: Dsn,
    *,
    server_ip: str = A,
    home: str | Path = "/usr/share/astguiclient",
    logs: str | Path = "/var/log/astguiclient",
) -> AstguiclientConf:
    return dsn.astguiclient_conf(server_ip, path_home=str(home), path_logs=str(logs))


def numbers(count: int, start: int = 1) -> list[str]:
    """Numbers the simulator answers (never ...0000 busy, ...1111 congestion, ...9999 no answer)."""
    out: list[str] = []
    n = start
    while len(out) < count:
        if n % 10_000 not in (0, 1111, 9999):
            out.append(f"3125{n:06d}")
        n += 1
    return out


async def seed_cluster(
    seed: Seeder,
    sims: SimulatedCluster,
    *,
    agents: int = 10,
    level: str = "3",
    agent_trunks: int = 20,
    balance: tuple[tuple[int, int, int], ...] = ((30, 22, 2), (30, 0, 1)),
    leads: int = 200,
    calls_per_second: int = 1000,
    host_logs: str = "N",
) -> None:
    """A (agents) and one balance server per (trunks, off limits, rank), each at its simulator."""
    await seed.system_settings(outbound_calls_per_second=calls_per_second)
    await seed.server(
        "agent1",
        A,
        max_vicidial_trunks=agent_trunks,
        asterisk_version="22.10.1",
        telnet_host="127.0.0.1",
        telnet_port=sims[0].port,
        vd_server_logs=host_logs,
    )
    for index, (trunks, offlimits, rank) in enumerate(balance, start=1):
        await seed.server(
            f"bal{index}",
            IPS[index],
            max_vicidial_trunks=trunks,
            vicidial_balance_active="Y",
            balance_trunks_offlimits=offlimits,
            vicidial_balance_rank=rank,
            asterisk_version="22.10.1",
            telnet_host="127.0.0.1",
            telnet_port=sims[index].port,
        )
    await seed.campaign(CAMPAIGN, auto_dial_level=level, dial_timeout=30)
    await seed.lead_list(LIST_ID, CAMPAIGN)
    lead_ids = await seed.leads(LIST_ID, phone_numbers=numbers(leads))
    await seed.hopper(CAMPAIGN, lead_ids)
    await seed.live_agents(agents, A, CAMPAIGN)


@dataclass
class Cluster:
    sims: SimulatedCluster
    database: Database
    seed: Seeder
    dsn: Dsn
    dialers: list[AgentDialer] = field(default_factory=list)

    def sim(self, server_ip: str) -> SimulatedAsterisk:
        return self.sims[IPS.index(server_ip)]

    def fill_originates(self, server_ip: str) -> list[Any]:
        """The Originates fillreactor sent to a server (the simulator's own records)."""
        return [r for r in self.sim(server_ip).originates if r.session_id is not None]

    async def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        return await self.database.fetch_dicts(sql, params)


@contextlib.asynccontextmanager
async def vicidial(
    dsn: Dsn, seed: Seeder, *, servers: int = 3, agent_calls: int = 20, cleanup: bool = True, **seeding: Any
) -> AsyncIterator[Cluster]:
    """The simulated servers, the seeded database and the VICIdial processes around FILL (no FILL)."""
    async with SimulatedCluster(servers, time_scale=TIME_SCALE, timing=TIMING) as sims:
        await seed_cluster(seed, sims, **seeding)
        database = await Database.open(DatabaseAddress.from_dsn(dsn))
        helpers: list[Any] = [AgentHeartbeat(database)]
        if cleanup:
            helpers.append(CallCleanup(database, list(sims)))
        cluster = Cluster(sims, database, seed, dsn)
        if agent_calls:
            cluster.dialers.append(
                AgentDialer(database, sims[0], A, CAMPAIGN, target=agent_calls, first_lead_id=500_000)
            )
        for helper in (*helpers, *cluster.dialers):
            helper.start()
        try:
            yield cluster
        finally:
            for helper in (*cluster.dialers, *helpers):
                await helper.stop()
            await database.close()


async def eventually(condition: Callable[[], Any], timeout: float = 15.0, what: str = "") -> None:
    """Await ``condition()`` (sync or async) becoming true; polled, because a database cannot be awaited."""
    try:
        async with asyncio.timeout(timeout):
            while True:
                value = condition()
                if asyncio.iscoroutine(value):
                    value = await value
                if value:
                    return
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"not within {timeout} s: {what or condition}") from None


class NotifyListener:
    """A fake ``NOTIFY_SOCKET``: a datagram socket systemd would listen on; every message kept."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.setblocking(False)
        self.messages: list[str] = []

    def environ(self, watchdog_usec: int | None = None) -> dict[str, str]:
        env = {"NOTIFY_SOCKET": str(self.path)}
        if watchdog_usec is not None:
            env["WATCHDOG_USEC"] = str(watchdog_usec)
        return env

    def drain(self) -> list[str]:
        """Whatever arrived so far (never waits)."""
        new = []
        while True:
            try:
                new.append(self.sock.recv(65536).decode())
            except BlockingIOError:
                break
        self.messages.extend(new)
        return new

    async def wait_for(self, predicate: Callable[[str], bool], timeout: float = 15.0, since: int = 0) -> str:
        """The first message from the ``since``-th on (kept or new) for which ``predicate`` holds."""
        loop = asyncio.get_running_loop()
        self.drain()
        seen = since
        async with asyncio.timeout(timeout):
            while True:
                for message in self.messages[seen:]:
                    if predicate(message):
                        return message
                seen = max(seen, len(self.messages))
                self.messages.append((await loop.sock_recv(self.sock, 65536)).decode())

    def close(self) -> None:
        self.sock.close()


def fillreactor_command(*args: str) -> list[str]:
    """``.venv/bin/fillreactor ARGS``; for issue 10's subcommands not yet in cli.py, the same CLI with
    them added as the report asks (tests/service/cli_runner.py)."""
    from fillreactor.cli import SUBCOMMANDS

    script = VENV_BIN / "fillreactor"
    if args and args[0] in PROPOSED_SUBCOMMANDS and args[0] not in SUBCOMMANDS:
        return [sys.executable, str(Path(__file__).with_name("cli_runner.py")), *args]
    return [str(script), *args]


def subprocess_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")}
    env.update({"PYTHONUNBUFFERED": "1", "NO_COLOR": "1"}, **extra)
    return env


@dataclass
class Running:
    """``serve()`` running in a task against a cluster; ``stop()`` ends it and returns its exit code."""

    cluster: Cluster
    service: Any
    stop_event: asyncio.Event
    task: asyncio.Task[int]
    settings: Settings

    async def stop(self, timeout: float = 20.0) -> int:
        self.stop_event.set()
        return await asyncio.wait_for(self.task, timeout)


@contextlib.asynccontextmanager
async def running_service(
    dsn: Dsn,
    seed: Seeder,
    tmp_path: Path,
    *,
    notifier: Any = None,
    seeding: dict[str, Any] | None = None,
    reload_settings: Callable[[], Settings] | None = None,
    **overrides: Any,
) -> AsyncIterator[Running]:
    """The cluster and ``fillreactor run``'s ``serve()`` in this event loop (no subprocess)."""
    from fillreactor.service.run import serve

    settings = fast_settings(status_socket=str(tmp_path / "status.sock"), **overrides)
    async with vicidial(dsn, seed, **(seeding or {})) as cluster:
        built: list[Any] = []
        stop = asyncio.Event()
        task = asyncio.get_running_loop().create_task(
            serve(
                conf_for(dsn),
                settings,
                stop=stop,
                notifier=notifier,
                on_service=built.append,
                reload_settings=reload_settings,
            )
        )
        try:
            await eventually(
                lambda: (bool(built) and built[0].started.is_set()) or task.done(), 15, "the service started"
            )
            assert not task.done(), "serve() ended before it started"
            yield Running(cluster, built[0], stop, task, settings)
        finally:
            stop.set()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 20)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
