"""``python -m adapterlab.audio`` = ``adapterlab-ast``."""

import sys

from .cli import main

sys.exit(main())
