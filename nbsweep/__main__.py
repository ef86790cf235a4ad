"""``python -m nbsweep``: the same as the ``nbsweep`` command."""

import sys

from nbsweep.cli.main import main

sys.exit(main())
