"""What the packaged workflow's rules call into: plan the sweep, and write results at the end.

The same calls serve every way a project uses the workflow (``module:``, ``include:``, ``-s``).
Snakemake runs ``onsuccess``/``onerror`` handlers only for the main Snakefile and not at all
when nothing is to be done, so the results are written by a hook on the Snakemake process's exit.
"""

import shlex
import sys
import threading
from pathlib import Path

from . import summary, workdir
from .errors import SweepError
from .packaged import SCHEMA
from .sweep import DEFAULT_CONFIG, Sweep


def config_files(workflow) -> list[Path]:
    """The config files of this invocation: ``--configfile`` ones, else those of the project's
    ``configfile:`` directives, else config/config.yaml. nbsweep reads them itself."""
    files = workflow.overwrite_configfiles or workflow.configfiles
    return [Path(path) for path in files] or [DEFAULT_CONFIG]


def plan_or_exit(workflow) -> Sweep:
    """Plan the sweep; bad input ends the process with one sentence and no traceback."""
    try:
        sweep = Sweep.load(config_files(workflow), SCHEMA)
        if workflow.is_main_process:
            workdir.recover()
        sweep.sync_job_files()
    except SweepError as err:
        sys.exit(f"nbsweep: {err}.")
    if workflow.is_main_process:
        on_exit(lambda: finish(workflow, sweep))
    return sweep


def job_python(workflow) -> str:
    """The shell words that start the jobs' Python with nbsweep importable: this interpreter, or
    the job's conda env's ``python`` (``--sdm conda``) with this nbsweep on its path."""
    package_root = shlex.quote(str(Path(__file__).resolve().parents[1]))
    if workflow.deployment_settings.deployment_method:
        return f"PYTHONPATH={package_root}${{PYTHONPATH:+:$PYTHONPATH}} exec python"
    return f"exec {shlex.quote(sys.executable)}"


def join_batches(workflow, sweep: Sweep) -> None:
    """Map every batch group (``batch_size``) to one parent group id, so that a single
    ``--group-components nbsweep_batch=N`` entry (profiles/slurm) joins each batch into one job."""
    workflow.parent_groupids.update(dict.fromkeys(filter(None, sweep.groups.values()), "nbsweep_batch"))


def on_exit(callback) -> None:
    """Call ``callback`` when the Snakemake process ends, before Python waits for its threads.

    ``threading._register_atexit`` (CPython >= 3.9; what concurrent.futures uses) runs before
    non-daemon threads are joined; plain ``atexit`` would run only after Snakemake's pending
    rate-limiter timers have expired (up to a second later).
    """
    register = getattr(threading, "_register_atexit", None)
    if register is None:
        import atexit

        register = atexit.register
    register(callback)


def finish(workflow, sweep: Sweep) -> None:
    """At exit of an invocation that executed (not -n, --lint, --unlock, ...): write the results,
    then cancel Snakemake's rate-limiter timers, which only wait to look at jobs again."""
    if workflow.executor_plugin is None or workflow.dryrun:
        return
    summary.write_results(sweep)
    for thread in threading.enumerate():
        if isinstance(thread, threading.Timer) and getattr(thread.function, "__module__", "").startswith("snakemake"):
            thread.cancel()
