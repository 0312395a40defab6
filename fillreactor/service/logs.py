"""Logging of the service: journald-friendly stderr, and VICIdial's own FILL log file when asked.

Rules this module keeps (spec/VICIDIAL_FILL.md 8.2-8.3, spec/AMI.md D 5.2):

* stderr lines carry a syslog priority prefix (``<3>`` error, ``<4>`` warning, ``<6>`` info, ``<7>``
  debug) and no timestamp: journald adds its own and reads the prefix
  (``SyslogLevelPrefix=yes``). On a terminal (not under journald) the prefix is replaced by a
  time, for humans.
* When the FILL host's ``servers.vd_server_logs`` is ``Y``, every log line is also appended to
  ``<PATHlogs>/vdautodial_FILL.<YYYY-MM-DD>`` as ``<YYYY-MM-DD HH:MM:SS>|<message>|`` (the Perl
  FILL's format), the date of the line choosing the file, so admins' ``tail -f`` habits keep
  working. It gets fillreactor's INFO lines whatever ``log_level`` says for stderr (the Perl logs
  every event when ``vd_server_logs`` is Y). A file that cannot be written is reported once and
  otherwise ignored.
* Secrets are never passed to a logger (the configuration objects mask them).
* ``kill_file_present`` is the Perl's ``VDADfull.kill`` check: the file is removed and the service
  stops cleanly, as the Perl does (spec 8.2).
"""

from __future__ import annotations

import logging
import os
import sys
from datetime import datetime
from pathlib import Path

PRIORITY = {
    logging.CRITICAL: 2,
    logging.ERROR: 3,
    logging.WARNING: 4,
    logging.INFO: 6,
    logging.DEBUG: 7,
}
KILL_FILE = "VDADfull.kill"


def priority_of(level: int) -> int:
    for threshold in sorted(PRIORITY, reverse=True):
        if level >= threshold:
            return PRIORITY[threshold]
    return 7


class JournalFormatter(logging.Formatter):
    """``<N>logger: message`` under journald; ``HH:MM:SS level logger: message`` on a terminal."""

    def __init__(self, journald: bool) -> None:
        super().__init__()
        self.journald = journald

    def format(self, record: logging.LogRecord) -> str:
        text = f"{record.name}: {record.getMessage()}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        if self.journald:
            prefix = f"<{priority_of(record.levelno)}>"
            return "\n".join(prefix + line for line in text.splitlines())
        stamp = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        return f"{stamp} {record.levelname.lower():<7} {text}"


class VicidialFileHandler(logging.Handler):
    """Appends ``<date time>|<message>|`` to ``<logs>/vdautodial_FILL.<date>`` (spec 8.3)."""

    def __init__(self, logs_dir: str | Path, prefix: str = "vdautodial_FILL") -> None:
        super().__init__()
        self.logs_dir = Path(logs_dir)
        self.prefix = prefix
        self.failed = False

    def emit(self, record: logging.LogRecord) -> None:
        when = datetime.fromtimestamp(record.created)
        path = self.logs_dir / f"{self.prefix}.{when:%Y-%m-%d}"
        line = f"{when:%Y-%m-%d %H:%M:%S}|{record.getMessage()}|\n"
        try:
            with path.open("a", encoding="utf-8") as handle:
                handle.write(line)
        except OSError as error:
            if not self.failed:
                self.failed = True
                sys.stderr.write(f"<4>fillreactor: cannot write the FILL log {path}: {error}\n")


def under_journald() -> bool:
    return bool(os.environ.get("JOURNAL_STREAM")) or not sys.stderr.isatty()


def configure(level: str = "info", *, journald: bool | None = None) -> logging.Handler:
    """Send fillreactor's logs to stderr in the format above; returns the handler."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JournalFormatter(under_journald() if journald is None else journald))
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_fillreactor", False)]:
        root.removeHandler(old)
    handler._fillreactor = True  # type: ignore[attr-defined]
    wanted = getattr(logging, level.upper(), logging.INFO)
    handler.setLevel(wanted)  # the FILL log file may want INFO from fillreactor while stderr does not
    root.addHandler(handler)
    root.setLevel(wanted)
    logging.getLogger("panoramisk").setLevel(max(logging.INFO, root.level))  # DEBUG halves its speed
    return handler


def attach_vicidial_file(logs_dir: str | Path) -> VicidialFileHandler:
    """Also write fillreactor's INFO and above to the VICIdial FILL log in ``logs_dir``."""
    handler = VicidialFileHandler(logs_dir)
    handler.setLevel(logging.INFO)
    logger = logging.getLogger("fillreactor")
    handler.previous_level = logger.level  # type: ignore[attr-defined]
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    return handler


def detach(handler: logging.Handler) -> None:
    """Undo ``attach_vicidial_file`` (the service stopped)."""
    logger = logging.getLogger("fillreactor")
    logger.removeHandler(handler)
    logger.setLevel(getattr(handler, "previous_level", logger.level))
    handler.close()


def kill_file_present(path_home: str | Path) -> bool:
    """True (and the file removed) when ``<PATHhome>/VDADfull.kill`` exists (spec 8.2)."""
    path = Path(path_home) / KILL_FILE
    if not path.exists():
        return False
    try:
        path.unlink()
    except OSError:
        pass
    return True
