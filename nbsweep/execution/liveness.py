"""Whether anyone still waits for a job: the Snakemake process that planned it, and the job's parent."""

import os
import time

SNAKEMAKE_PID = "NBSWEEP_SNAKEMAKE_PID"  # set by every Snakemake process that plans (nbsweep.smk.hooks)


def process_exists(pid: int) -> bool:
    """Whether process ``pid`` exists (as another user's too: a cluster node's pid space)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def snakemake_alive() -> bool:
    """Whether the Snakemake process that planned this job (``NBSWEEP_SNAKEMAKE_PID``) still runs:
    a job it started just before it was killed must not execute with nobody waiting for it."""
    try:
        pid = int(os.environ[SNAKEMAKE_PID])
    except (KeyError, ValueError):
        return True  # started some other way
    return process_exists(pid)


def parent_gone(parent: int, interval: float = 0.5):
    """A ``gone`` check for ``watch``: true once this process's parent (pid ``parent``, read as
    the job started) has died, even by SIGKILL."""

    def gone():
        time.sleep(interval)
        return os.getppid() != parent

    return gone
