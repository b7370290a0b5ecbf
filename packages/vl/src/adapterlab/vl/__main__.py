"""``python -m adapterlab.vl`` = ``adapterlab-vl``."""

import sys

from .cli import main

sys.exit(main())
