"""Failures the Snakemake main process knows of that no executed notebook records.

A run whose notebook could not be kept (a full disk) or that could not start (its folder cannot be
written, ``nbsweep.smk.writable``) leaves no ``.failed.ipynb`` of this invocation; the main process
still knows it failed (the console saw its job fail). The results (summary, index.html) say so
too, with the error where it is known: one truth everywhere.
"""

import os
import re
from dataclasses import dataclass
from pathlib import Path

from nbsweep.file_digests import stat_key

LOG_TAIL = 64 * 1024  # bytes of a run's log searched for its exception
_EXCEPTION_LINE = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Interrupt|Exit)): (.*)$")


@dataclass(frozen=True)
class Failure:
    status: str  # "failed", or "not run" for a run that waits for one that failed
    error_name: str | None = None
    error_message: str | None = None


KNOWN: dict[tuple[str, str], Failure] = {}  # (template, label) -> its failure in this invocation
BEFORE: dict[Path, tuple[int, int, int] | None] = {}  # a run's notebooks as the invocation started: their status


def remember_notebooks(paths) -> None:
    """Note the status of each notebook (good or failed) as the invocation starts, to tell later
    which of them it wrote (by identity, size and date together: never by comparing dates)."""
    BEFORE.update((Path(path), file_status(Path(path))) for path in paths)


def file_status(path: Path) -> tuple[int, int, int] | None:
    try:
        return stat_key(os.stat(path))
    except OSError:
        return None


def note_job_failure(name: str, label: str, log: str | None) -> None:
    """A run's job failed (seen by the console): its error is the last exception its log names, if any."""
    error_name, error_message = last_exception(Path(log)) if log else (None, None)
    KNOWN.setdefault((name, label), Failure("failed", error_name, error_message or "its job failed; see the console output"))


def last_exception(log: Path) -> tuple[str | None, str | None]:
    """(name, message) of the last exception line (``OSError: [Errno 28] No space left on device``) in a log."""
    try:
        with open(log, "rb") as fh:
            fh.seek(max(0, fh.seek(0, 2) - LOG_TAIL))
            lines = fh.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return None, None
    for line in reversed(lines):
        if match := _EXCEPTION_LINE.match(line):
            return match.group(1), match.group(2)
    return None, None


def recorded_since_start(notebook: Path) -> bool:
    """Whether a run's notebook (good or failed) was written by this invocation, which it then
    describes better (a job that failed, then succeeded on Snakemake's retry, has a good one)."""
    now = file_status(notebook)
    return now is not None and notebook in BEFORE and now != BEFORE[notebook]
