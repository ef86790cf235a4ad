"""nbsweep in a user's own project: a wheel installed non-editable into a fresh venv, then used
in an empty folder with no nbsweep sources (`nbsweep init`, `module:`, `snakemake -s`)."""

import fcntl
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml
from conftest import REPO, make_notebook

# One worker runs them all: the wheel's virtualenv is built once, and no other worker idles waiting for it.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("own-project")]

CODE = ["from nbsweep import record\nassert x != 0, 'x must not be zero'\nrecord(inverse=1 / x)\nprint('ECHO', x)"]


@pytest.fixture(scope="session")
def installed(tmp_path_factory) -> Path:
    """A venv holding nbsweep from its built wheel (once per test session, shared by xdist workers)."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base  # this session's, not an older one's
    venv = shared / "wheel-venv"
    with open(shared / "wheel-venv.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (venv / "ready").exists():
            dist = shared / "dist"
            subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", dist, REPO], check=True, capture_output=True)
            subprocess.run([sys.executable, "-m", "venv", venv], check=True)
            wheel = next(dist.glob("nbsweep-*.whl"))
            subprocess.run([venv / "bin" / "pip", "install", "-q", wheel], check=True, capture_output=True)
            (venv / "ready").write_text(str(wheel))
    return venv


def run(venv: Path, folder: Path, *cmd: str, check: bool = True) -> subprocess.CompletedProcess:
    """A command of the venv (``nbsweep``, ``snakemake``) in ``folder``, with nothing of the checkout on the path."""
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env['PATH']}"
    proc = subprocess.run([str(venv / "bin" / cmd[0]), *cmd[1:]], cwd=folder, env=env, capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc


def user_folder(tmp_path: Path) -> Path:
    """An analysis repo of a user: one template, no nbsweep files."""
    folder = tmp_path / "analysis"
    make_notebook(folder / "notebooks" / "calc.ipynb", CODE, parameters="x = 1  # the divisor\nscale: float = 2.0")
    return folder


def executed(folder: Path) -> dict[str, int]:
    out = folder / "papermill_outputs"
    return {str(p.relative_to(out)): p.stat().st_mtime_ns for p in out.rglob("*.ipynb") if not p.name.startswith(".")}


def test_wheel_contains_the_workflow(installed):
    wheel = Path((installed / "ready").read_text())
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in (
        "nbsweep/workflow/Snakefile",
        "nbsweep/workflow/rules/common.smk",
        "nbsweep/workflow/rules/notebooks.smk",
        "nbsweep/workflow/rules/results.smk",
        "nbsweep/workflow/schemas/config.schema.yaml",
        "nbsweep/workflow/report/workflow.rst",
        "nbsweep/workflow/envs/notebook.yaml",
        "nbsweep/workflow/profiles/default/config.yaml",
        "nbsweep/workflow/profiles/slurm/config.yaml",
        "nbsweep/assets/index.js",
    ):
        assert name in names, name
    assert not any(name.startswith(("tests/", "bench/", "notebooks/", "config/")) for name in names)


def test_init_then_snakemake_in_an_empty_folder(installed, tmp_path):
    folder = user_folder(tmp_path)
    init = run(installed, folder, "nbsweep", "init")
    for written in ("Snakefile", "config/config.yaml", "profiles/default/config.yaml", ".gitignore"):
        assert (folder / written).is_file() and written in init.stdout
    config_text = (folder / "config/config.yaml").read_text()
    assert "notebooks/calc.ipynb" in config_text and "#   x: 1" in config_text and "#   scale: 2.0  # float" in config_text
    assert "papermill_outputs/" in (folder / ".gitignore").read_text().splitlines()

    # The config as written runs the template once with its defaults.
    assert "nbsweep: 1 run would execute" in run(installed, folder, "snakemake", "-n").stdout
    config = yaml.safe_load(config_text)
    config["runs"].append({"notebook": "notebooks/calc.ipynb", "label": "x{x}", "grid": {"x": [2, 4]}})
    (folder / "config/config.yaml").write_text(yaml.safe_dump(config))
    first = run(installed, folder, "snakemake", "--cores", "2")
    assert "workflow specific profile" in first.stderr
    out = folder / "papermill_outputs"
    assert set(executed(folder)) == {"calc/default/calc_default.ipynb", "calc/x2/calc_x2.ipynb", "calc/x4/calc_x4.ipynb"}
    rows = json.loads((out / "summary.json").read_text())
    assert [(r["label"], r["status"], r["metrics.inverse"]) for r in rows] == [
        ("default", "ok", 1.0),
        ("x2", "ok", 0.5),
        ("x4", "ok", 0.25),
    ]
    assert (out / "index.html").is_file() and (out / "summary.csv").is_file()

    before = executed(folder)
    again = run(installed, folder, "snakemake", "--cores", "2")
    assert "Nothing to be done" in again.stdout + again.stderr and executed(folder) == before
    status = run(installed, folder, "nbsweep", "status").stdout
    assert "3 runs: 3 up to date" in status
    params = run(installed, folder, "nbsweep", "params", "notebooks/calc.ipynb").stdout
    assert "x     = 1 (int)  # the divisor" in params and "scale = 2.0 (float)" in params
    # `python -m nbsweep` is the same command.
    assert "3 up to date" in run(installed, folder, "python", "-m", "nbsweep", "status").stdout


def test_init_twice_changes_nothing(installed, tmp_path):
    folder = user_folder(tmp_path)
    (folder / ".gitignore").write_text("*.pyc")  # a user's own file, without a final newline
    run(installed, folder, "nbsweep", "init", "--cluster", "cluster-generic")
    assert os.access(folder / "profiles/cluster-generic/submit.py", os.X_OK)
    assert (folder / ".gitignore").read_text() == "*.pyc\n# nbsweep outputs\npapermill_outputs/\n.snakemake/\n"
    files = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()}
    second = run(installed, folder, "nbsweep", "init").stdout
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()} == files
    for skipped in ("Snakefile", "config/config.yaml", "profiles/default/config.yaml", ".gitignore"):
        assert f"skipped {skipped}" in second


MODULE_SNAKEFILE = """\
import nbsweep

configfile: "config/config.yaml"

module nbsweep:
    snakefile: nbsweep.snakefile()
    config: config

use rule * from nbsweep
"""


def module_project(installed, tmp_path) -> Path:
    folder = user_folder(tmp_path)
    run(installed, folder, "nbsweep", "init")  # the profile (keep-going, mtime triggers) comes with init
    (folder / "Snakefile").write_text(MODULE_SNAKEFILE)
    grid = {"runs": [{"notebook": "notebooks/calc.ipynb", "label": "x{x}", "grid": {"x": [1, 0, 2]}}]}
    (folder / "config/config.yaml").write_text(yaml.safe_dump(grid))
    return folder


def test_module_snakefile_runs_keeps_failures_and_writes_results(installed, tmp_path):
    folder = module_project(installed, tmp_path)
    first = run(installed, folder, "snakemake", "--cores", "2", check=False)
    assert first.returncode != 0 and "run calc/x0 FAILED" in first.stderr
    out = folder / "papermill_outputs"
    assert set(executed(folder)) == {"calc/x1/calc_x1.ipynb", "calc/x2/calc_x2.ipynb", "calc/x0/calc_x0.failed.ipynb"}
    rows = {r["label"]: r for r in json.loads((out / "summary.json").read_text())}
    assert rows["x0"]["status"] == "failed" and rows["x1"]["status"] == rows["x2"]["status"] == "ok"
    assert "calc/x0/calc_x0.failed.ipynb" in (out / "index.html").read_text()

    # Only the failed run is stale; fixing it executes just that run.
    before = executed(folder)
    assert run(installed, folder, "snakemake", "--cores", "2", check=False).returncode != 0
    assert {k for k, v in executed(folder).items() if before.get(k) != v} == {"calc/x0/calc_x0.failed.ipynb"}
    (folder / "config/config.yaml").write_text(
        yaml.safe_dump({"runs": [{"notebook": "notebooks/calc.ipynb", "label": "x{x}", "grid": {"x": [1, 3, 2]}}]})
    )
    run(installed, folder, "snakemake", "--cores", "2")
    assert "calc/x3/calc_x3.ipynb" in executed(folder)
    assert "3 runs: 3 up to date" in run(installed, folder, "nbsweep", "status").stdout


def test_module_recovers_after_a_killed_invocation(installed, tmp_path):
    folder = module_project(installed, tmp_path)
    (folder / "config/config.yaml").write_text(
        yaml.safe_dump({"runs": [{"notebook": "notebooks/calc.ipynb", "label": "x1", "parameters": {"x": 1}}]})
    )
    # What a SIGKILLed Snakemake leaves: its lock files.
    run(installed, folder, "snakemake", "-n")
    locks = folder / ".snakemake" / "locks"
    locks.mkdir(parents=True, exist_ok=True)
    (locks / "0.input.lock").write_text(str(folder / "papermill_outputs"))
    (locks / "0.output.lock").write_text(str(folder / "papermill_outputs"))
    run(installed, folder, "snakemake", "--cores", "2")
    assert "calc/x1/calc_x1.ipynb" in executed(folder)


def test_snakemake_s_with_the_packaged_snakefile(installed, tmp_path):
    folder = user_folder(tmp_path)
    (folder / "config").mkdir()
    (folder / "config/config.yaml").write_text(
        yaml.safe_dump({"runs": [{"notebook": "notebooks/calc.ipynb", "label": "x{x}", "grid": {"x": [1, 0]}}]})
    )
    snakefile = run(installed, folder, "nbsweep", "snakefile").stdout.strip()
    assert snakefile.startswith(str(installed)) and Path(snakefile).is_file()
    first = run(installed, folder, "snakemake", "-s", snakefile, "--cores", "2", check=False)
    # The packaged workflow profile applies: keep-going lets x1 finish beside the failing x0.
    assert first.returncode != 0 and "workflow specific profile" in first.stderr
    assert set(executed(folder)) == {"calc/x1/calc_x1.ipynb", "calc/x0/calc_x0.failed.ipynb"}
    assert (folder / "papermill_outputs" / "summary.csv").is_file()
