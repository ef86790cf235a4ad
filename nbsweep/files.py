"""Writing files so that a reader never sees half of one: the one atomic-write helper."""

import os
from pathlib import Path


def write_atomically(path: Path, text: str, durable: bool = False) -> None:
    """Replace ``path`` with ``text`` in one step (a hidden temporary beside it, then rename);
    ``durable``: fsync before the rename, so a power loss leaves the old or the new file."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
