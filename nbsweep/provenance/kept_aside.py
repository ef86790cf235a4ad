"""Notebooks kept aside: when a run executes over a good notebook made from other provenance (another
config, other parameters), that notebook moves aside to ``<target>.previous.ipynb`` instead of being
lost. When the settings come back and the kept-aside notebook records exactly the provenance planned
now (``nbsweep.provenance.state.kept_aside_is_current``), it is swapped back into place instead of
the run executing. A run whose execution was interrupted shows its last good notebook aside too
(``mark_interrupted``)."""

import os
import shutil
import time

from nbsweep import layout
from nbsweep.files import link_or_copy
from nbsweep.provenance.records import recorded


def fingerprint(path) -> str | None:
    """The fingerprint a notebook records, if it has a usable record."""
    made = recorded(path) if path.exists() else None
    return made.fingerprint if made else None


def keep_aside(files: layout.RunFiles, made) -> bool:
    """After a success: move the notebook the run replaced (its hidden good link), its log and its
    rendering aside as the previous ones when it was made from other provenance than ``made``; True if it moved."""
    old = recorded(files.good) if files.good.exists() else None
    if old is None or made is None or old.fingerprint == made.fingerprint:
        return False
    os.replace(files.good, files.previous)
    for current, kept in ((files.good_log, files.previous_log), (files.html, files.previous_html)):
        if current.exists():
            os.replace(current, kept)
        else:
            kept.unlink(missing_ok=True)
    return True


def restore(files: layout.RunFiles) -> None:
    """Swap the kept-aside notebook (and log and rendering) with the run's current ones (a run whose
    latest execution failed or was interrupted has none: its notebook just comes back, and the failed
    copy or the mark go). Each step is one atomic rename, and at every moment both notebooks exist
    under some name: never a lost result."""
    swap(files.target, files.previous, files.target.with_name(f".{files.target.stem}.swap.ipynb"))
    swap(files.log, files.previous_log, files.target.with_name(f".{files.target.stem}.swap.log"))
    swap(files.html, files.previous_html, files.target.with_name(f".{files.target.stem}.swap.html"))
    for path in (files.failed, files.failed_html, files.interrupted, files.good):
        path.unlink(missing_ok=True)
    link_or_copy(files.target, files.good)
    if files.log.exists():
        shutil.copy2(files.log, files.good_log)


def swap(current, kept, hold) -> None:
    """Exchange two files' names (``kept`` may be missing: ``current`` then only moves aside)."""
    if current.exists():
        hold.unlink(missing_ok=True)
        link_or_copy(current, hold)
    if kept.exists():
        os.replace(kept, current)
    else:
        current.unlink(missing_ok=True)
    if hold.exists():
        os.replace(hold, kept)


def mark_interrupted(files: layout.RunFiles) -> None:
    """Say the run's latest execution was interrupted (``files.interrupted``, removed at its next
    outcome) and show its last good notebook, if any, as ``files.previous`` (the hidden good copy
    stays for early cutoff)."""
    try:
        files.interrupted.write_text(time.strftime("%Y-%m-%dT%H:%M:%S%z\n"), encoding="utf-8")
        if files.good.exists():
            files.previous.unlink(missing_ok=True)
            link_or_copy(files.good, files.previous)
            if files.good_log.exists():
                shutil.copy2(files.good_log, files.previous_log)
            if files.html.exists():  # the rendering beside the notebook is still the good one's
                files.previous_html.unlink(missing_ok=True)
                link_or_copy(files.html, files.previous_html)
    except OSError:  # e.g. a full disk: the run then shows as not run
        pass
