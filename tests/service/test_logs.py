"""Logs: journald priority prefixes, VICIdial's FILL log file, the VDADfull.kill kill file.

Facts: syslog priorities (RFC 5424: 2 critical, 3 error, 4 warning, 6 informational, 7 debug) as
``<N>`` line prefixes that journald reads (spec/AMI.md D 5.2); the FILL log is
``$PATHlogs/vdautodial_FILL.<YYYY-MM-DD>`` with ``<YYYY-MM-DD HH:MM:SS>|<event>|`` lines, written
only when the FILL host's ``servers.vd_server_logs`` is ``Y`` (spec 8.3); ``$PATHhome/VDADfull.kill``
is removed and the FILL exits cleanly (spec 2.11, 8.2).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from pathlib import Path

import pytest
from service_helpers import A, conf_for, eventually, fast_settings, vicidial

from fillreactor.service.logs import (
    KILL_FILE,
    JournalFormatter,
    VicidialFileHandler,
    attach_vicidial_file,
    detach,
    kill_file_present,
)
from fillreactor.service.run import serve

pytestmark = pytest.mark.timeout(60)


def record(message: str, level: int = logging.INFO, when: datetime | None = None) -> logging.LogRecord:
    item = logging.LogRecord("fillreactor.reactor", level, __file__, 1, message, (), None)
    if when is not None:
        item.created = when.timestamp()
    return item


@pytest.mark.parametrize(
    ("level", "prefix"),
    [
        (logging.CRITICAL, "<2>"),
        (logging.ERROR, "<3>"),
        (logging.WARNING, "<4>"),
        (logging.INFO, "<6>"),
        (logging.DEBUG, "<7>"),
    ],
)
def test_under_journald_every_line_carries_its_syslog_priority(level: int, prefix: str) -> None:
    text = JournalFormatter(journald=True).format(record("database unreachable\nretrying", level))
    assert text == f"{prefix}fillreactor.reactor: database unreachable\n{prefix}retrying"


def test_on_a_terminal_a_line_starts_with_the_time_and_the_level() -> None:
    when = datetime(2026, 3, 4, 9, 8, 7)
    text = JournalFormatter(journald=False).format(record("leader lock taken", logging.WARNING, when))
    assert text == "09:08:07 warning fillreactor.reactor: leader lock taken"


def test_the_fill_log_line_is_the_perl_s_format_in_the_file_of_its_date(tmp_path: Path) -> None:
    handler = VicidialFileHandler(tmp_path)
    handler.emit(
        record("CAMPAIGN: SALES\nBalance Servers available: 2", when=datetime(2026, 3, 4, 23, 59, 59))
    )
    handler.emit(record("HANGING UP", when=datetime(2026, 3, 5, 0, 0, 1)))
    assert (tmp_path / "vdautodial_FILL.2026-03-04").read_text() == (
        "2026-03-04 23:59:59|CAMPAIGN: SALES\nBalance Servers available: 2|\n"
    )
    assert (tmp_path / "vdautodial_FILL.2026-03-05").read_text() == "2026-03-05 00:00:01|HANGING UP|\n"


def test_a_fill_log_that_cannot_be_written_is_reported_once(tmp_path: Path, capsys) -> None:
    handler = VicidialFileHandler(tmp_path / "no" / "such" / "dir")
    handler.emit(record("one"))
    handler.emit(record("two"))
    err = capsys.readouterr().err
    assert err.count("cannot write the FILL log") == 1 and err.startswith("<4>")


def test_the_fill_log_gets_fillreactor_s_info_lines_and_stops_when_detached(tmp_path: Path) -> None:
    handler = attach_vicidial_file(tmp_path)
    try:
        logging.getLogger("fillreactor.dialer").info("placed %d calls", 3)
        logging.getLogger("fillreactor.dialer").debug("not in the FILL log")
        logging.getLogger("other.library").warning("not fillreactor's")
    finally:
        detach(handler)
    logging.getLogger("fillreactor.dialer").warning("after detach")
    (path,) = tmp_path.iterdir()
    assert path.name == f"vdautodial_FILL.{datetime.now():%Y-%m-%d}"
    (line,) = path.read_text().splitlines()
    assert line.endswith("|placed 3 calls|") and len(line.split("|")[0]) == len("2026-03-04 09:08:07")


def test_the_kill_file_is_removed_when_found(tmp_path: Path) -> None:
    assert not kill_file_present(tmp_path)
    (tmp_path / KILL_FILE).write_text("")
    assert kill_file_present(tmp_path)
    assert not (tmp_path / KILL_FILE).exists()
    assert KILL_FILE == "VDADfull.kill"


async def test_the_service_stops_cleanly_on_the_kill_file_and_writes_the_fill_log(
    database_dsn, seed, tmp_path: Path
) -> None:
    home, logs = tmp_path / "home", tmp_path / "logs"
    home.mkdir()
    logs.mkdir()
    async with vicidial(database_dsn, seed, agent_calls=0, host_logs="Y") as cluster:
        started = asyncio.Event()
        settings = fast_settings(status_socket=str(tmp_path / "status.sock"))
        task = asyncio.get_running_loop().create_task(
            serve(
                conf_for(database_dsn, server_ip=A, home=home, logs=logs),
                settings,
                housekeeping_interval=0.05,
                on_service=lambda s: s.extra_tasks.append(started.wait),
            )
        )
        await eventually(lambda: any(logs.iterdir()), what="the FILL log file")
        (home / KILL_FILE).write_text("")
        code = await asyncio.wait_for(task, 20)
        assert code == 0
        assert not (home / KILL_FILE).exists()
        assert cluster.sims[0].logins >= 1
    (path,) = logs.iterdir()
    assert path.name == f"vdautodial_FILL.{datetime.now():%Y-%m-%d}"
    text = path.read_text()
    assert "|logging also to" in text and "VDADfull.kill found: stopping, as the Perl FILL does|" in text
    # every line is <date time>|<message>| (spec 8.3)
    for line in text.splitlines():
        stamp, _, rest = line.partition("|")
        datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S")
        assert rest.endswith("|")
