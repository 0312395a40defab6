"""A private, throwaway MariaDB server started from the installed binary, for fault tests and the demo.

A fault test needs a database it may kill: ``PrivateMariaDB`` runs its own ``mariadbd`` in a
temporary directory on ``127.0.0.1`` and a free port, and stops it (SIGTERM), kills it (SIGKILL)
and starts it again on the same data directory and port, so a client sees the server go away
and come back at the address it was given.

Rules this module keeps:

* Only the installed programs are run: ``mariadbd`` (``/usr/sbin/mariadbd``, or ``$PATH``) and
  ``mariadb-install-db`` (or ``mysql_install_db``) to create the data directory. When either is
  missing, ``MariaDBNotInstalled`` says what to install. A server that does not come up raises
  ``MariaDBStartError`` with the tail of its error log. Both are ``DatabaseUnavailable``, so
  whoever handles an unreachable test database handles these too.
* Nothing of the machine's own MariaDB is read or touched: ``--no-defaults`` (no /etc/mysql),
  its own socket, pid file, error log and tmpdir inside the private directory, listening on
  ``127.0.0.1`` only. Root is ``root`` with an empty password over TCP (the test server's DSN
  shape); under uid 0 the server is told ``--user=root``, as mariadbd refuses root otherwise.
* The port is chosen once (a free ephemeral port, unless given) and kept for every restart; a
  first start that loses the port to another process retries on a new one.
* Ready means "a login over TCP succeeded", polled every ``POLL_INTERVAL`` seconds until
  ``start_timeout``, stopping at once if the process exits. That poll is the only wait on time:
  the process gives no event to await.
* Only the process this object started is ever signalled, by its pid; a ``weakref.finalize``
  kills it (and removes the private directory this object made) if the owner forgets, or at
  interpreter exit.
* Synchronous methods for fixtures and the demo's set-up; ``a``-prefixed coroutines run them in a
  thread so a test's event loop (and the client under test) keeps running meanwhile.

Measured on the project's 2-core machine (MariaDB 10.11): creating the data directory takes
about 0.7 s and a start until the first login about 0.15 s (a restart after SIGKILL, with crash
recovery of an idle server, about the same).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import weakref
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType

import pymysql

from fillreactor.testing.database import CONNECT_TIMEOUT_SECONDS, DatabaseUnavailable, Dsn

SERVER_BINARY_CANDIDATES = ("/usr/sbin/mariadbd", "mariadbd", "/usr/sbin/mysqld", "mysqld")
INSTALL_DB_CANDIDATES = ("/usr/bin/mariadb-install-db", "mariadb-install-db", "mysql_install_db")
HOST = "127.0.0.1"
USER = "root"
POLL_INTERVAL = 0.02
DEFAULT_START_TIMEOUT = 30.0
DEFAULT_STOP_TIMEOUT = 30.0
INSTALL_TIMEOUT = 120.0
PORT_RETRIES = 3
LOG_TAIL_LINES = 15
# Small buffers and redo log: a test server holds a few MB, and a 96 MB redo log file costs time.
SERVER_OPTIONS = (
    "--skip-name-resolve",
    "--innodb-buffer-pool-size=32M",
    "--innodb-log-file-size=8M",
    "--character-set-server=utf8mb4",
    "--max-connections=200",
)
INSTALL_HINT = "install MariaDB's server (Debian: apt-get install mariadb-server)"


class MariaDBNotInstalled(DatabaseUnavailable):
    """The mariadbd or mariadb-install-db program is not installed."""


class MariaDBStartError(DatabaseUnavailable):
    """The private server did not come up (the message carries its error log's tail)."""


def find_program(candidates: Sequence[str], what: str) -> str:
    """The first candidate that exists (absolute paths as given, bare names on ``$PATH``)."""
    for candidate in candidates:
        path = candidate if os.path.isabs(candidate) else shutil.which(candidate)
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    raise MariaDBNotInstalled(f"{what} not found (looked for {', '.join(candidates)}): {INSTALL_HINT}")


def free_port(host: str = HOST) -> int:
    """A TCP port nobody listens on right now (the kernel's choice of an ephemeral port)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def server_answers(dsn: Dsn, timeout: float = 1.0) -> bool:
    """True when a MariaDB login at ``dsn`` (without its database) succeeds within ``timeout``."""
    try:
        connection = pymysql.connect(
            host=dsn.host, port=dsn.port, user=dsn.user, password=dsn.password, connect_timeout=timeout
        )
    except pymysql.MySQLError:
        return False
    connection.close()
    return True


def _log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no error log)"
    return "\n".join(text.splitlines()[-lines:]) or "(error log empty)"


def _cleanup(process_box: list[subprocess.Popen[bytes] | None], directory: str | None) -> None:
    """Finalizer: kill our own server if it still runs, remove the directory we made."""
    process = process_box[0]
    if process is not None and process.poll() is None:
        with contextlib.suppress(OSError):
            process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)
    if directory is not None:
        shutil.rmtree(directory, ignore_errors=True)


class PrivateMariaDB:
    """One private ``mariadbd``: ``start``, ``stop`` (SIGTERM), ``kill`` (SIGKILL), ``restart``.

    Use as ``with PrivateMariaDB() as server:`` (or ``async with``); ``server.dsn`` is where it
    answers. ``base_dir`` (default: a new temporary directory, removed on ``close``) holds
    ``data/``, the socket, the pid file and ``error.log``.
    """

    def __init__(
        self,
        base_dir: str | Path | None = None,
        *,
        port: int | None = None,
        server_binary: str | None = None,
        install_db: str | None = None,
        start_timeout: float = DEFAULT_START_TIMEOUT,
        extra_options: Sequence[str] = (),
    ) -> None:
        self.server_binary = find_program(
            (server_binary,) if server_binary else SERVER_BINARY_CANDIDATES, "the MariaDB server (mariadbd)"
        )
        self._install_candidates = (install_db,) if install_db else INSTALL_DB_CANDIDATES
        self._owns_dir = base_dir is None
        self.base_dir = Path(base_dir or tempfile.mkdtemp(prefix="fillreactor-mariadb-"))
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.datadir = self.base_dir / "data"
        self.socket_path = self.base_dir / "mariadbd.sock"
        self.pid_file = self.base_dir / "mariadbd.pid"
        self.error_log = self.base_dir / "error.log"
        self.tmpdir = self.base_dir / "tmp"
        self.port = port
        self._port_given = port is not None
        self.start_timeout = start_timeout
        self.extra_options = tuple(extra_options)
        self.starts = 0
        self.last_install_seconds: float | None = None
        self.last_start_seconds: float | None = None
        self._process_box: list[subprocess.Popen[bytes] | None] = [None]
        self._finalizer = weakref.finalize(
            self, _cleanup, self._process_box, str(self.base_dir) if self._owns_dir else None
        )

    # -- what it is ----------------------------------------------------------------------------------
    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        return self._process_box[0]

    @property
    def pid(self) -> int | None:
        process = self.process
        return process.pid if process is not None else None

    @property
    def running(self) -> bool:
        process = self.process
        return process is not None and process.poll() is None

    @property
    def dsn(self) -> Dsn:
        if self.port is None:
            raise MariaDBStartError("the private MariaDB has not been started (no port yet)")
        return Dsn(user=USER, password="", host=HOST, port=self.port)

    def __repr__(self) -> str:
        state = f"running pid {self.pid}" if self.running else "stopped"
        return f"<PrivateMariaDB {HOST}:{self.port} {state} in {self.base_dir}>"

    # -- the data directory ----------------------------------------------------------------------------
    def _as_root_options(self) -> list[str]:
        return ["--user=root"] if os.geteuid() == 0 else []

    def initialise(self) -> None:
        """Create the data directory (system tables, root without password) unless it exists."""
        if (self.datadir / "mysql").is_dir():
            return
        install_db = find_program(self._install_candidates, "mariadb-install-db")
        self.datadir.mkdir(parents=True, exist_ok=True)
        command = [
            install_db,
            "--no-defaults",
            f"--datadir={self.datadir}",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            "--skip-name-resolve",
            "--innodb-log-file-size=8M",
            *self._as_root_options(),
        ]
        began = time.monotonic()
        try:
            result = subprocess.run(
                command, capture_output=True, timeout=INSTALL_TIMEOUT, check=False, cwd=self.base_dir
            )
        except subprocess.TimeoutExpired as error:
            raise MariaDBStartError(f"{install_db} did not finish within {INSTALL_TIMEOUT:g} s") from error
        self.last_install_seconds = time.monotonic() - began
        if result.returncode != 0:
            output = (result.stdout + result.stderr).decode("utf-8", "replace").strip().splitlines()
            raise MariaDBStartError(
                f"{install_db} failed with exit status {result.returncode}:\n"
                + "\n".join(output[-LOG_TAIL_LINES:])
            )

    # -- running -----------------------------------------------------------------------------------------
    def _command(self, port: int) -> list[str]:
        return [
            self.server_binary,
            "--no-defaults",
            f"--datadir={self.datadir}",
            f"--port={port}",
            f"--bind-address={HOST}",
            f"--socket={self.socket_path}",
            f"--pid-file={self.pid_file}",
            f"--log-error={self.error_log}",
            f"--tmpdir={self.tmpdir}",
            *SERVER_OPTIONS,
            *self._as_root_options(),
            *self.extra_options,
        ]

    def start(self) -> Dsn:
        """Start the server (creating its data directory the first time); its DSN once it answers."""
        if self.running:
            raise MariaDBStartError(f"the private MariaDB is already running (pid {self.pid})")
        self.initialise()
        self.tmpdir.mkdir(exist_ok=True)
        attempts = 1 if self._port_given or self.starts else PORT_RETRIES
        for attempt in range(attempts):
            if self.port is None:
                self.port = free_port()
            try:
                self._spawn_and_wait(self.port)
                break
            except MariaDBStartError:
                lost_port = "Address already in use" in _log_tail(self.error_log)
                if attempt + 1 >= attempts or not lost_port:
                    raise
                self.port = None  # someone took the port between free_port() and the bind: another
        self.starts += 1
        return self.dsn

    def _spawn_and_wait(self, port: int) -> None:
        began = time.monotonic()
        with contextlib.suppress(FileNotFoundError):
            self.error_log.unlink()  # so a failure shows this start's log, not an older one
        with (self.base_dir / "mariadbd.out").open("ab") as output:
            process = subprocess.Popen(
                self._command(port),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a ^C to the test run is not sent to the server
            )
        self._process_box[0] = process
        deadline = began + self.start_timeout
        while True:
            if process.poll() is not None:
                raise MariaDBStartError(
                    f"mariadbd exited with status {process.returncode} while starting on {HOST}:{port}; "
                    f"its error log ({self.error_log}) ends:\n{_log_tail(self.error_log)}"
                )
            if server_answers(Dsn(USER, "", HOST, port), timeout=CONNECT_TIMEOUT_SECONDS):
                self.last_start_seconds = time.monotonic() - began
                return
            if time.monotonic() >= deadline:
                self._signal_and_wait(signal.SIGKILL, 10.0)
                raise MariaDBStartError(
                    f"mariadbd did not answer on {HOST}:{port} within {self.start_timeout:g} s; "
                    f"its error log ends:\n{_log_tail(self.error_log)}"
                )
            time.sleep(POLL_INTERVAL)

    def _signal_and_wait(self, signum: signal.Signals, timeout: float) -> int | None:
        process = self.process
        if process is None or process.poll() is not None:
            return process.returncode if process is not None else None
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signum)
        try:
            return process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            if signum == signal.SIGKILL:
                raise
            process.kill()
            return process.wait(timeout=timeout)

    def stop(self, timeout: float = DEFAULT_STOP_TIMEOUT) -> int | None:
        """SIGTERM (a clean shutdown), waiting up to ``timeout`` before a SIGKILL; the exit status."""
        return self._signal_and_wait(signal.SIGTERM, timeout)

    def kill(self) -> int | None:
        """SIGKILL: the server vanishes at once (clients see their connections drop); the status."""
        return self._signal_and_wait(signal.SIGKILL, 10.0)

    def restart(self, *, kill: bool = False) -> Dsn:
        """Stop (or kill) and start again on the same data directory and port."""
        if kill:
            self.kill()
        else:
            self.stop()
        return self.start()

    def close(self) -> None:
        """Stop the server and remove the private directory (when this object made it)."""
        self.stop()
        self._finalizer()

    def __enter__(self) -> PrivateMariaDB:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- the same, from a running event loop ---------------------------------------------------------
    async def astart(self) -> Dsn:
        return await asyncio.to_thread(self.start)

    async def astop(self, timeout: float = DEFAULT_STOP_TIMEOUT) -> int | None:
        return await asyncio.to_thread(self.stop, timeout)

    async def akill(self) -> int | None:
        return await asyncio.to_thread(self.kill)

    async def arestart(self, *, kill: bool = False) -> Dsn:
        return await asyncio.to_thread(self.restart, kill=kill)

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)

    async def __aenter__(self) -> PrivateMariaDB:
        await self.astart()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


@contextlib.contextmanager
def server_or_private(dsn: Dsn) -> Iterator[tuple[Dsn, PrivateMariaDB | None]]:
    """The server at ``dsn`` when it answers, else a private one for the block (the demo's fallback).

    Yields ``(dsn to use, the private server or None)``; a private server is closed at the end.
    """
    if server_answers(dsn):
        yield dsn, None
        return
    with PrivateMariaDB() as private:
        yield private.dsn, private
