"""`python -m bench.fuzz`: the short name of `python -m bench.fuzz.run`."""

import sys

from bench.fuzz.run import main

sys.exit(main())
