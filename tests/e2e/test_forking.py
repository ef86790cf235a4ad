"""``preload`` through a zygote: runs' kernels are forks of one process that imported the modules.

Real snakemake, real kernels, the warm runner of each test's own temp dir. What a forked kernel
must be: a fresh kernel that imported the modules first (path, threads, outputs, plots as
in-process), with its own random state; one run per kernel; everything it started ends with the
run, and it ends with its owner; a setting where forking is not safe (a module that starts
threads at import) or not possible falls back to importing in a started kernel.
"""

import json
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest
from conftest import alive, stdout_of, wait_for

from nbsweep.kernels import forking, kernelspec, process_setting

from .test_warm import run_ids, stop_server, venv_kernel

PROBE = [
    "import os, sys, threading, random, psutil\n"
    "parent = psutil.Process().parent()\n"
    "print('FORKED', any(arg.endswith('zygote.py') for arg in parent.cmdline()))\n"
    "print('PARENT', parent.pid)",
    "print('PATH', sys.path)\nprint('THREADS', sorted(t.name for t in threading.enumerate() if t.name != 'nbsweep-owner'))",
    "import numpy\nprint('DRAW', numpy.random.rand(), random.random())",
    "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\nplt.show()",
]
LEFTOVER = ["sleep", "914"]  # what a notebook leaves running, in a session of its own


@pytest.fixture
def forking_project(project, monkeypatch, tmp_path_factory):
    monkeypatch.setenv("TMPDIR", str(tmp_path_factory.mktemp("forktmp")))  # a server of this test's own
    monkeypatch.delenv("NBSWEEP_WARM_RUNNER", raising=False)
    yield project
    stop_server(project)


def configure(project, preload, runs=2, **defaults):
    project.write_config(
        {
            "defaults": {"preload": preload, **defaults},
            "runs": [{"notebook": "notebooks/w.ipynb", "label": "r{x}", "grid": {"x": list(range(runs))}}],
        }
    )


def printed(project, label) -> dict:
    """What the run printed, by the first word of each line."""
    lines = stdout_of(project.target("w", label)).splitlines()
    return {line.split(" ", 1)[0]: line.split(" ", 1)[1] for line in lines if " " in line}


def mime_types(project, label) -> list:
    nb = json.loads(project.target("w", label).read_text())
    return sorted(key for cell in nb["cells"] for out in cell.get("outputs", []) for key in out.get("data", {}))


def test_every_run_gets_a_fork_of_one_zygote_that_is_a_fresh_kernel_otherwise(forking_project, monkeypatch):
    p = forking_project
    p.notebook("w", PROBE, "x = 0")
    configure(p, ["numpy", "matplotlib.pyplot"], runs=4)
    labels = [f"r{x}" for x in range(4)]
    proc = p.snakemake("--cores", "2")
    assert run_ids(p, "in the warm runner") == set(labels)
    logs = "".join(p.target("w", label).with_suffix(".log").read_text() for label in labels)
    assert "Ctrl-C will not work" not in proc.stderr + logs  # the kernel knows its parent, as when jupyter_client starts it
    forked = {label: printed(p, label) for label in labels}
    assert {out["FORKED"] for out in forked.values()} == {"True"}  # the first run too: it waits for the zygote
    assert len({out["PARENT"] for out in forked.values()}) == 1  # the modules were imported once
    assert len({out["DRAW"] for out in forked.values()}) == 4  # numpy's global RNG and random reseeded in each
    for label in labels:
        assert (
            "on a kernel started ahead, forked from a zygote that imported numpy, matplotlib.pyplot"
            in p.target("w", label).with_suffix(".log").read_text()
        )

    monkeypatch.setenv("NBSWEEP_WARM_RUNNER", "0")  # the same runs on fresh kernels, in-process
    p.snakemake("--cores", "2", "--forceall")
    assert run_ids(p, "in-process") == set(labels)
    for label in labels:
        fresh = printed(p, label)
        assert fresh["FORKED"] == "False"
        assert forked[label]["PATH"] == fresh["PATH"]  # the directory where IPython puts it, nbsweep's package nowhere
        assert forked[label]["THREADS"] == fresh["THREADS"]
        assert mime_types(p, label) == ["image/png", "text/plain"]  # the inline backend, as ipykernel sets it up


@pytest.mark.parametrize("how", ["forked", "started ahead", "in-process"])
def test_a_daemon_that_leaves_the_kernels_session_ends_with_the_run(forking_project, monkeypatch, how):
    p = forking_project
    if how == "in-process":
        monkeypatch.setenv("NBSWEEP_WARM_RUNNER", "0")
    p.notebook("w", [f"import os\nos.system('setsid {' '.join(LEFTOVER)} &')\nprint('PID', os.getpid())"], "x = 0")
    configure(p, ["fractions"] if how == "forked" else [], runs=2)
    p.snakemake("--cores", "2")
    tmpdir = os.environ["TMPDIR"]
    for label in ("r0", "r1"):
        assert wait_for(lambda label=label: not alive(int(printed(p, label)["PID"])), 10)

    def leftovers():
        found = []
        for proc in psutil.process_iter(["cmdline"]):
            try:
                if proc.info["cmdline"] == LEFTOVER and proc.environ().get("TMPDIR") == tmpdir and alive(proc.pid):
                    found.append(proc)
            except psutil.Error:
                pass
        return found

    assert wait_for(lambda: not leftovers(), 10), "a daemon started by a run outlived it"


def test_a_forked_kernel_ends_when_the_process_that_runs_it_is_killed(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    zygote = forking.Zygote.start("python3", ("fractions",), str(tmp_path), dict(os.environ), process_setting.capture())
    assert zygote is not None
    connection = zygote.connection()
    owner_code = (
        "import socket, sys, time\nfrom nbsweep.kernels import lifecycle\n"
        "kernel = lifecycle.start('python3', zygote=socket.socket(fileno=int(sys.argv[1])))\n"
        "print(kernel.pid, flush=True)\ntime.sleep(600)"
    )
    owner = subprocess.Popen(
        [sys.executable, "-c", owner_code, str(connection.fileno())], pass_fds=[connection.fileno()], stdout=subprocess.PIPE, text=True
    )
    connection.close()
    try:
        kernel_pid = int(owner.stdout.readline())
        assert alive(kernel_pid) and psutil.Process(kernel_pid).ppid() == zygote.pid
        assert os.getsid(kernel_pid) == kernel_pid  # it leads its own session, as a kernel jupyter_client starts does
        owner.send_signal(signal.SIGKILL)
        owner.wait()
        assert wait_for(lambda: not alive(kernel_pid), 10), "a forked kernel outlived its owner"
    finally:
        owner.kill()
        zygote.close()
    assert wait_for(lambda: not alive(zygote.pid), 10), "the zygote outlived its control channel and its kernels"


def test_modules_that_start_threads_at_import_are_imported_in_a_started_kernel_instead(forking_project):
    p = forking_project
    (p.root / "threaded_module.py").write_text(
        "import threading, time\nthreading.Thread(target=time.sleep, args=(30,), daemon=True).start()\n"
    )
    p.notebook("w", [PROBE[0], "print('LOADED', 'threaded_module' in sys.modules)"], "x = 0")
    configure(p, ["threaded_module"], runs=2)
    proc = p.snakemake("--cores", "2")
    assert "could not preload" not in proc.stderr
    for label in ("r0", "r1"):
        out = printed(p, label)
        assert (out["FORKED"], out["LOADED"]) == ("False", "True")  # a module of the project's folder, preloaded without a fork
        assert "with threaded_module imported" in p.target("w", label).with_suffix(".log").read_text()


def test_an_install_after_the_zygote_imported_is_seen_by_the_next_run(forking_project, tmp_path):
    """A kernel of another interpreter (a venv whose site-packages this test owns) gets a .pth file
    while the zygote that imported for it keeps running."""
    p = forking_project
    site_packages, extra = venv_kernel(p, tmp_path)
    install = f"if x == 0:\n    open({str(site_packages / 'nbsweep_test_extra.pth')!r}, 'w').write({str(extra) + chr(10)!r})"
    probe = "try:\n    import nbsweep_extra_module\n    print('FOUND yes')\nexcept ImportError:\n    print('FOUND no')"
    p.notebook("w", [PROBE[0], probe, install], "x = 0", kernel="venvk")
    configure(p, ["fractions"], runs=3)
    p.snakemake("--cores", "1")
    seen = {label: printed(p, label) for label in ("r0", "r1", "r2")}
    assert [seen[label]["FOUND"] for label in ("r0", "r1", "r2")] == ["no", "yes", "yes"]
    assert seen["r0"]["FORKED"] == "True"
    assert seen["r2"]["FORKED"] == "True" and seen["r2"]["PARENT"] != seen["r0"]["PARENT"]  # a new zygote, made from the new install


def test_only_kernels_that_run_a_python_module_can_be_forked():
    spec = {"argv": ["python", "-m", "ipykernel_launcher", "-f", "{connection_file}"], "language": "python", "env": {}}
    assert forking.command(spec) == [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    assert forking.command({**spec, "argv": ["python", "/opt/kernel.py", "-f", "{connection_file}"]}) is None
    assert forking.command({**spec, "argv": ["python", "-m", "ipykernel_launcher"]}) is None  # no connection file to hand over
    assert (
        forking.command({**spec, "argv": ["R", "--slave", "-e", "IRkernel::main()", "--args", "{connection_file}"], "language": "R"})
        is None
    )
    assert kernelspec.interpreter(spec) == sys.executable


def test_a_fork_request_to_a_zygote_that_has_gone_fails_cleanly(tmp_path):
    zygote = forking.Zygote.start("python3", ("fractions",), str(tmp_path), dict(os.environ), process_setting.capture())
    connection = zygote.connection()
    os.kill(zygote.pid, signal.SIGKILL)
    assert wait_for(lambda: not alive(zygote.pid), 10)
    time.sleep(0.1)
    with pytest.raises(forking.ForkFailed):
        forking.launch(
            connection, [sys.executable, "-m", "ipykernel_launcher", "-f", "x.json"], {"env": dict(os.environ), "cwd": str(tmp_path)}
        )
    with pytest.raises(forking.ForkFailed):
        zygote.connection()
    zygote.close()


def test_runs_outlive_their_zygote(forking_project):
    """The zygote killed (say by the OOM killer) while its kernels run: they finish, and later runs get kernels all the same."""
    p = forking_project
    kill_parent = "import os, signal, time\nif x == 0:\n    os.kill(os.getppid(), signal.SIGKILL)\n    time.sleep(1.5)\nprint('DONE', x)"
    p.notebook("w", [PROBE[0], kill_parent], "x = 0")
    configure(p, ["fractions"], runs=3)
    proc = p.snakemake("--cores", "1")
    assert "Kernel died" not in proc.stderr
    for x in range(3):
        out = printed(p, f"r{x}")
        assert out["DONE"] == str(x)
        assert json.loads(p.target("w", f"r{x}").read_text())["metadata"]["nbsweep"]["status"] == "ok"
    assert printed(p, "r0")["FORKED"] == "True"
