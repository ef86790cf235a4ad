"""nbsweep.api returns data: run states with structured changes, results rows, accept; the docs' example runs."""

import subprocess
import sys

from conftest import REPO

from nbsweep import api
from nbsweep.provenance.records import Change

CODE = ["from nbsweep import record\nrecord(accuracy=x / 10)"]


def test_states_changes_results_and_accept_as_data(project, monkeypatch):
    project.notebook("fit", CODE, "x = 1\ny = 0")
    project.write_config({"runs": [{"notebook": "notebooks/fit.ipynb", "label": "x{x}", "grid": {"x": [1, 2]}}]})
    project.snakemake()
    monkeypatch.chdir(project.root)
    assert [(s.run, s.state, s.changes) for s in api.status().states] == [("fit/x1", "up to date", ()), ("fit/x2", "up to date", ())]

    project.write_config({"runs": [{"notebook": "notebooks/fit.ipynb", "label": "x{x}", "grid": {"x": [1, 2]}, "parameters": {"y": 3}}]})
    (x1, x2) = api.status().states
    assert x1.state == "stale" and x1.changes == (Change("parameter", "y", 0, 3),)  # the template's y = 0
    assert x1.detail == "parameters changed: y 0 → 3"

    rows = {row["label"]: row for row in api.results()}
    assert rows["x2"]["metrics.accuracy"] == 0.2 and rows["x2"]["status"] == "stale"
    done = api.accept(targets=["fit/x1"])
    assert [(run, changes) for run, changes, _ in done.accepted] == [] and [run for run, _ in done.refused] == ["fit/x1"]
    assert done.refused[0][1] == [Change("parameter", "y", 0, 3)]  # a parameter change cannot be accepted


def test_the_docs_example_reads_a_sweep(project):
    project.notebook("fit", CODE, "x = 1\ny = 0")
    project.write_config({"runs": [{"notebook": "notebooks/fit.ipynb", "label": "x{x}", "grid": {"x": [1, 2]}}]})
    project.snakemake()
    project.write_config({"runs": [{"notebook": "notebooks/fit.ipynb", "label": "x{x}", "grid": {"x": [1, 2]}, "parameters": {"y": 3}}]})
    example = REPO / "docs" / "examples" / "sweep_report.py"
    out = subprocess.run([sys.executable, str(example)], cwd=project.root, env=project.env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "fit/x1: parameter y 0 -> 3 (changed)" in out.stdout
    assert f"best accuracy: 0.2 in fit/x2 ({project.target('fit', 'x2').relative_to(project.root)})" in out.stdout
