"""``python -m nbsweep``: the same as the ``nbsweep`` command."""

import sys

from .cli import main

sys.exit(main())
