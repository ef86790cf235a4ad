"""Job files: what one invocation planned for each run it executes, read by the run's job.

They are written while Snakemake builds the job graph (``Sweep.job_file``), for the runs that
execute, into the invocation's own folder (``.snakemake/nbsweep/invocations/<id>/``, shared with
cluster nodes), and only by the invocation that owns the project folder (``nbsweep.smk.workdir``);
a dry-run writes one file for all its stale runs to a private folder under the temp dir instead.
A fresh job file is the run's input, dated later than its notebook and declared outputs
(``date_beyond``: their dates may be in the future, after clock skew or a restore from backup),
which is how Snakemake learns that the run is stale; the job dates it back to the present as it
starts (``execute.present``). So a job executes exactly what its invocation planned, whatever another
invocation plans meanwhile.
Both folders go when the invocation ends.
"""

import json
import os
import tempfile
import time
from pathlib import Path

from nbsweep.files import write_atomically
from nbsweep.model.pipeline import UPSTREAM

DRY_RUN_JOB_FILE = "dry-run-job.json"
# How much later than a run's files its job file is dated: more than the coarsest timestamps of
# common filesystems (FAT: 2 s), so Snakemake always sees it newer.
LATER_NS = 3 * 10**9


def job_document(run, made, may_cut_off: bool = False, cache: list | None = None) -> dict:
    """Everything the runner needs: the run, its template, timeout and provenance as planned
    (``made``), and, in a pipeline, its declared outputs, the inputs other runs produce (hashed when
    it executes), the runs it is after and whether it may keep its notebook when those left the same
    content; ``cache``: where it keeps its entry when it succeeds (``nbsweep.cache.save``)."""
    return {
        "run": run.id,
        "notebook": run.template.path,
        "timeout": run.timeout,
        "render": run.render,
        "preload": list(run.preload),
        "preload_imports": run.preload_imports,
        "outputs": list(run.outputs),
        "produced": [path for path, _ in run.produced],
        "after": [list(pair) for pair in run.after],
        "pass_upstream": bool(run.after) and UPSTREAM in (run.template.declared_parameters or {}),
        "may_cut_off": may_cut_off,
        "cache": cache or [],
        "fingerprint": made.fingerprint,
        **made.as_dict(),
    }


def write_job_file(path: Path, run, made, may_cut_off: bool = False, later_than=(), cache: list | None = None) -> Path:
    """Write the run's job document (parameters in config order: they reach the notebook in the
    order they are written), dated later than the files ``later_than`` (the run's notebook and
    declared outputs), whatever their dates."""
    text = json.dumps(job_document(run, made, may_cut_off, cache), ensure_ascii=False)
    try:
        write_atomically(path, text)
    except FileNotFoundError:  # the template's folder, made by its first job file only
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, text)
    date_beyond(path, later_than)
    return path


def write_dry_run_job_file(path: Path, later_than=()) -> Path:
    """The one job file of a dry-run's stale runs: only its date counts (later than ``later_than``, every target)."""
    path.write_text(json.dumps({"dry_run": True}), encoding="utf-8")
    date_beyond(path, later_than)
    return path


def date_beyond(path: Path, files) -> None:
    """Date ``path`` later than now and than every existing file of ``files``, so that Snakemake
    finds it newer than each of them, even those dated in the future."""
    latest = time.time_ns()
    for other in files:
        try:
            latest = max(latest, os.stat(other).st_mtime_ns)
        except OSError:  # missing: nothing to be later than
            pass
    stamp = latest + LATER_NS
    os.utime(path, ns=(stamp, stamp))


def private_folder() -> Path:
    """A new folder only this user can enter, under the temp dir (for a dry-run's job files)."""
    return Path(tempfile.mkdtemp(prefix=f"nbsweep-dryrun-{os.getuid()}-"))
