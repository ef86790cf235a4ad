"""The warm runner: runs after the first are forked from a server with papermill imported."""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest


def run_ids(project, how):
    logs = sorted(project.out.glob("w/*/*.log"))
    return {p.parent.name for p in logs if f"executes {how}" in p.read_text()}


@pytest.fixture
def warm_project(project, monkeypatch, tmp_path_factory):
    # A private temp dir: its own server, started and stopped by this test.
    monkeypatch.setenv("TMPDIR", str(tmp_path_factory.mktemp("warmtmp")))
    monkeypatch.delenv("NBSWEEP_WARM_RUNNER", raising=False)
    project.notebook("w", ["import os\nprint('ECHO', x)"], "x = 0")
    project.write_config({"runs": [{"notebook": "notebooks/w.ipynb", "label": "r{x}", "grid": {"x": list(range(6))}}]})
    yield project
    path = socket_path_for(project)
    if path and path.exists():
        subprocess.run(["pkill", "-f", f"nbsweep.warm {path}"], check=False)


def socket_path_for(project):
    env = {**os.environ, **project.env}
    out = subprocess.run([sys.executable, "-c", "from nbsweep import warm; print(warm.socket_path())"],
                         env=env, capture_output=True, text=True, check=True).stdout.strip()
    return None if out == "None" else Path(out)


def test_later_runs_use_the_warm_runner_with_the_same_results(warm_project):
    p = warm_project
    p.snakemake("--cores", "1")
    assert run_ids(p, "in-process")  # the first run(s): no server yet
    assert run_ids(p, "in the warm runner"), "no run went through the warm runner"
    assert run_ids(p, "in-process") | run_ids(p, "in the warm runner") == {f"r{x}" for x in range(6)}
    for x in range(6):
        nb = json.loads(p.target("w", f"r{x}").read_text())
        assert nb["metadata"]["nbsweep"]["status"] == "ok"
    assert socket_path_for(p).exists()


def test_disabled_or_dead_server_means_in_process(warm_project, monkeypatch):
    p = warm_project
    path = socket_path_for(p)
    path.write_text("not a socket")  # what a crashed server may leave behind
    monkeypatch.setenv("NBSWEEP_WARM_RUNNER", "0")
    p.snakemake("--cores", "1", "papermill_outputs/w/r0/w_r0.ipynb")
    assert run_ids(p, "in-process") == {"r0"}
    monkeypatch.delenv("NBSWEEP_WARM_RUNNER")
    p.snakemake("--cores", "1")
    assert run_ids(p, "in the warm runner")  # the stale file was replaced by a live server
    probe = socket.socket(socket.AF_UNIX)
    probe.connect(str(path))
    probe.close()


def test_failures_are_reported_the_same_way(warm_project):
    p = warm_project
    p.snakemake("--cores", "1", "papermill_outputs/w/r0/w_r0.ipynb")  # starts the server
    deadline = time.monotonic() + 20
    while not socket_path_for(p).exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    p.notebook("w", ["raise ValueError(f'bad {x}')"], "x = 0")
    proc = p.snakemake("--cores", "1", "papermill_outputs/w/r1/w_r1.ipynb", check=False)
    assert proc.returncode != 0
    assert "w/r1 FAILED in cell #" in proc.stderr and "ValueError: bad 1" in proc.stderr
    assert run_ids(p, "in the warm runner") == {"r1"}
    assert p.target("w", "r1").with_suffix(".failed.ipynb").exists()
