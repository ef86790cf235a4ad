"""Entry point of a run's job: ``python -m nbsweep.execution.job TARGET LOG``.

The run's job file is the one its invocation wrote (``NBSWEEP_INVOCATION``, see nbsweep.smk.hooks).

Kept lean: the warm runner (``nbsweep.execution.warm_client``, started by the first job that finds none) executes
the run; when it is disabled or cannot start, the run executes in this process
(``nbsweep.execution.execute``). Either way SIGTERM, SIGINT and SIGHUP stop the run without a traceback:
until a run is under way they just end this process; then the warm runner's client has its
child stop the run, and an in-process run aborts (``execute.handle_signals``).
"""

import os
import signal
import sys
from pathlib import Path

from nbsweep import layout
from nbsweep.execution import warm_client
from nbsweep.execution.liveness import snakemake_alive
from nbsweep.messages import say


def exit_quietly_on_signals() -> None:
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda signum, frame: os._exit(128 + signum))


def main(argv: list[str] | None = None) -> int:
    parent = os.getppid()  # before anything else: Snakemake may die while this job starts
    exit_quietly_on_signals()
    if not snakemake_alive():
        return 130
    target, log = argv or sys.argv[1:]
    job_file = layout.job_file_of(Path(target), os.environ.get("NBSWEEP_INVOCATION", ""))
    if not job_file.is_file():
        say(f"nbsweep: {target} has no job file {job_file} in this invocation; run snakemake again")
        return 1
    argv = [str(job_file), target, log]
    code = warm_client.run_via_server(argv, parent)
    if code is None:
        from nbsweep.execution.execute import run_job
        from nbsweep.execution.liveness import parent_gone

        code = run_job(argv, gone=parent_gone(parent), how="in-process")
    return code


if __name__ == "__main__":
    sys.exit(main())
