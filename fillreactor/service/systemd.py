"""systemd: the notify protocol in a few lines of our own, the watchdog, and the unit file.

Rules this module keeps (spec/AMI.md D 5.1-5.2):

* ``Notifier`` sends one datagram per message to ``$NOTIFY_SOCKET`` (``@name`` is the abstract
  namespace), a new socket each time as libsystemd does. Without ``NOTIFY_SOCKET`` it does nothing.
  A failed send is counted and logged once; it never raises into the service.
* ``READY=1`` is sent once the service has started its links and loops, not once every server is
  connected (one dead Asterisk must not block start-up until ``TimeoutStartSec``).
* ``WATCHDOG=1`` is sent from a task of the service's own event loop every half
  ``$WATCHDOG_USEC``, so a stalled loop stops the pings and systemd restarts the service.
  ``$WATCHDOG_PID``, when set, must be our pid.
* ``unit_text`` writes the unit for this installation: ``Type=notify``, the venv's ``fillreactor``,
  ``After=mariadb.service``, a restart policy, ``WatchdogSec``, a stop timeout longer than the
  service's own drain time (``STOP_TIMEOUT_SECONDS`` > ``serve``'s ``STOP_DEADLINE`` > the reactor's
  drain), ``ExecReload`` as SIGHUP, ``/run/fillreactor`` for the status socket, and write access
  to PATHhome (the kill file is removed there) and PATHlogs (the FILL log) under
  ``ProtectSystem=full``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sys
import time
from collections.abc import Mapping
from pathlib import Path

log = logging.getLogger(__name__)

WATCHDOG_SECONDS = 30
STOP_TIMEOUT_SECONDS = 20


class Notifier:
    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        self.address: str | None = ("\0" + address[1:]) if address.startswith("@") else (address or None)
        self.sent: list[str] = []
        self.errors = 0
        watchdog_pid = env.get("WATCHDOG_PID", "")
        usec = env.get("WATCHDOG_USEC", "")
        self.watchdog_usec: int | None = None
        if usec.isdigit() and int(usec) > 0 and (not watchdog_pid or watchdog_pid == str(os.getpid())):
            self.watchdog_usec = int(usec)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    @property
    def watchdog_interval(self) -> float | None:
        """Seconds between WATCHDOG=1 pings (half the timeout), or None when no watchdog is asked."""
        return None if self.watchdog_usec is None else self.watchdog_usec / 2_000_000

    def notify(self, *lines: str) -> bool:
        message = "\n".join(lines)
        if self.address is None:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.sendto(message.encode(), self.address)
        except OSError as error:
            self.errors += 1
            if self.errors == 1:
                log.warning("systemd notify to %s failed: %s", self.address.lstrip("\0"), error)
            return False
        self.sent.append(message)
        return True

    def ready(self, status: str = "") -> None:
        self.notify("READY=1", *((f"STATUS={status}",) if status else ()))

    def status(self, text: str) -> None:
        self.notify(f"STATUS={text}")

    def watchdog(self) -> None:
        self.notify("WATCHDOG=1")

    def reloading(self) -> None:
        self.notify("RELOADING=1", f"MONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}")

    def stopping(self, status: str = "") -> None:
        self.notify("STOPPING=1", *((f"STATUS={status}",) if status else ()))

    async def run_watchdog(self) -> None:
        """Ping the watchdog from this event loop until cancelled (a stalled loop stops pinging)."""
        interval = self.watchdog_interval
        if interval is None or not self.enabled:
            return
        while True:
            self.watchdog()
            await asyncio.sleep(interval)


def executable() -> Path:
    """The ``fillreactor`` script of this installation (beside the running Python)."""
    return Path(sys.executable).parent / "fillreactor"


def exec_start(exec_path: Path | None = None) -> str:
    """How systemd starts this installation: its ``fillreactor`` script, else ``python -m fillreactor``."""
    path = exec_path or executable()
    if exec_path is not None or path.exists():
        return str(path)
    return f"{sys.executable} -m fillreactor"


def unit_text(
    *,
    conf: str = "/etc/astguiclient.conf",
    config: str | None = None,
    user: str = "root",
    extra_args: str = "",
    exec_path: Path | None = None,
    writable: tuple[str, ...] = (),
) -> str:
    """The unit file; ``writable``: directories the service writes (PATHhome, PATHlogs)."""
    command = f"{exec_start(exec_path)} run --conf {conf}"
    if config:
        command += f" --config {config}"
    if extra_args:
        command += f" {extra_args}"
    paths = " ".join(dict.fromkeys(p for p in writable if p))
    read_write = f"ReadWritePaths=-{paths.replace(' ', ' -')}\n" if paths else ""
    return f"""\
# fillreactor: the event-driven balance FILL dialer for VICIdial (written by `fillreactor systemd-unit`)
[Unit]
Description=fillreactor balance FILL dialer for VICIdial
Documentation=https://pypi.org/project/fillreactor/
After=network-online.target mariadb.service mysql.service
Wants=network-online.target
StartLimitIntervalSec=300
StartLimitBurst=10

[Service]
Type=notify
NotifyAccess=main
ExecStart={command}
ExecReload=/bin/kill -HUP $MAINPID
Restart=on-failure
RestartSec=2
WatchdogSec={WATCHDOG_SECONDS}
TimeoutStartSec=60
TimeoutStopSec={STOP_TIMEOUT_SECONDS}
KillSignal=SIGTERM
Environment=PYTHONUNBUFFERED=1
SyslogIdentifier=fillreactor
User={user}
RuntimeDirectory=fillreactor
NoNewPrivileges=yes
ProtectSystem=full
{read_write}PrivateTmp=yes

[Install]
WantedBy=multi-user.target
"""
