"""The warm runner: runs are forked from a server with papermill imported, on kernels started ahead."""

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


def kernel_processes(tmpdir):
    """Kernels whose connection file lies under ``tmpdir`` (every runtime dir of the test does)."""
    import psutil

    found = []
    for proc in psutil.process_iter(["cmdline"]):
        if any(str(tmpdir) in arg for arg in proc.info["cmdline"] or []) and "ipykernel" in " ".join(proc.info["cmdline"]):
            found.append(proc)
    return found


def stop_server(project):
    path = socket_path_for(project)
    subprocess.run(["pkill", "-f", f"nbsweep.warm {path}"], check=False)


@pytest.fixture
def warm_project(project, monkeypatch, tmp_path_factory):
    # A private temp dir: its own server, started and stopped by this test.
    monkeypatch.setenv("TMPDIR", str(tmp_path_factory.mktemp("warmtmp")))
    monkeypatch.delenv("NBSWEEP_WARM_RUNNER", raising=False)
    project.notebook("w", ["import os\nprint('ECHO', x)"], "x = 0")
    project.write_config({"runs": [{"notebook": "notebooks/w.ipynb", "label": "r{x}", "grid": {"x": list(range(6))}}]})
    yield project
    stop_server(project)


def socket_path_for(project):
    env = {**os.environ, **project.env}
    out = subprocess.run([sys.executable, "-c", "from nbsweep import warm; print(warm.socket_path())"],
                         env=env, capture_output=True, text=True, check=True).stdout.strip()
    return None if out == "None" else Path(out)


def test_runs_use_the_warm_runner_and_kernels_started_ahead(warm_project):
    p = warm_project
    p.snakemake("--cores", "2")
    assert run_ids(p, "in the warm runner") == {f"r{x}" for x in range(6)}  # the first waits for it to start
    ahead = [log for log in p.out.glob("w/*/*.log") if "on a kernel started ahead" in log.read_text()]
    assert ahead, "no run used a kernel started ahead"
    for x in range(6):
        nb = json.loads(p.target("w", f"r{x}").read_text())
        assert nb["metadata"]["nbsweep"]["status"] == "ok"
        assert "".join(nb["cells"][-1]["outputs"][0]["text"]) == f"ECHO {x}\n"
    assert socket_path_for(p).exists()


def test_a_kernel_started_ahead_is_not_used_for_another_setting(warm_project, monkeypatch):
    """Spares start kernels with the latest request's environment; a run with another must not get one."""
    p = warm_project
    p.notebook("w", ["import os\nprint('ECHO', x, os.environ.get('NBSWEEP_TEST_FLAVOUR'))"], "x = 0")
    monkeypatch.setenv("NBSWEEP_TEST_FLAVOUR", "salt")
    p.snakemake("--cores", "1", "papermill_outputs/w/r0/w_r0.ipynb")
    monkeypatch.setenv("NBSWEEP_TEST_FLAVOUR", "pepper")
    p.snakemake("--cores", "1", "papermill_outputs/w/r1/w_r1.ipynb")
    outputs = ["".join(json.loads(p.target("w", f"r{x}").read_text())["cells"][-1]["outputs"][0]["text"]) for x in (0, 1)]
    assert outputs == ["ECHO 0 salt\n", "ECHO 1 pepper\n"]
    assert "on a new kernel" in p.target("w", "r1").with_suffix(".log").read_text()


def test_kernels_stop_gracefully_after_the_run_and_with_the_server(warm_project, monkeypatch):
    p = warm_project
    flag = p.root / "said-goodbye"
    # atexit handlers run only when the kernel shuts down gracefully (not when it is killed).
    p.notebook("w", [f"import atexit\natexit.register(lambda: open({str(flag)!r}, 'a').write('bye'))"], "x = 0")
    p.snakemake("--cores", "1", "papermill_outputs/w/r0/w_r0.ipynb")
    deadline = time.monotonic() + 20
    while not flag.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert flag.read_text() == "bye"
    tmpdir = os.environ["TMPDIR"]
    assert kernel_processes(tmpdir), "expected a spare kernel to be waiting"
    stop_server(p)
    deadline = time.monotonic() + 20
    while kernel_processes(tmpdir) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not kernel_processes(tmpdir), "spare kernels outlived the warm runner"


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
    assert run_ids(p, "in the warm runner") == {"r0", "r1"}
    assert p.target("w", "r1").with_suffix(".failed.ipynb").exists()
