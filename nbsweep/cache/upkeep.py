"""Looking after a store: its size, least-recently-used eviction, pruning and forgetting entries.

An entry's last use is its manifest's modification time (set when it is written or restored). A
prune removes entries older than a bound, then, while the store is larger than its bound, the
least recently used ones; then the objects no remaining entry refers to and the temporary files of
killed writers, only those older than ``GRACE``: a writer may be between its objects and its manifest
(an object it finds already there, shared by content with an entry removed now, it marks as just
written; an object store cannot mark it, so there a prune racing a writer may still cost a rerun).
"""

import time
from dataclasses import dataclass

from nbsweep.cache import entries
from nbsweep.cache.stores import Store

GRACE = 600  # seconds: an object no manifest names yet may belong to a writer still at work


@dataclass(frozen=True)
class Usage:
    """A store's entries and the bytes it holds (objects, manifests and leftovers); ``found``: false
    when there is nothing at its URL (nothing written to it yet, a folder not mounted, no such bucket)."""

    url: str
    shared: bool
    entries: int
    size: int
    found: bool = True


@dataclass(frozen=True)
class Pruned:
    url: str
    entries: int
    size: int  # bytes freed


def usage(store: Store) -> Usage:
    manifests, objects, leftovers = store.contents()
    size = sum(size for _, size, _ in (*manifests, *objects, *leftovers))
    found = bool(manifests or objects or leftovers) or store.exists()
    return Usage(store.url, store.shared, len(manifests), size, found)


def prune(store: Store, older_than: float | None = None, max_size: int | None = None, now: float | None = None) -> Pruned:
    """Remove the entries last used more than ``older_than`` seconds ago, then the least recently
    used until the store holds at most ``max_size`` bytes, then what no entry refers to (with
    ``max_size`` alone, a store within its bound is left as it is, unread)."""
    now = time.time() if now is None else now
    manifests, listed_objects, leftovers = store.contents()  # each folder listed once
    objects = {sha: (size, mtime) for sha, size, mtime in listed_objects}
    listed = sorted(manifests, key=lambda item: item[2])  # least recently used first
    total = sum(size for size, _ in objects.values()) + sum(size for _, size, _ in listed) + sum(size for _, size, _ in leftovers)
    if older_than is None and max_size is not None and total <= max_size:
        return Pruned(store.url, 0, 0)  # within its bound: the manifests are not even read
    uses: dict[str, int] = {}
    kept = []
    for key, size, mtime in listed:
        manifest = entries.parse(store.read_manifest(key), key)
        shas = {blob.sha256 for blob in manifest.blobs} if manifest else set()
        kept.append((key, size, mtime, shas))
        for sha in shas:
            uses[sha] = uses.get(sha, 0) + 1
    removed, freed = 0, 0
    while kept and ((older_than is not None and kept[0][2] < now - older_than) or (max_size is not None and total > max_size)):
        key, size, _, shas = kept.pop(0)
        store.remove_entry(key)
        removed, freed, total = removed + 1, freed + size, total - size
        for sha in shas:
            uses[sha] -= 1
            if not uses[sha] and sha in objects and objects[sha][1] < now - GRACE:
                store.remove_object(sha)
                size = objects.pop(sha)[0]
                freed, total = freed + size, total - size
    for sha, (size, mtime) in objects.items():
        if sha not in uses and mtime < now - GRACE:
            store.remove_object(sha)
            freed += size
    for path, size, mtime in leftovers:
        if mtime < now - GRACE:
            store.remove_path(path)
            freed += size
    return Pruned(store.url, removed, freed)


def forget(store: Store, keys: set[str], runs: set[str], templates: set[str]) -> int:
    """Remove the entries of ``keys``, and every entry made by a run of ``runs`` (ids) or of
    ``templates`` (names), with the objects no other entry refers to (but those written in the last
    ``GRACE`` seconds: a writer may be about to name them). How many entries were removed."""
    manifests, objects, _ = store.contents()
    recent = {sha for sha, _, mtime in objects if mtime >= time.time() - GRACE}
    gone, kept = set(), set()
    removed = 0
    for key, _, _ in manifests:
        manifest = entries.parse(store.read_manifest(key), key)
        made_by = manifest.run if manifest else ""
        shas = {blob.sha256 for blob in manifest.blobs} if manifest else set()
        if key in keys or made_by in runs or made_by.split("/", 1)[0] in templates:
            store.remove_entry(key)
            removed += 1
            gone |= shas
        else:
            kept |= shas
    for sha in gone - kept - recent:
        store.remove_object(sha)
    return removed
