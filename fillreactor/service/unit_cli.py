"""``fillreactor systemd-unit``: print the systemd unit for this installation.

Rules this module keeps:

* The unit is ``systemd.unit_text``: this installation's ``fillreactor`` (the venv it runs from),
  ``--conf`` (astguiclient.conf) and ``--config`` (fillreactor.conf) as given, ``User=`` from
  ``--user``. Nothing is installed: the admin redirects the output to
  ``/etc/systemd/system/fillreactor.service`` (README, production install).
* PATHhome and PATHlogs are read from ``--conf`` when it can be read, so the unit lets the service
  write there (the kill file, the FILL log); when it cannot, VICIdial's default paths are used
  and one line on stderr says so. The unit goes to stdout, notes to stderr, nothing secret to either.
* A ``--user`` that is not a valid user name is refused (exit 2); one that does not exist on this
  host is printed with a warning (the unit may be written for another machine).
"""

from __future__ import annotations

import argparse
import pwd
import re
import sys

from fillreactor.astguiclient import (
    DEFAULT_PATH,
    DEFAULT_PATH_HOME,
    DEFAULT_PATH_LOGS,
    ConfigError,
    load_conf,
)
from fillreactor.service.systemd import unit_text

EXIT_USAGE = 2
_USER_NAME = re.compile(r"^[a-z_][a-z0-9_-]{0,31}\$?$")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--user", default="root", help="the user the service runs as (User=; default %(default)s)"
    )
    parser.add_argument(
        "--conf",
        default=str(DEFAULT_PATH),
        metavar="FILE",
        help="astguiclient.conf the service reads (default %(default)s)",
    )
    parser.add_argument(
        "--config",
        default=None,
        metavar="FILE",
        help="fillreactor's settings file the service reads (default: /etc/fillreactor.conf if present)",
    )
    parser.add_argument(
        "--extra-args",
        default="",
        metavar="ARGS",
        help='more options for `fillreactor run`, e.g. "--metrics-port 9321"',
    )


def run(args: argparse.Namespace) -> int:
    if not _USER_NAME.match(args.user):
        print(f"fillreactor systemd-unit: --user {args.user!r} is not a user name", file=sys.stderr)
        return EXIT_USAGE
    try:
        pwd.getpwnam(args.user)
    except KeyError:
        print(f"fillreactor systemd-unit: note: there is no user {args.user!r} on this host", file=sys.stderr)
    home, logs = DEFAULT_PATH_HOME, DEFAULT_PATH_LOGS
    try:
        conf = load_conf(args.conf)
        home, logs = conf.path_home, conf.path_logs
    except ConfigError as error:
        print(
            f"fillreactor systemd-unit: note: {error}; using PATHhome {home} and PATHlogs {logs}",
            file=sys.stderr,
        )
    sys.stdout.write(
        unit_text(
            conf=args.conf,
            config=args.config,
            user=args.user,
            extra_args=args.extra_args,
            writable=(home, logs),
        )
    )
    return 0
