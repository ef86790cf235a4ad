"""``nbsweep accept [TARGET...]``: declare existing notebooks up to date after a change that does not matter.

After a deliberate edit the user knows changes no result (a renamed variable in a template, a
re-saved input file), ``accept`` re-stamps the record of each chosen run's notebook with the
provenance planned now, so the run is current again without executing it. What the notebook was
really executed from stays in its record as ``accepted_from`` (``nbsweep.provenance.accepted``),
and ``nbsweep status`` and the summary show the run as accepted until it executes again.

Only template code and input changes can be accepted: a notebook whose parameters or kernel
differ from the plan would contradict its own injected-parameters cell, so such runs are left
stale (run them). Notebooks recorded with nbsweep's older code digest whose template code is in
fact unchanged are accepted the same way (``templates.legacy_code_digest``). Nothing executes;
the notebook's cells, outputs and modification time are kept. ``accept`` refuses while another
nbsweep invocation runs in the folder or writes to the output folder (``workdir.own_or_refuse``).
"""

import os
import tempfile
import time
from pathlib import Path

import nbformat

from . import provenance, workdir
from .errors import SweepError
from .sweep import Sweep
from .templates import legacy_code_digest


def chosen_runs(sweep: Sweep, targets: list[str]) -> list:
    """The configured runs that ``targets`` name (run ids, template names or target paths); all when none."""
    if not targets:
        return list(sweep.runs.values())
    by_path = {os.path.normpath(path): key for key, path in sweep.target_paths.items()}
    chosen = {}
    for target in targets:
        keys = [key for key in sweep.runs if target in (f"{key[0]}/{key[1]}", key[0])]
        keys += [by_path[os.path.normpath(target)]] if os.path.normpath(target) in by_path else []
        if not keys:
            raise SweepError(
                f"no configured run matches {target!r}; give run ids (template/label), template names or notebook paths as `nbsweep status` lists them"
            )
        chosen.update((key, sweep.runs[key]) for key in keys)
    return list(chosen.values())


def why_not(plan: provenance.Provenance, made: provenance.Provenance) -> str | None:
    """Why a run cannot be accepted (its parameters or kernel changed, or what it needs from
    other runs is not there yet), or None."""
    changes = [
        change
        for change in plan.diff(made)
        if change.startswith(("parameters changed", "kernel changed")) or change.endswith(("has not run",)) or " is missing" in change
    ]
    return "; ".join(changes) if changes else None


def restamp(path: Path, record: dict) -> None:
    """Replace the notebook's nbsweep record atomically, keeping its modification time."""
    nb = nbformat.read(path, as_version=4)
    nb.metadata["nbsweep"] = record
    before = path.stat()
    fd, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".accept")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            nbformat.write(nb, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(partial, before.st_mode & 0o7777)
        os.utime(partial, ns=(before.st_atime_ns, before.st_mtime_ns))
        os.replace(partial, path)
    finally:
        Path(partial).unlink(missing_ok=True)


def accept(config_files: list[Path], schema_file: Path, targets: list[str]) -> list[str]:
    """Accept the chosen runs' notebooks; the report lines. Raises SweepError for bad input or
    while another invocation owns the project or output folder."""
    sweep = Sweep.load(config_files, schema_file)
    runs = chosen_runs(sweep, targets)
    workdir.own_or_refuse(sweep.output_dir)
    digests: dict[str, str] = {}
    when = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    accepted, current, refused, missing = [], [], [], []
    for run in runs:
        path = Path(sweep.target(run))
        if not path.exists():
            missing.append(run.id)
            continue
        plan, made, record = provenance.planned(run, digests), provenance.recorded(path), provenance.read_record(path)
        if made is None:
            refused.append(f"  {run.id}: its notebook has no readable nbsweep record; run it")
        elif made.fingerprint == plan.fingerprint:
            current.append(run.id)
        elif reason := why_not(plan, made):
            refused.append(f"  {run.id}: {reason}; only template code and input changes can be accepted, so run it")
        else:
            same_code = made.template_code == legacy_code_digest(run.template.nb)
            reasons = [c for c in plan.diff(made) if not (same_code and c == "template code changed")]
            reasons += ["recorded with nbsweep's older code digest (the code is the same)"] if same_code else []
            restamp(path, provenance.accepted(record, plan, when))
            accepted.append(f"  {run.id}: {'; '.join(reasons)} ({path})")
    lines = [
        f"accepted {len(accepted)} run{'s' if len(accepted) != 1 else ''} as up to date without executing them" + (":" if accepted else "")
    ]
    lines += accepted
    if current:
        lines.append(f"{len(current)} already up to date")
    if missing:
        lines.append(f"{len(missing)} not run yet, nothing to accept: {', '.join(missing)}" if targets else f"{len(missing)} not run yet")
    if refused:
        lines += ["not accepted:", *refused]
    if accepted:
        from .summary import write_results

        write_results(sweep, announce=False)
    return lines
