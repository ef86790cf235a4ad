"""``python -m nbsweep status``: is each run up to date, stale (and why), missing or failed?

Plans the sweep from the config as Snakemake would, then compares each run's planned material
with what its notebook records it was made from (read from the end of the file). Executes and
writes nothing; ``--remove-orphans`` deletes the outputs of runs no longer in the config.
"""

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from . import cells, layout
from .canonical import canonical_json
from .jobs import job_document
from .render import html_path
from .summary import flatten, mapping, read_metadata
from .sweep import Sweep

STATES = ("up to date", "stale", "failed", "missing")


@dataclass(frozen=True)
class RunState:
    run: str
    state: str
    detail: str = ""


def parameter_changes(old: dict, new: dict) -> list[str]:
    """``name old → new`` for each flattened parameter that differs, was added or removed."""
    old, new = flatten(old), flatten(new)
    changes = []
    for key in [*new, *(key for key in old if key not in new)]:
        if key not in old:
            changes.append(f"{key} added ({canonical_json(new[key])})")
        elif key not in new:
            changes.append(f"{key} removed (was {canonical_json(old[key])})")
        elif canonical_json(old[key]) != canonical_json(new[key]):
            changes.append(f"{key} {canonical_json(old[key])} → {canonical_json(new[key])}")
    return changes


def reasons(made: dict, planned: dict) -> list[str]:
    """What differs between the material a notebook was made from and the planned one."""
    found = []
    if made.get("template_code") != planned["template_code"]:
        found.append("template code changed")
    if made.get("kernel") != planned["kernel"]:
        found.append(f"kernel changed: {made.get('kernel')} → {planned['kernel']}")
    changes = parameter_changes(made.get("parameters") or {}, planned["parameters"])
    if changes:
        found.append("parameters changed: " + ", ".join(changes))
    old_inputs = made.get("inputs") or {}
    for path, digest in planned["inputs"].items():
        if path not in old_inputs:
            found.append(f"input {path} added")
        elif old_inputs[path] != digest:
            found.append(f"input {path} changed")
    found += [f"input {path} removed" for path in old_inputs if path not in planned["inputs"]]
    return found or ["fingerprint changed"]


def run_state(run, output_dir: str, digests: dict[str, str]) -> RunState:
    planned = job_document(run, digests)
    target = layout.target(output_dir, run.name, run.label)
    failed = layout.failed_copy(target)
    if target.exists():
        made = mapping(read_metadata(target) or {}, "nbsweep")
        if not made:
            return RunState(run.id, "stale", "the notebook has no nbsweep record")
        if made.get("fingerprint") == planned["fingerprint"]:
            return RunState(run.id, "up to date")
        return RunState(run.id, "stale", "; ".join(reasons(made, planned)))
    if failed.exists():
        made = mapping(read_metadata(failed) or {}, "nbsweep")
        error = mapping(made, "error")
        detail = f"{error.get('ename', 'error')}: {error.get('evalue', '')} in {cells.place(error)}; see {failed}"
        if made.get("fingerprint") != planned["fingerprint"]:
            detail += "; changed since: " + "; ".join(reasons(made, planned))
        return RunState(run.id, "failed", detail)
    return RunState(run.id, "missing", "not run yet")


def own_files(folder: Path) -> list[Path]:
    """The files nbsweep writes in a run's output folder (named after the folder)."""
    name, label = folder.parent.name, folder.name
    target = folder / f"{name}_{label}.ipynb"
    known = {
        target,
        layout.failed_copy(target),
        layout.partial(target),
        layout.log(target),
        layout.job_file(target),
        html_path(target),
        target.with_suffix(".render.log"),
    }
    return [path for path in known if path.is_file()]


def orphans(sweep: Sweep) -> list[Path]:
    """Run folders in the output folder with nbsweep files of runs that are not configured."""
    out = Path(sweep.output_dir)
    folders = sorted(out.glob("*/*/")) if out.is_dir() else []
    return [f for f in folders if (f.parent.name, f.name) not in sweep.runs and own_files(f)]


def remove_orphan(folder: Path) -> bool:
    """Delete nbsweep's files of an orphaned run and the emptied folders; False if others remain."""
    for path in own_files(folder):
        path.unlink(missing_ok=True)
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
    lines = [f"{'run':<{width}}  {'state':<10}  detail"]
    lines += [f"{s.run:<{width}}  {s.state:<10}  {s.detail}".rstrip() for s in states]
    return "\n".join(lines)


def status(config_files: list[Path], schema_file: Path, remove_orphans: bool = False) -> str:
    """The status report; raises SweepError for a bad config."""
    sweep = Sweep.load(config_files, schema_file)
    digests: dict[str, str] = {}
    states = [run_state(run, sweep.output_dir, digests) for run in sweep.runs.values()]
    counts = Counter(s.state for s in states)
    tally = ", ".join(f"{counts[s]} {s}" for s in STATES if counts[s])
    report = [table(states), "", f"{len(states)} runs: {tally or 'none configured'}"]
    found = orphans(sweep)
    runs = f"{len(found)} run{'s' if len(found) != 1 else ''} no longer in the config"
    if found and remove_orphans:
        kept = [folder for folder in found if not remove_orphan(folder)]
        report.append(f"removed the outputs of {runs}")
        report += [f"  kept {folder}/: it holds files nbsweep did not write" for folder in kept]
    elif found:
        report.append(f"outputs of {runs} (delete them with --remove-orphans):")
        report += [f"  {folder}/" for folder in found]
    return "\n".join(report)
