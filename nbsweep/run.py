"""Entry point of a run's job: ``python -m nbsweep.run TARGET LOG``.

The run's job file is the one its invocation wrote (``NBSWEEP_INVOCATION``, see nbsweep.hooks).

Kept lean: the warm runner (``nbsweep.warm``, started by the first job that finds none) executes
the run; when it is disabled or cannot start, the run executes in this process
(``nbsweep.execute``). Either way SIGTERM, SIGINT and SIGHUP stop the run without a traceback:
until a run is under way they just end this process; then the warm runner's client has its
child stop the run, and an in-process run aborts (``execute.handle_signals``).
"""

import os
import signal
import sys
from pathlib import Path

from . import layout, warm


def exit_quietly_on_signals() -> None:
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda signum, frame: os._exit(128 + signum))


def main(argv: list[str] | None = None) -> int:
    exit_quietly_on_signals()
    target, log = argv or sys.argv[1:]
    job_file = layout.job_file_of(Path(target), os.environ.get("NBSWEEP_INVOCATION", ""))
    if not job_file.is_file():
        print(f"nbsweep: {target} has no job file {job_file} in this invocation; run snakemake again", file=sys.stderr)
        return 1
    argv = [str(job_file), target, log]
    code = warm.run_via_server(argv)
    if code is None:
        from .execute import parent_gone, run_job

        code = run_job(argv, gone=parent_gone(), how="in-process")
    return code


if __name__ == "__main__":
    sys.exit(main())
