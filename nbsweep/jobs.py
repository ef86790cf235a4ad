"""Job files: what one invocation planned for each run it executes, read by the run's job.

They are written while Snakemake builds the job graph (``Sweep.job_file``), for the runs that
execute, into the invocation's own folder (``.snakemake/nbsweep/invocations/<id>/``, shared with
cluster nodes), and only by the invocation that owns the project folder (``nbsweep.workdir``);
a dry-run writes one file for all its stale runs to a private folder under the temp dir instead.
A fresh job file is the run's input, newer than its notebook, which is how Snakemake learns that
the run is stale. So a job executes exactly what its invocation planned, whatever another
invocation plans meanwhile.
Both folders go when the invocation ends.
"""

import json
import os
import tempfile
from pathlib import Path

from .files import write_atomically
from .pipeline import UPSTREAM
from .provenance import planned

DRY_RUN_JOB_FILE = "dry-run-job.json"


def job_document(run, digests: dict[str, str], may_cut_off: bool = False) -> dict:
    """Everything the runner needs: the run, its template, timeout and provenance, and, in a
    pipeline, its declared outputs, the inputs other runs produce (hashed when it executes), the
    runs it is after and whether it may keep its notebook when those left the same content."""
    made = planned(run, digests)
    return {
        "run": run.id,
        "notebook": run.template.path,
        "timeout": run.timeout,
        "render": run.render,
        "preload": list(run.preload),
        "outputs": list(run.outputs),
        "produced": [path for path, _ in run.produced],
        "after": [list(pair) for pair in run.after],
        "pass_upstream": bool(run.after) and UPSTREAM in (run.template.declared_parameters or {}),
        "may_cut_off": may_cut_off,
        "fingerprint": made.fingerprint,
        **made.as_dict(),
    }


def write_job_file(path: Path, run, digests: dict[str, str], may_cut_off: bool = False) -> Path:
    text = json.dumps(job_document(run, digests, may_cut_off), sort_keys=True, ensure_ascii=False)
    try:
        write_atomically(path, text)
    except FileNotFoundError:  # the template's folder, made by its first job file only
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, text)
    return path


def write_dry_run_job_file(path: Path) -> Path:
    """The one job file of a dry-run's stale runs: only its date counts (newer than any target)."""
    path.write_text(json.dumps({"dry_run": True}), encoding="utf-8")
    return path


def read_job_file(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def private_folder() -> Path:
    """A new folder only this user can enter, under the temp dir (for a dry-run's job files)."""
    return Path(tempfile.mkdtemp(prefix=f"nbsweep-dryrun-{os.getuid()}-"))
