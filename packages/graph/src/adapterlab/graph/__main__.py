"""``python -m adapterlab.graph`` = ``adapterlab-graph``."""

import sys

from .cli import main

sys.exit(main())
