"""``python -m nbsweep status``: is each run up to date, stale (and why), missing or failed?

Plans the sweep from the config as Snakemake would, then compares each run's planned provenance
with what its notebook records it was made from (``nbsweep.provenance``). Executes and
writes nothing; ``--remove-orphans`` deletes the outputs of runs no longer in the config, only
while no other invocation owns the project or output folder (``workdir.own_or_refuse``): the runs
of a sweep of another config running there would be orphans of this one.
"""

import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from . import cells, layout, provenance, workdir
from .pipeline import upstream_ids
from .sweep import Sweep
from .templates import legacy_code_digest

ACCEPTED = "up to date (accepted)"  # current because `nbsweep accept` re-stamped it
NOT_RUN = "not run"  # a run it waits for failed
STATES = ("up to date", ACCEPTED, "stale", "failed", NOT_RUN, "missing")


@dataclass(frozen=True)
class RunState:
    run: str
    state: str
    detail: str = ""


def run_state(run, output_dir: str, digests: dict[str, str], runs: dict | None = None) -> RunState:
    """Whether the run's notebook records the provenance planned now, and if not, why.
    ``runs`` (id -> run) lets a failure upstream be found through other runs too."""
    plan = provenance.planned(run, digests)
    files = layout.RunFiles.of(output_dir, run.name, run.label)
    made = provenance.recorded(files.target) if files.target.exists() else None
    written = provenance.output_problems(provenance.read_record(files.target), run.outputs, digests) if made and run.outputs else []
    blocked = failed_upstream(run, output_dir, runs or {})
    if blocked:
        return RunState(run.id, NOT_RUN, f"waits for {blocked}, which failed")
    if made is not None and made.fingerprint == plan.fingerprint and not written:
        return accepted_state(run, files.target) or RunState(run.id, "up to date")
    if files.target.exists():
        if made is None:
            return RunState(run.id, "stale", "the notebook has no readable nbsweep record (truncated, edited, or not written by nbsweep)")
        why = plan.diff(made, dict(run.produced)) if made.fingerprint != plan.fingerprint else written
        return RunState(run.id, "stale", "; ".join(why) + legacy_hint(run, made))
    if files.failed.exists():
        record = provenance.read_record(files.failed)
        error = record.get("error") if isinstance(record.get("error"), dict) else {}
        detail = f"{error.get('ename', 'error')}: {error.get('evalue', '')} {cells.place(error)}; see {files.failed}"
        made = provenance.Provenance.from_dict(record)
        if made is None or made.fingerprint != plan.fingerprint:
            detail += "; changed since: " + ("; ".join(plan.diff(made, dict(run.produced))) if made else "its record is unreadable")
        if files.previous.exists():
            detail += f"; the previous good notebook is kept at {files.previous}"
        return RunState(run.id, "failed", detail)
    return RunState(run.id, "missing", "not run yet")


def has_failed(files: layout.RunFiles) -> bool:
    """Whether a run's latest execution failed (its failed notebook stands in for its target)."""
    return files.failed.exists() and not files.target.exists()


def failed_upstream(run, output_dir: str, runs: dict) -> str | None:
    """A run this one waits for whose latest execution failed: directly, or through the runs in
    ``runs`` (id -> run) it waits for."""
    seen, queue = set(), upstream_ids(run)
    while queue:
        run_id = queue.pop(0)
        if run_id in seen:
            continue
        seen.add(run_id)
        if has_failed(layout.RunFiles.of(output_dir, *run_id.split("/", 1))):
            return run_id
        if run_id in runs:
            queue += upstream_ids(runs[run_id])
    return None


def accepted_state(run, target: Path) -> RunState | None:
    """The state of a current run whose notebook `nbsweep accept` re-stamped: what it was executed from."""
    record = provenance.read_record(target)
    if not provenance.is_accepted(record):
        return None
    original = provenance.Provenance.from_dict(record["accepted_from"])
    was = "; ".join(provenance.Provenance.from_dict(record).diff(original)) if original else "an unreadable record"
    return RunState(run.id, ACCEPTED, f"accepted {record.get('accepted_at', '')}; executed before: {was}")


def legacy_hint(run, made: provenance.Provenance) -> str:
    """For a notebook recorded with the older code digest of the same code: how to keep it."""
    if made.template_code != legacy_code_digest(run.template.nb):
        return ""
    return " (recorded with nbsweep's older code digest: the code is the same, and `nbsweep accept` keeps the notebook)"


def own_files(folder: Path) -> list[Path]:
    """The files nbsweep writes in a run's output folder (named after the folder)."""
    name, label = folder.parent.name, folder.name
    files = layout.RunFiles(folder / f"{name}_{label}.ipynb")
    return [path for path in files.all() if path.is_file()]


def orphans(sweep: Sweep) -> list[Path]:
    """Run folders in the output folder with nbsweep files of runs that are not configured."""
    out = Path(sweep.output_dir)
    folders = sorted(out.glob("*/*/")) if out.is_dir() else []
    return [f for f in folders if (f.parent.name, f.name) not in sweep.runs and own_files(f)]


def remove_orphan(folder: Path) -> bool:
    """Delete nbsweep's files of an orphaned run and the emptied folders; False if others remain."""
    for path in own_files(folder):
        path.unlink(missing_ok=True)
    shutil.rmtree(layout.RunFiles(folder / f"{folder.parent.name}_{folder.name}.ipynb").kept_outputs, ignore_errors=True)
    try:
        folder.rmdir()
    except OSError:
        return False
    try:
        folder.parent.rmdir()  # the template's folder, once its last run is gone
    except OSError:
        pass
    return True


def table(states: list[RunState]) -> str:
    width = max([len("run"), *(len(s.run) for s in states)])
    state_width = max([10, *(len(s.state) for s in states)])
    lines = [f"{'run':<{width}}  {'state':<{state_width}}  detail"]
    lines += [f"{s.run:<{width}}  {s.state:<{state_width}}  {s.detail}".rstrip() for s in states]
    return "\n".join(lines)


def status(config_files: list[Path], schema_file: Path, remove_orphans: bool = False) -> str:
    """The status report; raises SweepError for a bad config, or for ``remove_orphans`` while another
    invocation owns the project or output folder."""
    sweep = Sweep.load(config_files, schema_file)
    digests: dict[str, str] = {}
    by_id = {run.id: run for run in sweep.runs.values()}
    states = [run_state(run, sweep.output_dir, digests, by_id) for run in sweep.runs.values()]
    counts = Counter(s.state for s in states)
    tally = ", ".join(f"{counts[s]} {s}" for s in STATES if counts[s])
    report = [table(states), "", f"{len(states)} runs: {tally or 'none configured'}"]
    found = orphans(sweep)
    if found and remove_orphans:
        workdir.own_or_refuse(sweep.output_dir)
        found = orphans(sweep)  # as they are now that no other invocation can write there
    runs = f"{len(found)} run{'s' if len(found) != 1 else ''} no longer in the config"
    if found and remove_orphans:
        kept = [folder for folder in found if not remove_orphan(folder)]
        report.append(f"removed the outputs of {runs}")
        report += [f"  kept {folder}/: it holds files nbsweep did not write" for folder in kept]
    elif found:
        report.append(f"outputs of {runs} (delete them with --remove-orphans):")
        report += [f"  {folder}/" for folder in found]
    return "\n".join(report)
