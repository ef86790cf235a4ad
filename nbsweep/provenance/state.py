"""A run's state, decided in one place: up to date, stale (and how), failed, interrupted, not run, or missing.

A run is up to date exactly when its target notebook records the provenance planned now and its
declared outputs are the files it wrote (``is_current``); Snakemake's planning, ``nbsweep status``,
the summary and the API all ask ``run_state``/``is_current``. The state says why as data
(``RunState.changes``, ``records.Change``) and as one line (``RunState.detail``); why a run
executes in an invocation is said from it too (``execution_reason``: ``snakemake -n`` lists these).

A record is compared with the plan in the current form (``in_current_form``): made from the
planned template code, it was made with the planned defaults, as the code decides them. So a
notebook stamped before effective parameters were hashed (its record has no defaults) is current
when its given parameters, over those defaults, are the planned effective parameters.
"""

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from nbsweep import layout
from nbsweep.errors import SweepError
from nbsweep.file_digests import NotRegularInput, file_digest
from nbsweep.model import cells
from nbsweep.model.pipeline import upstream_ids
from nbsweep.model.templates import changed_cell, legacy_code_digest, read_notebook
from nbsweep.provenance import records
from nbsweep.provenance.records import NOT_A_REGULAR_FILE, Change, Provenance, execution_of, explain

UP_TO_DATE = "up to date"
ACCEPTED = "up to date (accepted)"  # current because `nbsweep accept` re-stamped it
STALE = "stale"
FAILED = "failed"
INTERRUPTED = "interrupted"  # its latest execution was stopped (Ctrl-C, SIGTERM, Snakemake killed)
NOT_RUN = "not run"  # a run it waits for failed
MISSING = "missing"
STATES = (UP_TO_DATE, ACCEPTED, STALE, FAILED, INTERRUPTED, NOT_RUN, MISSING)
_changed_cells: dict[tuple[str, str, object], str] = {}  # (template, its code, recorded code) -> the first cell that differs


@dataclass(frozen=True)
class RunState:
    """``run``: the run id; ``state``: one of ``STATES``; ``changes``: how the notebook (the target, or
    the failed copy) differs from the plan; ``cached``: the run cache holding its planned entry,
    which the next invocation restores (``in_cache``); ``detail``: all that in one line, as
    ``nbsweep status`` prints it."""

    run: str
    state: str
    detail: str = ""
    changes: tuple[Change, ...] = field(default=())
    cached: str | None = None


def in_cache(state: RunState, url: str) -> RunState:
    """``state`` of a run that is not current but whose planned entry is in the run cache at ``url``."""
    return replace(state, cached=url, detail=f"{state.detail} (in cache {url}: the next invocation restores it)".lstrip())


def is_current(run, target: Path, digests: dict[str, str | None]) -> bool:
    """Whether the run's target records exactly the provenance planned now, and its declared
    outputs are the files it wrote."""
    return matches(records.recorded(target), planned(run, digests)) and not output_changes(run, target, digests)


def in_current_form(made: Provenance, plan: Provenance) -> Provenance:
    """``made`` with the planned defaults when it was made from the planned template code (whose
    parameters cell decides them): so a record of the older form, without defaults, compares with
    the plan by its effective parameters."""
    if made.template_code == plan.template_code and made.defaults != plan.defaults:
        return replace(made, defaults=plan.defaults)
    return made


def matches(made: Provenance | None, plan: Provenance) -> bool:
    """Whether a notebook made from ``made`` (None: no usable record) is made from ``plan``."""
    return made is not None and in_current_form(made, plan).fingerprint == plan.fingerprint


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
    if made is None and files.interrupted.exists() and not files.target.exists():
        return interrupted_state(run, files, plan)
    blocked = failed_upstream(run, output_dir, runs or {})
    if blocked:
        return RunState(run.id, NOT_RUN, f"waits for {blocked}, which failed")
    if made is not None:
        made = in_current_form(made, plan)
        changes = (
            plan.diff(made, dict(run.produced)) if made.fingerprint != plan.fingerprint else output_changes(run, files.target, digests)
        )
        changes = naming_cells(changes, run, files.target)
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
    if made is not None:
        made = in_current_form(made, plan)
    changes = plan.diff(made, dict(run.produced)) if made is not None and made.fingerprint != plan.fingerprint else []
    changes = naming_cells(changes, run, files.failed)
    if made is None or changes:
        detail += "; changed since: " + ("; ".join(explain(changes)) if made else "its record is unreadable")
    if files.previous.exists():
        detail += f"; the previous good notebook is kept at {files.previous}"
    return RunState(run.id, FAILED, detail, tuple(changes))


def interrupted_state(run, files: layout.RunFiles, plan: records.Provenance) -> RunState:
    """The state of a run whose latest execution was interrupted (``layout.RunFiles.interrupted``):
    the good notebook it kept, and what changed since that one was made."""
    made = records.recorded(files.previous) if files.previous.exists() else None
    if made is None:
        return RunState(run.id, INTERRUPTED, "interrupted before it ever finished (no earlier notebook)")
    changes = naming_cells(plan.diff(made, dict(run.produced)), run, files.previous) if made.fingerprint != plan.fingerprint else []
    detail = f"interrupted (previous good notebook kept at {files.previous})"
    if changes:
        detail += "; changed since: " + "; ".join(explain(changes))
    return RunState(run.id, INTERRUPTED, detail, tuple(changes))


def naming_cells(changes: list[Change], run, notebook: Path) -> list[Change]:
    """``changes`` with a template-code change naming the template's first cell that differs from
    what ``notebook`` executed (``templates.changed_cell``; found once per template and recorded code)."""
    code = next((change for change in changes if change.what == "template code" and change.how == "changed"), None)
    if code is None:
        return changes
    key = (run.template.path, run.template.code_digest, code.old)
    if key not in _changed_cells:
        try:
            _changed_cells[key] = changed_cell(run.template.nb, read_notebook(str(notebook)))
        except (SweepError, OSError, ValueError):  # an executed notebook that cannot be read: the change stays unnamed
            return changes
    return [replace(change, name=_changed_cells[key]) if change is code else change for change in changes]


def execution_reason(state: RunState, upstream: list[str], forced: bool) -> str:
    """Why a run executes in this invocation, in one line: its own ``state`` when it is not up to
    date, else the runs it waits for that execute (``upstream``), else that it was ``forced``."""
    changed = "; changed since: " + "; ".join(explain(list(state.changes))) if state.changes else ""
    own = {MISSING: "never run", FAILED: "failed last time", INTERRUPTED: "interrupted last time"}
    if state.state == STALE:
        return state.detail
    if state.state in own:
        return own[state.state] + changed
    if upstream:
        return f"upstream run {', '.join(upstream)} executes" if len(upstream) == 1 else f"upstream runs {', '.join(upstream)} execute"
    if forced:
        return "forced"
    return state.detail or state.state


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
    template = run.template
    return Provenance(template.code_digest, run.kernel, run.parameters, inputs, dict(run.secrets), upstream, template.known_defaults)


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
