"""Getting the warm runner ready while Snakemake still plans.

Once the main process knows that an invocation executes a run on this machine (its first job
file is written, not in a dry-run), a thread of it reads the environment Snakemake will give the
runs' jobs and has the warm server started (or tells the one running) to get ready for them:
that setting's zygote and spares, made while the DAG is still being built, so the first runs
find them ready (``warm_client.get_ready``). What it holds closes with the Snakemake process,
whatever ends it; the server then drops what it made for the invocation, and exits if no run
came. Not for cluster jobs, software deployments (``--sdm``), or with the warm runner off.
"""

import tempfile
import threading

from nbsweep.adapters import snakemake_internals as smk
from nbsweep.execution import warm_client
from nbsweep.smk import main_process


def start(workflow, sweep, run, job_file: str) -> None:
    """Once per invocation, for its first run that executes (``job_file``, written)."""
    main_process.MAIN["ahead"] = None
    executes_here = smk.has_executor(workflow) and not smk.is_dry_run(workflow) and smk.executes_locally(workflow)
    if not executes_here or smk.uses_deployment(workflow) or not warm_client.enabled():
        return
    tmpdir = sweep.resource("tmpdir", (run.name, run.label)) if "tmpdir" in sweep.resource_names else None
    threads, cores = smk.job_threads(workflow, run.threads), smk.local_cores(workflow)

    def get_ready():
        try:
            env = smk.job_environment(threads, str(tmpdir or tempfile.gettempdir()))
            main_process.MAIN["ahead"] = warm_client.get_ready(job_file, cores, env)
        except Exception:  # noqa: BLE001 -- only a head start: the first run starts the server if need be
            pass

    threading.Thread(target=get_ready, name="nbsweep-warm-start", daemon=True).start()
