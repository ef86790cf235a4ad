"""A job's own Snakemake process (a cluster job, ``--mode remote``) builds its sweep from the plan
snapshot its invocation's main process wrote, without reading the config, templates or inputs."""

import json
import sys
from pathlib import Path

from conftest import stdout_of

from nbsweep import layout
from nbsweep.packaged import SCHEMA
from nbsweep.provenance.sweep import Sweep

CONFIG = """\
output_dir: out
defaults:
  resources: {mem_mb: 500}
runs:
  - notebook: notebooks/echo.ipynb
    label: "x{x}"
    grid: {x: [1, 2, 3, 4, 5]}
    inputs: [data/a.csv]
    threads: 2
    batch_size: 2
    resources: {slurm_partition: short}
  - notebook: notebooks/other.ipynb
    label: plain
    parameters: {x: 9}
    resources: {runtime: 7}
"""


def lookups(sweep: Sweep) -> dict:
    """Everything the workflow's rules ask of a sweep."""
    keys = sorted(sweep.runs)
    return {
        "output_dir": sweep.output_dir,
        "targets": sweep.targets(),
        "per_template": {name: sweep.targets(name) for name in sweep.template_names},
        "resource_names": sweep.resource_names,
        "resources": {key: {name: sweep.resource(name, key) for name in sweep.resource_names} for key in keys},
        "groups": {key: sweep.groups[key] for key in keys},
        "runs": {
            key: (sweep.configured_run(*key).id, tuple(sweep.configured_run(*key).inputs), sweep.configured_run(*key).threads)
            for key in keys
        },
    }


def planned_project(project, monkeypatch) -> Sweep:
    project.notebook("echo", ["print(x)"], "x = 0")
    project.notebook("other", ["print(x)"], "x = 0")
    (project.root / "data").mkdir()
    (project.root / "data" / "a.csv").write_text("a\n1\n")
    project.write_config(CONFIG)
    monkeypatch.chdir(project.root)
    sweep = Sweep.load([Path("config/config.yaml")], SCHEMA)
    sweep.invocation = "20260101T000000-1"
    return sweep


def test_the_snapshot_gives_the_rules_the_same_sweep_without_the_config(project, monkeypatch):
    sweep = planned_project(project, monkeypatch)
    expected = lookups(sweep)
    assert expected["groups"][("echo", "x1")] == expected["groups"][("echo", "x2")] != expected["groups"][("echo", "x3")]
    job_file = sweep.job_file(sweep.configured_run("echo", "x3"), dry=False)  # the first job file also writes the snapshot
    snapshot = layout.plan_snapshot(sweep.invocation)
    assert job_file.is_file() and snapshot.is_file() and snapshot.parent == layout.invocation_dir(sweep.invocation)
    for path in ("config", "notebooks", "data"):  # nothing of the project is read again
        for file in (project.root / path).rglob("*"):
            file.unlink() if file.is_file() else None
    rebuilt = Sweep.from_snapshot(snapshot)
    assert lookups(rebuilt) == expected
    assert rebuilt.shared_threads is None and rebuilt.shared_resources == sweep.shared_resources
    assert sweep.shared_resources["mem_mb"] == 500 and "slurm_partition" not in sweep.shared_resources
    own = Sweep.from_snapshot(snapshot, only={("echo", "x3")})  # a job's process: its own runs only
    assert list(own.runs) == [("echo", "x3")] and own.shared_threads == 2
    assert own.groups == {("echo", "x3"): expected["groups"][("echo", "x3")]}
    assert {name: own.resource(name, ("echo", "x3")) for name in own.resource_names} == expected["resources"][("echo", "x3")]
    sweep.remove_job_files()  # not the owner: the invocation's folder stays
    sweep.owner = True
    sweep.remove_job_files()
    assert not snapshot.exists() and not layout.invocation_dir(sweep.invocation).exists()


def test_a_dry_run_writes_no_snapshot(project, monkeypatch):
    sweep = planned_project(project, monkeypatch)
    sweep.job_file(sweep.configured_run("other", "plain"), dry=True)
    assert not layout.plan_snapshot(sweep.invocation).exists()
    sweep.remove_job_files()


def test_an_unreadable_snapshot_is_refused(tmp_path):
    bad = tmp_path / "plan.json"
    bad.write_text(json.dumps({"version": 0, "runs": []}))
    try:
        Sweep.from_snapshot(bad)
    except ValueError as err:
        assert "plan snapshot" in str(err)
    else:
        raise AssertionError("a snapshot of another version was accepted")


SUBMIT = """\
#!{python}
# A "cluster" for the test: the config is gone before the job starts; the job runs at once.
import os, subprocess, sys
os.remove("config/config.yaml")
subprocess.run(["sh", sys.argv[-1]])
print("1")
"""


def test_a_cluster_job_runs_from_its_invocations_plan_without_the_config(project):
    """Real snakemake with a cluster executor: each job is its own ``--mode remote`` Snakemake
    process; the config is deleted after the main process planned, so a job that re-planned
    would fail."""
    project.notebook("echo", ['print("ECHO", x)'], "x = 0")
    project.write_config({"runs": [{"notebook": "notebooks/echo.ipynb", "label": "a", "parameters": {"x": 41}}]})
    submit = project.root / "submit.py"
    submit.write_text(SUBMIT.format(python=sys.executable))
    submit.chmod(0o755)
    proc = project.snakemake("--executor", "cluster-generic", "--cluster-generic-submit-cmd", str(submit), "--jobs", "1", check=False)
    assert proc.returncode == 0, proc.stderr[-4000:]
    target = project.target("echo", "a")
    record = json.loads(target.read_text())["metadata"]["nbsweep"]
    assert record["status"] == "ok" and record["parameters"] == {"x": 41}
    assert "ECHO 41" in stdout_of(target)
    assert not (project.root / layout.INVOCATIONS).exists()  # plan and job files removed at the end


def test_a_jobs_process_knows_its_own_runs_from_the_executors_command_line():
    from types import SimpleNamespace

    from nbsweep.smk.hooks import own_runs

    parsing = SimpleNamespace(dag_settings=None)  # Snakemake 9, while the Snakefile is parsed
    group = ["--snakefile", "S", "--target-jobs", "nbsweep_run:notebook=t,label=a", "nbsweep_run:notebook=t,label=lr=0.1", "--cores", "2"]
    assert own_runs(parsing, group) == {("t", "a"), ("t", "lr=0.1")}
    assert own_runs(parsing, ["--snakefile", "S", "--cores", "2"]) is None  # not a job's process
    assert own_runs(parsing, ["--target-jobs", "nbsweep_render:notebook=t,label=a"]) is None  # another rule: every run
