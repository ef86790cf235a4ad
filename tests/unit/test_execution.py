"""nbsweep.execution: papermill execution's failure records, the warm runner's spares."""

import json
import socket

import nbformat
from nbformat.v4 import new_code_cell, new_notebook, new_output

from nbsweep.execution import warm_server
from nbsweep.execution.execute import describe_failure, mark_failed_cell
from nbsweep.execution.warm_server import request_key
from nbsweep.model import cells


def test_a_spare_fits_only_requests_with_the_same_kernel_directory_and_environment(tmp_path):
    (tmp_path / "job.json").write_text(json.dumps({"kernel": "python3"}))
    request = {"argv": ["job.json", "t.ipynb", "t.log"], "cwd": str(tmp_path), "env": {"A": "1", "B": "2"}, "setting": {"umask": 0o22}}
    key = request_key(request)
    assert key != request_key({**request, "setting": {"umask": 0o77}})
    assert key == request_key({**request, "env": {"B": "2", "A": "1"}, "argv": ["job.json", "u.ipynb", "u.log"]})
    assert key != request_key({**request, "env": {"A": "1", "B": "3"}})
    assert key != request_key({**request, "cwd": str(tmp_path / "elsewhere")})
    (tmp_path / "job.json").write_text(json.dumps({"kernel": "julia"}))
    assert key != request_key(request)
    assert request_key({**request, "argv": ["missing.json", "t.ipynb", "t.log"]})[0] is None


def test_a_spare_that_died_is_skipped_for_a_new_child(monkeypatch):

    ours, theirs = socket.socketpair()
    theirs.close()  # the spare has gone
    spares = [warm_server.Spare(pid=12345, channel=ours, key=("python3", None))]
    monkeypatch.setattr(warm_server, "fork", lambda listener, spares, work, close=(): 999)
    client, _peer = socket.socketpair()
    assert warm_server.hand_over(client, {"argv": []}, [], ("python3", None), spares, listener=None, zygotes={}) == 999
    assert spares == [] and ours.fileno() == -1


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
