"""systemd: the notify protocol through a fake NOTIFY_SOCKET, the watchdog from the event loop, the unit.

The protocol facts (sd_notify(3), spec/AMI.md D 5.1-5.2): one datagram per message to
``$NOTIFY_SOCKET`` (``@`` = the abstract namespace), newline-separated ``KEY=VALUE`` lines;
``WATCHDOG=1`` at least every ``$WATCHDOG_USEC`` (we send every half), only when
``$WATCHDOG_PID`` is unset or ours; nothing at all without ``NOTIFY_SOCKET``.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from service_helpers import NotifyListener, fillreactor_command, subprocess_env

from fillreactor.service.systemd import STOP_TIMEOUT_SECONDS, Notifier, unit_text


@pytest.fixture
def listener(tmp_path: Path):
    listener = NotifyListener(tmp_path / "notify.sock")
    yield listener
    listener.close()


def test_each_message_is_one_datagram_of_key_value_lines(listener: NotifyListener) -> None:
    notifier = Notifier(listener.environ())
    notifier.ready("1/3 AMI servers live")
    notifier.status("3/3 AMI servers live, 1 campaigns filling, 4 calls in flight")
    notifier.watchdog()
    notifier.stopping("stopped")
    assert listener.drain() == [
        "READY=1\nSTATUS=1/3 AMI servers live",
        "STATUS=3/3 AMI servers live, 1 campaigns filling, 4 calls in flight",
        "WATCHDOG=1",
        "STOPPING=1\nSTATUS=stopped",
    ]


def test_reloading_carries_the_monotonic_time_in_microseconds(listener: NotifyListener) -> None:
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    Notifier(listener.environ()).reloading()
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    (message,) = listener.drain()
    first, second = message.split("\n")
    assert first == "RELOADING=1" and second.startswith("MONOTONIC_USEC=")
    assert before <= int(second.split("=")[1]) <= after


def test_an_abstract_socket_name_starts_with_at() -> None:
    name = f"fillreactor-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        Notifier({"NOTIFY_SOCKET": "@" + name}).ready()
        assert sock.recv(100) == b"READY=1"


def test_without_notify_socket_nothing_is_sent_and_nothing_fails() -> None:
    notifier = Notifier({})
    notifier.ready("x")
    assert not notifier.enabled and notifier.sent == [] and notifier.errors == 0


def test_a_socket_nobody_listens_on_is_counted_never_raised(tmp_path: Path) -> None:
    notifier = Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone.sock")})
    notifier.ready()
    notifier.watchdog()
    assert notifier.errors == 2 and notifier.sent == []


@pytest.mark.parametrize(
    ("environ", "interval"),
    [
        ({"WATCHDOG_USEC": "30000000"}, 15.0),  # WatchdogSec=30: a ping every 15 s
        ({"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": str(os.getpid())}, 0.5),
        ({"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"}, None),  # meant for another process
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
        ({}, None),
    ],
)
def test_the_watchdog_interval_is_half_the_timeout_and_only_for_us(environ, interval) -> None:
    assert Notifier({"NOTIFY_SOCKET": "/x", **environ}).watchdog_interval == interval


async def test_the_watchdog_pings_from_the_loop_and_a_stalled_loop_stops_it(listener) -> None:
    notifier = Notifier(listener.environ(watchdog_usec=40_000))  # a ping every 20 ms
    task = asyncio.get_running_loop().create_task(notifier.run_watchdog())
    try:
        await listener.wait_for(lambda m: m == "WATCHDOG=1", timeout=5)
        await listener.wait_for(lambda m: listener.messages.count("WATCHDOG=1") >= 3, timeout=5)
        listener.drain()
        time.sleep(0.2)  # the loop is stalled for ten intervals (a blocking call on the loop)
        assert listener.drain() == []  # no ping came from anywhere while the loop could not run
        await listener.wait_for(lambda m: m == "WATCHDOG=1", timeout=5)  # and it resumes with the loop
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def test_the_unit_file_for_this_installation() -> None:
    text = unit_text(
        conf="/etc/astguiclient.conf",
        config="/etc/fillreactor.conf",
        user="vicidial",
        exec_path=Path("/opt/fillreactor/.venv/bin/fillreactor"),
        writable=("/usr/share/astguiclient", "/var/log/astguiclient"),
    )
    lines = text.splitlines()
    for line in (
        "Type=notify",
        "NotifyAccess=main",
        "ExecStart=/opt/fillreactor/.venv/bin/fillreactor run --conf /etc/astguiclient.conf"
        " --config /etc/fillreactor.conf",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "After=network-online.target mariadb.service mysql.service",
        "Restart=on-failure",
        "WatchdogSec=30",
        f"TimeoutStopSec={STOP_TIMEOUT_SECONDS}",
        "User=vicidial",
        "RuntimeDirectory=fillreactor",
        "ReadWritePaths=-/usr/share/astguiclient -/var/log/astguiclient",
        "WantedBy=multi-user.target",
    ):
        assert line in lines, line
    assert lines.index("[Unit]") < lines.index("[Service]") < lines.index("[Install]")


def test_the_stop_timeout_leaves_room_for_the_service_s_own_deadline() -> None:
    from fillreactor.reactor.service import DRAIN_SECONDS
    from fillreactor.service.run import STOP_DEADLINE

    assert DRAIN_SECONDS < STOP_DEADLINE < STOP_TIMEOUT_SECONDS


def test_systemd_unit_prints_the_unit_with_the_venv_and_the_conf_paths(tmp_path: Path) -> None:
    conf = tmp_path / "astguiclient.conf"
    conf.write_text(
        "PATHhome => /srv/astguiclient\nPATHlogs => /srv/logs\nVARserver_ip => 10.10.10.11\n"
        "VARDB_server => db\nVARDB_user => cron\nVARDB_pass => s3cret\nVARDB_database => asterisk\n"
    )
    done = subprocess.run(
        fillreactor_command(
            "systemd-unit", "--user", "root", "--conf", str(conf), "--config", "/etc/fr.conf"
        ),
        capture_output=True,
        text=True,
        timeout=30,
        env=subprocess_env(),
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    venv_script = Path(os.environ.get("VIRTUAL_ENV", "")) / "bin" / "fillreactor"
    exec_line = next(line for line in lines if line.startswith("ExecStart="))
    assert exec_line.endswith(f" run --conf {conf} --config /etc/fr.conf")
    assert exec_line.split("=", 1)[1].split()[0] in (str(Path(fillreactor_command()[0])), str(venv_script))
    assert "ReadWritePaths=-/srv/astguiclient -/srv/logs" in lines
    assert "User=root" in lines and "s3cret" not in done.stdout + done.stderr


def test_systemd_unit_refuses_a_user_that_is_not_a_name() -> None:
    done = subprocess.run(
        fillreactor_command("systemd-unit", "--user", "root;rm"),
        capture_output=True,
        text=True,
        timeout=30,
        env=subprocess_env(),
    )
    assert done.returncode == 2 and "is not a user name" in done.stderr and done.stdout == ""
