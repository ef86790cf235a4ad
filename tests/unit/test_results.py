"""nbsweep.results: reading executed notebooks, the summary table, index.html, runs compared, failures, MLflow records."""

import base64
import csv
import html
import io
import json
import os
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

from nbsweep import MIME
from nbsweep.errors import SweepError
from nbsweep.provenance import records
from nbsweep.results import compare, compare_page, index, orphans, summary

from .builders import executed, write_notebook


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
    assert records.metadata_in('{"cells": []}', whole=False) is None


def test_table_orders_columns_and_csv_round_trips():
    rows = [
        {"template": "a", "label": "1", "status": "ok", "stale": False, "params.x": 1, "metrics.acc": 0.5},
        {"template": "b", "label": "2", "status": "failed", "stale": None, "params.y": [1, 2], "params.x": None},
    ]
    columns, full = summary.full_table(rows)
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
    columns, full = summary.full_table(rows)
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
    page = index.page(*summary.full_table(rows), Path("out"))
    data = page.split('<script type="application/json" id="runs-data">')[1].split("</script>")[0]
    assert json.loads(data)[0]["params"]["note"] == "</script><script>alert(1)</script>"
    assert json.loads(data)[0]["metrics"]["x"] is None


def with_parameters(source: str, language: str = "python"):
    cell = new_code_cell(source, metadata={"tags": ["parameters"]})
    return new_notebook(cells=[new_code_cell("x = 99"), cell], metadata={"language_info": {"name": language}})


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


def test_parameters_the_same_in_every_run_are_shown_once():
    rows = [
        index_row(label="a", default_params=["seed"], **{"params.lr": 0.1, "params.seed": 0, "params.gone": None}),
        index_row(label="b", default_params=["seed"], **{"params.lr": 0.3, "params.seed": 0, "params.gone": None}),
    ]
    assert index.split_parameters(rows, ["params.lr", "params.seed", "params.gone"]) == (["params.seed"], ["params.lr"])
    page = index.page(*summary.full_table(rows), Path("out"))
    assert 'Same in every run: <span class="const default"><b>seed</b> = 0 <small' in page
    assert '<button type="button">seed</button>' not in page and '<button type="button">lr</button>' in page
    assert index.tally([*rows, index_row(status="stale"), index_row(status="not run")]) == "2 ok, 1 stale, 1 not run"


def test_the_page_header_names_the_config_files_of_its_rows():
    rows = [index_row(label="a", config="configs/<b>.yaml, extra.yaml"), index_row(label="b", config="configs/<b>.yaml, extra.yaml")]
    columns, full = summary.full_table(rows)
    assert (
        columns[-1] == "config"
        and next(csv.DictReader(io.StringIO(summary.to_csv(columns, full))))["config"] == "configs/<b>.yaml, extra.yaml"
    )
    assert '<p class="meta" id="config">Config: configs/&lt;b&gt;.yaml, extra.yaml</p>' in index.page(columns, full, Path("out"))
    assert 'id="config"' not in index.page(*summary.full_table([index_row(label="a")]), Path("out"))


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


def test_numbers_keep_their_integer_digits_and_long_text_keeps_its_distinguishing_end():
    assert [index.display_text(v) for v in (32561, 45211, 32561.0, 32561.234, 0.123456, 1234.5678, -2.5, 1e20)] == [
        "32561",
        "45211",
        "32561",
        "32561",
        "0.1235",
        "1235",
        "-2.5",
        "1e+20",
    ]
    path = "data/public/uci/adult/adult_full_training_set.csv"
    assert index.shortened(path, 60) == path
    assert index.shortened(path, 40) == "…/uci/adult/adult_full_training_set.csv"
    assert index.shortened(path, 38) == "…/adult/adult_full_training_set.csv"
    assert index.shortened(path, 20) == "…/adult_ful…_set.csv"  # the file name alone is too long: its start and end
    assert index.shortened("a_label_much_too_long_for_its_column", 12) == "a_labe…olumn"
    for limit in range(4, 50):
        assert len(index.shortened(path, limit)) <= limit


def test_long_labels_and_values_are_shortened_in_the_table_with_their_full_text_as_tooltip():
    path = "data/public/uci_machine_learning_repository/adult/adult_training_set.csv"
    label = "adult_full_training_set_with_z_equal_to_1"
    cells = index.value_cell(path) + index.label_cell(label)
    assert f'<td title="{path}">…/adult/adult_training_set.csv</td>' in cells
    assert f'<td class="label" title="{label}">adult_full_train…th_z_equal_to_1</td>' in cells
    assert index.value_cell(32561) == '<td class="num" data-sort="32561" title="32561">32561</td>'


PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAIAAAADCAYAAAC56t6BAAAAEElEQVR4nGP4z8DwnxEIYQAx7gL/8QfNNQAAAABJRU5ErkJggg==")


def image(png=PNG):
    return new_output("display_data", data={"image/png": base64.b64encode(png).decode(), "text/plain": "<Figure size 2x3>"})


def test_outputs_are_normalised_so_that_only_real_differences_count():
    cell = new_code_cell("f()")
    cell.outputs = [
        new_output("stream", name="stdout", text="a"),
        new_output("stream", name="stdout", text="b\n"),  # one print, flushed in two pieces
        new_output("execute_result", data={"text/plain": "<Axes at 0x7f3a2b>"}, execution_count=3),
        new_output("display_data", data={"text/html": "<table/>", "text/plain": "frame"}),
        image(),
        new_output("display_data", data={MIME: {"a": 1}, "text/plain": "nbsweep metrics: a=1"}),
        new_output("error", ename="KeyError", evalue="'x'", traceback=["\x1b[31mKeyError\x1b[0m: 'x'"]),
    ]
    found = compare.outputs_of(cell)
    assert [(o.kind, o.text) for o in found[:2]] == [("stream", "ab\n"), ("text", "<Axes at 0x…>")]
    assert (found[2].kind, found[2].body, found[2].text) == ("html", "<table/>", "frame")
    assert (found[3].kind, found[3].width, found[3].height, found[3].body) == ("image", 2, 3, PNG)
    assert found[3].text.startswith("<image/png 2x3 sha256:")
    assert (found[4].kind, found[4].text) == ("text", "nbsweep metrics: a=1")
    assert (found[5].kind, found[5].text, found[5].body) == ("error", "KeyError: 'x'", "KeyError: 'x'")
    cell.outputs[2]["data"]["text/plain"] = "<Axes at 0x55e0c1>"  # another process, another address
    cell.execution_count = 9
    assert [o.digest for o in compare.outputs_of(cell)] == [o.digest for o in found]
    pending = new_code_cell("g()", metadata={"papermill": {"status": "pending"}})
    assert compare.outputs_of(pending)[0].kind == "pending"


def test_nbsweep_diff_cuts_a_long_diff_and_compares_the_first_lines_of_huge_outputs_unless_full(tmp_path):
    """A cell printing 30,000 lines that all differ: 200 lines of diff and a line saying what was
    left out; ``--full`` prints every line. (difflib takes minutes on outputs of a few hundred
    thousand lines, so only the first 10,000 lines of each are compared by default.)"""
    from nbsweep.cli.reports import COMPARED_LINES, SHOWN_LINES, diff_report

    def printing(tag: str) -> list:
        return [new_output("stream", name="stdout", text="".join(f"{tag} {i}\n" for i in range(30_000)))]

    a = executed(tmp_path / "a.ipynb", [printing("a")])
    b = executed(tmp_path / "b.ipynb", [printing("b")])
    found = compare.compare([compare.Column("a", a), compare.Column("b", b)])
    report = diff_report(found).splitlines()
    cut = [line for line in report if line.startswith("    ")]
    assert len(cut) == SHOWN_LINES + 1 and cut[:2] == ["    --- a", "    +++ b"]
    compared = 2 * COMPARED_LINES + 3  # both sides' first lines, the two names, one hunk header
    assert cut[-1] == (
        f"    … {compared - SHOWN_LINES:,} more lines of this diff of the first 10,000 lines of outputs of up to 30,000"
        " (`nbsweep diff --full` shows all)"
    )
    full = [line for line in diff_report(found, full=True).splitlines() if line.startswith("    ")]
    assert len(full) == 2 * 30_000 + 3 and full[-1] == "    +b 29999"


def test_the_parameters_cell_shows_the_injected_values_and_rows_follow_the_template(tmp_path):
    a = executed(tmp_path / "a.ipynb", [[new_output("stream", name="stdout", text="same\n")], [image()]], "x = 1")
    b = executed(tmp_path / "b.ipynb", [[new_output("stream", name="stdout", text="same\n")], [image(PNG[:-1] + b"!")]], "x = 2")
    found = compare.compare([compare.Column("a", a), compare.Column("b", b)])
    assert [row.title for row in found.rows] == ["cell 1 (`# t`)", "cell 2 (parameters)", "cell 3 (`step0()`)", "cell 4 (`step1()`)"]
    assert [row.same() for row in found.rows] == [True, False, True, False]
    assert found.rows[1].outputs[0][0].text == "x = 1" and not found.same
    assert [row.title for row in found.differing()] == ["cell 2 (parameters)", "cell 4 (`step1()`)"]
    assert found.rows[1].unified(0, 1, ("a", "b"))[2:] == ["@@ -1 +1 @@", "-x = 1", "+x = 2"]
    assert found.rows[3].images_same() is False and found.rows[2].images_same() is None
    assert found.columns[0].parameters == {"x": "x = 1"}  # from papermill's record when none are given
    assert found.varying_parameters() == ["x"]
    assert compare.compare([compare.Column("a", a)], ["same"]).rows[2].outputs[0][0].text == "***\n"  # a secret's value
    alone = executed(tmp_path / "c.ipynb", [[]], "x = 3", parameters_cell=False)
    rows = compare.compare([compare.Column("c", alone)]).rows
    assert [(row.index, row.parameters) for row in rows] == [(0, False), (None, True), (1, False)]
    assert rows[1].title == "injected parameters"


def test_notebooks_of_other_template_code_are_aligned_by_nbdime(tmp_path):
    assert compare.alignment(["a = 1", "b = 2"], ["a = 1", "b = 2"]) == [(0, 0), (1, 1)]
    assert compare.alignment(["import pandas as pd", "df.describe()"], ["df.describe()"]) == [(0, None), (1, 0)]
    new = executed(tmp_path / "new.ipynb", [[new_output("stream", name="stdout", text="1\n")]])
    old = executed(tmp_path / "old.ipynb", [[new_output("stream", name="stdout", text="1\n")]], extra=["print('removed since')"])
    found = compare.compare([compare.Column("old", old, "previous"), compare.Column("new", new)])
    assert [row.title for row in found.rows][-2:] == ["cell 3 (`step0()`)", "extra cell (`print('removed since')`)"]
    assert found.rows[-1].outputs[1] is None and found.rows[-1].outputs[0] == ()
    assert found.rows[2].same() and not found.same


def test_runs_are_named_as_status_names_them_or_by_path(tmp_path):
    out = tmp_path / "out"
    target = out / "t" / "a" / "t_a.ipynb"
    target.parent.mkdir(parents=True)
    executed(target.with_suffix(".failed.ipynb"), [[]])
    column = compare.column_named("t/a", str(out), {("t", "a"): None})
    assert (column.notebook.name, column.status) == ("t_a.failed.ipynb", "failed")
    assert compare.column_named(str(target.with_suffix(".failed.ipynb")), "", {}).status == "failed"
    with pytest.raises(SweepError, match="t/nope names no run of the config"):
        compare.column_named("t/nope", str(out), {})
    for template_alone in ("t", "t/", "t/a/t_a"):  # a template's folder, a path into a run's
        with pytest.raises(SweepError, match=f"{template_alone} names no run of the config"):
            compare.column_named(template_alone, str(out), {("t", "a"): None})
    with pytest.raises(SweepError, match=r"run t/b has no executed notebook yet .*; run snakemake first"):
        compare.column_named("t/b", str(out), {("t", "b"): None})
    with pytest.raises(SweepError, match="run t/a has no previous notebook"):
        compare.previous_columns("t/a", str(out), {("t", "a"): None})
    target.write_text('{"cells": [')  # cut short
    with pytest.raises(SweepError, match=r"run t/a's notebook is not a Jupyter notebook \(.* is not JSON\); delete it and run snakemake"):
        compare.column_named("t/a", str(out), {("t", "a"): None})


def test_a_compare_page_stores_each_output_once_and_is_rewritten_only_when_it_changes(tmp_path):
    out = tmp_path / "out"
    rows = []
    for k in range(4):
        target = out / "t" / f"r{k}" / f"t_r{k}.ipynb"
        target.parent.mkdir(parents=True)
        executed(target, [[image(PNG if k < 3 else PNG[:-1] + b"!")], [new_output("stream", name="stdout", text=f"{k % 2}\n")]], f"k = {k}")
        rows.append({"template": "t", "label": f"r{k}", "status": "ok", "params.k": k, "target": str(target), "notebook": str(target)})
    rows.append({"template": "t", "label": "r4", "status": "not run", "params.k": 4, "target": str(out / "t/r4/t_r4.ipynb")})
    assert compare_page.write_page(out, "t", rows)
    page = out / "t" / "compare.html"
    text = page.read_text()
    data = json.loads(text.split('id="compare-data">')[1].split("</script>")[0])
    assert [run["label"] for run in data["runs"]] == ["r0", "r1", "r2", "r3"] and "Without a notebook: r4" in text
    assert [cell["out"] for cell in data["cells"]][2:] == [[5, 5, 5, 6], [7, 8, 7, 8]]  # each distinct output once
    assert data["runs"][0]["href"] == "r0/t_r0.ipynb" and data["runs"][0]["params"] == {"k": 0}
    assert sorted(p.suffix for p in (out / "t" / "compare.images").iterdir()) == [".png", ".png"]
    written = page.stat().st_mtime_ns
    assert not compare_page.write_page(out, "t", rows)  # its fingerprint is current: no notebook read
    os.utime(rows[0]["target"])  # read again, the same text: not rewritten
    assert not compare_page.write_page(out, "t", rows) and page.stat().st_mtime_ns == written
    executed(Path(rows[3]["target"]), [[image()], [new_output("stream", name="stdout", text="1\n")]], "k = 3")
    assert compare_page.write_page(out, "t", rows)
    assert len(list((out / "t" / "compare.images").iterdir())) == 1  # the image no run shows any more is gone
    (out / "u").write_text("a file where the template's folder would be")
    assert compare_page.write_pages(out, [{**rows[0], "template": "u"}, *rows]) == [
        f"could not write {out / 'u' / 'compare.html'}: File exists"
    ]
    for k in range(4):  # the runs leave the config and their outputs are removed: the page goes with the last
        assert orphans.remove_orphan(out / "t" / f"r{k}") and (out / "t" / "compare.html").exists() == (k < 3)
    assert not (out / "t").exists()


def test_a_compare_page_of_many_runs_each_printing_much_cuts_its_outputs_shorter(tmp_path, monkeypatch):
    monkeypatch.setattr(compare_page, "PAGE_BUDGET", 400_000)
    out, rows = tmp_path / "out", []
    for k in range(40):  # each run prints 50,000 characters and shows a 150,000-character table of its own
        target = out / "t" / f"r{k}" / f"t_r{k}.ipynb"
        target.parent.mkdir(parents=True)
        table = new_output("display_data", data={"text/html": f"<table><td>{k}</td></table>" + "." * 150_000, "text/plain": "table"})
        executed(target, [[new_output("stream", name="stdout", text=f"{k}" * 50_000)], [table]])
        rows.append({"template": "t", "label": f"r{k}", "status": "ok", "target": str(target), "notebook": str(target)})
    compare_page.write_page(out, "t", rows)
    text = (out / "t" / "compare.html").read_text()
    assert len(text) < 2 * 400_000  # 40 x 20,000 characters of text and 40 tables of 150,000 at the usual limits
    data = json.loads(text.split('id="compare-data">')[1].split("</script>")[0])
    assert {piece["t"].endswith("more characters)") for found in data["contents"] for piece in found if piece["k"] == "stream"} == {True}


def test_nbsweep_diff_of_notebook_files_exits_1_when_one_differs_and_2_when_one_is_no_notebook(tmp_path, monkeypatch, capsys):
    from nbsweep.cli.main import command

    monkeypatch.chdir(tmp_path)
    executed(tmp_path / "a.ipynb", [[new_output("stream", name="stdout", text="rows 3\nmean 2.0\n")], [image()]])
    executed(tmp_path / "b.ipynb", [[new_output("stream", name="stdout", text="rows 3\nmean 2.5\n")], [image()]])
    assert command(["diff", "a.ipynb", "a.ipynb"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "all 3 code cells the same"
    assert command(["diff", "a.ipynb", "b.ipynb"]) == 1
    out = capsys.readouterr().out.splitlines()
    at = out.index("cell 3 (`step0()`): differs")
    assert out[at + 1 : at + 7] == [
        "    --- a.ipynb",
        "    +++ b.ipynb",
        "    @@ -1,2 +1,2 @@",
        "     rows 3",
        "    -mean 2.0",
        "    +mean 2.5",
    ]
    assert "cell 4 (`step1()`): same in all 2" in out and out[-1] == "1 of 3 code cells differ"
    executed(tmp_path / "e.ipynb", [[new_output("stream", name="stdout", text="\x1b]0;title\x07\x1b[31mred\x1b[0m\n")], [image()]])
    assert command(["diff", "a.ipynb", "e.ipynb"]) == 1
    assert "    +\\x1b]0;title\\x07red" in capsys.readouterr().out.splitlines()  # an output cannot drive the terminal
    assert command(["diff", "a.ipynb"]) == 2  # as diff(1): 2 when they cannot be compared
    assert capsys.readouterr().err == "nbsweep: nbsweep diff needs two runs or more (or one run with --previous).\n"
    for text, reason in [("{", "c.ipynb is not JSON"), ("[]", "c.ipynb is JSON, but no notebook"), ('{"cells": 3}', "c.ipynb: ")]:
        (tmp_path / "c.ipynb").write_text(text)
        assert command(["diff", "c.ipynb", "a.ipynb"]) == 2
        assert capsys.readouterr().err.startswith(f"nbsweep: c.ipynb is not a Jupyter notebook ({reason}")
