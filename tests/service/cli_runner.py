"""``fillreactor`` with issue 10's subcommands wired as the report asks fillreactor/cli.py to wire them.

Used by the subprocess tests only while cli.py lacks them; once it has them, the tests run
``.venv/bin/fillreactor`` itself and this file is not used (``setdefault`` changes nothing then).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from service_helpers import PROPOSED_SUBCOMMANDS

from fillreactor import cli

for name, entry in PROPOSED_SUBCOMMANDS.items():
    cli.SUBCOMMANDS.setdefault(name, entry)

sys.exit(cli.main())
