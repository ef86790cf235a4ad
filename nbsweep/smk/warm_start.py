"""Getting the warm runner ready while Snakemake still plans.

Once the main process knows that an invocation executes a run on this machine (its first job
file is written, not in a dry-run), it starts ``python -m nbsweep.execution.ahead`` as Snakemake
starts its jobs, so with the environment and process setting its runs will have: the warm server
starts (or is told, if running) and readies that setting's zygote and spares while the DAG is
still being built, and the first runs find them ready (``warm_client.run_ahead``). That process
ends with the Snakemake process, whatever ends it; the server then drops what it made for the
invocation, and exits if no run came. Not for cluster jobs, software deployments (``--sdm``), or
with the warm runner off.
"""

import shlex
import tempfile

from nbsweep.adapters import snakemake_internals as smk
from nbsweep.execution import warm_client
from nbsweep.smk import main_process


def start(workflow, sweep, run, job_file: str, python: str) -> None:
    """Once per invocation, for its first run that executes (``job_file``, written): start the head
    start, with ``python`` the shell words that start the jobs' Python (``hooks.job_python``)."""
    main_process.MAIN["ahead"] = None
    executes_here = smk.has_executor(workflow) and not smk.is_dry_run(workflow) and smk.executes_locally(workflow)
    if not executes_here or smk.uses_deployment(workflow) or not warm_client.enabled():
        return
    key = (run.name, run.label)
    tmpdir = sweep.resource("tmpdir", key) if "tmpdir" in sweep.resource_names else None
    command = f"{python} -m nbsweep.execution.ahead {shlex.quote(job_file)} {smk.local_cores(workflow)}"
    threads = smk.job_threads(workflow, run.threads)
    main_process.MAIN["ahead"] = smk.start_as_job(command, threads, str(tmpdir or tempfile.gettempdir()))
