"""Run every benchmark under tests/bench and print its figures (nothing is asserted).

Each ``bench_*.py`` module exposes ``main(argv: list[str]) -> None``. Usage:
``python tests/bench/run.py`` (all) or ``python tests/bench/run.py parse plan`` (by name part).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    wanted = [a for a in argv if not a.startswith("-")]
    sys.path.insert(0, str(HERE.parent.parent))
    for path in sorted(HERE.glob("bench_*.py")):
        if wanted and not any(w in path.stem for w in wanted):
            continue
        spec = importlib.util.spec_from_file_location(path.stem, path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        print(f"== {path.stem} ==", flush=True)
        module.main([a for a in argv if a.startswith("-")])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
