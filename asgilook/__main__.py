"""``python -m asgilook``: the ``asgilook`` command."""

import sys

from .cli import main

sys.exit(main())
