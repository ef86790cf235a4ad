"""The run cache with real Snakemake: switching configs back, a clone with a shared cache, damaged and
half-written entries, two folders writing the same keys at once, secrets, eviction, a dry-run and a
pipeline — each run executed once, then restored. Two module-scoped flows keep the invocations few."""

import json
import os
import shutil
import subprocess

import pytest
from conftest import Project

from nbsweep.cache import entries
from nbsweep.cache.stores import Store, VerificationError

pytestmark = pytest.mark.xdist_group("cache")  # one worker runs the flow once for all of its tests

TOKEN = "NBSWEEP_CACHE_TEST_TOKEN"
T_CODE = ['print("made", x, y)']
S_CODE = ["print(len(token))"]


def config(y: str, shared, secret_run: bool = True) -> dict:
    runs = [{"notebook": "notebooks/t.ipynb", "label": "x{x}", "grid": {"x": [1, 2, 3]}, "parameters": {"y": y}}]
    if secret_run:
        runs.append({"notebook": "notebooks/s.ipynb", "label": "s", "secrets": {"token": TOKEN}})
    return {"cache": {"shared": str(shared)}, "runs": runs}


def clone(source: Project, root) -> Project:
    """A copy of a project's templates and configs (as a fresh `git clone` has them), with its own local cache."""
    copy = Project(root)
    for folder in ("notebooks", "config"):
        shutil.copytree(source.root / folder, copy.root / folder)
    return copy


def records(store: Store) -> dict[str, tuple[str, entries.Manifest, dict]]:
    """Each whole entry of a store by key: its manifest and its notebook's nbsweep record."""
    found = {}
    for key, _, _ in store.manifests():
        manifest = entries.parse(store.read_manifest(key), key)
        if manifest:
            nb = store.fs.cat_file(store.object_path(manifest.files["notebook"].sha256))
            found[key] = (key, manifest, json.loads(nb)["metadata"]["nbsweep"])
    return found


def entry_of(store: Store, run: str, y: str) -> tuple[str, entries.Manifest, dict]:
    return next(item for item in records(store).values() if item[2]["run"] == run and item[2]["parameters"].get("y") == y)


def whole(store: Store, manifest: entries.Manifest, tmp_path) -> bool:
    try:
        for blob in manifest.blobs:
            store.fetch(blob.sha256, tmp_path / "check")
    except VerificationError:
        return False
    return True


@pytest.fixture(scope="module")
def flow(tmp_path_factory):
    """A project run with configs a, b, c, then a again (-n first); a clone of it run with a (the
    shared cache only), then with b after one of b's entries was damaged and another half-written."""
    os.environ[TOKEN] = "s3cr3t"
    shared = tmp_path_factory.mktemp("shared-cache")
    first = Project(tmp_path_factory.mktemp("first"))
    first.notebook("t", T_CODE, 'x = 0\ny = "a"')
    first.notebook("s", S_CODE, 'token = ""')
    for name, y in (("a", "a"), ("b", "b"), ("c", "c")):
        first.write_config(config(y, shared), f"config/{name}.yaml")
    steps = {}
    steps["a"] = first.snakemake("--configfile", "config/a.yaml")
    executions = {label: first.record("t", label)["execution"] for label in ("x1", "x2", "x3")}
    first.snakemake("--configfile", "config/b.yaml")
    first.snakemake("--configfile", "config/c.yaml")
    before = first.outputs()
    steps["dry"] = first.snakemake("--configfile", "config/a.yaml", "-n")
    steps["after dry"] = first.outputs() == before
    ended = subprocess.Popen(["true"])
    ended.wait()
    killed, running = (first.target("t", "x1").with_name(f".t_x1.ipynb.restoring{pid}") for pid in (ended.pid, os.getpid()))
    for leftover in (killed, running):  # as restores killed half-way, by a process gone and one still running
        leftover.write_bytes(b"half")
    steps["a again"] = first.snakemake("--configfile", "config/a.yaml")
    steps["leftovers"] = [leftover.exists() for leftover in (killed, running)]
    steps["status"] = first.nbsweep("status", "--configfile", "config/a.yaml")
    steps["status b"] = first.nbsweep("status", "--configfile", "config/b.yaml")
    steps["after status b"] = [first.record("t", label)["parameters"]["y"] for label in ("x1", "x2", "x3")]

    second = clone(first, tmp_path_factory.mktemp("second"))
    steps["clone"] = second.snakemake("--configfile", "config/a.yaml")
    steps["clone executions"] = {label: second.record("t", label)["execution"] for label in ("x1", "x2", "x3")}
    steps["clone status"] = second.nbsweep("cache", "status", "--configfile", "config/a.yaml")
    third = clone(first, tmp_path_factory.mktemp("third"))
    third.cache_dir = second.cache_dir  # the same machine: the hits in the shared cache were kept locally
    gone = tmp_path_factory.mktemp("gone") / "shared-cache"
    steps["third"] = third.snakemake("--configfile", "config/a.yaml", "--config", f"cache={{shared: {gone}}}")
    steps["third executions"] = {label: third.record("t", label)["execution"] for label in ("x1", "x2", "x3")}
    store = Store(str(shared), shared=True)
    damaged, half = entry_of(store, "t/x1", "b"), entry_of(store, "t/x2", "b")
    notebook_object = store.object_path(damaged[1].files["notebook"].sha256)
    with open(notebook_object, "r+b") as fh:
        fh.write(b"#")  # same size, other content
    manifest = store.manifest_path(half[0])
    with open(manifest, "r+") as fh:
        fh.truncate(os.path.getsize(manifest) // 2)
    steps["clone b"] = second.snakemake("--configfile", "config/b.yaml")
    yield first, second, store, executions, steps, {"damaged": damaged, "half": half}
    del os.environ[TOKEN]


def test_switching_configs_back_restores_every_run_from_the_cache(flow):
    first, _, _, executions, steps, _ = flow
    assert steps["a"].stderr.count(" ok in ") == 4
    assert "nbsweep: 3 runs would be restored from cache instead of executing (t/x1, t/x2, t/x3)" in steps["dry"].stderr
    assert steps["after dry"]  # the dry-run wrote nothing
    again = steps["a again"].stderr
    assert " ok in " not in again and "nbsweep: 3 runs restored from cache instead of executing (t/x1, t/x2, t/x3)" in again
    assert {label: first.record("t", label)["execution"] for label in executions} == executions  # the original executions
    assert steps["leftovers"] == [False, True]  # what a killed restore left beside the notebook went
    assert "made 2 a" in first.target("t", "x2").with_suffix(".html").read_text()
    assert "4 runs: 4 up to date" in steps["status"].stdout
    rows = json.loads((first.out / "summary.json").read_text())
    assert [(row["label"], row["status"], row["stale"]) for row in rows if row["template"] == "t"] == [
        (f"x{x}", "ok", False) for x in (1, 2, 3)
    ]


def test_status_says_which_runs_the_next_invocation_restores_from_a_cache_and_restores_none(flow):
    first, _, _, _, steps, _ = flow
    lines = steps["status b"].stdout.splitlines()
    for label in ("x1", "x2", "x3"):
        row = next(line for line in lines if line.startswith(f"t/{label} "))
        assert " stale " in row and row.endswith(f"(in cache {first.cache_dir}: the next invocation restores it)"), row
    assert "3 of them in a run cache: the next invocation restores them instead of executing" in lines
    assert steps["after status b"] == ["a", "a", "a"]  # read-only: nothing restored


def test_a_clone_restores_from_the_shared_cache_but_runs_with_secrets_execute(flow, tmp_path):
    _, second, store, executions, steps, _ = flow
    lines = steps["clone"].stderr
    assert "nbsweep: 3 runs restored from cache instead of executing (t/x1, t/x2, t/x3)" in lines
    assert lines.count(" ok in ") == 1 and "run s/s ok in" in lines  # never written to the shared cache
    assert steps["clone executions"] == executions
    assert not [key for key, (_, manifest, _) in records(store).items() if manifest.run == "s/s"]
    assert "s/s" in [manifest.run for _, manifest, _ in records(Store(str(second.cache_dir), shared=False)).values()]
    assert "1 looked up and not found (misses)" in steps["clone status"].stdout and "3 restored (hits)" in steps["clone status"].stdout


def test_a_hit_in_the_shared_cache_is_kept_in_the_local_cache(flow):
    _, second, _, executions, steps, _ = flow
    local = records(Store(str(second.cache_dir), shared=False))
    kept = {record["run"]: manifest for _, (_, manifest, record) in local.items() if record["parameters"].get("y", "a") == "a"}
    assert sorted(kept) == ["s/s", "t/x1", "t/x2", "t/x3"] and all(manifest.environment is None for manifest in kept.values())
    assert all(key == manifest.fingerprint for key, (_, manifest, _) in local.items())  # local keys: the fingerprint alone
    lines = steps["third"].stderr  # a third clone on that machine, the shared cache gone
    assert " ok in " not in lines and "nbsweep: 4 runs restored from cache instead of executing" in lines
    assert steps["third executions"] == executions


def test_a_damaged_or_half_written_entry_is_ignored_and_replaced(flow, tmp_path):
    _, second, store, _, steps, broken = flow
    lines = steps["clone b"].stderr
    assert lines.count("is damaged") == 1 and "the cache entry of run t/x1 in" in lines
    assert "run t/x1 ok in" in lines and "run t/x2 ok in" in lines and "run t/x3 ok in" not in lines
    assert "nbsweep: run t/x3 restored from cache instead of executing" in lines
    for label, old in (("x1", broken["damaged"]), ("x2", broken["half"])):
        key, manifest, record = entry_of(store, f"t/{label}", "b")
        assert key == old[0] and record["execution"] == second.record("t", label)["execution"] != old[2]["execution"]
        assert whole(store, manifest, tmp_path)


def test_two_folders_writing_the_same_keys_at_once_leave_whole_entries(flow, tmp_path_factory, tmp_path):
    first, _, store, _, _, _ = flow
    first.write_config(config("d", store.url, secret_run=False), "config/d.yaml")
    projects = [clone(first, tmp_path_factory.mktemp(f"writer{i}")) for i in range(2)]
    procs = [project.popen("--configfile", "config/d.yaml") for project in projects]
    assert [proc.wait(timeout=300) for proc in procs] == [0, 0]
    written = [entry_of(store, f"t/x{x}", "d") for x in (1, 2, 3)]
    assert all(whole(store, manifest, tmp_path) for _, manifest, _ in written)
    assert {record["execution"] for _, _, record in written} <= {
        projects[i].record("t", f"x{x}")["execution"] for i in (0, 1) for x in (1, 2, 3)
    }


def test_the_local_cache_is_held_to_its_size_bound_and_forget_removes_entries(flow):
    first, _, store, _, _, _ = flow
    local = Store(str(first.cache_dir), shared=False)
    assert len(list(local.manifests())) == 10  # t/x1-3 of a, b and c, and s/s: what this folder executed
    shared_entries = len(records(store))  # a, b and c's t/x1-3, and d's if its test ran first
    bound = f"cache={{shared: {store.url}, max_size: 1}}"
    first.snakemake("--configfile", "config/a.yaml", "--config", bound, "--forcerun", str(first.target("t", "x1").relative_to(first.root)))
    assert list(local.manifests()) == []  # (objects of entries x1's new one replaced go later: a writer may be at work)
    assert len(records(store)) == shared_entries >= 9  # a's x1 written again under its key: the shared cache has no bound
    forgot = first.nbsweep("cache", "forget", "t", "--configfile", "config/a.yaml")
    assert f"nbsweep: cache {store.url}: forgot {shared_entries} entries" in forgot.stdout and records(store) == {}


def test_a_restored_producer_lets_its_consumer_be_restored_too(project):
    project.notebook("p", ['import os\nos.makedirs("data", exist_ok=True)\nopen("data/p.txt", "w").write(str(n))'], "n = 3")
    project.notebook("c", ['print("read", open("data/p.txt").read())'], "upstream = []")
    project.write_config(
        {
            "runs": [
                {"notebook": "notebooks/p.ipynb", "label": "base", "outputs": ["data/p.txt"]},
                {"notebook": "notebooks/c.ipynb", "label": "all", "inputs": ["data/p.txt"], "after": ["p/base"]},
            ]
        }
    )
    assert project.snakemake().stderr.count(" ok in ") == 2
    shutil.rmtree(project.out)
    (project.root / "data" / "p.txt").unlink()
    again = project.snakemake().stderr
    assert " ok in " not in again and "nbsweep: 2 runs restored from cache instead of executing (p/base, c/all)" in again
    assert (project.root / "data" / "p.txt").read_text() == "3"
    assert "2 runs: 2 up to date" in project.nbsweep("status").stdout
