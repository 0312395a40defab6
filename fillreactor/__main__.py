import sys

from fillreactor.cli import main

sys.exit(main())
