"""``fillreactor check``: one table, a row per check, exit 1 when anything blocks running; each kind of
failure made for real (files, the test database, simulated Asterisk servers, a process).

AMI permissions are Asterisk's (main/manager.c): ``ListCommands`` lists the actions whose authority
the user's ``write=`` holds, or that need none; Originate needs ``originate``, CoreShowChannels
``system`` or ``reporting``, Filter ``system``; a session receives FullyBooted only with read
``system``. The simulator has no permissions, so ``PermissionedAsterisk`` below adds them.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from service_helpers import A, B, conf_text, fillreactor_command, free_port, subprocess_env, unique_lock

from fillreactor.service.check import FAIL, OK, SKIP, WARN, Report, run_checks
from fillreactor.simulator import ServerConfig, SimulatedAsterisk
from fillreactor.testing.database import Dsn, connect_sync, temporary_database

pytestmark = pytest.mark.timeout(60)

# the actions and their write authority, as Asterisk registers them (main/manager.c)
AUTHORITY: dict[str, frozenset[str]] = {
    "Login": frozenset(),
    "Logoff": frozenset(),
    "Ping": frozenset(),
    "ListCommands": frozenset(),
    "Events": frozenset(),
    "Originate": frozenset({"originate"}),
    "CoreShowChannels": frozenset({"system", "reporting"}),
    "Filter": frozenset({"system"}),
    "Status": frozenset({"system", "call", "reporting"}),
    "Hangup": frozenset({"system", "call"}),
}
EVERYTHING = frozenset({"system", "call", "originate", "reporting", "command"})


class PermissionedAsterisk(SimulatedAsterisk):
    """A simulated server whose AMI user has the given write permissions and maybe no read=system."""

    def __init__(self, *, write: frozenset[str] = EVERYTHING, read_system: bool = True) -> None:
        super().__init__(ServerConfig())
        self.write = write
        self.read_system = read_system

    def _action_listcommands(self, session: Any, _headers: dict[str, str], action_id: str | None, _m: Any):
        listed = [
            (name, f"{name} does its job. (Priv: {','.join(sorted(auth)) or '<none>'})")
            for name, auth in AUTHORITY.items()
            if not auth or auth & self.write
        ]
        self._respond(session, action_id, "Success", *listed)

    def _action_login(self, session: Any, headers: dict[str, str], action_id: str | None, message: Any):
        if not self.read_system:  # Asterisk masks the session's events by its read= permissions
            headers = {**headers, "events": "off"}
        super()._action_login(session, headers, action_id, message)


@contextlib.asynccontextmanager
async def servers(**options: Any) -> AsyncIterator[tuple[SimulatedAsterisk, SimulatedAsterisk]]:
    """A (agent server, full permissions) and B (balance server, with ``options``)."""
    async with PermissionedAsterisk() as agent, PermissionedAsterisk(**options) as balance:
        yield agent, balance


async def seed_servers(seed, agent_port: int, balance_port: int, *, secret: str = "1234") -> None:
    await seed.system_settings()
    await seed.server("agent1", A, telnet_host="127.0.0.1", telnet_port=agent_port, vd_server_logs="N")
    await seed.server(
        "bal1",
        B,
        telnet_host="127.0.0.1",
        telnet_port=balance_port,
        vicidial_balance_active="Y",
        ASTmgrSECRET=secret,
    )


def write_conf(tmp_path: Path, dsn: Dsn, **options: Any) -> Path:
    path = tmp_path / "astguiclient.conf"
    path.write_text(conf_text(dsn, **options))
    return path


def rows(report: Report, check: str) -> list[tuple[str, str, str]]:
    return [(r.result, r.target, r.detail) for r in report.rows if r.check == check]


def result_of(report: Report, check: str) -> str:
    (row,) = rows(report, check)
    return row[0]


async def check(
    conf: Path, *argv_settings: tuple[str, Any], config: Path | None = None, **options: Any
) -> Report:
    command_line = {"lock_name": unique_lock(), **dict(argv_settings)}
    return await run_checks(
        conf, config, command_line, config_required=config is not None, ami_timeout=2.0, **options
    )


# -- everything fine, through the command line ---------------------------------------------------------
async def test_a_good_installation_passes_every_check(database_dsn, seed, tmp_path: Path) -> None:
    async with servers() as (agent, balance):
        await seed_servers(seed, agent.port, balance.port)
        conf = write_conf(tmp_path, database_dsn, keepalives="123456")
        process = await asyncio.create_subprocess_exec(
            *fillreactor_command(
                "check", "--conf", str(conf), "--lock-name", unique_lock(), "--timeout", "3"
            ),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=subprocess_env(),
        )
        out, err = await asyncio.wait_for(process.communicate(), 30)
    text = out.decode()
    assert process.returncode == 0, text + err.decode()
    lines = text.splitlines()
    assert lines[0].split() == ["RESULT", "CHECK", "TARGET", "DETAIL"]
    checks = [
        line.split("  ")[0].strip() for line in lines[1:] if line.strip() and not line.startswith("nothing")
    ]
    assert set(checks) == {OK}, text
    for name in (
        "astguiclient.conf",
        "settings",
        "keepalive 7",
        "Perl FILL process",
        "database",
        "schema",
        "system_settings",
        "this host",
        "leader lock",
        "another FILL",
        "AMI login",
        "AMI permissions",
    ):
        assert f"  {name}  " in text, name
    assert text.count("AMI permissions") == 2  # A and B
    assert lines[-1] == "nothing blocks running; 0 warnings"
    assert database_dsn.password not in text or not database_dsn.password


# -- the files ---------------------------------------------------------------------------------------
async def test_a_broken_astguiclient_conf_fails_and_skips_the_database(tmp_path: Path) -> None:
    conf = tmp_path / "astguiclient.conf"
    conf.write_text("VARDB_server => 127.0.0.1\nVARDB_database => asterisk\nVARserver_ip => 10.10.10.11\n")
    report = await check(conf)
    assert rows(report, "astguiclient.conf") == [
        (FAIL, str(conf), f"{conf}: VARDB_user is missing or empty (the database user, e.g. cron)")
    ]
    assert result_of(report, "database") == SKIP
    assert report.blocking


async def test_bad_settings_fail_one_row_each(database_dsn, seed, tmp_path: Path) -> None:
    await seed.system_settings()
    config = tmp_path / "fillreactor.conf"
    config.write_text("[fillreactor]\ndial_via = sip\nping_timeout = 0\n")
    report = await check(write_conf(tmp_path, database_dsn), ("trigger", "soon"), config=config)
    assert rows(report, "settings") == [
        (FAIL, str(config), f"{config}: dial_via = 'sip' is not allowed (ami or manager)"),
        (FAIL, str(config), f"{config}: ping_timeout = '0' is not allowed (a number from 0.05 to 60)"),
        (FAIL, str(config), "command line: --trigger = 'soon' is not allowed (event or timer)"),
    ]


# -- the Perl FILL ----------------------------------------------------------------------------------
async def test_keepalive_7_fails(database_dsn, seed, tmp_path: Path) -> None:
    await seed.system_settings()
    report = await check(write_conf(tmp_path, database_dsn, keepalives="12345678"))
    ((result, target, detail),) = rows(report, "keepalive 7")
    assert (result, target) == (FAIL, "VARactive_keepalives")
    assert detail.startswith("12345678 has 7: ADMIN_keepalive_ALL.pl restarts AST_VDauto_dial_FILL.pl")


async def test_a_running_perl_fill_process_fails_with_its_pid(database_dsn, seed, tmp_path: Path) -> None:
    await seed.system_settings()
    perl = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "print(flush=True); input()",
            "/usr/share/astguiclient/AST_VDauto_dial_FILL.pl",
            "--debug",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        # right after exec its /proc cmdline can still read empty: wait until it runs
        assert perl.stdout is not None and perl.stdout.readline() == b"\n"
        report = await check(write_conf(tmp_path, database_dsn))
    finally:
        perl.kill()
        perl.wait(10)
    found = rows(report, "Perl FILL process")
    assert (FAIL, "this host") in {(r, t) for r, t, _ in found}
    assert any(
        d.startswith(f"pid {perl.pid} runs it: ") and d.endswith("AST_VDauto_dial_FILL.pl --debug")
        for _, _, d in found
    )
    after = await check(write_conf(tmp_path, database_dsn))
    assert rows(after, "Perl FILL process") == [(OK, "this host", "no AST_VDauto_dial_FILL.pl running")]


async def test_claims_and_recent_fill_calls_without_the_lock_fail(database_dsn, seed, tmp_path: Path) -> None:
    await seed.system_settings()
    await seed.campaign("SALES")
    await seed.lead_list(101, "SALES")
    leads = await seed.leads(101, 3)
    await seed.hopper("SALES", leads[:2], status="QUEUE", user=f"VDFC_{B}")
    await seed.insert(
        "vicidial_dial_cid_log",
        caller_code="V1201100000000000001",
        call_date=seed.now(),
        call_type="OUTBALANCE",
    )
    conf = write_conf(tmp_path, database_dsn)
    report = await check(conf)
    ((result, _, detail),) = rows(report, "another FILL")
    assert result == FAIL
    assert detail.startswith(
        f"2 QUEUE hopper rows claimed by VDFC_{B}; 1 OUTBALANCE calls in vicidial_dial_cid_log"
    )
    assert detail.endswith("another FILL (the Perl one?) is dialing and no fillreactor holds the lock")
    # the same rows while a fillreactor holds the lock are that fillreactor's own
    lock = unique_lock()
    holder = connect_sync(database_dsn)
    try:
        with holder.cursor() as cursor:
            cursor.execute("SELECT GET_LOCK(%s, 0), CONNECTION_ID()", (lock,))
            _, connection_id = cursor.fetchone()
        report = await check(conf, ("lock_name", lock))
    finally:
        holder.close()
    assert rows(report, "leader lock") == [
        (WARN, lock, f"held by connection {connection_id}: a fillreactor runs; another one would stand by")
    ]
    assert result_of(report, "another FILL") == OK


# -- the database -----------------------------------------------------------------------------------
async def test_an_unreachable_database_fails_without_the_password(tmp_path: Path) -> None:
    dsn = Dsn(user="cron", password="s3cret-pw", host="127.0.0.1", port=free_port(), database="asterisk")
    report = await check(write_conf(tmp_path, dsn))
    ((result, target, detail),) = rows(report, "database")
    assert (result, target) == (FAIL, f"cron@127.0.0.1:{dsn.port}/asterisk") and "cannot be reached" in detail
    assert result_of(report, "AMI login") == SKIP
    assert "s3cret-pw" not in report.text()


def test_a_missing_column_fails_and_a_missing_optional_table_warns(database_dsn, tmp_path: Path) -> None:
    with temporary_database(database_dsn.with_database(None)) as dsn:
        connection = connect_sync(dsn)
        try:
            with connection.cursor() as cursor:
                cursor.execute("ALTER TABLE vicidial_hopper DROP COLUMN user")
                cursor.execute("ALTER TABLE system_settings DROP COLUMN allow_shared_dial")
                cursor.execute("DROP TABLE vicidial_dial_cid_log")
                cursor.execute("DROP TABLE vicidial_settings_containers")
        finally:
            connection.close()
        report = asyncio.run(check(write_conf(tmp_path, dsn)))
    assert rows(report, "schema") == [
        (FAIL, dsn.database, "missing: table vicidial_dial_cid_log, vicidial_hopper.user"),
        (
            WARN,
            dsn.database,
            "optional, not there (its term is not modelled): system_settings.allow_shared_dial, "
            "vicidial_settings_containers",
        ),
    ]
    assert rows(report, "system_settings") == [
        (FAIL, "system_settings", "no row: VICIdial is not set up here")
    ]


async def test_no_servers_row_for_this_host_warns(database_dsn, seed, tmp_path: Path) -> None:
    await seed.system_settings()
    report = await check(write_conf(tmp_path, database_dsn, server_ip="10.10.10.99"))
    ((result, target, detail),) = rows(report, "this host")
    assert (result, target) == (WARN, "10.10.10.99") and "ext_context 'default' and exten 8365" in detail
    assert not report.blocking


# -- AMI --------------------------------------------------------------------------------------------
async def test_an_unreachable_server_and_a_refused_login_fail(database_dsn, seed, tmp_path: Path) -> None:
    async with servers() as (agent, _balance):
        await seed.system_settings()
        closed = free_port()
        await seed.server("agent1", A, telnet_host="127.0.0.1", telnet_port=closed)
        await seed.server(
            "bal1",
            B,
            telnet_host="127.0.0.1",
            telnet_port=agent.port,
            vicidial_balance_active="Y",
            ASTmgrSECRET="wrong-secret",
        )
        report = await check(write_conf(tmp_path, database_dsn))
    logins = {target: (result, detail) for result, target, detail in rows(report, "AMI login")}
    assert logins[f"{A} (127.0.0.1:{closed})"][0] == FAIL
    assert logins[f"{A} (127.0.0.1:{closed})"][1].startswith(f"cannot connect to 127.0.0.1:{closed}")
    assert logins[f"{B} (127.0.0.1:{agent.port})"] == (FAIL, "login as 'cron' refused: Authentication failed")
    assert "wrong-secret" not in report.text()
    assert rows(report, "AMI permissions") == []


@pytest.mark.parametrize(
    ("options", "settings", "result", "detail"),
    [
        (
            {"write": EVERYTHING - {"originate"}},
            (),
            FAIL,
            "no Originate (write=originate): balance calls cannot be sent here",
        ),
        (
            {"write": EVERYTHING - {"originate"}},
            (("dial_via", "manager"),),
            OK,
            "may CoreShowChannels, Filter; reads system events",
        ),
        (
            {"write": frozenset({"originate", "call"})},
            (),
            FAIL,
            "no CoreShowChannels (write=system or reporting): the link never resyncs; "
            "no Filter (write=system): the link goes on unfiltered, every event is sent",
        ),
        (
            {"write": frozenset({"originate", "reporting"})},
            (),
            WARN,
            "no Filter (write=system): the link goes on unfiltered, every event is sent",
        ),
        (
            {"write": frozenset({"originate", "reporting"})},
            (("ami_filter", False),),
            OK,
            "may CoreShowChannels, Originate; reads system events",
        ),
        (
            {"read_system": False},
            (),
            FAIL,
            "no FullyBooted after the login (read=system, or Asterisk still booting): "
            "the link never uses this server",
        ),
    ],
)
async def test_what_the_ami_user_may_do(
    database_dsn, seed, tmp_path: Path, options, settings, result, detail
) -> None:
    async with servers(**options) as (agent, balance):
        await seed_servers(seed, agent.port, balance.port)
        report = await check(write_conf(tmp_path, database_dsn), *settings)
    permissions = {target: (r, d) for r, target, d in rows(report, "AMI permissions")}
    assert permissions[f"{B} (127.0.0.1:{balance.port})"] == (result, detail)
    assert permissions[f"{A} (127.0.0.1:{agent.port})"][0] == OK  # the agent server has every permission
    assert bool(report.blocking) == (result == FAIL)


async def test_a_server_without_originate_that_is_not_a_balance_server_only_warns(
    database_dsn, seed, tmp_path: Path
) -> None:
    async with PermissionedAsterisk(write=EVERYTHING - {"originate"}) as agent:
        await seed.system_settings()
        await seed.server("agent1", A, telnet_host="127.0.0.1", telnet_port=agent.port)
        report = await check(write_conf(tmp_path, database_dsn))
    assert rows(report, "AMI permissions") == [
        (
            WARN,
            f"{A} (127.0.0.1:{agent.port})",
            "no Originate (write=originate): needed once it is a balance server",
        )
    ]


async def test_an_unusable_servers_row_fails(database_dsn, seed, tmp_path: Path) -> None:
    await seed.system_settings()
    await seed.server("agent1", A, telnet_host="127.0.0.1", telnet_port=0)
    report = await check(write_conf(tmp_path, database_dsn))
    assert rows(report, "servers rows") == [
        (FAIL, "servers", f"servers row '{A}' skipped: port 0 is not a TCP port")
    ]


def test_a_blocking_check_is_exit_1_from_the_command_line(tmp_path: Path) -> None:
    conf = tmp_path / "astguiclient.conf"
    conf.write_text("nothing useful\n")
    done = subprocess.run(
        fillreactor_command("check", "--conf", str(conf)),
        capture_output=True,
        text=True,
        timeout=30,
        env=subprocess_env(),
    )
    assert done.returncode == 1
    # the conf fails; the database is skipped (a skip is not a failure); settings and processes are fine
    assert (
        done.stdout.splitlines()[-1]
        == "1 problem blocks running (FAIL), 0 warnings: see README, Troubleshooting"
    )
    assert [line.split()[0] for line in done.stdout.splitlines()[1:5]] == [FAIL, OK, SKIP, OK]
