"""Writing files so that a reader never sees half of one, and opening files that may not be files."""

import os
import shutil
import stat
from pathlib import Path

KINDS = {  # what a path that is not a regular file is, for messages
    stat.S_IFIFO: "a FIFO",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
    stat.S_IFDIR: "a folder",
}


class UnusableFile(OSError):
    """A path that names no regular file of acceptable size; ``reason`` completes "<path> ..."."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


def write_atomically(path: Path, text: str | bytes, like: os.stat_result | None = None) -> None:
    """Replace ``path`` with ``text`` (or bytes) in one step (a hidden temporary beside it, then rename).
    ``like``: the replaced file's stat, whose mode and times the new file keeps; such a rewrite of
    a user's file is fsynced first, so a power loss leaves the old or the new file."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") if isinstance(text, bytes) else open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            if like is not None:
                fh.flush()
                os.fsync(fh.fileno())
        if like is not None:
            os.chmod(tmp, like.st_mode & 0o7777)
            os.utime(tmp, ns=(like.st_atime_ns, like.st_mtime_ns))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def link_or_copy(source: Path, destination: Path) -> None:
    """A second name for ``source`` (a copy where the filesystem has no hard links)."""
    try:
        os.link(source, destination)
    except OSError:
        shutil.copy2(source, destination)


def check_regular(status: os.stat_result, limit: int | None) -> None:
    """Raise UnusableFile unless ``status`` is of a regular file of at most ``limit`` bytes."""
    if not stat.S_ISREG(status.st_mode):
        kind = KINDS.get(stat.S_IFMT(status.st_mode), "not a file")
        raise UnusableFile(f"is {kind}, not a regular file")
    if limit is not None and status.st_size > limit:
        raise UnusableFile(f"is {status.st_size / 2**20:.1f} MB, more than the {limit // 2**20} MB allowed")


def open_regular(path: str | Path, limit: int | None = None):
    """``path`` opened for reading in binary if it is a regular file (of at most ``limit``
    bytes); anything else (a FIFO, a device, a symlink to ``/dev/zero``) raises UnusableFile
    without being read or waited on. Missing or unreadable files raise the usual OSError."""
    check_regular(os.stat(path), limit)  # before opening: opening a FIFO blocks, a device may act
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)  # replaced since the stat: must not block either
    try:
        check_regular(os.fstat(fd), limit)
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(path: str | Path, limit: int) -> bytes:
    """The bytes of regular file ``path``, which must hold at most ``limit`` (``open_regular``)."""
    with open_regular(path, limit) as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:  # it grew since the check
        raise UnusableFile(f"is more than the {limit // 2**20} MB allowed")
    return data
