"""A run's state, decided in one place: up to date, stale (and how), failed, not run, or missing.

A run is up to date exactly when its target notebook records the provenance planned now and its
declared outputs are the files it wrote (``is_current``); Snakemake's planning, ``nbsweep status``,
the summary and the API all ask ``run_state``/``is_current``. The state says why as data
(``RunState.changes``, ``records.Change``) and as one line (``RunState.detail``).
"""

import os
from dataclasses import dataclass, field
from pathlib import Path

from nbsweep import layout
from nbsweep.errors import SweepError
from nbsweep.file_digests import NotRegularInput, file_digest
from nbsweep.model import cells
from nbsweep.model.pipeline import upstream_ids
from nbsweep.model.templates import legacy_code_digest
from nbsweep.provenance import records
from nbsweep.provenance.records import NOT_A_REGULAR_FILE, Change, Provenance, execution_of, explain

UP_TO_DATE = "up to date"
ACCEPTED = "up to date (accepted)"  # current because `nbsweep accept` re-stamped it
STALE = "stale"
FAILED = "failed"
NOT_RUN = "not run"  # a run it waits for failed
MISSING = "missing"
STATES = (UP_TO_DATE, ACCEPTED, STALE, FAILED, NOT_RUN, MISSING)


@dataclass(frozen=True)
class RunState:
    """``run``: the run id; ``state``: one of ``STATES``; ``changes``: how the notebook (the target, or
    the failed copy) differs from the plan; ``detail``: all that in one line, as ``nbsweep status`` prints it."""

    run: str
    state: str
    detail: str = ""
    changes: tuple[Change, ...] = field(default=())


def is_current(run, target: Path, digests: dict[str, str | None]) -> bool:
    """Whether the run's target records exactly the provenance planned now, and its declared
    outputs are the files it wrote."""
    made = records.recorded(target)
    return made is not None and made.fingerprint == planned(run, digests).fingerprint and not output_changes(run, target, digests)


def kept_aside_is_current(run, target: Path, digests: dict[str, str | None]) -> bool:
    """Whether the run's kept-aside notebook (``nbsweep.provenance.kept_aside``) is what the run would
    produce now: the same comparison as ``is_current``, on that notebook."""
    previous = layout.RunFiles(target).previous
    return previous.exists() and is_current(run, previous, digests)


def output_changes(run, target: Path, digests: dict[str, str | None]) -> list[Change]:
    return output_problems(records.read_record(target), run.outputs, digests) if run.outputs else []


def run_state(run, output_dir: str, digests: dict[str, str | None], runs: dict | None = None) -> RunState:
    """Whether the run's notebook records the provenance planned now, and if not, why.
    ``runs`` (id -> run) lets a failure upstream be found through other runs too."""
    plan = planned(run, digests)
    files = layout.RunFiles.of(output_dir, run.name, run.label)
    made = records.recorded(files.target) if files.target.exists() else None
    blocked = failed_upstream(run, output_dir, runs or {})
    if blocked:
        return RunState(run.id, NOT_RUN, f"waits for {blocked}, which failed")
    if made is not None:
        changes = (
            plan.diff(made, dict(run.produced)) if made.fingerprint != plan.fingerprint else output_changes(run, files.target, digests)
        )
        if not changes:
            return accepted_state(run, files.target) or RunState(run.id, UP_TO_DATE)
        detail = "; ".join(explain(changes)) + legacy_hint(run, made)
        if kept_aside_is_current(run, files.target, digests):
            detail += f"; the notebook kept aside at {files.previous} is current: the next invocation puts it back without executing"
        return RunState(run.id, STALE, detail, tuple(changes))
    if files.target.exists():
        return RunState(run.id, STALE, "the notebook has no readable nbsweep record (truncated, edited, or not written by nbsweep)")
    if files.failed.exists():
        return failed_state(run, files, plan)
    return RunState(run.id, MISSING, "not run yet")


def failed_state(run, files: layout.RunFiles, plan: records.Provenance) -> RunState:
    """The state of a run whose latest execution failed: its error, and what changed since."""
    record = records.read_record(files.failed)
    error = record.get("error") if isinstance(record.get("error"), dict) else {}
    detail = f"{error.get('ename', 'error')}: {error.get('evalue', '')} {cells.place(error)}; see {files.failed}"
    made = records.Provenance.from_dict(record)
    changes = plan.diff(made, dict(run.produced)) if made is not None and made.fingerprint != plan.fingerprint else []
    if made is None or changes:
        detail += "; changed since: " + ("; ".join(explain(changes)) if made else "its record is unreadable")
    if files.previous.exists():
        detail += f"; the previous good notebook is kept at {files.previous}"
    return RunState(run.id, FAILED, detail, tuple(changes))


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
    record = records.read_record(target)
    if not records.is_accepted(record):
        return None
    original = records.Provenance.from_dict(record["accepted_from"])
    changes = records.Provenance.from_dict(record).diff(original) if original else []
    was = "; ".join(explain(changes)) if original else "an unreadable record"
    return RunState(run.id, ACCEPTED, f"accepted {record.get('accepted_at', '')}; executed before: {was}", tuple(changes))


def legacy_hint(run, made: records.Provenance) -> str:
    """For a notebook recorded with the older code digest of the same code: how to keep it."""
    if made.template_code != legacy_code_digest(run.template.nb):
        return ""
    return " (recorded with nbsweep's older code digest: the code is the same, and `nbsweep accept` keeps the notebook)"


def planned(run, digests: dict[str, str | None]) -> Provenance:
    """The provenance a run would be made from now (``digests`` caches input hashes; a file
    another run produces may be missing: None)."""
    inputs = {path: cached_digest(path, digests) for path in run.inputs}
    upstream = {run_id: execution_of(Path(target)) for run_id, target in run.after}
    return Provenance(run.template.code_digest, run.kernel, run.parameters, inputs, dict(run.secrets), upstream)


def cached_digest(path: str, digests: dict[str, str | None]) -> str | None:
    if path not in digests:
        digests[path] = digest_if_present(path)
    return digests[path]


def digest_if_present(path: str) -> str | None:
    """SHA-256 of a file, None when it does not exist, ``NOT_A_REGULAR_FILE`` for a FIFO or a
    device (any other failure to read is an error)."""
    try:
        return file_digest(path)
    except NotRegularInput:
        return NOT_A_REGULAR_FILE
    except SweepError:
        if os.path.lexists(path):
            raise
        return None


def output_problems(record: dict, outputs, digests: dict[str, str | None]) -> list["Change"]:
    """How a run's declared outputs differ from what its notebook records it wrote."""
    written = record.get("outputs") if isinstance(record.get("outputs"), dict) else {}
    problems = []
    for path in outputs:
        sha = cached_digest(path, digests)
        if sha is None:
            problems.append(Change("output", path, written.get(path), None, "missing"))
        elif written.get(path) != sha:
            problems.append(Change("output", path, written.get(path), sha))
    return problems
