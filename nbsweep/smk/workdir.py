"""Who owns the project folder now, and recovering what a killed invocation left behind.

Every planning Snakemake process tries an ``flock`` on the project folder itself (no file is
written for it). Whoever gets it knows that no other nbsweep invocation is alive here: any
Snakemake lock found is then stale (left by a SIGKILL or a power loss), and so are "incomplete"
markers of targets that exist, because the runner only ever moves complete notebooks into place,
and the job folders of earlier invocations. An invocation that does not get it executes nothing
(``refusal``), even after ``snakemake --unlock``.

An invocation that executes also owns its output folder, wherever it is (``claim_output``): an
exclusive flock on the folder and shared ones on every folder around it, so that a second
invocation (of another project) whose output folder is the same, inside it or around it is
refused too (``output_refusal``). Commands that change files in a project (``nbsweep accept``,
``nbsweep status --remove-orphans``) take both first (``own_or_refuse``); reading needs neither.
"""

import base64
import fcntl
import os
import shutil
from pathlib import Path

from nbsweep import layout
from nbsweep.errors import SweepError, printable
from nbsweep.provenance.records import read_record, recorded
from nbsweep.provenance.state import digest_if_present

_held: list[int] = []  # the flock'ed folder stays open for the whole process
_claimed: list[int] = []  # the output folder and the folders around it, flock'ed for the whole process
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


def holder(folder: str | Path = ".") -> tuple[int, bool] | None:
    """Another process's flock on ``folder``, from /proc/locks (Linux): (its pid, whether the lock
    is shared), if any."""
    st = os.stat(folder)
    wanted = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    try:
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        parts = line.split()
        if len(parts) >= 6 and parts[1] == "FLOCK" and parts[5] == wanted and parts[4].isdigit() and int(parts[4]) != os.getpid():
            return int(parts[4]), parts[3] == "READ"
    return None


def refusal() -> str:
    """The one sentence that stops an invocation while another one runs in this folder (or writes
    its output folder inside it)."""
    pid, shared = holder() or (None, False)
    who = f" (pid {pid})" if pid else ""
    if shared:
        return f"another nbsweep invocation{who} writes its output folder inside this folder; wait for it to finish, or stop it first"
    return f"another nbsweep invocation{who} is running in this folder; wait for it to finish (`snakemake --unlock` does not stop it), or stop it first"


def folder_identity(fd: int) -> tuple[int, int]:
    st = os.fstat(fd)
    return st.st_dev, st.st_ino


def lock_tree(folder: Path, held: set[tuple[int, int]]) -> tuple[list[int], Path | None]:
    """Flock every folder around ``folder`` (an absolute path) shared and ``folder`` itself
    exclusively, from the root down, creating the missing ones only once those around them are
    locked; skip the folders in ``held`` (identities of folders this process has flock'ed already:
    a second descriptor of the same folder would conflict with its own lock). An exclusive lock
    conflicts with a shared one, so two trees that are equal or nested either way conflict.
    Returns the descriptors taken, and the folder where another process's lock conflicts (then
    none are kept, and nothing below it was created). A folder that cannot be opened or flock'ed
    (no read permission, a filesystem without flock) is skipped. Raises OSError if one cannot be
    created."""
    taken: list[int] = []
    for path in [*reversed(folder.parents), folder]:
        path.mkdir(exist_ok=True)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            if folder_identity(fd) in held:
                os.close(fd)
                continue
            fcntl.flock(fd, (fcntl.LOCK_EX if path == folder else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            for other in taken:
                os.close(other)
            return [], path
        except OSError:
            os.close(fd)
            continue
        taken.append(fd)
    return taken, None


def claim_output(output_dir: str) -> str | None:
    """Own the output folder (created if missing) for the rest of this process, unless another
    invocation owns it, a folder inside it or one around it: then the sentence refusing this one."""
    folder = Path(output_dir).resolve()
    try:
        taken, conflict = lock_tree(folder, {folder_identity(fd) for fd in _held + _claimed})
    except OSError as err:
        return printable(f"cannot create the output folder {folder} ({err.strerror}); set output_dir to a folder you can write")
    _claimed.extend(taken)
    return None if conflict is None else output_refusal(folder, conflict)


def output_refusal(folder: Path, conflict: Path) -> str:
    """The one sentence refusing an invocation whose output folder another one owns (around it:
    ``conflict``, or the folder itself, or a folder inside it)."""
    pid, _ = holder(conflict) or (None, False)
    who = f" (pid {pid})" if pid else ""
    if conflict == folder:
        where = f"the output folder {folder} (or a folder inside it)"
    else:
        where = f"{conflict}, which holds the output folder {folder}"
    return printable(f"another nbsweep invocation{who} is writing to {where}; wait for it to finish, or set output_dir to another folder")


def own_or_refuse(output_dir: str) -> None:
    """For a command that changes files: own the project folder and the output folder, or raise
    the SweepError that refuses it while another invocation owns either."""
    if not take_ownership():
        raise SweepError(refusal())
    if sentence := claim_output(output_dir):
        raise SweepError(sentence)


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
