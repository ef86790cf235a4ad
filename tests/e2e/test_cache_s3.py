"""The run cache in an S3 bucket (a real SeaweedFS server, tests/s3server.py), reached through the
standard AWS environment variables: a sweep writes its entries there, a clone of the project with
an empty local cache restores them instead of executing, runs with secrets stay out of the bucket,
and the store going away in the middle of a sweep costs a warning, not a run. One module-scoped
flow of three invocations."""

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import Project, wait_for

from e2e.test_cache import clone, records
from nbsweep.cache import upkeep
from nbsweep.cache.stores import Store

pytestmark = pytest.mark.xdist_group("cache-s3")  # one worker builds the flow (and starts the S3 server) once

TOKEN = "NBSWEEP_CACHE_S3_TOKEN"
GATE = "NBSWEEP_CACHE_S3_GATE"
# With GATE set, a run says it started and waits for `go` (the test stops the store meanwhile).
T_CODE = [
    "import os, pathlib, time\n"
    f"gate = os.environ.get({GATE!r})\n"
    "if gate:\n"
    "    pathlib.Path(gate, f'started-{x}').touch()\n"
    "    while not pathlib.Path(gate, 'go').exists():\n"
    "        time.sleep(0.05)\n"
    "print('made', x, y)"
]


def config(bucket_url: str, y: str) -> dict:
    return {
        "cache": [bucket_url],
        "runs": [
            {"notebook": "notebooks/t.ipynb", "label": "x{x}", "grid": {"x": [1, 2]}, "parameters": {"y": y}},
            {"notebook": "notebooks/s.ipynb", "label": "s", "secrets": {"token": TOKEN}},
        ],
    }


@pytest.fixture(scope="module")
def flow(s3, tmp_path_factory):
    """A project swept with the bucket as shared cache; a clone of it swept with the same config;
    the project swept with new parameters while the S3 endpoint is stopped once both runs started."""
    url = s3.url(f"runs-{time.time_ns()}")
    gate = tmp_path_factory.mktemp("gate")
    with pytest.MonkeyPatch.context() as env:
        for name, value in {**s3.env, TOKEN: "s3cr3t"}.items():
            env.setenv(name, value)
        first = Project(tmp_path_factory.mktemp("first"))
        first.notebook("t", T_CODE, 'x = 0\ny = "a"')
        first.notebook("s", ["print(len(token))"], 'token = ""')
        first.write_config(config(url, "a"))
        steps = {"first": first.snakemake()}
        executions = {label: first.record("t", label)["execution"] for label in ("x1", "x2")}
        steps["entries"] = {manifest.run: record["execution"] for _, manifest, record in records(Store(url, shared=True)).values()}

        second = clone(first, tmp_path_factory.mktemp("second"))
        steps["clone"] = second.snakemake()
        steps["clone executions"] = {label: second.record("t", label)["execution"] for label in ("x1", "x2")}

        first.write_config(config(url, "b"))
        env.setenv(GATE, str(gate))
        with ThreadPoolExecutor(1) as pool:
            sweep = pool.submit(first.snakemake)
            steps["both started"] = wait_for(lambda: sweep.done() or len(list(gate.glob("started-*"))) == 2, timeout=120)
            s3.stop()
            (gate / "go").touch()
            steps["store gone"] = sweep.result()
        s3.start()
        yield first, second, url, executions, steps


def test_a_sweep_writes_its_entries_to_the_bucket_but_not_runs_with_secrets(flow):
    first, _, url, executions, steps = flow
    assert steps["first"].stderr.count(" ok in ") == 3
    assert steps["entries"] == {f"t/{label}": execution for label, execution in executions.items()}  # no s/s


def test_a_clone_with_an_empty_local_cache_restores_every_run_from_the_bucket(flow):
    _, second, _, executions, steps = flow
    lines = steps["clone"].stderr
    assert "nbsweep: 2 runs restored from cache instead of executing (t/x1, t/x2)" in lines
    assert lines.count(" ok in ") == 1 and "run s/s ok in" in lines  # its entry is in no cache the clone reads
    assert steps["clone executions"] == executions  # the original executions, notebooks and all
    assert "made 2 a" in second.target("t", "x2").with_suffix(".html").read_text()


def test_the_store_going_away_mid_sweep_costs_a_warning_per_run_and_no_result(flow):
    first, _, url, _, steps = flow
    assert steps["both started"]
    lines = steps["store gone"].stderr
    assert lines.count(" ok in ") == 2 and "Traceback" not in lines
    for label in ("x1", "x2"):
        assert lines.count(f"nbsweep: run t/{label} is done but could not be kept in the cache {url}") == 1, lines[-3000:]
        assert first.record("t", label)["parameters"]["y"] == "b"
        assert "made" in first.target("t", label).with_suffix(".html").read_text()
    local = Store(str(first.cache_dir), shared=False)
    assert sorted(runs_in(local)) == ["s/s", "t/x1", "t/x1", "t/x2", "t/x2"]  # y=a and y=b: the local cache kept them
    assert sorted(runs_in(Store(url, shared=True))) == ["t/x1", "t/x2"]  # the store is back, with y=a's entries only


def test_the_store_answers_through_the_standard_environment(s3, monkeypatch):
    """s3fs (botocore) finds the endpoint and credentials in AWS_* variables alone, as nbsweep's jobs do."""
    for name, value in s3.env.items():
        monkeypatch.setenv(name, value)
    store = Store(s3.url(f"roundtrip-{time.time_ns()}"), shared=True)
    assert not upkeep.usage(store).found  # nothing under the prefix yet
    store.put_manifest("ab" * 32, "{}")
    assert upkeep.usage(store).found
    assert store.read_manifest("ab" * 32) == "{}"
    assert [key for key, _, _ in store.manifests()] == ["ab" * 32]


def runs_in(store: Store) -> list[str]:
    return [manifest.run for _, manifest, _ in records(store).values()]
