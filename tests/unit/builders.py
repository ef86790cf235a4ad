"""Notebooks, configs and plans for the unit tests, built in tmp_path."""

import json
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from nbsweep import packaged
from nbsweep.model.config import (
    load_config,
    load_schema,
)
from nbsweep.model.plan import (
    Planner,
)

SCHEMA = load_schema(packaged.SCHEMA)


def notebook(code="x = 1", markdown="intro", tags=(), kernel="python3"):
    cell = new_code_cell(code)
    cell.metadata["tags"] = list(tags)
    return new_notebook(cells=[new_markdown_cell(markdown), cell], metadata={"kernelspec": {"name": kernel, "display_name": kernel}})


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def plan(tmp_path, text):
    return Planner(load_config([write(tmp_path / "c.yaml", text)], SCHEMA), kernels={"python3"}).plan()


PY = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}


R = {"kernelspec": {"name": "ir", "display_name": "R", "language": "R"}, "language_info": {"name": "R"}}


def code_notebook(*cells, metadata=PY):
    """A notebook of code cells (strings) and other cells (given as nodes)."""
    return new_notebook(cells=[new_code_cell(c) if isinstance(c, str) else c for c in cells], metadata=metadata)


def write_notebook(path, outputs, metadata, source="x = 1", **write_args):
    cell = new_code_cell(source)
    cell.outputs = outputs
    nb = new_notebook(cells=[cell], metadata=metadata)
    if write_args:
        path.write_text(json.dumps(nb, **write_args))
    else:
        nbformat.write(nb, path)
    return path


def executed(path, outputs_by_cell, injected="x = 1", parameters_cell=True, extra=()):
    """An executed notebook as papermill writes it: markdown, parameters, injected parameters, code cells with outputs."""
    cells = [new_markdown_cell("# t")]
    if parameters_cell:
        cells.append(new_code_cell("x = 0", metadata={"tags": ["parameters"]}))
    cells.append(new_code_cell(f"# Parameters\n{injected}\n", metadata={"tags": ["injected-parameters"]}))
    for k, outputs in enumerate(outputs_by_cell):
        cell = new_code_cell(f"step{k}()")
        cell.outputs = outputs
        cells.append(cell)
    cells += [new_code_cell(source) for source in extra]
    nb = new_notebook(cells=cells, metadata={"papermill": {"parameters": {"x": injected}}})
    nbformat.write(nb, path)
    return path
