"""Who owns the project folder now, and recovering what a killed invocation left behind.

Every planning Snakemake process tries an ``flock`` on the project folder itself (no file is
written for it). Whoever gets it knows that no other nbsweep invocation is alive here: any
Snakemake lock found is then stale (left by a SIGKILL or a power loss), and so are "incomplete"
markers of targets that exist, because the runner only ever moves complete notebooks into place,
and the job folders of earlier invocations. An invocation that does not get it executes nothing
(``refusal``), even after ``snakemake --unlock``.
"""

import base64
import fcntl
import os
import shutil
from pathlib import Path

from . import layout
from .provenance import digest_if_present, read_record, recorded

_held: list[int] = []  # the flock'ed folder stays open for the whole process
STATE = Path(".snakemake")


def take_ownership() -> bool:
    """Take the folder's flock; False if another live nbsweep invocation holds it."""
    if _held:
        return True
    fd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return False
    _held.append(fd)
    return True


def owner_pid() -> int | None:
    """The pid holding the folder's flock, from /proc/locks (Linux), if any."""
    st = os.stat(".")
    wanted = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    try:
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        parts = line.split()
        if len(parts) >= 6 and parts[1] == "FLOCK" and parts[5] == wanted and parts[4].isdigit():
            return int(parts[4])
    return None


def refusal() -> str:
    """The one sentence that stops an invocation while another one runs in this folder."""
    pid = owner_pid()
    who = f" (pid {pid})" if pid else ""
    return f"another nbsweep invocation{who} is running in this folder; wait for it to finish (`snakemake --unlock` does not stop it), or stop it first"


def remove_stale_locks(state_dir: Path = STATE) -> list[Path]:
    removed = sorted((state_dir / "locks").glob("*.lock"))
    for lock in removed:
        lock.unlink(missing_ok=True)
    return removed


def marker_path(marker: Path, incomplete_dir: Path) -> str:
    """Decode Snakemake's incomplete marker name (url-safe base64, split into chunks)."""
    parts = marker.relative_to(incomplete_dir).parts
    encoded = "".join(part.removeprefix("@") for part in parts)
    return base64.urlsafe_b64decode(encoded.encode()).decode()


def remove_stale_markers(state_dir: Path = STATE, outputs: dict[str, str] | None = None) -> list[str]:
    """Drop incomplete markers of files that exist complete: nbsweep notebooks with a readable
    record, and declared outputs that their producer's notebook records as written (``outputs``:
    declared output -> its producer's notebook)."""
    incomplete_dir = state_dir / "incomplete"
    cleared = []
    for marker in incomplete_dir.rglob("*") if incomplete_dir.is_dir() else []:
        if not marker.is_file():
            continue
        try:
            path = marker_path(marker, incomplete_dir)
        except (ValueError, UnicodeDecodeError):
            continue
        if (path.endswith(".ipynb") and recorded(Path(path))) or written_by_producer(path, (outputs or {}).get(path)):
            marker.unlink(missing_ok=True)
            cleared.append(path)
    return cleared


def written_by_producer(path: str, notebook: str | None) -> bool:
    """Whether a declared output is the file its producer's (readable) notebook records writing."""
    if notebook is None or recorded(Path(notebook)) is None:
        return False
    written = read_record(Path(notebook)).get("outputs") or {}
    return path in written and written[path] == digest_if_present(path)


def recover(state_dir: Path = STATE, outputs: dict[str, str] | None = None) -> None:
    """As the folder's owner: clear what killed invocations left (nothing, usually);
    ``outputs``: declared output -> its producer's notebook."""
    if state_dir.is_dir():
        remove_stale_locks(state_dir)
        remove_stale_markers(state_dir, outputs)
        if layout.INVOCATIONS.is_dir():
            shutil.rmtree(layout.INVOCATIONS, ignore_errors=True)
