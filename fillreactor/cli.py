"""The ``fillreactor`` command.

Each subcommand lives in the module of the capability it drives and exposes two functions:
``add_arguments(parser)`` and ``run(args) -> int``. This file only wires them, importing a
subcommand's module when that subcommand runs, so ``fillreactor --help`` stays fast and a
broken optional piece cannot stop the others.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from types import ModuleType

from fillreactor import __version__

# name -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "run": ("fillreactor.service.run", "the FILL dialer service (or one pass with --once)"),
    "shortage": (
        "fillreactor.shortage_cli",
        "AST_VDauto_dial.pl's local_trunk_shortage per campaign and server, every term explained",
    ),
    "check": (
        "fillreactor.service.check",
        "check the configuration, database, AMI and that the Perl FILL is off",
    ),
    "status": ("fillreactor.service.status", "show what the running instance sees (lines, links, campaigns)"),
    "systemd-unit": ("fillreactor.service.unit_cli", "print the systemd unit for this installation"),
    "record": (
        "fillreactor.fixtures.record",
        "record the cluster's AMI traffic and database reads into a fixture (reads only)",
    ),
    "replay": ("fillreactor.fixtures.replay", "replay a recorded fixture through the core, no I/O"),
    "demo": ("fillreactor.demo", "the real service against a simulated cluster and a scratch database"),
    "simulate": ("fillreactor.simulator.cli", "run a simulated Asterisk cluster (AMI servers)"),
    "schema": ("fillreactor.schema.cli", "print or load the VICIdial schema fillreactor works on"),
    "shadow-report": (
        "fillreactor.shadow.report_cli",
        "the summary tables of a `fillreactor run --shadow --shadow-report FILE` report",
    ),
}


def _module(name: str) -> ModuleType:
    return importlib.import_module(name)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("command", nargs="?")
    first, _ = parser.parse_known_args(argv[:1])
    full = build_parser_for(first.command)
    args = full.parse_args(argv)
    if not getattr(args, "_module", None):
        full.print_help()
        return 2
    try:
        return int(_module(args._module).run(args) or 0)
    except KeyboardInterrupt:
        return 130


def build_parser_for(command: str | None) -> argparse.ArgumentParser:
    """The full parser, with the arguments of ``command`` (only) loaded."""
    parser = argparse.ArgumentParser(
        prog="fillreactor",
        description="Event-driven balance FILL dialer for VICIdial clusters.",
    )
    parser.add_argument("--version", action="version", version=f"fillreactor {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(_module=module_name)
        if name == command:
            _module(module_name).add_arguments(sub)
    return parser


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
