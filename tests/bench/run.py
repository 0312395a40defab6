"""Run every benchmark under tests/bench and print its figures (nothing is asserted).

Each ``bench_*.py`` module exposes ``main(argv: list[str]) -> None``. Usage:
``python tests/bench/run.py`` (all) or ``python tests/bench/run.py parse plan`` (by name part).
Options (``--x=y``) go to every module run; each takes the ones it knows.

The benchmarks that record figures (``benchlib.record``: reaction, ingest, dbcost, scale) are
printed at the end as one table, with the machine, the load and the date; ``--rst=PATH`` also
writes that table as reStructuredText (the README's), ``--no-table`` leaves it out.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    wanted = [a for a in argv if not a.startswith("-")]
    options = [a for a in argv if a.startswith("-")]
    sys.path.insert(0, str(HERE.parent.parent))
    sys.path.insert(0, str(HERE))
    import benchlib  # the figures' registry, shared with the modules (they import it by this name)

    load = benchlib.load_average()
    for path in sorted(HERE.glob("bench_*.py")):
        if wanted and not any(w in path.stem for w in wanted):
            continue
        spec = importlib.util.spec_from_file_location(path.stem, path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        print(f"== {path.stem} ==", flush=True)
        module.main(options)
    figures = benchlib.FIGURES
    if figures and "--no-table" not in options:
        print()
        print(benchlib.table_text(figures, load))
    rst = benchlib.option(options, "rst", "")
    if figures and rst:
        Path(rst).write_text(benchlib.table_rst(figures, load))
        print(f"(the table as reStructuredText: {rst})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
