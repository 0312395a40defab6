"""``fillreactor demo``: fillreactor against a simulated cluster.

The live reactor (AMI links, store, dialer) is not built yet, so the demo says so and exits 0.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    print("fillreactor demo: not yet available (the live reactor is the next milestone).")
    print("Meanwhile `fillreactor simulate` runs the simulated Asterisk cluster it will dial on.")
    return 0
