"""``nbsweep accept [TARGET...]``: declare existing notebooks up to date after a change that does not matter.

After a deliberate edit the user knows changes no result (a renamed variable in a template, a
re-saved input file), ``accept`` re-stamps the record of each chosen run's notebook with the
provenance planned now, so the run is current again without executing it. What the notebook was
really executed from stays in its record as ``accepted_from`` (``nbsweep.provenance.records.accepted``),
and ``nbsweep status`` and the summary show the run as accepted until it executes again.

Only template code and input changes can be accepted: a notebook whose parameters or kernel
differ from the plan would contradict its own injected-parameters cell, so such runs are left
stale (run them). Notebooks recorded with nbsweep's older code digest whose template code is in
fact unchanged are accepted the same way (``templates.legacy_code_digest``). Nothing executes;
the notebook's cells, outputs and modification time are kept. ``accept`` refuses while another
nbsweep invocation runs in the folder or writes to the output folder (``workdir.own_or_refuse``).
"""

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from nbsweep.errors import SweepError
from nbsweep.files import write_atomically
from nbsweep.model.templates import legacy_code_digest
from nbsweep.provenance import records, state
from nbsweep.provenance.records import Change


def chosen_runs(sweep, targets: list[str]) -> list:
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


UNACCEPTABLE = ("parameter", "kernel")  # would contradict the notebook's own injected-parameters cell


@dataclass(frozen=True)
class Acceptance:
    """What ``accept`` did: ``accepted`` (run id, changes accepted, notebook), ``current``/``missing`` run
    ids, ``refused`` (run id, why; ``changes`` empty for a notebook without a readable record)."""

    accepted: list[tuple[str, list[Change], Path]] = field(default_factory=list)
    current: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    refused: list[tuple[str, list[Change]]] = field(default_factory=list)


def blocking(changes: list[Change]) -> list[Change]:
    """The changes ``accept`` cannot accept: parameters, kernel, or something the run needs that is missing."""
    return [c for c in changes if c.what in UNACCEPTABLE or (c.how == "missing" and c.what in ("input", "upstream"))]


def restamp(path: Path, record: dict) -> None:
    """Replace the notebook's nbsweep record atomically, keeping its mode and modification time."""
    before = path.stat()
    nb = nbformat.read(path, as_version=4)
    nb.metadata["nbsweep"] = record
    text = nbformat.writes(nb)
    write_atomically(path, text if text.endswith("\n") else text + "\n", like=before)


def accept(sweep, targets: list[str]) -> Acceptance:
    """Accept the chosen runs' notebooks of ``sweep`` (all when ``targets`` is empty); the caller owns
    the project and output folder (``workdir.own_or_refuse``). Raises SweepError for a target that names no run."""
    runs = chosen_runs(sweep, targets)
    digests: dict[str, str] = {}
    when = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    done = Acceptance()
    for run in runs:
        path = Path(sweep.target(run))
        if not path.exists():
            done.missing.append(run.id)
            continue
        plan, made, record = state.planned(run, digests), records.recorded(path), records.read_record(path)
        if made is None:
            done.refused.append((run.id, []))
            continue
        made = state.in_current_form(made, plan)
        if made.fingerprint == plan.fingerprint:
            done.current.append(run.id)
        elif unacceptable := blocking(plan.diff(made)):
            done.refused.append((run.id, unacceptable))
        else:
            same_code = made.template_code == legacy_code_digest(run.template.nb)
            changes = [c for c in plan.diff(made) if not (same_code and c.what == "template code")]
            changes += [Change("template code", "", made.template_code, plan.template_code, "older digest")] if same_code else []
            restamp(path, records.accepted(record, plan, when))
            done.accepted.append((run.id, changes, path))
    return done
