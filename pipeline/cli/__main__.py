"""``python -m pipeline.cli``: the command line."""

import sys

from pipeline.cli import main

sys.exit(main())
