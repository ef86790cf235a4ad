"""The run cache: keys, manifests, stores (a folder, and fsspec's memory://), eviction, pruning, forgetting."""

import errno
import hashlib
import json
import os
import re
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest
from nbformat.v4 import new_notebook

from nbsweep import layout
from nbsweep.cache import entries, keys, settings, upkeep
from nbsweep.cache.restore import Caches
from nbsweep.cache.stores import TEMPORARY, Store, VerificationError
from nbsweep.errors import SweepError
from nbsweep.model.config import load_config, load_schema
from nbsweep.packaged import SCHEMA

from .builders import write


def put_entry(store: Store, key: str, run: str = "t/a", content: bytes = b"notebook", outputs: dict | None = None) -> entries.Manifest:
    """Write an entry as a job does: its objects, then its manifest."""
    record = {"run": run, "fingerprint": key, "execution": uuid.uuid4().hex}
    folder = Path(os.environ["NBSWEEP_CACHE_DIR"]) / "sources" / uuid.uuid4().hex
    folder.mkdir(parents=True)
    (folder / "nb.ipynb").write_bytes(content)
    manifest, objects = entries.pack(record, {"notebook": folder / "nb.ipynb", "log": folder / "missing.log"}, outputs or {}, {"m": 1})
    manifest = replace(manifest, key=key)
    store.put_entry(manifest, objects)
    return manifest


def fetched(store: Store, key: str, tmp_path: Path) -> bytes:
    manifest = entries.parse(store.read_manifest(key), key)
    store.fetch(manifest.files["notebook"].sha256, tmp_path / "out")
    return (tmp_path / "out").read_bytes()


def test_the_local_key_is_the_fingerprint_and_a_shared_key_covers_the_kernels_environment():
    assert keys.entry_key("f" * 64, None) == "f" * 64
    shared = keys.entry_key("f" * 64, keys.environment("python3"))
    assert shared != "f" * 64 and shared == keys.entry_key("f" * 64, keys.environment("python3"))
    assert keys.entry_key("f" * 64, "env-a") != keys.entry_key("f" * 64, "env-b")
    assert keys.environment("no-such-kernel") != keys.environment("no-such-kernel-either")


@pytest.mark.parametrize("url", ["memory://cache-roundtrip", "folder"])
def test_an_entry_round_trips_through_a_store_and_its_objects_are_checked(url, tmp_path):
    store = Store(str(tmp_path / url) if url == "folder" else url, shared=False)
    made = put_entry(store, "a" * 64, content=b"executed")
    found = entries.parse(store.read_manifest("a" * 64), "a" * 64)
    assert found == made and set(found.files) == {"notebook"} and found.metrics == {"m": 1}
    assert fetched(store, "a" * 64, tmp_path) == b"executed"
    assert store.read_manifest("b" * 64) is None
    assert entries.parse(store.read_manifest("a" * 64), "b" * 64) is None  # a manifest names its key
    store.fs.pipe_file(store.object_path(made.files["notebook"].sha256), b"damaged!")  # same size, other content
    with pytest.raises(VerificationError):
        store.fetch(made.files["notebook"].sha256, tmp_path / "again")
    assert not (tmp_path / "again").exists()


@pytest.mark.parametrize("text", ["", "{", '{"version": 1}', json.dumps({"version": 99, "key": "k"}), "[]"])
def test_a_manifest_that_is_not_whole_is_no_entry(text):
    assert entries.parse(text, "k") is None


def test_a_manifest_naming_an_object_by_a_path_is_no_entry_and_forget_deletes_nothing_outside(tmp_path):
    """A hostile store's manifest whose object "name" climbs out of the store (64 characters, as a SHA-256)."""
    store = Store(str(tmp_path / "cache"), shared=True)
    made = put_entry(store, "a" * 64, run="t/a")
    victim = write(tmp_path / "victim", "precious")
    climb = "./" * 26 + "../../victim"  # objects/./<climb>: up from objects/ to tmp_path
    assert len(climb) == 64 and os.path.normpath(store.object_path(climb)) == str(victim)
    store.put_manifest("a" * 64, replace(made, files={**made.files, "log": entries.Blob(climb, 8)}).to_json())
    assert entries.parse(store.read_manifest("a" * 64), "a" * 64) is None
    upkeep.forget(store, keys=set(), runs={"t/a"}, templates={"t"})
    upkeep.prune(store, older_than=0, now=10**10)
    assert victim.read_text() == "precious"


def test_an_object_that_is_longer_than_its_manifest_says_or_no_regular_file_is_never_read_to_its_end(tmp_path):
    """A hostile or broken store: an object linked to /dev/zero, a FIFO, or grown: each fails at once."""
    store = Store(str(tmp_path / "cache"), shared=True)
    blob = put_entry(store, "a" * 64, content=b"executed").files["notebook"]
    path = Path(store.object_path(blob.sha256))
    for make in (lambda: path.symlink_to("/dev/zero"), lambda: os.mkfifo(path), lambda: path.write_bytes(b"executed" + b"\0" * 10**6)):
        path.unlink()
        make()
        with pytest.raises(VerificationError):
            store.fetch(blob.sha256, tmp_path / "out", blob.size)
        assert not (tmp_path / "out").exists()


def test_a_writer_killed_before_its_manifest_leaves_no_entry_and_its_leftovers_go(tmp_path):
    """A writer killed between its objects and its manifest, or while writing a file: no entry exists."""
    cache = tmp_path / "cache"
    script = (
        "import os, sys\nfrom pathlib import Path\nfrom nbsweep.cache.stores import Store\n"
        "store = Store(sys.argv[1], shared=False)\nsource = Path(sys.argv[1]).parent / 'big'\n"
        "source.write_bytes(os.urandom(1 << 20))\nstore.put_object('c' * 64, source)\n"
        "store._write(store.manifest_path('d' * 64), lambda where: (open(where, 'w').write('{\"ver'), os._exit(9)))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script, str(cache)], capture_output=True, text=True)
    assert proc.returncode == 9, proc.stderr
    store = Store(str(cache), shared=False)
    assert store.read_manifest("d" * 64) is None and list(store.manifests()) == []
    assert [name for name, _, _ in store.leftovers()][0].endswith(tuple("0123456789abcdef")) and TEMPORARY in next(store.leftovers())[0]
    upkeep.prune(store, now=10**10)  # long after: the half-written manifest and the object nothing refers to go
    assert list(store.leftovers()) == [] and list(store.objects()) == []


def test_two_writers_of_one_key_at_once_leave_one_whole_entry(tmp_path):
    store = Store(str(tmp_path / "cache"), shared=False)
    with ThreadPoolExecutor(8) as pool:
        made = list(pool.map(lambda i: put_entry(store, "e" * 64, content=f"notebook {i}".encode() * 1000), range(16)))
    found = entries.parse(store.read_manifest("e" * 64), "e" * 64)
    assert found in made
    assert fetched(store, "e" * 64, tmp_path).startswith(b"notebook ")
    assert list(store.leftovers()) == []


def test_the_least_recently_used_entries_go_first_when_the_store_is_over_its_bound(tmp_path):
    store = Store(str(tmp_path / "cache"), shared=False)
    for i, key in enumerate(["1" * 64, "2" * 64, "3" * 64]):
        put_entry(store, key, content=bytes([65 + i]) * 1000)
        os.utime(store.manifest_path(key), (1000 + i, 1000 + i))
    for path in (tmp_path / "cache" / "objects").rglob("*"):
        os.utime(path, (1000, 1000))  # written long ago with their entries
    store.touch("1" * 64)  # restored just now: the most recently used
    size = upkeep.usage(store).size
    assert upkeep.prune(store, max_size=size) == upkeep.Pruned(store.url, 0, 0)  # within its bound: untouched
    pruned = upkeep.prune(store, max_size=size - 1)
    assert pruned.entries == 1 and pruned.size >= 1000
    assert sorted(key[0] for key, _, _ in store.manifests()) == ["1", "3"]
    assert upkeep.usage(store).size <= size - 1000


@pytest.mark.parametrize("upkeep_of", ["prune", "forget"])
def test_an_object_a_writer_finds_already_there_outlives_the_entry_removed_meanwhile(tmp_path, upkeep_of):
    """A writer puts its objects, finds one an old entry shares by content, and before its manifest
    is written a prune (or forget) removes that old entry: the object stays, so the new entry is whole."""
    store = Store(str(tmp_path / "cache"), shared=False)
    old = put_entry(store, "1" * 64, run="t/old", content=b"same output")
    for path in (tmp_path / "cache").rglob("*.json"):
        os.utime(path, (1000, 1000))
    for path in (tmp_path / "cache" / "objects").rglob("*"):
        os.utime(path, (1000, 1000))
    shared = old.files["notebook"].sha256
    store.put_object(shared, b"same output")  # the writer, between its objects and its manifest
    if upkeep_of == "prune":
        assert upkeep.prune(store, older_than=60).entries == 1
    else:
        assert upkeep.forget(store, keys=set(), runs={"t/old"}, templates=set()) == 1
    assert store.has_object(shared, len(b"same output"))
    later = upkeep.prune(store, older_than=60, now=time.time() + upkeep.GRACE + 1)  # no entry names it any more
    assert later.size == len(b"same output") and not store.has_object(shared, len(b"same output"))


def test_prune_by_age_and_forget_by_run_template_or_key(tmp_path):
    store = Store("memory://cache-prune", shared=True)
    put_entry(store, "1" * 64, run="t/a")
    put_entry(store, "2" * 64, run="t/b")
    put_entry(store, "3" * 64, run="u/a")
    put_entry(store, "4" * 64, run="v/a")
    assert upkeep.forget(store, keys=set(), runs={"t/a"}, templates=set()) == 1
    assert upkeep.forget(store, keys={"4" * 64}, runs=set(), templates={"u"}) == 2
    assert [key for key, _, _ in store.manifests()] == ["2" * 64]
    assert upkeep.prune(store, older_than=3600).entries == 0
    assert upkeep.prune(store, older_than=0, now=10**10).entries == 1 and upkeep.usage(store).entries == 0


def test_the_cache_key_of_the_config(tmp_path, monkeypatch):
    monkeypatch.setenv("NBSWEEP_CACHE_DIR", str(tmp_path / "mine"))
    schema = load_schema(SCHEMA)

    def configured(cache):
        path = write(tmp_path / "c.yaml", json.dumps({"runs": [], **({} if cache is None else {"cache": cache})}))
        return load_config([path], schema).cache

    assert configured(None) == settings.Settings(str(tmp_path / "mine"))
    assert configured(False) is None
    assert configured("s3://bucket/prefix").stores == [(str(tmp_path / "mine"), False), ("s3://bucket/prefix", True)]
    assert configured({"local": False, "shared": ["/a", "s3://b"], "max_size": "1.5 GB", "share_secrets": True}) == settings.Settings(
        None, ("/a", "s3://b"), int(1.5 * 2**30), True
    )
    for bad, said in [
        ({"max_size": "lots"}, "'cache.max_size' cannot be 'lots' (a size in bytes or such as 500MB or 20GB)"),
        ({"shared": 3}, "'cache.shared' cannot be 3 (a folder or URL (s3://bucket/prefix), or a list of them)"),
        ({"local": 3}, "'cache.local' cannot be 3 (true (the per-user folder), false (none) or a folder)"),
        ({"other": 1}, "unknown key 'other' (allowed: local, shared, max_size, share_secrets)"),
        (7, "'cache' cannot be 7 (The run cache (docs/cache.md): absent or true = the per-user local cache"),
        ([3], "'cache.0' cannot be 3 (A folder (~ expands) or a URL"),
    ]:
        with pytest.raises(SweepError, match=f"^{re.escape(str(tmp_path / 'c.yaml'))}: {re.escape(said)}"):
            configured(bad)


def test_a_cache_that_cannot_be_used_or_written_is_one_warning_and_runs_with_secrets_stay_out_of_shared_ones(tmp_path, capsys, monkeypatch):
    local = str(tmp_path / "local")
    run = SimpleNamespace(id="t/a", secrets={}, kernel="python3", outputs=())
    secret = SimpleNamespace(id="t/s", secrets={"token": "API_TOKEN"}, kernel="python3", outputs=())
    broken = Caches(settings.Settings(local, ("nosuchprotocol://bucket/prefix",)))
    assert broken.find(run, "f" * 64) is None and [target["url"] for target in broken.job_targets(run)] == [local]
    assert capsys.readouterr().err.count("nbsweep: the cache nosuchprotocol://bucket/prefix cannot be used") == 1
    blocked = str(write(tmp_path / "a-file", "") / "cache")  # a folder that cannot be made (as a read-only one, even for root)
    unwritable = Caches(settings.Settings(blocked, (local,)))
    assert [[target["url"] for target in unwritable.job_targets(run)] for _ in range(3)] == [[local]] * 3
    assert capsys.readouterr().err.count(f"nbsweep: the cache {blocked} cannot be used") == 1
    refusing = Caches(settings.Settings(local, ("memory://no-such-bucket",)))  # read-only credentials, a bucket that does not exist
    with monkeypatch.context() as patched:  # memory:// is one filesystem for the whole process
        patched.setattr(refusing.stores[1].fs, "pipe_file", lambda *args: (_ for _ in ()).throw(PermissionError("Access Denied")))
        assert [[target["url"] for target in refusing.job_targets(run)] for _ in range(3)] == [[local]] * 3
    assert capsys.readouterr().err.count("nbsweep: the cache memory://no-such-bucket cannot be used (PermissionError: Access Denied)") == 1
    shared = settings.Settings(local, ("memory://shared-for-secrets",))
    assert [target["shared"] for target in Caches(shared).job_targets(run)] == [False, True]
    assert [target["shared"] for target in Caches(shared).job_targets(secret)] == [False]
    assert [target["shared"] for target in Caches(replace(shared, share_secrets=True)).job_targets(secret)] == [False, True]


def test_a_remote_cache_is_read_ahead_for_every_lookup_at_once_and_an_unreachable_one_is_one_warning(monkeypatch, capsys):
    store_url = f"memory://read-ahead-{uuid.uuid4().hex}"
    runs = [SimpleNamespace(id=f"t/{i}", secrets={}, kernel="python3", outputs=()) for i in range(2)]
    environment = keys.environment("python3")
    writer = Store(store_url, shared=True)
    made = replace(put_entry(writer, "0" * 64), key=keys.entry_key("a" * 64, environment), fingerprint="a" * 64)
    writer.put_manifest(made.key, made.to_json())
    lookups = [(runs[0], "a" * 64), (runs[1], "b" * 64)]
    caches = Caches(settings.Settings(None, (store_url,)), lambda: lookups)
    single, many = [], []
    monkeypatch.setattr(Store, "read_manifest", lambda self, key: single.append(key))
    monkeypatch.setattr(
        Store, "read_manifests", lambda self, wanted, read=Store.read_manifests: many.append(len(wanted)) or read(self, wanted)
    )
    assert caches.find(runs[0], "a" * 64)[2] == made
    assert caches.find(runs[1], "b" * 64) is None and many == [2] and single == []  # "absent" is remembered too
    assert caches.find(runs[1], "c" * 64) is None and single == [keys.entry_key("c" * 64, environment)]  # not read ahead
    monkeypatch.setattr(Store, "read_manifests", lambda self, wanted: (_ for _ in ()).throw(ConnectionError("gone")))
    down = Caches(settings.Settings(None, (store_url,)), lambda: lookups)
    assert down.find(runs[0], "a" * 64) is None and down.find(runs[1], "b" * 64) is None
    assert capsys.readouterr().err.count(f"nbsweep: the cache {store_url} cannot be used (ConnectionError: gone)") == 1


def test_an_entry_pruned_while_it_is_restored_is_a_miss_not_damage(tmp_path, capsys, monkeypatch):
    """``nbsweep cache prune`` in another shell removes the entry between its lookup and the fetch
    of its objects: the run executes, and no line calls the entry damaged."""
    local = str(tmp_path / "local")
    put_entry(Store(local, shared=False), "f" * 64)
    caches = Caches(settings.Settings(local, ()))
    fetch_all = Store.fetch_all

    def pruned_meanwhile(store, wanted):
        assert upkeep.prune(store, older_than=0, now=10**10).entries == 1
        fetch_all(store, wanted)

    monkeypatch.setattr(Store, "fetch_all", pruned_meanwhile)
    assert not restoring(tmp_path, caches, "f" * 64)
    assert (caches.missed, caches.ignored, capsys.readouterr().err) == (["t/a"], [], "")
    assert not any((tmp_path / "out" / "t" / "a").iterdir())  # nothing half-restored left beside the target


def recording(fingerprint: str) -> bytes:
    """An executed notebook whose nbsweep record names ``fingerprint``."""
    return nbformat.writes(new_notebook(metadata={"nbsweep": {"fingerprint": fingerprint, "run": "t/a"}})).encode()


def put_shared(store: Store, fingerprint: str, content: bytes = b"notebook") -> str:
    """An entry of ``fingerprint`` in a shared store (its key covers the kernel's environment); its key."""
    environment = keys.environment("python3")
    made = replace(put_entry(store, fingerprint, content=content), key=keys.entry_key(fingerprint, environment), environment=environment)
    store.remove_entry(fingerprint)
    store.put_manifest(made.key, made.to_json())
    return made.key


def restoring(tmp_path, caches: Caches, fingerprint: str) -> bool:
    run = SimpleNamespace(id="t/a", secrets={}, kernel="python3", outputs=(), render=False)
    files = layout.RunFiles(tmp_path / "out" / "t" / "a" / "t_a.ipynb")
    files.target.unlink(missing_ok=True)
    return caches.restore(run, files, SimpleNamespace(fingerprint=fingerprint), {})


def test_a_manifest_that_is_no_regular_file_is_no_entry_and_the_rest_of_the_store_is_used(tmp_path, capsys):
    """A shared folder anyone can write to: a FIFO as a manifest would hang planning, a link to
    /dev/zero would be read until memory runs out. Each is no entry; the store's other entries restore."""
    shared = str(tmp_path / "shared")
    store = Store(shared, shared=True)
    fifo, zero, _ = (put_shared(store, f * 64) for f in "abc")
    Path(store.manifest_path(fifo)).unlink()
    os.mkfifo(store.manifest_path(fifo))
    Path(store.manifest_path(zero)).unlink()
    Path(store.manifest_path(zero)).symlink_to("/dev/zero")
    assert store.read_manifest(fifo) is None and store.read_manifest(zero) is None
    caches = Caches(settings.Settings(None, (shared,)))
    run = SimpleNamespace(id="t/a", secrets={}, kernel="python3", outputs=())
    assert caches.find(run, "a" * 64) is None and caches.find(run, "b" * 64) is None
    assert caches.find(run, "c" * 64) is not None and "cannot be used" not in capsys.readouterr().err


def test_an_entry_whose_notebook_records_another_fingerprint_or_with_a_damaged_object_is_removed(tmp_path, capsys):
    """An entry edited to name another run's notebook would be put in place and stay stale for good;
    a damaged object of the right size, left in place, would be named again by the new entry."""
    local = str(tmp_path / "local")
    store = Store(local, shared=False)
    put_entry(store, "b" * 64, content=recording("a" * 64))
    caches = Caches(settings.Settings(local, ()))
    assert not restoring(tmp_path, caches, "b" * 64) and caches.ignored == ["t/a"]
    assert "its notebook records fingerprint aaaaaaaaaaaa…, not the entry's bbbbbbbbbbbb…" in capsys.readouterr().err
    assert store.read_manifest("b" * 64) is None
    made = put_entry(store, "c" * 64, content=recording("c" * 64))
    blob = made.files["notebook"]
    with open(store.object_path(blob.sha256), "r+b") as fh:
        fh.write(b"#")  # same size, other content
    assert not restoring(tmp_path, caches, "c" * 64) and not store.has_object(blob.sha256, blob.size)
    put_entry(store, "c" * 64, content=recording("c" * 64))  # the execution's new entry: a whole object again
    assert restoring(tmp_path, caches, "c" * 64) and caches.restored == ["t/a"]


def test_a_full_disk_here_while_restoring_from_a_shared_cache_is_a_miss_and_the_cache_stays_in_use(tmp_path, capsys, monkeypatch):
    shared = str(tmp_path / "shared")
    put_shared(Store(shared, shared=True), "c" * 64, recording("c" * 64))
    caches = Caches(settings.Settings(None, (shared,)))
    monkeypatch.setattr(Store, "fetch_all", lambda self, wanted: (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space left on device")))
    assert not restoring(tmp_path, caches, "c" * 64) and caches.missed == ["t/a"]
    assert "cannot be used" not in capsys.readouterr().err and [store.url for store in caches.stores_for(SimpleNamespace(secrets={}))] == [
        shared
    ]


def test_cache_status_and_prune_work_outside_a_project_on_the_per_user_cache(tmp_path, monkeypatch):
    from nbsweep import api

    monkeypatch.chdir(tmp_path)  # no config/config.yaml here
    put_entry(Store(os.environ["NBSWEEP_CACHE_DIR"], shared=False), "a" * 64)
    assert [(usage.url, usage.entries) for usage in api.cache_status().stores] == [(os.environ["NBSWEEP_CACHE_DIR"], 1)]
    assert [pruned.entries for pruned in api.cache_prune(max_size=0)] == [1]
    with pytest.raises(SweepError, match="config file config/config.yaml does not exist"):
        api.cache_forget(targets=["t/a"])  # runs are a project's
    monkeypatch.setenv("NBSWEEP_CACHE_DIR", str(write(tmp_path / "a-file", "")))
    assert list(api.cache_status().unusable.values()) == [f"NotADirectoryError: [Errno 20] a file, not a folder: '{tmp_path / 'a-file'}'"]
    with pytest.raises(SweepError, match=r"cannot prune the cache .*a-file \(NotADirectoryError"):
        api.cache_prune(max_size=0)


def test_cache_status_says_when_nothing_is_at_a_caches_url(tmp_path):
    """A shared folder not mounted is not "0 entries": nothing is there; once written to, it is counted."""
    from nbsweep.api import CacheStatus
    from nbsweep.cli.reports import cache_status_lines

    store = Store(str(tmp_path / "not-mounted" / "cache"), shared=True)
    absent = upkeep.usage(store)
    assert (absent.found, absent.entries, absent.size) == (False, 0, 0)
    assert cache_status_lines(CacheStatus([absent], {}, None)) == [
        f"shared cache {store.url}: nothing there (nothing written to it yet, or not mounted)"
    ]
    store.probe()
    assert upkeep.usage(store).found
    with pytest.raises(NotADirectoryError):  # a file where the cache should be: cache status says it cannot be read
        upkeep.usage(Store(str(write(tmp_path / "a-file", "")), shared=False))
    put_entry(store, "a" * 64)
    assert cache_status_lines(CacheStatus([upkeep.usage(store)], {}, None))[0].startswith(f"shared cache {store.url}: 1 entries, ")


def test_a_remote_stores_objects_are_fetched_at_once_and_each_is_still_checked(tmp_path, monkeypatch):
    """From a store that is no local folder, a run's objects are read together (one ``cat_ranges``),
    each bounded by its size and checked against its SHA-256; an empty one is fetched alone."""
    store = Store("memory://cache-at-once", shared=True)
    contents = {"a": b"notebook", "b": b"log", "c": b"", "d": b"rendering"}
    shas = {name: hashlib.sha256(content).hexdigest() for name, content in contents.items()}
    for name, content in contents.items():
        store.put_object(shas[name], content)
    alone = []
    monkeypatch.setattr(store, "fetch", lambda sha, destination, size=None: alone.append(sha) or destination.write_bytes(b""))
    wanted = [(shas[name], tmp_path / name, len(content)) for name, content in contents.items()]
    store.fetch_all(wanted)
    assert {name: (tmp_path / name).read_bytes() for name in contents} == contents and alone == [shas["c"]]
    for damage in (b"notebooK", b"notebook" + b"\0" * 10**6):  # same size other content; longer than its manifest says
        store.fs.pipe_file(store.object_path(shas["a"]), damage)
        with pytest.raises(VerificationError):
            store.fetch_all(wanted)
    store.remove_object(shas["a"])  # missing: fetched alone, which says so
    monkeypatch.undo()
    with pytest.raises(VerificationError, match="missing"):
        store.fetch_all(wanted)
