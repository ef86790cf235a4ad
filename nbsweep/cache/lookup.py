"""Looking runs up in the caches of one invocation, read-only: the first whole entry of a run's
key (``nbsweep.cache.keys``), the caches read in order (local first). In a cache that is not a local
folder, the first lookup reads the manifests of every run that may be looked up (``lookups``) at
once. A cache that cannot be reached is one warning, and the invocation goes on without it.
``nbsweep.cache.restore`` puts what is found in place; ``with_caches`` says what ``nbsweep status``
would see restored.
"""

from pathlib import Path

from nbsweep.cache import entries, keys
from nbsweep.cache.settings import Settings
from nbsweep.cache.stores import Store
from nbsweep.messages import say
from nbsweep.model.pipeline import upstream_ids
from nbsweep.provenance import state

RESTORABLE = (state.STALE, state.MISSING, state.FAILED)  # an interrupted run executes anew
CURRENT = (state.UP_TO_DATE, state.ACCEPTED)


class Lookup:
    """The caches of ``settings`` (None: no cache) as one invocation reads them: ``unusable``
    (url -> why, said once)."""

    def __init__(self, settings: Settings | None, lookups=None):
        self.settings = settings
        self.lookups = lookups  # () -> [(run, planned fingerprint)]: the runs to read at once from a remote cache
        self._read: dict[tuple[str, str], str | None] = {}  # (url, key) -> manifest read ahead (None: absent)
        self._read_ahead: set[str] = set()  # the caches read ahead
        self._stores: list[Store] | None = None
        self.unusable: dict[str, str] = {}

    @property
    def stores(self) -> list[Store]:
        """The caches, opened when first needed (an invocation with every run current opens none)."""
        if self._stores is None:
            self._stores = []
            for url, shared in self.settings.stores if self.settings else []:
                try:
                    self._stores.append(Store(url, shared))
                except Exception as err:  # noqa: BLE001 -- fsspec: unknown protocol, missing backend (ImportError), bad URL
                    self.give_up(url, err)
        return self._stores

    def give_up(self, url: str, err: BaseException) -> None:
        if url not in self.unusable:
            self.unusable[url] = f"{type(err).__name__}: {err}"
            say(f"nbsweep: the cache {url} cannot be used ({self.unusable[url]}); runs execute without it")

    def stores_for(self, run) -> list[Store]:
        """The caches a run is read from and written to: a run with ``secrets`` stays out of the
        shared ones unless the config says ``share_secrets``."""
        private = bool(run.secrets) and not (self.settings and self.settings.share_secrets)
        return [store for store in self.stores if store.url not in self.unusable and not (private and store.shared)]

    @staticmethod
    def environment(store: Store, run) -> str | None:
        return keys.environment(run.kernel) if store.shared else None

    def find(self, run, fingerprint: str) -> tuple[Store, str, entries.Manifest] | None:
        """The first cache holding a whole entry for the run (its manifest, for its declared outputs)."""
        for store in self.stores_for(run):
            try:
                key = keys.entry_key(fingerprint, self.environment(store, run))
                manifest = entries.parse(self.read_manifest(store, key), key)
            except Exception as err:  # noqa: BLE001 -- an unreachable store, whatever its backend raises
                self.give_up(store.url, err)
                continue
            if manifest and manifest.fingerprint == fingerprint and set(manifest.outputs) == set(run.outputs):
                return store, key, manifest
        return None

    def read_manifest(self, store: Store, key: str) -> str | None:
        """An entry's manifest in ``store``. The first read from a cache that is no local folder
        reads the manifests of all ``lookups`` there at once (one round trip's time, not one per run)."""
        if not store.is_folder and self.lookups is not None and store.url not in self._read_ahead:
            self._read_ahead.add(store.url)
            wanted = {
                keys.entry_key(fingerprint, self.environment(store, run))
                for run, fingerprint in self.lookups()
                if store in self.stores_for(run)
            }
            self._read.update({(store.url, each): text for each, text in store.read_manifests(wanted).items()})
        if (store.url, key) in self._read:
            return self._read.pop((store.url, key))
        return store.read_manifest(key)


def with_caches(sweep, states: list[state.RunState], digests: dict) -> list[state.RunState]:
    """``states`` (of ``sweep``'s runs, in its order), those the next invocation would restore from
    a cache marked so (``state.in_cache``): runs stale, missing or failed, without a current
    kept-aside notebook, whose upstream runs are up to date (their fingerprint is then known).
    Only manifests are read."""
    if sweep.cache is None:
        return states
    by_id = {each.run: each for each in states}
    wanted = [
        run
        for run in sweep.runs.values()
        if by_id[run.id].state in RESTORABLE
        and all(up in by_id and by_id[up].state in CURRENT for up in upstream_ids(run))
        and not state.kept_aside_is_current(run, Path(sweep.target(run)), digests)
    ]
    if not wanted:
        return states
    lookups = [(run, state.planned(run, digests).fingerprint) for run in wanted]
    caches = Lookup(sweep.cache, lambda: lookups)
    found = {run.id: hit[0].url for run, fingerprint in lookups if (hit := caches.find(run, fingerprint))}
    return [state.in_cache(each, found[each.run]) if each.run in found else each for each in states]
