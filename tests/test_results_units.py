"""Unit tests of the results code: flattening, metrics values, notebook reading, CSV and HTML cells."""

import csv
import html
import io
import json
import math
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

from nbsweep import MIME, plain
from nbsweep.execution.execute import describe_failure, mark_failed_cell
from nbsweep.model import cells
from nbsweep.model.parameters import declared_defaults
from nbsweep.provenance import records
from nbsweep.provenance.records import Change, Provenance, explain, parameter_changes, parameter_phrase
from nbsweep.results import executed, index, summary


def test_flatten_nested_mappings_with_dotted_keys():
    params = {"config": {"data": {"path": "a.csv"}, "target": None}, "lr": 0.1, "empty": {}, "grid": [1, 2]}
    assert records.flatten(params, "params.") == {
        "params.config.data.path": "a.csv",
        "params.config.target": None,
        "params.lr": 0.1,
        "params.empty": {},
        "params.grid": [1, 2],
    }


def test_metric_values_become_plain_json():
    np = pytest.importorskip("numpy")
    assert plain(np.float64(0.5), "a") == 0.5 and type(plain(np.int64(3), "b")) is int
    assert plain(np.array([1, 2]), "c") == [1, 2]
    assert plain(float("nan"), "d") is None and plain(-math.inf, "e") is None
    assert plain({"x": (1, np.float32(2))}, "f") == {"x": [1, 2.0]}
    with pytest.raises(TypeError, match=r"metric 'g' \(object\) is not a JSON value"):
        plain(object(), "g")
    with pytest.raises(TypeError, match="'h.k'"):
        plain({"k": {1, 2}}, "h")


def metrics_output(values: dict):
    return new_output("display_data", data={MIME: values, "text/plain": "nbsweep metrics"})


def write_notebook(path, outputs, metadata, source="x = 1", **write_args):
    cell = new_code_cell(source)
    cell.outputs = outputs
    nb = new_notebook(cells=[cell], metadata=metadata)
    if write_args:
        path.write_text(json.dumps(nb, **write_args))
    else:
        nbformat.write(nb, path)
    return path


def test_metrics_come_from_outputs_in_order_and_not_from_sources(tmp_path):
    source = f'display({{"{MIME}": {{"fake": 1}}}}, raw=True)'
    path = write_notebook(
        tmp_path / "a.ipynb",
        [metrics_output({"acc": 0.5, "n": 3}), metrics_output({"acc": 0.75, "nested": {"k": [1]}})],
        {"nbsweep": {"status": "ok"}},
        source=source,
    )
    metadata, metrics = executed.read_result(path)
    assert metrics == {"acc": 0.75, "n": 3, "nested": {"k": [1]}}
    assert metadata["nbsweep"] == {"status": "ok"}
    assert executed.read_result(tmp_path / "missing.ipynb") == ({}, {})


def test_metadata_is_read_from_the_end_of_big_notebooks(tmp_path):
    big = [new_output("stream", name="stdout", text="y" * 100_000)]
    meta = {"nbsweep": {"fingerprint": "f", "parameters": {"a": "b"}}, "papermill": {"duration": 1.5}}
    nbformat_written = write_notebook(tmp_path / "a.ipynb", big, meta)
    compact = write_notebook(tmp_path / "b.ipynb", big, meta, separators=(",", ":"))
    assert nbformat_written.stat().st_size > records.TAIL_BYTES
    for path in (nbformat_written, compact):
        assert records.read_metadata(path)["nbsweep"] == meta["nbsweep"]
    (tmp_path / "broken.ipynb").write_text("{not json")
    assert records.read_metadata(tmp_path / "broken.ipynb") is None
    assert summary.metadata_in('{"cells": []}', whole=False) is None


def test_table_orders_columns_and_csv_round_trips():
    rows = [
        {"template": "a", "label": "1", "status": "ok", "stale": False, "params.x": 1, "metrics.acc": 0.5},
        {"template": "b", "label": "2", "status": "failed", "stale": None, "params.y": [1, 2], "params.x": None},
    ]
    columns, full = summary.table(rows)
    assert columns[:4] == list(summary.HEAD) and columns[-len(summary.TAIL) :] == list(summary.TAIL)
    assert columns[4 : -len(summary.TAIL)] == ["params.x", "params.y", "metrics.acc"]
    parsed = list(csv.DictReader(io.StringIO(summary.to_csv(columns, full))))
    assert parsed[0]["stale"] == "false" and parsed[0]["metrics.acc"] == "0.5"
    assert parsed[1]["params.y"] == "[1,2]" and parsed[1]["params.x"] == "" and parsed[1]["stale"] == ""


def test_report_labels_are_text_as_in_the_index():
    row = {
        "label": "r1",
        "status": "ok",
        "params.lr": 0.0,
        "params.on": True,
        "metrics.acc": 0.794258373,
        "metrics.hist": [1, 2],
        "metrics.none": None,
        "log": "x",
    }
    assert summary.labels(row) == {"run": "r1", "status": "ok", "lr": "0", "on": "true", "acc": "0.7943", "hist": "[1,2]", "none": ""}


def test_parameter_changes_name_each_difference():
    old = {"lr": 0.1, "n": 1, "cfg": {"a": 1, "gone": 2}}
    new = {"lr": 0.01, "n": 1.0, "cfg": {"a": 1, "b": "x"}}
    assert parameter_changes(old, new) == [
        Change("parameter", "lr", 0.1, 0.01),
        Change("parameter", "n", 1, 1.0),
        Change("parameter", "cfg.b", None, "x", "added"),
        Change("parameter", "cfg.gone", 2, None, "removed"),
    ]
    assert [parameter_phrase(change) for change in parameter_changes(old, new)] == [
        "lr 0.1 → 0.01",
        "n 1 → 1.0",
        'cfg.b added ("x")',
        "cfg.gone removed (was 2)",
    ]


def test_reasons_cover_code_kernel_parameters_and_inputs():
    made = Provenance("c1", "python3", {"x": 1}, {"a.csv": "1", "b.csv": "2"})
    planned = Provenance("c2", "other", {"x": 2}, {"a.csv": "9", "c.csv": "3"})
    assert planned.diff(made) == [
        Change("template code", "", "c1", "c2"),
        Change("kernel", "", "python3", "other"),
        Change("parameter", "x", 1, 2),
        Change("input", "a.csv", "1", "9"),
        Change("input", "c.csv", None, "3", "added"),
        Change("input", "b.csv", "2", None, "removed"),
    ]
    assert explain(planned.diff(made)) == [
        "template code changed",
        "kernel changed: python3 → other",
        "parameters changed: x 1 → 2",
        "input a.csv changed",
        "input c.csv added",
        "input b.csv removed",
    ]
    assert explain(made.diff(made)) == ["fingerprint changed"]


def index_row(**values):
    row = dict.fromkeys([*summary.HEAD, *summary.TAIL])
    row.update(template="t", label="l", status="ok", stale=False, target="out/t/l/t_l.ipynb")
    row.update(values)
    return row


def test_index_escapes_text_and_links_relative_to_the_output_folder():
    rows = [
        index_row(
            label="a+b=1",
            **{"params.note": "<script>alert(1)</script>"},
            notebook="out/t/a+b=1/t_a+b=1.ipynb",
            log="out/t/a+b=1/t_a+b=1.log",
        ),
        index_row(
            label="bad",
            status="failed",
            error_name="ValueError",
            error_message="x < 0 & y",
            error_cell_index=2,
            error_cell_line="y = f(x)",
            notebook="out/t/bad/t_bad.failed.ipynb",
        ),
        index_row(label="later", status="not run", stale=None),
    ]
    columns, full = summary.table(rows)
    page = index.page(columns, full, Path("out"))
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert 'href="t/a%2Bb%3D1/t_a%2Bb%3D1.ipynb"' in page and 'href="t/a%2Bb%3D1/t_a%2Bb%3D1.log"' in page
    assert '<a href="t/bad/t_bad.failed.ipynb">failed.ipynb</a>' in page
    assert 'ValueError: x &lt; 0 &amp; y <span class="where">in cell 3 (`y = f(x)`)</span>' in page
    assert page.count("<tr class=") == 3 and 'data-status="not run"' in page
    assert "snakemake nbsweep_renderings" in page  # no renderings yet: say how to make them
    assert "http://" not in page and "https://" not in page


def test_page_data_cannot_close_its_script_element():
    rows = [index_row(label="a", **{"params.note": "</script><script>alert(1)</script>", "metrics.x": float("nan")})]
    page = index.page(*summary.table(rows), Path("out"))
    data = page.split('<script type="application/json" id="runs-data">')[1].split("</script>")[0]
    assert json.loads(data)[0]["params"]["note"] == "</script><script>alert(1)</script>"
    assert json.loads(data)[0]["metrics"]["x"] is None


def with_parameters(source: str, language: str = "python"):
    cell = new_code_cell(source, metadata={"tags": ["parameters"]})
    return new_notebook(cells=[new_code_cell("x = 99"), cell], metadata={"language_info": {"name": language}})


def test_declared_defaults_are_the_literal_assignments_of_the_parameters_cell():
    source = "a = 1\nb: float = 0.5  # help\nc = d = 'x'\nopts = {'k': (1, 2), 'on': True}\nn = len('ab')\ns = {1, 2}\nnone = None\na = 2"
    assert declared_defaults(with_parameters(source)) == {
        "a": 2,
        "b": 0.5,
        "c": "x",
        "d": "x",
        "opts": {"k": [1, 2], "on": True},
        "none": None,
    }
    assert declared_defaults(with_parameters("%matplotlib inline\nlr = 0.1\nname = 'm'  # a comment")) == {"lr": 0.1, "name": "m"}
    assert declared_defaults(with_parameters("x <- 1", language="R")) == {}
    assert declared_defaults(new_notebook(cells=[new_code_cell("x = 1")])) == {}


def test_effective_parameters_put_the_run_over_the_template_defaults(tmp_path):
    class Template:
        path, code_digest, nb = "t.ipynb", "code1", with_parameters("lr = 0.1\nepochs = 300\ncfg = {'a': 1, 'b': 2}")

    class Run:
        template, parameters, after = Template, {"lr": 0.3, "cfg": {"a": 5}}, ()

    assert summary.effective_parameters(Run, {}, None) == ({"lr": 0.3, "epochs": 300, "cfg": {"a": 5}}, ["epochs"])
    # A notebook made from another version of the template: its own parameters cell and parameters count.
    executed = tmp_path / "old.ipynb"
    nbformat.write(with_parameters("lr = 0.1\nepochs = 10"), executed)
    made = {"template_code": "code0", "parameters": {"lr": 0.2}}
    assert summary.effective_parameters(Run, made, executed) == ({"lr": 0.2, "epochs": 10}, ["epochs"])


def executed_notebook():
    """What papermill leaves of a failed run: a banner on top, the injected cell, a banner before the failing cell."""
    banner = {"tags": ["papermill-error-cell-tag"]}
    return new_notebook(
        cells=[
            nbformat.v4.new_markdown_cell("An Exception was encountered", metadata=banner),
            nbformat.v4.new_markdown_cell("# template"),
            new_code_cell("x = 1", metadata={"tags": ["parameters"]}),
            new_code_cell("x = 0", metadata={"tags": ["injected-parameters"]}),
            new_code_cell("y = 1"),
            nbformat.v4.new_markdown_cell("stopped here", metadata=banner),
            new_code_cell(
                "\n\n   model.fit(X, y)  \nmore()", outputs=[new_output("error", ename="ValueError", evalue="bad X", traceback=[])]
            ),
        ]
    )


def test_a_failure_names_the_template_cell_and_its_first_line():
    nb = executed_notebook()
    error = describe_failure(RuntimeError("cell failed"), nb)
    assert error == {"ename": "ValueError", "evalue": "bad X", "cell_index": 3, "cell_line": "model.fit(X, y)"}
    assert cells.place(error) == "in cell 4 (`model.fit(X, y)`)"
    assert cells.template_cell(nb, 3) == (None, "injected parameters")
    assert cells.place({"cell_index": None, "cell_line": "injected parameters"}) == "in papermill's injected-parameters cell"
    assert cells.place({}) == "before any cell ran" and cells.first_line("x" * 100).endswith("…")


def test_a_cell_that_was_running_when_the_kernel_died_gets_the_error():
    nb = executed_notebook()
    nb.cells[-1].outputs = []
    nb.cells[-1].metadata["papermill"] = {"status": "running"}
    error = describe_failure(RuntimeError("Kernel died"), nb)
    assert (error["ename"], error["evalue"], error["cell_index"]) == ("RuntimeError", "Kernel died", 3)
    mark_failed_cell(nb, error)
    mark_failed_cell(nb, error)
    assert [o["ename"] for o in nb.cells[-1].outputs] == ["RuntimeError"]


def test_parameters_the_same_in_every_run_are_shown_once():
    rows = [
        index_row(label="a", default_params=["seed"], **{"params.lr": 0.1, "params.seed": 0, "params.gone": None}),
        index_row(label="b", default_params=["seed"], **{"params.lr": 0.3, "params.seed": 0, "params.gone": None}),
    ]
    assert index.split_parameters(rows, ["params.lr", "params.seed", "params.gone"]) == (["params.seed"], ["params.lr"])
    page = index.page(*summary.table(rows), Path("out"))
    assert 'Same in every run: <span class="const default"><b>seed</b> = 0 <small' in page
    assert '<button type="button">seed</button>' not in page and '<button type="button">lr</button>' in page
    assert index.tally([*rows, index_row(status="stale"), index_row(status="not run")]) == "2 ok, 1 stale, 1 not run"


def test_the_last_exception_a_log_names_is_the_error_of_a_failure_nothing_recorded(tmp_path):
    from nbsweep.results.failures import last_exception

    log = tmp_path / "run.log"
    log.write_text(
        "2026-12-03 INFO run t/a executes\nTraceback (most recent call last):\n  File x\nValueError: first\nOSError: [Errno 28] No space left on device\n"
    )
    assert last_exception(log) == ("OSError", "[Errno 28] No space left on device")
    log.write_text("2026-12-03 INFO Executing Cell 1\nxxxxxxxx")
    assert last_exception(log) == (None, None)
    assert last_exception(tmp_path / "missing.log") == (None, None)


def test_runs_into_a_folder_that_cannot_be_written_are_blocked_with_the_runs_waiting_for_them(monkeypatch):
    from nbsweep.smk import writable

    class FakeSweep:
        output_dir = "out"
        runs = {key: key for key in [("t", "stale"), ("t", "current"), ("t", "fine"), ("c", "one"), ("c", "two")]}
        ups = {("c", "one"): [("t", "stale")], ("c", "two"): [("c", "one")]}

        def upstream_keys(self, run):
            return self.ups.get(run, [])

        def is_current(self, run):
            return run != ("t", "stale")

    frozen = {Path("out/t/stale"), Path("out/t/current")}
    monkeypatch.setattr(writable, "unwritable", lambda folder, seen: folder if folder in frozen else None)
    blocked = writable.blocked_runs(FakeSweep())
    assert sorted(blocked) == [("c", "one"), ("c", "two"), ("t", "stale")]  # a current run in such a folder stays as it is
    assert blocked[("t", "stale")].status == "failed" and "out/t/stale cannot be written" in blocked[("t", "stale")].error_message
    assert [blocked[key].status for key in [("c", "one"), ("c", "two")]] == ["not run", "not run"]
    assert blocked[("c", "two")].error_message == "waits for c/one, which failed"


def test_a_folder_that_does_not_exist_yet_is_as_writable_as_the_nearest_one_above(tmp_path):
    from nbsweep.smk.writable import unwritable

    seen: dict = {}
    assert unwritable(tmp_path / "out" / "t" / "a", seen) is None and seen == {tmp_path: True}


def test_logged_artifacts_holding_a_secret_are_masked_copies(tmp_path):
    from nbsweep.results.tracking import masked_copy

    secret = 'ab"c<d>'
    notebook, rendering, clean = tmp_path / "run.ipynb", tmp_path / "run.html", tmp_path / "clean.ipynb"
    nbformat.write(
        new_notebook(cells=[new_code_cell("x", outputs=[new_output("error", ename="E", evalue=f"t {secret}", traceback=[])])]), notebook
    )
    rendering.write_text(f"<pre>{html.escape(secret)}</pre>")
    nbformat.write(new_notebook(cells=[new_code_cell("x")]), clean)
    folder = tmp_path / "copies"
    folder.mkdir()
    copy = masked_copy(notebook, folder, [secret])
    assert copy == folder / "run.ipynb" and nbformat.read(copy, as_version=4).cells[0].outputs[0].evalue == "t ***"
    assert secret not in copy.read_text() and json.dumps(secret)[1:-1] not in copy.read_text()
    assert (folder / "run.html").exists() is False and masked_copy(rendering, folder, [secret]).read_text() == "<pre>***</pre>"
    assert masked_copy(clean, folder, [secret]) == clean and masked_copy(notebook, folder, []) == notebook
