"""The caches of one invocation: put a run's entry in place instead of executing it, and name the
caches its job writes to.

Planning asks for a run whose target does not record the planned fingerprint (``Sweep.is_current``,
through ``nbsweep.smk.hooks.restorer``): the first whole entry of its key (``nbsweep.cache.lookup``)
is put in place — every object checked against its SHA-256 on the way, declared outputs first and
the notebook last, each by an atomic rename — and, found in a shared cache, kept in the local one
too. The restored notebook is the original execution's, with its execution id, so the runs after
it stay current too. An entry that fails the check is removed (one line says so), and the run
executes and writes a new one; an entry removed while it is read (a prune in another shell) is a
plain miss. A shared cache that cannot be reached is one warning, and the
sweep goes on without it.
"""

import errno
import json
import os
import shutil
import time
from dataclasses import replace
from pathlib import Path

from nbsweep import layout
from nbsweep.cache import entries, keys, upkeep
from nbsweep.cache.lookup import Lookup
from nbsweep.cache.settings import Settings
from nbsweep.cache.stores import MissingObject, VerificationError
from nbsweep.execution.liveness import process_exists
from nbsweep.execution.run_io import keep_outputs
from nbsweep.files import link_or_copy, write_atomically
from nbsweep.messages import say
from nbsweep.provenance import kept_aside
from nbsweep.provenance.records import Provenance, read_record

# Errors of writing the restored files here: the run executes, the (shared) cache stays in use.
LOCAL_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)
RESTORING = ".%s.restoring"  # then the restoring process's pid: a file being restored, beside its place


class Caches(Lookup):
    """The caches of ``settings`` (None: no cache) as one invocation uses them, and what it found:
    ``restored``, ``missed`` and ``ignored`` (failed verification) run ids, ``would`` (a dry-run's
    runs that would be restored)."""

    def __init__(self, settings: Settings | None, lookups=None):
        super().__init__(settings, lookups)
        self.probed: set[str] = set()  # caches found writable (Store.probe)
        self.wrote = False  # whether this invocation's jobs write entries
        self.restored: list[str] = []
        self.missed: list[str] = []
        self.ignored: list[str] = []
        self.would: list[str] = []
        self._leftovers: dict[Path, list[str]] = {}  # folder -> what restores left in it (listed once per folder)

    def restore(self, run, files: layout.RunFiles, plan: Provenance, digests: dict) -> bool:
        """Put the run's entry in place (``plan``: its planned provenance); whether it was.
        ``digests`` (the invocation's input digests) learn the restored outputs, which later runs read."""
        found = self.find(run, plan.fingerprint)
        if found is None:
            self.missed.append(run.id)
            return False
        store, key, manifest = found
        places = [(blob.sha256, Path(path)) for path, blob in manifest.outputs.items()]
        kept = (("log", files.log), ("html", files.html)) if run.render else (("log", files.log),)
        places += [(manifest.files[role].sha256, path) for role, path in kept if role in manifest.files]
        places.append((manifest.files["notebook"].sha256, files.target))  # last: the run is current once it is in place
        sizes = {blob.sha256: blob.size for blob in manifest.blobs}
        fetched: list[tuple[Path, Path]] = []
        try:
            for _, path in places:
                self.discard_leftovers(path)
                fetched.append((path.with_name(f"{RESTORING % path.name}{os.getpid()}"), path))
            store.fetch_all([(sha, temporary, sizes[sha]) for (sha, _), (temporary, _) in zip(places, fetched, strict=True)])
            check_notebook(fetched[-1][0], manifest.fingerprint)
        except VerificationError as err:
            discard(fetched)
            if isinstance(err, MissingObject) and store.read_manifest(key) is None:
                self.missed.append(run.id)  # a prune or forget removed the entry while it was read: not damaged
                return False
            self.ignored.append(run.id)
            store.remove_entry(key)
            if err.sha and not isinstance(err, MissingObject):
                store.remove_object(err.sha)  # or the execution's new entry would name it again (objects are named by content)
            say(
                f"nbsweep: the cache entry of run {run.id} in {store.url} is damaged ({err}) and is ignored; the run executes and replaces it"
            )
            return False
        except Exception as err:  # noqa: BLE001 -- the store went away, or this disk is full: the run executes
            discard(fetched)
            here = isinstance(err, OSError) and (not store.shared or err.errno in LOCAL_ERRORS)
            if not here:
                self.give_up(store.url, err)
            self.missed.append(run.id)
            return False
        kept_aside.keep_aside(files, plan)  # the good notebook it replaces, if made from other provenance
        if "html" not in manifest.files or not run.render:
            files.html.unlink(missing_ok=True)  # a rendering beside the notebook is always of this notebook
        for temporary, path in fetched:
            os.replace(temporary, path)
        digests.update({path: blob.sha256 for path, blob in manifest.outputs.items()})
        settle(files, {path: blob.sha256 for path, blob in manifest.outputs.items()})
        store.touch(key)
        self.restored.append(run.id)
        if store.shared:
            self.keep_locally(run, manifest, {sha: path for sha, path in places})
        return True

    def keep_locally(self, run, manifest: entries.Manifest, placed: dict[str, Path]) -> None:
        """After a restore from a shared cache: the entry in the run's local cache too, from the
        files just placed and checked (a rendering not placed is left out), so the next lookup
        of the run is local. A local cache that cannot be written is one line on stderr."""
        local = next((store for store in self.stores_for(run) if not store.shared), None)
        if local is None:
            return
        files = {role: blob for role, blob in manifest.files.items() if blob.sha256 in placed}
        kept = replace(manifest, key=keys.entry_key(manifest.fingerprint, None), environment=None, files=files)
        try:
            local.put_entry(kept, {blob.sha256: placed[blob.sha256] for blob in kept.blobs})
        except Exception as err:  # noqa: BLE001 -- a full disk, a folder that cannot be written
            say(f"nbsweep: run {run.id} was restored but could not be kept in the cache {local.url} ({type(err).__name__}: {err})")

    def discard_leftovers(self, path: Path) -> None:
        """Make ``path``'s folder if missing, and remove what restores of ``path`` killed half-way
        left beside it (their processes are gone). Each folder is listed once per invocation (not
        once per file restored into it: a folder of N runs would cost N² names)."""
        folder = path.parent
        folder.mkdir(parents=True, exist_ok=True)
        if folder not in self._leftovers:
            self._leftovers[folder] = [name for name in os.listdir(folder) if RESTORING.split("%s")[1] in name]
        prefix = RESTORING % path.name
        for name in self._leftovers[folder]:
            pid = name.removeprefix(prefix)
            if name.startswith(prefix) and pid.isdigit() and int(pid) != os.getpid() and not process_exists(int(pid)):
                (folder / name).unlink(missing_ok=True)

    def would_restore(self, run, fingerprint: str) -> bool:
        """For a dry-run: whether the run would be restored (its entry's manifest is there), noted in ``would``."""
        if self.find(run, fingerprint) is None:
            return False
        self.would.append(run.id)
        return True

    def job_targets(self, run) -> list[dict]:
        """Where a run's job writes its entry (its job file's ``cache``): every cache it may use,
        with the kernel environment's digest for the shared ones (the key is made from the
        fingerprint the executed notebook records: ``nbsweep.cache.save``). Each cache is written
        to once first (``Store.probe``), so one that cannot be written (read-only, unreachable, a
        bucket that does not exist) is one warning, not one per job."""
        self.wrote = True
        targets = []
        for store in self.stores_for(run):
            try:
                if store.url not in self.probed:
                    store.probe()
                    self.probed.add(store.url)
                environment = self.environment(store, run)
            except Exception as err:  # noqa: BLE001 -- an unreachable store; a kernelspec that cannot be read (the run fails by itself)
                self.give_up(store.url, err)
                continue
            targets.append({"url": store.url, "shared": store.shared, "environment": environment})
        return targets

    def finish(self) -> None:
        """As an invocation that executed ends: note what it found, and hold the local cache to its
        size bound (least recently used entries go first)."""
        self.write_stats()
        for store in self.stores if self._stores is not None or self.wrote else []:
            if not store.shared and self.settings:
                try:
                    upkeep.prune(store, max_size=self.settings.max_size)
                except OSError as err:
                    say(f"nbsweep: could not hold the cache {store.url} to its size ({err})")

    def write_stats(self) -> None:
        """Note what this invocation found, for ``nbsweep cache status``."""
        doc = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "hits": len(self.restored),
            "misses": len(self.missed),
            "ignored": len(self.ignored),
            "unusable": self.unusable,
        }
        try:
            layout.CACHE_STATS.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(layout.CACHE_STATS, json.dumps(doc))
        except OSError:
            pass


def discard(fetched: list[tuple[Path, Path]]) -> None:
    for temporary, _ in fetched:
        temporary.unlink(missing_ok=True)


def settle(files: layout.RunFiles, outputs: dict[str, str]) -> None:
    """After a restore, as after a success: no failed copy or interrupted mark is left, and the
    hidden good link, log copy and output links are of the restored run (for early cutoff)."""
    for path in (files.failed, files.failed_html, files.interrupted, files.good, files.good_log):
        path.unlink(missing_ok=True)
    try:
        link_or_copy(files.target, files.good)
        if files.log.exists():
            shutil.copy2(files.log, files.good_log)  # a copy: the next execution's log is written over the file
    except OSError:
        files.good.unlink(missing_ok=True)
    keep_outputs(files, outputs)


def check_notebook(notebook: Path, fingerprint: str) -> None:
    """A fetched notebook must record the fingerprint its entry is filed under (an entry edited
    to name another run's notebook would be put in place, and stay stale for good)."""
    recorded = read_record(notebook).get("fingerprint")
    if recorded != fingerprint:
        raise VerificationError(f"its notebook records fingerprint {str(recorded)[:12]}…, not the entry's {fingerprint[:12]}…")
