"""Bad input: one clear sentence naming file, run and fix; non-zero exit; no output touched."""

import nbformat
import pytest
from conftest import planned_refusal
from nbformat.v4 import new_code_cell, new_notebook

GOOD = [{"notebook": "notebooks/echo.ipynb", "label": "ok", "parameters": {"x": 1}}]


@pytest.fixture(scope="module")
def done(tmp_path_factory):
    """A project with one finished run, planned once for the whole module."""
    from conftest import Project

    project = Project(tmp_path_factory.mktemp("bad"))
    project.notebook("echo", ["print(x)"], "x = 0")
    project.notebook("plain", ["print(config)"])
    (project.root / "notebooks" / "broken.ipynb").write_text('{"cells": [')  # cut short
    first, second = new_code_cell("x = 0"), new_code_cell("x = 5")
    first.metadata["tags"] = second.metadata["tags"] = ["parameters"]
    cells = [new_code_cell("import math"), first, new_code_cell("y = 1"), second, new_code_cell("print(x)")]
    nbformat.write(
        new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "P"}}),
        project.root / "notebooks" / "twice.ipynb",
    )
    project.write_config({"runs": GOOD})
    project.snakemake()
    return project


def run(**extra):
    return {"notebook": "notebooks/echo.ipynb", "label": "new", **extra}


CASES = {
    "invalid yaml": ("runs: [\n  - {notebook: x", ["config/config.yaml", "not valid YAML", "line"]),
    "not a mapping": ("- just\n- a list\n", ["config/config.yaml", "mapping"]),
    "empty file": ("", ["config/config.yaml", "mapping"]),
    "schema type": ({"runs": GOOD + [run(threads="two")]}, ["run #2 ('new')", "'threads' must be integer"]),
    "unknown key": ({"runs": GOOD + [run(lable="x")]}, ["run #2", "unknown key 'lable'"]),
    "missing notebook": ({"runs": GOOD + [run(notebook="notebooks/nope.ipynb")]}, ["run #2", "notebooks/nope.ipynb does not exist"]),
    "broken notebook": (
        {"runs": GOOD + [run(notebook="notebooks/broken.ipynb")]},
        ["run #2", "notebooks/broken.ipynb is not a readable Jupyter notebook", "repair it (restore it, or open and save it in Jupyter)"],
    ),
    "empty label": ({"runs": GOOD + [run(label="")]}, ["run #2", "label '' is not path-safe"]),
    "duplicate label": ({"runs": GOOD + [run(label="ok")]}, ["run #2 ('ok')", "already used by", "run #1"]),
    "parent dir label": ({"runs": GOOD + [run(label="../x")]}, ["label '../x' is not path-safe", "e.g. 'x'"]),
    "absolute label": ({"runs": GOOD + [run(label="/abs")]}, ["label '/abs' is not path-safe"]),
    "label with spaces": ({"runs": GOOD + [run(label="my run")]}, ["label 'my run' is not path-safe", "e.g. 'my-run'"]),
    "label Snakemake takes for a recursion": (
        {"runs": GOOD + [run(label="r" + "b" * 28)]},
        ["run #2", f"label 'r{'b' * 28}' ends in 'b' repeated 28 times", "e.g. 'rbx28'"],
    ),
    "grid collision": ({"runs": GOOD + [run(label="x{x}", grid={"x": [1, 1]})]}, ["gives 'x1' for both"]),
    "grid label key": ({"runs": GOOD + [run(label="v{y}", grid={"x": [1, 2]})]}, ["names {y}, which is not a grid key"]),
    "label indexing a number": ({"runs": GOOD + [run(label="v{x[0]}", grid={"x": [1, 2]})]}, ["label pattern 'v{x[0]}' is malformed"]),
    "label reaching into internals": (
        {"runs": GOOD + [run(label="{x.__class__}", grid={"x": [1, 2]})]},
        ["label pattern '{x.__class__}' is malformed", "starts with '_'"],
    ),
    "undeclared parameter": ({"runs": GOOD + [run(parameters={"z": 1})]}, ["parameter 'z' is not declared", "(declared: x)"]),
    "missing kernel": ({"runs": GOOD + [run(kernel="julia-9")]}, ["kernel 'julia-9' is not installed", "python3"]),
    "missing input": ({"runs": GOOD + [run(inputs=["data/none.csv"])]}, ["input file 'data/none.csv' does not exist"]),
    "date parameter": (
        "runs:\n  - {notebook: notebooks/echo.ipynb, label: d, parameters: {x: 2024-01-01}}\n",
        ["not JSON-like", "quote dates"],
    ),
    "alias bomb": (
        "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        + "".join(f"{n}: &{n} [{', '.join([f'*{p}'] * 10)}]\n" for p, n in zip("abcdefgh", "bcdefghi", strict=True))
        + "runs: [{notebook: notebooks/echo.ipynb, label: b, parameters: {x: *i}}]\n",
        ["expands to more than 1,000,000 values"],
    ),
    "recursive alias": ("runs: &r [{notebook: notebooks/echo.ipynb, label: b, parameters: {x: *r}}]\n", ["refers to itself"]),
    "non-utf8": (b"runs: [\xff\xfe]\n", ["not UTF-8"]),
    "duplicate key": (
        "runs:\n  - notebook: notebooks/echo.ipynb\n    label: d\n    label: e\n",
        ["config/config.yaml", "'label' appears twice", "line 4"],
    ),
    "int parameter key": (
        "runs:\n  - {notebook: notebooks/plain.ipynb, label: k, parameters: {1: one}}\n",
        ["run #1 ('k')", "key 1 under 'parameters' is not text"],
    ),
    "bool grid key": ("runs:\n  - {notebook: notebooks/plain.ipynb, grid: {true: [1]}}\n", ["run #1", "key True under 'grid' is not text"]),
    "keyword parameter": (
        {"runs": [{"notebook": "notebooks/plain.ipynb", "label": "k", "parameters": {"class": 1}}]},
        ["run #1 ('k')", "parameter 'class' is a Python keyword", "'class_'"],
    ),
    "infinite timeout": (
        "runs:\n  - {notebook: notebooks/echo.ipynb, label: t, timeout: .inf}\n",
        ["run #1 ('t')", "timeout inf is not a number of seconds"],
    ),
    "mem_mb lots": (
        {"runs": GOOD + [run(resources={"mem_mb": "lots"})]},
        ["run #2 ('new')", "resource mem_mb: 'lots' is not something Snakemake can read", "give a number"],
    ),
    "mem lots": ({"runs": GOOD + [run(resources={"mem": "lots"})]}, ["resource mem: 'lots'", "a size such as '4GB'"]),
    "runtime soon": (
        {"defaults": {"resources": {"runtime": "soon"}}, "runs": GOOD},
        ["config/config.yaml: defaults: resource runtime: 'soon'", "'2h'"],
    ),
    "mem twice": ({"runs": GOOD + [run(resources={"mem": "1GB", "mem_mb": 100})]}, ["resources set both 'mem' and 'mem_mb'"]),
    "runs not a list": ({"runs": "notalist"}, ["config/config.yaml: 'runs' must be array"]),
    "two parameters cells": (
        {"runs": GOOD + [{"notebook": "notebooks/twice.ipynb", "label": "t"}]},
        ["run #2 ('t')", "notebooks/twice.ipynb has 2 cells tagged 'parameters' (cells 2 and 4"],
    ),
    "nan parameter": (
        "runs:\n  - {notebook: notebooks/echo.ipynb, label: n, parameters: {x: .nan}}\n",
        ["run #1 ('n')", "parameter 'x' is nan", "JSON"],
    ),
    "inf in a grid": ("runs:\n  - {notebook: notebooks/echo.ipynb, grid: {x: [1, .inf]}}\n", ["run #1", "parameter 'x' is inf"]),
    "nested -inf": (
        "runs:\n  - {notebook: notebooks/echo.ipynb, label: n, parameters: {x: {a: [0, -.inf]}}}\n",
        ["parameter 'x.a[1]' is -inf"],
    ),
}


# One case of each kind of check, through Snakemake: reading the file, the schema, labels, grids,
# templates, kernels, inputs and resources. test_reliability's fuzzed files go through it too.
THROUGH_SNAKEMAKE = [
    "invalid yaml",
    "unknown key",
    "missing notebook",
    "parent dir label",
    "grid collision",
    "two parameters cells",
    "missing kernel",
    "missing input",
    "mem_mb lots",
]


def with_config(project, content, check):
    """``check()``'s result with ``content`` as the project's config/config.yaml (put back after)."""
    path = project.root / "config/config.yaml"
    original = path.read_bytes()
    try:
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            project.write_config(content)
        return check()
    finally:
        path.write_bytes(original)


def assert_refused(message: str, expected: list[str]) -> None:
    for fragment in expected:
        assert fragment in message, message


@pytest.mark.parametrize("case", CASES)
def test_bad_config_gives_one_sentence_and_touches_nothing(done, case, monkeypatch):
    """Every case, planned in this process as Snakemake's main process plans it (``planned_refusal``)."""
    content, expected = CASES[case]
    before = done.outputs()
    message = with_config(done, content, lambda: planned_refusal(done, ["config/config.yaml"], monkeypatch))
    assert_refused(message, expected)
    assert done.outputs() == before


@pytest.mark.parametrize("case", THROUGH_SNAKEMAKE)
def test_bad_config_through_snakemake_exits_with_one_sentence_and_no_traceback(done, case):
    content, expected = CASES[case]
    before = done.outputs()
    proc = with_config(done, content, lambda: done.snakemake(check=False))
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    message = [line for line in proc.stderr.splitlines() if line.startswith("nbsweep: ")]
    assert len(message) == 1, proc.stderr
    assert_refused(message[0], expected)
    assert done.outputs() == before


def test_bad_seed_entry_and_snakemake_level_json_error(done):
    bad_seed = done.root / "seed.json"
    bad_seed.write_text('{"config_a": {"notebook": "notebooks/plain.ipynb"}}')
    proc = done.snakemake("--configfile", str(bad_seed), check=False)
    assert proc.returncode != 0 and "entry 'config_a' has no output_label" in proc.stderr
    broken = done.root / "broken.json"
    broken.write_text('{"runs": [')
    before = done.outputs()
    proc = done.snakemake("--configfile", str(broken), check=False)
    # Snakemake itself parses --configfile files, before the workflow; nbsweep's console names the file.
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert f"nbsweep: {broken} is not valid JSON (line 1, column 11: Expecting value); fix the syntax." in proc.stderr.splitlines()
    assert done.outputs() == before


def test_undeclared_parameters_are_fine_without_a_parameters_cell(done):
    config = {"runs": GOOD + [{"notebook": "notebooks/plain.ipynb", "label": "p", "parameters": {"config": {"a": 1}}}]}
    done.write_config(config)
    try:
        proc = done.snakemake("-n")
    finally:
        done.write_config({"runs": GOOD})
    assert "plain/p: never run" in proc.stdout
