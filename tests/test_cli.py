"""The ``fillreactor`` command and the CI contract with README.rst."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from fillreactor import __version__
from fillreactor.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_no_command_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    out = capsys.readouterr().out
    for command in ("demo", "simulate", "schema"):
        assert command in out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"fillreactor {__version__}"


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["frobnicate"])
    assert exit_info.value.code == 2


def test_console_script_runs_as_a_module() -> None:
    done = subprocess.run([sys.executable, "-m", "fillreactor", "--version"], capture_output=True, text=True)
    assert done.returncode == 0
    assert done.stdout.strip() == f"fillreactor {__version__}"


def readme_commands() -> list[str]:
    text = (ROOT / "README.rst").read_text()
    return re.findall(r"^\s+(python3 -m venv \.venv && .+)$", text, flags=re.M)


def test_readme_has_exactly_the_two_setup_commands_and_ci_runs_the_test_one() -> None:
    commands = readme_commands()
    assert len(commands) == 2
    demo, tests = sorted(commands, key=lambda c: "pytest" in c)
    assert demo.endswith(".venv/bin/fillreactor demo")
    assert tests.endswith(".venv/bin/python -m pytest")
    ci = (ROOT / ".ci" / "run").read_text()
    assert "README.rst" in ci and "-m pytest" in ci


def test_readme_is_valid_restructuredtext() -> None:
    import io

    import docutils.core

    errors = io.StringIO()
    text = (ROOT / "README.rst").read_text(encoding="utf-8")
    docutils.core.publish_doctree(text, settings_overrides={"warning_stream": errors, "report_level": 2})
    assert errors.getvalue() == ""
