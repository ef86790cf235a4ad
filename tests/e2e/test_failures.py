"""Failing runs and killed sweeps never leave a half output."""

import json
import signal
import time

import psutil
import pytest
import yaml
from conftest import alive, stdout_of, wait_for

FAILING = "if x == 0:\n    raise ZeroDivisionError('x must not be zero' + chr(27) + ']0;PWNED' + chr(7))"  # it sets the terminal's title


@pytest.fixture
def failing_project(project):
    project.notebook("calc", ["print('start')", FAILING, "print('ECHO', 1 / x)"], "x = 1")
    project.write_config({"runs": [{"notebook": "notebooks/calc.ipynb", "label": f"x{x}", "parameters": {"x": x}} for x in (1, 0, 2)]})
    return project


def test_failed_run_is_kept_aside_and_only_it_reruns_after_fix(failing_project):
    p = failing_project
    proc = p.snakemake(check=False)
    assert proc.returncode != 0
    assert p.target("calc", "x1").exists() and p.target("calc", "x2").exists()
    bad = p.target("calc", "x0")
    assert not bad.exists()
    failed = bad.with_suffix(".failed.ipynb")
    nb = json.loads(failed.read_text())
    error = nb["metadata"]["nbsweep"]["error"]
    assert error["ename"] == "ZeroDivisionError" and "x must not be zero" in error["evalue"]
    assert error["cell_index"] == 3 and error["cell_line"] == "if x == 0:"  # the template's 4th cell
    failing = [c for c in nb["cells"] if any(o.get("output_type") == "error" for o in c.get("outputs", []))]
    assert ["".join(c["source"]) for c in failing] == [FAILING]
    console = proc.stderr
    assert "calc/x0 FAILED in cell 4 (`if x == 0:`)" in console and "ZeroDivisionError: x must not be zero" in console
    assert "Traceback" not in console.split("calc/x0 FAILED")[0][-200:]
    status = p.nbsweep("status").stdout
    for shown in (console, status):  # an error's text is written out, not sent to the terminal
        assert "x must not be zero\\x1b]0;PWNED\\x07" in shown and "\x1b" not in shown and "\x07" not in shown

    config = yaml.safe_load((p.root / "config/config.yaml").read_text())
    config["runs"][1]["parameters"]["x"] = 4
    p.write_config(config)
    before = p.outputs()
    p.snakemake()
    assert p.executed(before) == {"calc/x0"}
    assert not failed.exists()
    assert "ECHO 0.25" in stdout_of(bad)


def test_cell_timeout_fails_the_run_and_the_sweep_goes_on(project):
    project.notebook("slow", ["import time\ntime.sleep(seconds)\nprint('ECHO done')"], "seconds = 0")
    project.write_config(
        {
            "defaults": {"timeout": 3},
            "runs": [
                {"notebook": "notebooks/slow.ipynb", "label": "hang", "parameters": {"seconds": 600}},
                {"notebook": "notebooks/slow.ipynb", "label": "quick", "parameters": {"seconds": 0}},
            ],
        }
    )
    proc = project.snakemake(check=False, timeout=120)
    assert proc.returncode != 0
    assert project.target("slow", "quick").exists()
    assert not project.target("slow", "hang").exists()
    assert "slow/hang FAILED" in proc.stderr and "timed out" in proc.stderr.lower()
    assert project.target("slow", "hang").with_suffix(".failed.ipynb").exists()


def test_dying_kernel_is_reported_as_failed(project):
    project.notebook("die", ["import os\nos._exit(1)"], "x = 0")
    project.write_config({"runs": [{"notebook": "notebooks/die.ipynb", "label": "a"}]})
    proc = project.snakemake(check=False, timeout=120)
    assert proc.returncode != 0
    assert "die/a FAILED" in proc.stderr
    assert not project.target("die", "a").exists()


def runner_processes(root):
    """Job processes of this project (their working directory is the project root)."""
    found = []
    for proc in psutil.process_iter(["cmdline", "cwd"]):
        if proc.info["cwd"] == str(root) and "nbsweep.execution.job" in (proc.info["cmdline"] or []):
            found.append(proc)
    return found


@pytest.fixture
def private_tmpdir(monkeypatch, tmp_path_factory):
    """A temp dir of the test's own: its own warm server (stopped at the end), runtime dirs and spares.

    Sharing the machine's warm server made the kill tests flaky: its spares (kernels started
    ahead in the project's directory, idle until the server exits a minute later) looked like
    runs that outlived the kill.
    """
    tmpdir = tmp_path_factory.mktemp("killtmp")
    monkeypatch.setenv("TMPDIR", str(tmpdir))
    yield tmpdir
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if "nbsweep.execution.warm_server" in cmdline and any(arg.startswith(str(tmpdir)) for arg in cmdline):
            proc.terminate()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=["SIGINT", "SIGTERM", "SIGKILL"])
def test_killed_sweep_leaves_no_partial_output_and_resumes(project, private_tmpdir, sig):
    pids = project.root / "pids"
    pids.mkdir()
    fast = project.root / "fast"  # once it exists, the runs resumed below need not sleep
    code = (
        f"import os, time\nopen(os.path.join({str(pids)!r}, label), 'w').write(str(os.getpid()))\n"
        f"time.sleep(0 if os.path.exists({str(fast)!r}) else seconds)\nprint('ECHO', label)"
    )
    project.notebook("nap", [code], "seconds = 0\nlabel = ''")
    labels = [f"r{i}" for i in range(6)]
    project.write_config(
        {
            "runs": [
                {"notebook": "notebooks/nap.ipynb", "label": label, "parameters": {"seconds": 0 if i < 2 else 30, "label": label}}
                for i, label in enumerate(labels)
            ]
        }
    )
    # Plan first (job files synced) so the kill lands in the middle of execution.
    project.snakemake("-n")
    sm = project.popen()
    targets = [project.target("nap", label) for label in labels]
    assert wait_for(lambda: sum(t.exists() for t in targets) >= 2 and len(list(pids.iterdir())) >= 3, 120)
    time.sleep(1)
    kernels = [int(p.read_text()) for p in pids.iterdir()]
    sm.send_signal(sig)
    sm.wait(timeout=30)  # the running notebooks would take another 30 s
    # Interrupted or orphaned, the runners stop their kernels and write no target.
    assert wait_for(lambda: not runner_processes(project.root) and not any(alive(pid) for pid in kernels), 20)
    done = {t for t in targets if t.exists()}
    for target in done:
        assert json.loads(target.read_text())["metadata"]["nbsweep"]["status"] == "ok"
    assert len(done) < len(targets)
    assert not list(project.out.rglob(".*.partial.ipynb"))

    fast.touch()
    before = project.outputs()
    project.snakemake()
    assert all(t.exists() for t in targets)
    assert project.executed(before) == {f"nap/{t.parent.name}" for t in targets if t not in done}
