"""End-to-end: sweeps over files, typed parameters, R templates, --config overrides and config order."""

import json
import subprocess
import sys

import nbformat
import pytest
from conftest import stdout_of
from nbformat.v4 import new_code_cell, new_notebook

STATUS = [sys.executable, "-m", "nbsweep", "status"]
ECHO = 'import json\nprint("ECHO" + json.dumps({k: globals()[k] for k in PARAMS}, sort_keys=True))'


def echo_lines(notebook) -> list[dict]:
    return [json.loads(line[4:]) for line in stdout_of(notebook).splitlines() if line.startswith("ECHO")]


def refused(proc: subprocess.CompletedProcess) -> str:
    """nbsweep's one sentence of a refused invocation (and that nothing ran)."""
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.startswith("nbsweep: ")]
    assert len(lines) == 1, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    return lines[0]


# --- 1. sweeps over files ---


def test_glob_sweep_executes_exactly_the_runs_of_new_and_changed_files(project):
    data = project.root / "data"
    data.mkdir()
    for name, rows in [("a", 1), ("b", 2)]:
        (data / f"{name}.csv").write_text("x\n" * rows)
    project.notebook(
        "count", [ECHO + "\nprint('ROWS', len(open(data).read().split()))"], 'PARAMS = ["data", "depth"]\ndata = ""\ndepth = 1'
    )
    project.write_config(
        {
            "runs": [
                {
                    "notebook": "notebooks/count.ipynb",
                    "label": "{data.stem}-d{depth}",
                    "grid": {"data": {"glob": "data/*.csv"}, "depth": [1, 2]},
                }
            ]
        }
    )
    before = project.outputs()
    project.snakemake()
    assert project.executed(before) == {"count/a-d1", "count/a-d2", "count/b-d1", "count/b-d2"}
    assert echo_lines(project.target("count", "b-d2")) == [{"data": "data/b.csv", "depth": 2}]
    assert "ROWS 2" in stdout_of(project.target("count", "b-d2"))
    record = json.loads(project.target("count", "a-d1").read_text())["metadata"]["nbsweep"]
    assert list(record["inputs"]) == ["data/a.csv"]  # the file is an input of its own runs only

    (data / "c.csv").write_text("x\n" * 3)  # a new file: just its runs
    before = project.outputs()
    project.snakemake()
    assert project.executed(before) == {"count/c-d1", "count/c-d2"}

    (data / "a.csv").write_text("x\n" * 5)  # a changed file: just its runs
    before = project.outputs()
    project.snakemake()
    assert project.executed(before) == {"count/a-d1", "count/a-d2"}
    assert "ROWS 5" in stdout_of(project.target("count", "a-d1"))

    (data / "b.csv").unlink()  # a deleted file: nothing executes, its outputs are orphans
    before = project.outputs()
    project.snakemake()
    assert project.executed(before) == set()
    status = subprocess.run(STATUS, cwd=project.root, capture_output=True, text=True, env=project.env, check=True).stdout
    assert "outputs of 2 runs no longer in the config" in status
    assert f"{project.out / 'count' / 'b-d1'}/" in status or "papermill_outputs/count/b-d1/" in status


def test_inputs_are_patterns_over_the_grid_keys(project):
    data = project.root / "data"
    data.mkdir()
    for name in ("iris", "wine", "common"):
        (data / f"{name}.csv").write_text(name)
    (data / "common.txt").write_text("shared")
    project.notebook("read", [ECHO], 'PARAMS = ["dataset"]\ndataset = ""')
    project.write_config({
        "runs": [{"notebook": "notebooks/read.ipynb", "label": "{dataset}", "grid": {"dataset": ["iris", "wine"]},
                  "inputs": ["data/{dataset}.csv", "data/common.txt"]}]
    })  # fmt: skip
    project.snakemake()
    record = json.loads(project.target("read", "wine").read_text())["metadata"]["nbsweep"]
    assert sorted(record["inputs"]) == ["data/common.txt", "data/wine.csv"]
    (data / "wine.csv").write_text("changed")
    before = project.outputs()
    project.snakemake()
    assert project.executed(before) == {"read/wine"}


def test_a_glob_matching_nothing_names_the_pattern(project):
    project.notebook("count", [ECHO], 'PARAMS = ["data"]\ndata = ""')
    project.write_config(
        {"runs": [{"notebook": "notebooks/count.ipynb", "label": "{data.stem}", "grid": {"data": {"glob": "data/*.parquet"}}}]}
    )
    sentence = refused(project.snakemake(check=False))
    assert "glob 'data/*.parquet' matches no file" in sentence
    assert "run #1" in sentence
    assert not project.out.exists()


def test_a_path_in_a_label_suggests_its_stem(project):
    (project.root / "data").mkdir()
    (project.root / "data" / "a.csv").write_text("1")
    project.notebook("count", [ECHO], 'PARAMS = ["data"]\ndata = ""')
    project.write_config({"runs": [{"notebook": "notebooks/count.ipynb", "label": "{data}", "grid": {"data": {"glob": "data/*.csv"}}}]})
    assert "use {data.stem} or {data.name}" in refused(project.snakemake(check=False))


# --- 2. typed parameters ---

TYPED = 'PARAMS = ["count", "rate", "name", "flag", "items", "anything"]\ncount: int = 3\nrate = 0.5\nname = "x"\nflag = False\nitems = [1]\nanything = None'


@pytest.mark.parametrize(
    ("parameters", "phrase"),
    [
        ({"name": 3}, "gives parameter 'name' an int (3), but notebooks/typed.ipynb declares it str"),
        ({"count": "3"}, "gives parameter 'count' a str (\"3\"), but notebooks/typed.ipynb declares it int"),
        ({"count": True}, "gives parameter 'count' a bool (true), but notebooks/typed.ipynb declares it int"),
        ({"name": [1, 2]}, "gives parameter 'name' a list ([1,2]), but notebooks/typed.ipynb declares it str"),
        ({"items": "a,b"}, "gives parameter 'items' a str (\"a,b\"), but notebooks/typed.ipynb declares it list"),
        ({"count": 2.5}, "gives parameter 'count' a float (2.5), but notebooks/typed.ipynb declares it int"),
    ],
)
def test_a_value_of_the_wrong_type_is_refused_before_anything_runs(project, parameters, phrase):
    project.notebook("typed", [ECHO], TYPED)
    project.write_config(
        {
            "runs": [
                {"notebook": "notebooks/typed.ipynb", "label": "ok"},
                {"notebook": "notebooks/typed.ipynb", "label": "bad", "parameters": parameters},
            ]
        }
    )
    sentence = refused(project.snakemake(check=False))
    assert "config/config.yaml: run #2 ('bad'): run typed/bad " + phrase in sentence
    assert sentence.endswith("set check_types: false.")
    assert not project.out.exists()


def test_grid_values_are_checked_per_run(project):
    project.notebook("typed", [ECHO], TYPED)
    project.write_config({"runs": [{"notebook": "notebooks/typed.ipynb", "label": "c{count}", "grid": {"count": [1, 2, "three"]}}]})
    assert "run typed/cthree gives parameter 'count' a str" in refused(project.snakemake(check=False))


def test_accepted_types_and_the_opt_out(project):
    project.notebook("typed", [ECHO], TYPED)
    project.write_config(
        {
            "defaults": {"parameters": {"anything": {"any": ["thing"]}}},
            "runs": [
                {"notebook": "notebooks/typed.ipynb", "label": "int-for-float", "parameters": {"rate": 2, "count": 4, "flag": True}},
                {"notebook": "notebooks/typed.ipynb", "label": "anything", "parameters": {"anything": "text", "items": []}},
                {"notebook": "notebooks/typed.ipynb", "label": "unchecked", "check_types": False, "parameters": {"count": "many"}},
            ],
        }
    )
    project.snakemake()
    assert echo_lines(project.target("typed", "int-for-float"))[0] == {
        "count": 4, "rate": 2, "name": "x", "flag": True, "items": [1], "anything": {"any": ["thing"]}
    }  # fmt: skip
    assert echo_lines(project.target("typed", "anything"))[0]["anything"] == "text"
    assert echo_lines(project.target("typed", "unchecked"))[0]["count"] == "many"


def test_check_types_false_under_defaults(project):
    project.notebook("typed", [ECHO], TYPED)
    project.write_config(
        {"defaults": {"check_types": False}, "runs": [{"notebook": "notebooks/typed.ipynb", "label": "x", "parameters": {"flag": 0}}]}
    )
    assert "typed/x: never run" in project.snakemake("-n").stdout  # planned, not refused


# --- 3. R templates ---


def r_notebook(project, code: list[str], parameters: str) -> str:
    cell = new_code_cell(parameters, metadata={"tags": ["parameters"]})
    nb = new_notebook(
        cells=[cell, *(new_code_cell(source) for source in code)],
        metadata={"kernelspec": {"name": "ir", "display_name": "R", "language": "R"}, "language_info": {"name": "R"}},
    )
    path = project.root / "notebooks" / "rplot.ipynb"
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return "notebooks/rplot.ipynb"


R_PARAMETERS = '# data and options\ncsv_path <- "data/x.csv"  # where\ntitle = "plain"\nopts <- list(\n  a = 1,\n  b = 2\n)\n'
R_ECHO = 'cat(paste0("ECHO", jsonlite::toJSON(list(csv_path = csv_path, title = title), auto_unbox = TRUE)), "\\n")'
QUOTED = ["it's", 'say "hi"', "back\\slash"]


@pytest.fixture
def r_project(project):
    from jupyter_client.kernelspec import KernelSpecManager

    if "ir" not in KernelSpecManager().find_kernel_specs():
        pytest.skip("IRkernel is not installed (CI installs r-base-core and r-cran-irkernel)")
    return project


def test_an_r_grid_gets_its_values_intact(r_project):
    project = r_project
    (project.root / "data").mkdir()
    for name in ("a", "b"):
        (project.root / "data" / f"{name}.csv").write_text(name)
    r_notebook(project, [R_ECHO], R_PARAMETERS)
    project.write_config({
        "runs": [{"notebook": "notebooks/rplot.ipynb", "label": f"{{csv_path.stem}}-t{i}", "grid": {"csv_path": {"glob": "data/*.csv"}, "title": [title]}}
                 for i, title in enumerate(QUOTED)]
    })  # fmt: skip
    proc = project.snakemake()
    for stem in ("a", "b"):
        for i, title in enumerate(QUOTED):
            assert echo_lines(project.target("rplot", f"{stem}-t{i}")) == [{"csv_path": f"data/{stem}.csv", "title": title}]
    assert "does not support parameter introspection" not in proc.stdout + proc.stderr


def test_an_r_run_logs_no_introspection_warning(r_project):
    project = r_project
    r_notebook(project, [R_ECHO], R_PARAMETERS)
    project.write_config({"runs": [{"notebook": "notebooks/rplot.ipynb", "label": "x", "parameters": {"title": "é 日本"}}]})
    project.snakemake()
    log = project.target("rplot", "x").with_suffix(".log").read_text()
    assert "WARNING" not in log
    assert echo_lines(project.target("rplot", "x")) == [{"csv_path": "data/x.csv", "title": "é 日本"}]


def test_an_undeclared_r_parameter_is_one_sentence(r_project):
    project = r_project
    r_notebook(project, [R_ECHO], R_PARAMETERS)
    project.write_config({"runs": [{"notebook": "notebooks/rplot.ipynb", "label": "x", "parameters": {"csv_pth": "a", "a": 1}}]})
    sentence = refused(project.snakemake(check=False))
    assert sentence == (
        "nbsweep: config/config.yaml: run #1 ('x'): parameter 'a', 'csv_pth' is not declared in the parameters cell of "
        "notebooks/rplot.ipynb (declared: csv_path, title, opts); fix the name or declare it in the template."
    )


# --- 7. --config ---


def test_config_overrides_apply_like_the_files_keys(echo_swept):
    project = echo_swept
    before = project.outputs()
    project.snakemake("--config", "output_dir=out2", "defaults={parameters: {y: z}, threads: 1}")
    out2 = project.root / "out2"
    assert echo_lines(out2 / "echo" / "one" / "echo_one.ipynb") == [{"x": 1, "y": "z"}]
    assert echo_lines(out2 / "echo" / "two" / "echo_two.ipynb") == [{"x": 2, "y": "b"}]  # the run's own value wins
    assert project.outputs() == before  # papermill_outputs untouched
    assert (out2 / "summary.csv").exists()
    notebooks = {path: path.stat().st_mtime_ns for path in out2.rglob("*.ipynb")}
    project.snakemake("--config", "output_dir=out2", "defaults={parameters: {y: z}}")
    assert {path: path.stat().st_mtime_ns for path in out2.rglob("*.ipynb")} == notebooks  # nothing reran


@pytest.mark.parametrize(
    ("entry", "phrase"),
    [
        ("runs=[]", "--config runs=[]: runs cannot be given with --config"),
        ("outdir=x", "unknown key 'outdir'"),
        ("output_dir=a b", "output_dir"),
        ("defaults={threads: 0}", "'defaults.threads'"),
    ],
)
def test_config_overrides_that_cannot_apply_are_refused(echo_project, entry, phrase):
    sentence = refused(echo_project.snakemake("--config", entry, check=False))
    assert phrase in sentence
    assert not echo_project.out.exists()


# --- 8. config order ---


def test_runs_start_in_config_order_with_one_core(project):
    project.notebook("step", ["n"], "n = 0")
    labels = [f"r{i}" for i in (5, 3, 9, 1, 7, 2, 8, 4, 6, 0)]
    project.write_config(
        {"runs": [{"notebook": "notebooks/step.ipynb", "label": label, "parameters": {"n": i}} for i, label in enumerate(labels)]}
    )
    project.snakemake(cores=1)
    starts = [json.loads(project.target("step", label).read_text())["metadata"]["papermill"]["start_time"] for label in labels]
    assert starts == sorted(starts)
