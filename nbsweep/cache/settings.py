"""Where the run cache lives: the config's ``cache:`` key, read at planning.

By default a per-user local folder (``NBSWEEP_CACHE_DIR``, else ``$XDG_CACHE_HOME/nbsweep/runs``,
else ``~/.cache/nbsweep/runs``), bounded in size with least-recently-used eviction. The config adds
shared caches (a folder on a shared filesystem, ``s3://bucket/prefix``), read after the local one;
every good execution is written to all of them. ``cache: false`` turns the cache off.
"""

import os
import re
from dataclasses import dataclass
from pathlib import Path

DIR_VARIABLE = "NBSWEEP_CACHE_DIR"
DEFAULT_MAX_SIZE = 10 * 2**30
_UNITS = {"": 1, "B": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:I?B)?\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Settings:
    """``local``: the per-user cache folder (None: none); ``shared``: the shared caches' URLs, in
    the order they are read; ``max_size``: the local cache's bound in bytes; ``share_secrets``:
    whether runs with ``secrets`` are written to the shared caches too."""

    local: str | None
    shared: tuple[str, ...] = ()
    max_size: int = DEFAULT_MAX_SIZE
    share_secrets: bool = False

    @property
    def stores(self) -> list[tuple[str, bool]]:
        """(URL, shared) of every cache, local first."""
        return ([(self.local, False)] if self.local else []) + [(url, True) for url in self.shared]


def default_local() -> str:
    """The per-user local cache folder."""
    if os.environ.get(DIR_VARIABLE):
        return os.path.expanduser(os.environ[DIR_VARIABLE])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return os.path.join(base, "nbsweep", "runs")


def parse_size(value) -> int:
    """Bytes from a number or a text such as ``500MB``, ``2 GiB``, ``1.5G``; ValueError otherwise."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
        return int(value)
    match = _SIZE.match(str(value))
    if not match:
        raise ValueError(f"{value!r} is not a size; write e.g. 500MB or 20GB")
    return int(float(match.group(1)) * _UNITS[match.group(2).upper()])


def expanded(url: str) -> str:
    """A cache URL with ``~`` expanded for local paths (``s3://``... stays as written)."""
    return url if "://" in url else os.path.expanduser(url)


def defaults() -> Settings:
    """The cache of a config without a ``cache:`` key: the per-user local folder alone."""
    return Settings(default_local())


def settings(given) -> Settings | None:
    """The cache settings of a validated ``cache:`` value: ``false`` (None: no cache), ``true`` or
    null (the defaults), a URL or a list of URLs (shared caches, after the local one), or a mapping
    (``local``, ``shared``, ``max_size``, ``share_secrets``)."""
    if given is False:
        return None
    if given is True or given is None:
        return defaults()
    if isinstance(given, str):
        given = {"shared": [given]}
    elif isinstance(given, list):
        given = {"shared": given}
    local = given.get("local", True)
    shared = given.get("shared", [])
    return Settings(
        local=default_local() if local is True else (expanded(local) if local else None),
        shared=tuple(expanded(url) for url in ([shared] if isinstance(shared, str) else shared)),
        max_size=parse_size(given["max_size"]) if "max_size" in given else DEFAULT_MAX_SIZE,
        share_secrets=bool(given.get("share_secrets", False)),
    )
