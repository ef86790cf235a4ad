"""One invocation never changes what another executes; corrupt targets are stale; the output
folder is nbsweep's own."""

import json
import subprocess
import time

import pytest
from conftest import SNAKEFILE, SNAKEMAKE, stdout_of

# A held run waits until the test has done its checks and creates the file ``release`` in the project
# (up to 300 s): the sweep is still running while the test looks, however loaded the machine is.
SLOW = (
    "import os, time\nfrom nbsweep import record\ndeadline = time.monotonic() + 300\n"
    "while hold and not os.path.exists('release') and time.monotonic() < deadline:\n    time.sleep(0.05)\n"
    "print('MODE', mode)\nrecord(mode_seen=mode)"
)


def config(mode: str, hold: bool = False) -> dict:
    return {
        "runs": [{"notebook": "notebooks/slow.ipynb", "label": "r{i}", "grid": {"i": [1, 2]}, "parameters": {"mode": mode, "hold": hold}}]
    }


@pytest.fixture
def slow(project):
    project.notebook("slow", [SLOW], "mode = 'none'\nhold = False\ni = 0")
    project.write_config(config("A", hold=True))
    project.write_config(config("B", hold=True), "config/b.yaml")
    return project


def start(project, *args: str) -> subprocess.Popen:
    cmd = [*SNAKEMAKE, "-s", str(SNAKEFILE), "-d", str(project.root), "--cores", "1", *args]
    return subprocess.Popen(cmd, cwd=project.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=project.env)


def wait_for_first_run(project, proc, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not list(project.out.glob("slow/*/slow_*.log")):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.2)


def job_files(project) -> dict:
    folder = project.root / ".snakemake" / "nbsweep"
    return {p: p.read_bytes() for p in folder.rglob("jobs/*/*/job.json")}


def test_planning_elsewhere_never_changes_a_running_sweep(slow):
    sweep = start(slow)
    wait_for_first_run(slow, sweep)
    before = job_files(slow)
    assert len(before) == 2 and all(b'"mode":"A"' in text.replace(b" ", b"") for text in before.values())
    # A dry-run of another config, and a real one that Snakemake's lock refuses: nothing written.
    dry = slow.snakemake("-n", "--configfile", "config/b.yaml")
    assert "would execute" in dry.stdout
    locked = slow.snakemake("--configfile", "config/b.yaml", check=False)
    assert locked.returncode != 0
    assert job_files(slow) == before
    assert not any(b"B" in p.read_bytes() for p in slow.out.rglob("*.ipynb"))
    (slow.root / "release").touch()
    out, err = sweep.communicate(timeout=300)
    assert sweep.returncode == 0, err
    for label in ("r1", "r2"):
        assert "MODE A" in stdout_of(slow.target("slow", label))
    rows = json.loads((slow.out / "summary.json").read_text())
    assert [(r["params.mode"], r["metrics.mode_seen"], r["status"]) for r in rows] == [("A", "A", "ok")] * 2


def test_a_second_invocation_after_unlock_is_refused(slow):
    sweep = start(slow)
    wait_for_first_run(slow, sweep)
    slow.snakemake("--unlock")
    second = slow.snakemake("--configfile", "config/b.yaml", check=False)
    assert second.returncode != 0
    assert f"another nbsweep invocation (pid {sweep.pid}) is running in this folder" in second.stderr
    assert "Traceback" not in second.stderr
    (slow.root / "release").touch()
    out, err = sweep.communicate(timeout=300)
    assert sweep.returncode == 0, err
    for label in ("r1", "r2"):
        log = slow.target("slow", label).with_suffix(".log").read_text()
        assert log.count("executes") == 1  # executed once, by the first invocation
        assert "MODE A" in stdout_of(slow.target("slow", label))
    # Once it has finished, the other config runs as usual.
    slow.write_config(config("B"), "config/b.yaml")
    slow.snakemake("--configfile", "config/b.yaml")
    assert "MODE B" in stdout_of(slow.target("slow", "r1"))


def test_a_truncated_or_edited_target_is_stale(project):
    project.notebook("calc", ["print('ECHO', x)"], "x = 0")
    project.write_config({"runs": [{"notebook": "notebooks/calc.ipynb", "label": "a", "parameters": {"x": 1}}]})
    project.snakemake()
    target = project.target("calc", "a")
    text = target.read_text()
    target.write_text(text[: len(text) // 2])
    dry = project.snakemake("-n")  # the good notebook is in the run cache
    assert "nbsweep: run calc/a would be restored from cache instead of executing" in dry.stderr
    dry = project.snakemake("-n", "--config", "cache=false")
    assert "calc/a: the notebook has no readable nbsweep record" in dry.stdout
    status = subprocess.run([*SNAKEMAKE[:1], "-m", "nbsweep", "status"], cwd=project.root, capture_output=True, text=True, env=project.env)
    assert "calc/a  stale       the notebook has no readable nbsweep record" in status.stdout
    project.snakemake()
    assert "ECHO 1" in stdout_of(target)
    nb = json.loads(target.read_text())  # a hand edit of the recorded parameters: stale too
    nb["metadata"]["nbsweep"]["parameters"] = {"x": 2}
    target.write_text(json.dumps(nb, indent=1))
    assert "calc/a: the notebook has no readable nbsweep record" in project.snakemake("-n", "--config", "cache=false").stdout


@pytest.mark.parametrize("output_dir", ["/", "~", "."])
def test_output_dir_may_not_be_root_home_or_the_project(project, output_dir, monkeypatch):
    monkeypatch.setenv("HOME", str(project.root / "home"))
    (project.root / "home").mkdir()
    project.notebook("calc", ["print(1)"], "x = 0")
    path = {"~": str(project.root / "home"), ".": ".", "/": "/"}[output_dir]
    text = f"output_dir: {path}\nruns: [{{notebook: notebooks/calc.ipynb, label: a}}]\n"
    (project.root / "config").mkdir()
    (project.root / "config/config.yaml").write_text(text)
    for args in (("-n",), ()):
        proc = project.snakemake(*args, check=False)
        assert proc.returncode != 0 and f"output_dir '{path}' is " in proc.stderr and "Traceback" not in proc.stderr
    assert not (project.root / "calc").exists() and not (project.root / "home" / "calc").exists()


@pytest.mark.parametrize("folder", ["notebooks", "config", "."])
def test_output_dir_may_not_hold_the_templates_or_the_config(project, folder):
    """``--config output_dir=notebooks`` would write run folders and the results among the templates."""
    project.notebook("calc", ["print(1)"], "x = 0")
    project.write_config({"runs": [{"notebook": "notebooks/calc.ipynb", "label": "a"}]})
    before = sorted(project.root.glob("[!.]*/**/*"))
    proc = project.snakemake("--config", f"output_dir={folder}", check=False)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert f"output_dir '{folder}' " in proc.stderr and "set output_dir to a folder of its own" in proc.stderr
    assert sorted(project.root.glob("[!.]*/**/*")) == before  # Snakemake's own .snakemake/ aside


def test_output_dir_with_foreign_results_files_is_refused(project):
    site = project.root / "site"
    site.mkdir()
    (site / "index.html").write_text("<html>my own page</html>")
    project.notebook("calc", ["print(1)"], "x = 0")
    project.write_config({"output_dir": "site", "runs": [{"notebook": "notebooks/calc.ipynb", "label": "a"}]})
    proc = project.snakemake(check=False)
    assert proc.returncode != 0 and "output_dir 'site' holds index.html, which nbsweep did not write" in proc.stderr
    assert (site / "index.html").read_text() == "<html>my own page</html>" and not (site / "calc").exists()
    # nbsweep's own results in a folder are fine to replace.
    (site / "index.html").unlink()
    project.snakemake()
    project.write_config({"output_dir": "site", "runs": [{"notebook": "notebooks/calc.ipynb", "label": "b"}]})
    project.snakemake()
    assert [r["label"] for r in json.loads((site / "summary.json").read_text())] == ["b"]
