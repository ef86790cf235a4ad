#!/usr/bin/env python3
"""Submit one Snakemake jobscript with sbatch; print the SLURM job id (cluster-generic submit-cmd).

Snakemake calls ``submit.py JOBSCRIPT``. The jobscript's ``# properties = {...}`` line holds the
job's threads and resources; they become sbatch options, so optional resources (slurm_partition,
slurm_account, slurm_extra) need no placeholder in the profile and are simply left out when a
run does not set them. Standard library only: this runs under whatever python3 is on PATH.
"""

import json
import os
import shlex
import subprocess
import sys

LOG_DIR = os.path.join(".snakemake", "cluster-generic_logs")
SBATCH_TIMEOUT = 120


def job_properties(jobscript: str) -> dict:
    with open(jobscript, encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("# properties = "):
                return json.loads(line[len("# properties = ") :])
    sys.exit(f"submit.py: no '# properties = ' line in {jobscript}")


def sbatch_args(props: dict) -> list[str]:
    resources = props.get("resources", {})
    name = props.get("groupid") if props.get("type") == "group" else props.get("rule")
    args = [
        "--parsable",
        f"--job-name=nbsweep-{name or 'job'}",
        f"--output={LOG_DIR}/%j.log",
        "--nodes=1",
        "--ntasks=1",
        f"--cpus-per-task={max(1, int(props.get('threads') or 1))}",
    ]
    if resources.get("mem_mb"):
        args.append(f"--mem={int(resources['mem_mb'])}")
    if resources.get("runtime"):
        args.append(f"--time={int(resources['runtime'])}")  # minutes
    if resources.get("slurm_partition"):
        args.append(f"--partition={resources['slurm_partition']}")
    if resources.get("slurm_account"):
        args.append(f"--account={resources['slurm_account']}")
    if resources.get("slurm_extra"):
        args += shlex.split(str(resources["slurm_extra"]))
    return args


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        sys.exit("usage: submit.py JOBSCRIPT")
    jobscript = argv[1]
    os.makedirs(LOG_DIR, exist_ok=True)
    cmd = ["sbatch", *sbatch_args(job_properties(jobscript)), jobscript]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=SBATCH_TIMEOUT)
    except subprocess.TimeoutExpired:
        sys.exit(f"submit.py: sbatch did not answer within {SBATCH_TIMEOUT} s: {shlex.join(cmd)}")
    if out.returncode != 0:
        sys.exit(f"submit.py: sbatch failed ({out.returncode}): {out.stderr.strip()}\n  {shlex.join(cmd)}")
    # --parsable prints "JOBID" or "JOBID;CLUSTER".
    print(out.stdout.strip().split(";")[0])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
