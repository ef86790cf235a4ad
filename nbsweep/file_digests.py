"""Content digests of files: the SHA-256 of an input's bytes and the status it was read with."""

import hashlib
import os
from pathlib import Path

from nbsweep.errors import SweepError
from nbsweep.files import UnusableFile, open_regular


class NotRegularInput(SweepError):
    """An input path that names a FIFO, a device or a folder: refused unread."""


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file's bytes."""
    return file_digest_and_stat(path)[0]


def file_digest_and_stat(path: str | Path) -> tuple[str, tuple[int, int, int]]:
    """SHA-256 of a regular file's bytes and its (size, mtime_ns, inode) as it was opened; a
    FIFO or a device is refused unread (``files.open_regular``), in one sentence."""
    try:
        with open_regular(path) as fh:
            status = os.fstat(fh.fileno())
            return hashlib.file_digest(fh, "sha256").hexdigest(), stat_key(status)
    except UnusableFile as err:
        raise NotRegularInput(f"input file {path} {err.reason}; declare a regular file in 'inputs'") from None
    except OSError as err:
        raise SweepError(f"cannot read input file {path}: {err.strerror}") from None


def stat_key(status: os.stat_result) -> tuple[int, int, int]:
    """What of a file's status tells that it may have changed: size, mtime (ns) and inode."""
    return status.st_size, status.st_mtime_ns, status.st_ino
