"""End-to-end: the summary, index and report after real sweeps, failures included."""

import base64
import csv
import json

import pytest
import yaml

from nbsweep import summary
from nbsweep.workflow import Sweep
from conftest import REPO

# A 1x1 PNG, shown by the notebook: renderings must inline it.
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYPj/HwADAgH/eL9GtQAAAABJRU5ErkJggg=="
CALC = [
    f"from nbsweep import record\nrecord(start=x)\nimport base64\nfrom IPython.display import Image\nImage(base64.b64decode('{PNG}'))",
    "if x == 0:\n    raise ZeroDivisionError('x must not be zero')",
    "record(inverse=opts['scale'] / x, seen=[x, x])",
]


@pytest.fixture
def calc(project):
    project.notebook("calc", CALC, "x = 1\nopts = {'scale': 1}")
    project.write_config({"runs": [
        {"notebook": "notebooks/calc.ipynb", "label": "x1", "parameters": {"x": 1, "opts": {"scale": 2}}},
        {"notebook": "notebooks/calc.ipynb", "label": "x0", "parameters": {"x": 0}},
        {"notebook": "notebooks/calc.ipynb", "label": "x2", "parameters": {"x": 2}},
    ]})
    return project


def rows_of(project) -> dict[str, dict]:
    rows = json.loads((project.out / "summary.json").read_text())
    return {row["label"]: row for row in rows}


def test_summary_index_and_report_after_a_sweep_with_a_failure(calc):
    proc = calc.snakemake(check=False)
    assert proc.returncode != 0
    assert "nbsweep: 3 runs (2 ok, 1 failed); summary in papermill_outputs/index.html" in proc.stderr
    rows = rows_of(calc)
    assert list(rows) == ["x1", "x0", "x2"]
    ok, bad = rows["x1"], rows["x0"]
    assert (ok["status"], bad["status"], rows["x2"]["status"]) == ("ok", "failed", "ok")
    assert ok["params.x"] == 1 and ok["params.opts.scale"] == 2 and bad["params.opts.scale"] is None
    assert (ok["metrics.start"], ok["metrics.inverse"], ok["metrics.seen"]) == (1, 2.0, [1, 1])
    assert ok["stale"] is False and ok["duration_s"] > 0 and ok["start_time"].startswith("20")
    assert ok["notebook"] == ok["target"] == "papermill_outputs/calc/x1/calc_x1.ipynb"
    assert ok["log"] == "papermill_outputs/calc/x1/calc_x1.log" and ok["error_name"] is None

    # The failed run: its error, the cell, and the metric recorded before the failing cell.
    assert bad["error_name"] == "ZeroDivisionError" and "x must not be zero" in bad["error_message"]
    assert bad["metrics.start"] == 0 and bad["metrics.inverse"] is None
    assert bad["notebook"] == "papermill_outputs/calc/x0/calc_x0.failed.ipynb"
    failed_nb = json.loads((calc.root / bad["notebook"]).read_text())
    outputs = failed_nb["cells"][bad["error_cell_index"]]["outputs"]
    assert any(o["output_type"] == "error" for o in outputs)
    assert (calc.root / bad["log"]).is_file()

    with open(calc.out / "summary.csv", newline="") as fh:
        table = list(csv.DictReader(fh))
    assert [(r["label"], r["status"], r["metrics.inverse"]) for r in table] == [("x1", "ok", "2.0"), ("x0", "failed", ""), ("x2", "ok", "0.5")]
    page = (calc.out / "index.html").read_text()
    assert page.count("<tr class=") == 3 and 'href="calc/x0/calc_x0.failed.ipynb"' in page

    # Renderings: a separate target; the failing run is retried (and fails), the others rendered.
    assert calc.snakemake("report_index", check=False).returncode != 0
    rows = rows_of(calc)
    assert rows["x1"]["html"] == "papermill_outputs/calc/x1/calc_x1.html" and rows["x0"]["html"] is None
    html = (calc.root / rows["x1"]["html"]).read_text()
    assert f'src="data:image/png;base64,{PNG}' in html
    assert "nbsweep metrics: start=1" in html and 'src="http' not in html
    assert 'href="calc/x1/calc_x1.html"' in (calc.out / "index.html").read_text()

    # The Snakemake report: summary and renderings, even with a failed run in the sweep.
    calc.snakemake("--report", "report.html")
    report = (calc.root / "report.html").read_text()
    for name in ("calc_x1.html", "calc_x2.html", "summary.csv"):
        assert name in report
    assert base64.b64encode((calc.out / "index.html").read_bytes()).decode() in report  # embedded


def test_removed_runs_leave_the_summary_even_when_nothing_else_runs(calc):
    config = yaml.safe_load((calc.root / "config/config.yaml").read_text())
    config["runs"][1]["parameters"]["x"] = 4
    calc.write_config(config)
    calc.snakemake()
    assert [row["status"] for row in rows_of(calc).values()] == ["ok", "ok", "ok"]
    del config["runs"][2]
    calc.write_config(config)
    dry = calc.snakemake("-n")
    assert "refresh_summary" in dry.stdout and "rule notebook" not in dry.stdout
    calc.snakemake()
    assert list(rows_of(calc)) == ["x1", "x0"]
    assert "calc_x2" not in (calc.out / "index.html").read_text()
    assert not (calc.out / summary.REFRESH).exists()
    again = calc.snakemake()
    assert "Nothing to be done" in again.stdout + again.stderr


def test_runs_not_run_yet_have_rows(calc, monkeypatch):
    monkeypatch.chdir(calc.root)
    sweep = Sweep.load([], REPO / "config" / "schema.yaml")
    assert summary.outdated(sweep)
    summary.write_results(sweep)
    rows = rows_of(calc)
    assert {row["status"] for row in rows.values()} == {"not run"}
    assert rows["x1"]["params.opts.scale"] == 2 and rows["x1"]["notebook"] is None and rows["x1"]["stale"] is None
    assert not summary.outdated(sweep)
