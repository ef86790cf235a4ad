"""Runs whose folder cannot be written (read-only, or immutable: ``chattr +i``), found at planning.

Before a job starts, Snakemake removes the run's old notebook and log and creates its folder; in a
folder that cannot be written that fails inside Snakemake's scheduler, which stops the whole sweep
with a traceback. So the main process finds, before the DAG is built, each run that would execute
into such a folder: it fails with one line, Snakemake never sees it (``Sweep.targets`` leaves it
out, with the runs that wait for it), and the results say so (``nbsweep.results.failures``).
"""

import os
from pathlib import Path

from nbsweep.layout import target
from nbsweep.messages import say
from nbsweep.results.failures import KNOWN, Failure

FIX = "make it writable (chmod u+w, or chattr -i where it is immutable) and run again"


def unwritable(folder: Path, seen: dict[Path, bool]) -> Path | None:
    """``folder``, or the nearest folder above it where it does not exist yet, if it cannot be
    written; None when it can. ``seen``: answers so far, by folder."""
    path = folder
    while not os.path.lexists(path) and path != path.parent:
        path = path.parent
    if path not in seen:
        seen[path] = os.access(path, os.W_OK | os.X_OK)
    return None if seen[path] else path


def would_execute(sweep, key: tuple[str, str], memo: dict) -> bool:
    """Whether a run executes unless forced: it is not current, or a run it waits for executes."""
    stack = [key]
    while stack:
        top = stack[-1]
        if top in memo:
            stack.pop()
            continue
        ups = sweep.upstream_keys(sweep.runs[top])
        pending = [up for up in ups if up not in memo]
        if pending:
            stack += pending
            continue
        stack.pop()
        memo[top] = any(memo[up] for up in ups) or not sweep.is_current(sweep.runs[top])
    return memo[key]


def blocked_runs(sweep) -> dict[tuple[str, str], Failure]:
    """The runs that would execute into a folder that cannot be written, and the runs that wait
    for them; each with how the results show it."""
    seen: dict[Path, bool] = {}
    memo: dict = {}
    blocked = {}
    for key in sweep.runs:
        folder = unwritable(target(sweep.output_dir, *key).parent, seen)
        if folder is not None and would_execute(sweep, key, memo):
            blocked[key] = Failure("failed", "PermissionError", f"its folder {folder} cannot be written; {FIX}")
    waiting = {key for key in sweep.runs if key not in blocked}
    while found := {key for key in waiting if any(up in blocked for up in sweep.upstream_keys(sweep.runs[key]))}:
        for key in found:
            first = next(up for up in sweep.upstream_keys(sweep.runs[key]) if up in blocked)
            blocked[key] = Failure("not run", None, f"waits for {'/'.join(first)}, which failed")
        waiting -= found
    return blocked


def leave_out_blocked(sweep) -> None:
    """In the main process, before the DAG is built: take the runs that cannot be written out of
    it (``sweep.blocked``), say so in one line each, and have the results show them."""
    sweep.blocked = blocked_runs(sweep)
    KNOWN.update(sweep.blocked)
    for (name, label), failure in sweep.blocked.items():
        if failure.status == "failed":
            say(f"nbsweep: run {name}/{label} FAILED: {failure.error_message}")
