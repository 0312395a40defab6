"""README's tables are the ones the code renders: settings, metrics, what each ``check`` row means.

Until the operations text is merged into README.rst, ``FILLREACTOR_README`` may point at it
(/work/scratch/readme-ops.rst).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from service_helpers import ROOT

from fillreactor.service.check import EXPLAINED_BEGIN, EXPLAINED_END, explained_rst
from fillreactor.service.metrics import METRICS_BEGIN, METRICS_END, metrics_table_rst
from fillreactor.service.settings import TABLE_BEGIN, TABLE_END, settings_table_rst

README = Path(os.environ.get("FILLREACTOR_README", ROOT / "README.rst"))


def block(begin: str, end: str) -> str:
    text = README.read_text(encoding="utf-8")
    if begin not in text:
        pytest.fail(f"{README} lacks the block {begin!r}: paste the operations README text")
    start = text.index(begin)
    return text[start : text.index(end, start) + len(end)] + "\n"


@pytest.mark.parametrize(
    ("begin", "end", "render"),
    [
        (TABLE_BEGIN, TABLE_END, settings_table_rst),
        (METRICS_BEGIN, METRICS_END, metrics_table_rst),
        (EXPLAINED_BEGIN, EXPLAINED_END, explained_rst),
    ],
    ids=["settings", "metrics", "check rows"],
)
def test_readme_holds_the_rendered_block(begin: str, end: str, render: Callable[[], str]) -> None:
    assert block(begin, end) == render()
