"""`python -m bench.pipeline`: the short name of `python -m bench.pipeline.main_job`."""

import sys

from bench.pipeline.main_job import main

sys.exit(main())
