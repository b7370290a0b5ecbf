"""``python -m adapterlab.pointclip``: same as the ``adapterlab-clip2point`` console script."""

import sys

from .cli import main

sys.exit(main())
