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

SNAKEMAKE_PID = "NBSWEEP_SNAKEMAKE_PID"  # set by every Snakemake process that plans (nbsweep.hooks)


def snakemake_alive() -> bool:
    """Whether the Snakemake process that planned this job (``NBSWEEP_SNAKEMAKE_PID``) still runs:
    a job it started just before it was killed must not execute with nobody waiting for it."""
    try:
        os.kill(int(os.environ[SNAKEMAKE_PID]), 0)
    except (KeyError, ValueError):
        return True  # started some other way
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, as another user (a cluster node's pid space)
        return True
    return True


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
        print(f"nbsweep: {target} has no job file {job_file} in this invocation; run snakemake again", file=sys.stderr)
        return 1
    argv = [str(job_file), target, log]
    code = warm.run_via_server(argv, parent)
    if code is None:
        from .execute import parent_gone, run_job

        code = run_job(argv, gone=parent_gone(parent), how="in-process")
    return code


if __name__ == "__main__":
    sys.exit(main())
