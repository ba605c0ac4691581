"""`python -m bench.on_device`: the short name of `python -m bench.on_device.run`."""

import sys

from bench.on_device.run import main

sys.exit(main())
