#!/usr/bin/env python3
"""Print ``running``, ``success`` or ``failed`` for one SLURM job id (cluster-generic status-cmd).

Asks ``squeue`` first (it knows finished jobs for MinJobAge seconds, no accounting needed), then
``sacct`` where accounting exists. A job that SLURM does not know at all is ``failed`` (Snakemake
then retries or reports it). A controller that does not answer is asked again a few times; if it
stays silent this exits non-zero, which stops Snakemake instead of letting it wait forever on a
dead cluster. Its jobs stay in SLURM: cancel them (``scancel``) before running Snakemake again,
which submits unfinished runs anew.
"""

import subprocess
import sys
import time

TIMEOUT = 30
ATTEMPTS = 3
PAUSE = 5  # seconds between attempts
SUCCESS = {"COMPLETED"}
RUNNING = set(
    "PENDING CONFIGURING RUNNING COMPLETING SUSPENDED STOPPED RESIZING REQUEUED REQUEUE_HOLD "
    "REQUEUE_FED RESV_DEL_HOLD SIGNALING STAGE_OUT".split()
)


def run(cmd: list[str]) -> subprocess.CompletedProcess | None:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT)
    except (OSError, subprocess.TimeoutExpired):
        return None


def squeue_state(jobid: str) -> str | None:
    """The job's state; "" if squeue answers but does not know the job; None if no answer."""
    out = run(["squeue", "--noheader", "--states=all", "--jobs", jobid, "--format=%T"])
    if out is None:
        return None
    if out.returncode != 0:
        return "" if "Invalid job id" in out.stderr else None
    states = out.stdout.split()
    return states[0] if states else ""


def sacct_state(jobid: str) -> str:
    out = run(["sacct", "--noheader", "--parsable2", "--allocations", "--jobs", jobid, "--format=State"])
    if out is None or out.returncode != 0 or not out.stdout.strip():
        return ""
    return out.stdout.split()[0]  # "CANCELLED by 0" -> "CANCELLED"


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        sys.exit("usage: status.py JOBID")
    jobid = argv[1].split(";")[0]
    for attempt in range(ATTEMPTS):
        if attempt:
            time.sleep(PAUSE)
        state = squeue_state(jobid)
        if state is not None:
            break
    else:
        print(f"status.py: squeue did not answer about job {jobid} in {ATTEMPTS} attempts", file=sys.stderr)
        return 1
    state = state or sacct_state(jobid)
    if state in SUCCESS:
        print("success")
    elif state in RUNNING:
        print("running")
    else:
        print(f"status.py: SLURM job {jobid} ended as {state or 'unknown to squeue and sacct'}", file=sys.stderr)
        print("failed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
