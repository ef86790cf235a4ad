"""End-to-end: the summary, index and report after real sweeps, failures included."""

import base64
import csv
import json
import shutil
import subprocess
import sys

import pytest
import yaml
from conftest import Project

from nbsweep.packaged import SCHEMA
from nbsweep.provenance.sweep import Sweep
from nbsweep.results import summary

# A 1x1 PNG, shown by the notebook: renderings must inline it.
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYPj/HwADAgH/eL9GtQAAAABJRU5ErkJggg=="
CALC = [
    f"from nbsweep import record\nrecord(start=x)\nimport base64\nfrom IPython.display import Image\nImage(base64.b64decode('{PNG}'))",
    "if x == 0:\n    raise ZeroDivisionError('x must not be zero')",
    "record(inverse=opts['scale'] / x, seen=[x, x], count=n)",
]
PARAMETERS = "x = 1\nopts = {'scale': 1}\nn = 3  # an int default\nname = 'calc'"


@pytest.fixture
def calc(project):
    """Template ``calc`` and its runs x1, x0 (fails: divides by zero) and x2; nothing run yet."""
    return make_calc(project)


@pytest.fixture(scope="session")
def calc_built(tmp_path_factory):
    """The calc project after its first sweep (x0 failed), once per test process: (the project, that
    invocation). Read it, never change it; ``calc_swept`` is a copy to change."""
    project = make_calc(Project(tmp_path_factory.mktemp("calc")))
    return project, project.snakemake(check=False)


@pytest.fixture
def calc_swept(calc_built, project):
    """The calc project as ``calc.snakemake(check=False)`` leaves it (a copy of ``calc_built``)."""
    shutil.copytree(calc_built[0].root, project.root, symlinks=True, dirs_exist_ok=True)
    return project


def make_calc(project):
    project.notebook("calc", CALC, PARAMETERS)
    project.write_config(
        {
            "runs": [
                {"notebook": "notebooks/calc.ipynb", "label": "x1", "parameters": {"x": 1, "opts": {"scale": 2}, "n": 5}},
                {"notebook": "notebooks/calc.ipynb", "label": "x0", "parameters": {"x": 0}},
                {"notebook": "notebooks/calc.ipynb", "label": "x2", "parameters": {"x": 2}},
            ]
        }
    )
    return project


def rows_of(project) -> dict[str, dict]:
    rows = json.loads((project.out / "summary.json").read_text())
    return {row["label"]: row for row in rows}


def test_summary_index_and_report_after_a_sweep_with_a_failure(calc_built, calc_swept):
    calc, proc = calc_swept, calc_built[1]
    assert proc.returncode != 0
    assert "nbsweep: 3 runs (2 ok, 1 failed); summary in papermill_outputs/index.html" in proc.stderr
    rows = rows_of(calc)
    assert list(rows) == ["x1", "x0", "x2"]
    ok, bad = rows["x1"], rows["x0"]
    assert (ok["status"], bad["status"], rows["x2"]["status"]) == ("ok", "failed", "ok")
    # Effective parameters: the template's defaults fill what a run does not set, and are marked.
    assert ok["params.x"] == 1 and ok["params.opts.scale"] == 2 and ok["params.n"] == 5 and ok["default_params"] == ["name"]
    assert bad["params.opts.scale"] == 1 and bad["params.n"] == 3 and bad["params.name"] == "calc"
    assert bad["default_params"] == ["opts", "n", "name"]
    assert [type(r["params.n"]) for r in rows.values()] == [int, int, int]  # ints stay ints
    assert (ok["metrics.start"], ok["metrics.inverse"], ok["metrics.seen"]) == (1, 2.0, [1, 1])
    assert ok["stale"] is False and ok["duration_s"] > 0 and ok["start_time"].startswith("20")
    assert ok["notebook"] == ok["target"] == "papermill_outputs/calc/x1/calc_x1.ipynb"
    assert ok["log"] == "papermill_outputs/calc/x1/calc_x1.log" and ok["error_name"] is None

    # The failed run: its error, the template's cell (not the executed notebook's, which has
    # papermill's injected parameters and error banners too), and the metric recorded before it.
    assert bad["error_name"] == "ZeroDivisionError" and "x must not be zero" in bad["error_message"]
    template = json.loads((calc.root / "notebooks/calc.ipynb").read_text())
    assert "".join(template["cells"][bad["error_cell_index"]]["source"]).startswith("if x == 0:") and bad["error_cell_line"] == "if x == 0:"
    assert "calc/x0 FAILED in cell 4 (`if x == 0:`): ZeroDivisionError: x must not be zero" in proc.stderr
    assert bad["metrics.start"] == 0 and bad["metrics.inverse"] is None
    assert bad["notebook"] == "papermill_outputs/calc/x0/calc_x0.failed.ipynb"
    failed_nb = json.loads((calc.root / bad["notebook"]).read_text())
    assert ["".join(c["source"]) for c in failed_nb["cells"] if any(o["output_type"] == "error" for o in c.get("outputs", []))] == [CALC[1]]
    assert (calc.root / bad["log"]).is_file()

    with open(calc.out / "summary.csv", newline="") as fh:
        table = list(csv.DictReader(fh))
    assert [(r["label"], r["status"], r["metrics.inverse"]) for r in table] == [
        ("x1", "ok", "2.0"),
        ("x0", "failed", ""),
        ("x2", "ok", "0.5"),
    ]
    assert [(r["params.opts.scale"], r["params.n"], r["default_params"]) for r in table] == [
        ("2", "5", '["name"]'),
        ("1", "3", '["opts","n","name"]'),
        ("1", "3", '["opts","n","name"]'),
    ]
    page = (calc.out / "index.html").read_text()
    assert page.count("<tr class=") == 3 and 'href="calc/x0/calc_x0.failed.ipynb"' in page
    assert "in cell 4 (`if x == 0:`)" in page
    assert '<span class="const default"><b>name</b> = &quot;calc&quot; <small' in page  # the same in every run: shown once
    assert '<td class="num default" data-sort="3" title="template default: 3">3</td>' in page

    # Renderings: made by each run's job, the failed one's too.
    rows = rows_of(calc)
    assert rows["x1"]["html"] == "papermill_outputs/calc/x1/calc_x1.html"
    assert rows["x0"]["html"] == "papermill_outputs/calc/x0/calc_x0.failed.html"
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
    assert "Nothing to be done" in dry.stdout + dry.stderr
    assert list(rows_of(calc)) == ["x1", "x0", "x2"]  # a dry-run writes nothing
    again = calc.snakemake()
    assert "Nothing to be done" in again.stdout + again.stderr
    assert list(rows_of(calc)) == ["x1", "x0"]
    assert "calc_x2" not in (calc.out / "index.html").read_text()


def test_runs_not_run_yet_have_rows(calc, monkeypatch):
    monkeypatch.chdir(calc.root)
    sweep = Sweep.load([], SCHEMA)
    summary.write_results(sweep)
    rows = rows_of(calc)
    assert {row["status"] for row in rows.values()} == {"not run"}
    assert rows["x1"]["params.opts.scale"] == 2 and rows["x1"]["notebook"] is None and rows["x1"]["stale"] is None


def test_summary_reads_back_into_pandas_with_its_types(calc_built):
    pd = pytest.importorskip("pandas")
    calc = calc_built[0]
    # The reads docs/results.md recommends: nullable dtypes, so a gap does not turn ints into floats.
    from_csv = pd.read_csv(
        calc.out / "summary.csv",
        dtype_backend="numpy_nullable",
        keep_default_na=False,
        na_values=[""],
        dtype={"template": "string", "label": "string"},
    )
    from_json = pd.read_json(calc.out / "summary.json", dtype_backend="numpy_nullable")
    for frame in (from_csv, from_json):
        assert str(frame["params.n"].dtype) == "Int64" and list(frame["params.n"]) == [5, 3, 3]
        assert str(frame["metrics.count"].dtype) == "Int64" and frame["metrics.count"].isna().tolist() == [False, True, False]
        assert str(frame["metrics.inverse"].dtype) == "Float64" and str(frame["params.name"].dtype).startswith("string")
        assert list(frame["label"]) == ["x1", "x0", "x2"]


def test_closing_line_and_index_header_count_as_status_does(calc_swept):
    calc = calc_swept
    config = yaml.safe_load((calc.root / "config/config.yaml").read_text())
    config["runs"][2]["parameters"]["x"] = 4  # x2 becomes stale
    config["runs"].append({"notebook": "notebooks/calc.ipynb", "label": "x5", "parameters": {"x": 5}})  # not run yet
    calc.write_config(config)
    proc = calc.snakemake("papermill_outputs/calc/x1/calc_x1.ipynb")  # runs nothing: x2 stays stale
    report = subprocess.run(
        [sys.executable, "-m", "nbsweep", "status"], check=True, cwd=calc.root, env=calc.env, capture_output=True, text=True, timeout=120
    )
    assert "4 runs: 1 up to date, 1 stale, 1 failed, 1 missing" in report.stdout
    assert "nbsweep: 4 runs (1 ok, 1 stale, 1 failed, 1 not run); summary in papermill_outputs/index.html" in proc.stderr
    page = (calc.out / "index.html").read_text()
    assert '<p class="meta" id="tally">4 runs: 1 ok · 1 stale · 1 failed · 1 not run.' in page
    rows = rows_of(calc)
    assert [(r["status"], r["stale"]) for r in rows.values()] == [("ok", False), ("failed", False), ("stale", True), ("not run", None)]
    assert rows["x2"]["params.x"] == 2  # the parameters its notebook (and its metrics) were made with


def test_the_report_has_every_rendering_with_its_record_and_says_how_renderings_are_made(calc):
    config = yaml.safe_load((calc.root / "config/config.yaml").read_text())
    config["runs"][2]["render"] = False
    calc.write_config(config)
    calc.snakemake(check=False)  # x0 fails
    x2 = calc.target("calc", "x2")
    assert x2.exists() and not x2.with_suffix(".html").exists()

    # nbsweep_renderings renders the notebook that has none, and executes no run.
    before = calc.outputs()
    calc.snakemake("nbsweep_renderings")
    assert x2.with_suffix(".html").exists()
    assert calc.executed(before) == set() and not calc.target("calc", "x0").exists()

    proc = calc.snakemake("--report", "report.html")
    assert "Missing metadata" not in proc.stdout + proc.stderr and "non critical" not in proc.stdout + proc.stderr
    report = (calc.root / "report.html").read_text()
    for label, status in (("x1", "ok"), ("x2", "ok")):
        assert f"calc_{label}.html" in report and f'"labels": {{"run": "{label}", "status": "{status}"' in report
    assert "Each run's job renders its notebook as soon as it" in report
    assert "has made them" not in report and "snakemake.wildcards" not in report
