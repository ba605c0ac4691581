"""`python -m bench.parity`: the short name of `python -m bench.parity.check`."""

import sys

from bench.parity.check import main

sys.exit(main())
