"""Entry point started while Snakemake plans: ``python -m nbsweep.execution.ahead JOB_FILE PARALLEL``.

The planner starts it as its jobs are started (``nbsweep.smk.warm_start``), once an invocation is
known to execute a run here: it has the warm runner get ready for the runs (``warm_client.run_ahead``)
and holds on until Snakemake exits. It prints nothing and ends quietly on SIGTERM, SIGINT or SIGHUP.
"""

import os
import sys

from nbsweep.execution import warm_client
from nbsweep.execution.job import exit_quietly_on_signals


def main(argv: list[str] | None = None) -> int:
    exit_quietly_on_signals()
    job_file, parallel = argv or sys.argv[1:]
    try:
        warm_client.run_ahead(job_file, int(parallel))
    except Exception:  # noqa: BLE001 -- only a head start: the runs start the server themselves if need be
        pass
    return 0


if __name__ == "__main__":
    os.dup2(os.open(os.devnull, os.O_WRONLY), 2)  # silent: whatever went wrong, the first run says
    sys.exit(main())
