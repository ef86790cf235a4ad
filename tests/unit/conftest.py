"""Fixtures of the unit tests: template folders to plan from."""

import nbformat
import pytest
from nbformat.v4 import new_code_cell

from .builders import R, code_notebook, notebook


@pytest.fixture
def templates(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "nb").mkdir()
    with_params = notebook(code="alpha = 1\nbeta = 2", tags=["parameters"])
    nbformat.write(with_params, tmp_path / "nb" / "t.ipynb")
    nbformat.write(notebook(), tmp_path / "nb" / "plain.ipynb")
    return tmp_path


@pytest.fixture
def secret_templates(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "nb").mkdir()
    params = new_code_cell('token = ""\nn = 1', metadata={"tags": ["parameters"]})
    nbformat.write(code_notebook(params, "print(n)"), tmp_path / "nb" / "t.ipynb")
    nbformat.write(code_notebook("print(1)"), tmp_path / "nb" / "plain.ipynb")
    r_params = new_code_cell('token <- ""', metadata={"tags": ["parameters"]})
    nbformat.write(
        code_notebook(r_params, metadata={**R, "kernelspec": {**R["kernelspec"], "name": "python3"}}), tmp_path / "nb" / "r.ipynb"
    )
    jl = new_code_cell('token = ""', metadata={"tags": ["parameters"]})
    nbformat.write(
        code_notebook(jl, metadata={"kernelspec": {"name": "python3", "display_name": "J", "language": "julia"}}),
        tmp_path / "nb" / "jl.ipynb",
    )
    return tmp_path
