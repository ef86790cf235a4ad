"""Recover Snakemake's working state after a killed invocation (SIGKILL, power loss).

Snakemake leaves lock files and "incomplete" markers behind when it is killed, and then refuses
to run until ``--unlock`` / ``--rerun-incomplete``. nbsweep holds an ``flock`` for the lifetime
of every planning process: whoever gets it knows no other nbsweep invocation is alive in this
directory, so any Snakemake lock found is stale. Markers of targets that exist are stale too,
because the runner only ever moves complete notebooks into place.
"""

import base64
import fcntl
from pathlib import Path

from .jobs import recorded_fingerprint

_held = []  # keeps the flock'ed file open for the whole process


def hold_directory_lock(state_dir: Path = Path(".snakemake")) -> bool:
    """Take the per-directory flock; False if another live nbsweep invocation holds it."""
    state_dir.mkdir(exist_ok=True)
    fh = open(state_dir / "nbsweep.flock", "w")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        fh.close()
        return False
    _held.append(fh)
    return True


def remove_stale_locks(state_dir: Path = Path(".snakemake")) -> list[Path]:
    removed = sorted((state_dir / "locks").glob("*.lock"))
    for lock in removed:
        lock.unlink(missing_ok=True)
    return removed


def marker_path(marker: Path, incomplete_dir: Path) -> str:
    """Decode Snakemake's incomplete marker name (url-safe base64, split into chunks)."""
    parts = marker.relative_to(incomplete_dir).parts
    encoded = "".join(part.removeprefix("@") for part in parts)
    return base64.urlsafe_b64decode(encoded.encode()).decode()


def remove_stale_markers(state_dir: Path = Path(".snakemake")) -> list[str]:
    """Drop incomplete markers of nbsweep notebooks that exist complete at their target."""
    incomplete_dir = state_dir / "incomplete"
    cleared = []
    for marker in incomplete_dir.rglob("*") if incomplete_dir.is_dir() else []:
        if not marker.is_file():
            continue
        try:
            path = marker_path(marker, incomplete_dir)
        except (ValueError, UnicodeDecodeError):
            continue
        if path.endswith(".ipynb") and recorded_fingerprint(Path(path)):
            marker.unlink(missing_ok=True)
            cleared.append(path)
    return cleared


def recover(state_dir: Path = Path(".snakemake")) -> None:
    """Clear what a killed invocation left, if no other invocation is running here."""
    if hold_directory_lock(state_dir):
        remove_stale_locks(state_dir)
        remove_stale_markers(state_dir)
