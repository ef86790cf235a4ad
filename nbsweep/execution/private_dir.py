"""A private directory under the temp dir, opened once and used only through its descriptor.

The warm runner's socket and lock files live in ``$TMPDIR/nbsweep-<uid>``. Anyone can create
names in the temp dir, so the name is looked up exactly once: opened with ``O_NOFOLLOW`` and
``O_DIRECTORY`` (a symlink or a plain file planted there is refused), then checked with
``fstat`` on the opened directory (ours, mode ``0700``). Everything after that goes through the
descriptor: files are opened and removed with ``dir_fd=``, and sockets are bound and connected
through ``/proc/self/fd/N/<name>``, a path that the kernel resolves to the opened directory
itself, whatever is at the name in the temp dir by then (no ``chdir``, so no race with other
threads). No other user can create or swap names inside a ``0700`` directory of ours.

Connections are also checked at the other end: ``peer_is_us`` compares ``SO_PEERCRED``'s uid.
Linux only (``/proc`` and ``SO_PEERCRED``).
"""

import os
import socket
import stat
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path


class NotPrivate(Exception):
    """The folder cannot be used safely; ``str()`` is a phrase naming it and why."""


def default_path() -> Path:
    return Path(tempfile.gettempdir()) / f"nbsweep-{os.getuid()}"


@dataclass
class PrivateDir:
    path: Path  # for messages and process listings only: never looked up again
    fd: int

    def entry(self, name: str) -> str:
        """A path to ``name`` inside the opened directory, for ``bind``/``connect``."""
        return f"/proc/self/fd/{self.fd}/{name}"

    def open(self, name: str) -> int:
        """Open (creating) the regular file ``name`` for writing; a descriptor."""
        return os.open(name, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=self.fd)

    def unlink(self, name: str) -> None:
        try:
            os.unlink(name, dir_fd=self.fd)
        except FileNotFoundError:
            pass

    def inode(self, name: str) -> int | None:
        try:
            return os.stat(name, dir_fd=self.fd, follow_symlinks=False).st_ino
        except FileNotFoundError:
            return None

    def close(self) -> None:
        os.close(self.fd)

    def __enter__(self) -> "PrivateDir":  # noqa: PYI034 (typing.Self costs the job process an import)
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_private(path: Path) -> PrivateDir:
    """Make (if needed) and open ``path`` as a directory of ours that no one else can enter."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError as err:
        raise NotPrivate(f"{path} cannot be made ({err.strerror})") from None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:  # ELOOP: a symlink; ENOTDIR: a file; EACCES: someone else's
        raise NotPrivate(f"{path} is not a private directory owned by you") from None
    try:
        check(fd, path)
    except NotPrivate:
        os.close(fd)
        raise
    return PrivateDir(path, fd)


def check(fd: int, path: Path) -> None:
    """Raise ``NotPrivate`` unless ``fd`` is a directory of ours with no access for others."""
    info = os.fstat(fd)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise NotPrivate(f"{path} is not a private directory owned by you")
    if not os.path.isdir(f"/proc/self/fd/{fd}"):
        raise NotPrivate(f"{path} cannot be used without /proc")


def peer_uid(sock: socket.socket) -> int:
    """The uid of the process at the other end of a connected Unix socket."""
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", creds)[1]


def peer_is_us(sock: socket.socket) -> bool:
    return is_our_uid(peer_uid(sock))


def is_our_uid(uid: int) -> bool:
    return uid == os.getuid()
