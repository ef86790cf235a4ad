"""``python -m nbsweep status``: each staleness reason, failures, orphans, and speed on 1,000 runs."""

import json
import subprocess

import nbformat
from conftest import SNAKEMAKE
from nbformat.v4 import new_notebook

from nbsweep import layout
from nbsweep.packaged import SCHEMA
from nbsweep.provenance.jobs import job_document
from nbsweep.provenance.state import planned
from nbsweep.provenance.sweep import Sweep

ECHO = ["if x < 0:\n    raise ValueError('negative x')", "print('ECHO', x)"]


def states(output: str) -> dict[str, tuple[str, str]]:
    """run id -> (state, detail) from the status table."""
    found = {}
    for line in output.splitlines()[1:]:
        if not line.strip():
            break
        run, rest = line.split(None, 1)
        state = next(s for s in ("up to date", "stale", "failed", "interrupted", "missing") if rest.startswith(s))
        found[run] = (state, rest[len(state) :].strip())
    return found


def test_status_explains_each_run_and_changes_nothing(project):
    project.add_kernel("py2")
    project.notebook("echo", ECHO, "x = 0")
    project.notebook("other", ECHO, "x = 0")
    (project.root / "data.csv").write_text("a\n1\n")
    runs = {
        label: {"notebook": "notebooks/echo.ipynb", "label": label, "parameters": {"x": x}}
        for label, x in [("p", 2), ("k", 1), ("i", 1), ("u", 1), ("old", 1), ("f", -1)]
    }
    runs["i"]["inputs"] = ["data.csv"]
    runs["c"] = {"notebook": "notebooks/other.ipynb", "label": "c", "parameters": {"x": 1}}
    project.write_config({"runs": list(runs.values())})
    project.snakemake(check=False)
    assert states(project.nbsweep("status").stdout) == {
        **{f"echo/{label}": ("up to date", "") for label in ("p", "k", "i", "u", "old")},
        "echo/f": ("failed", "ValueError: negative x in cell 3 (`if x < 0:`); see papermill_outputs/echo/f/echo_f.failed.ipynb"),
        "other/c": ("up to date", ""),
    }

    runs["p"]["parameters"]["x"] = 3
    runs["k"]["kernel"] = "py2"
    (project.root / "data.csv").write_text("a\n2\n")
    del runs["old"]
    runs["new"] = {"notebook": "notebooks/echo.ipynb", "label": "new"}
    project.write_config({"runs": list(runs.values())})
    project.notebook("other", [*ECHO, "print('more')"], "x = 0")
    before = project.outputs()
    proc = project.nbsweep("status")
    assert proc.returncode == 0 and project.outputs() == before
    assert states(proc.stdout) == {
        "echo/p": ("stale", "parameters changed: x 2 → 3"),
        "echo/k": ("stale", "kernel changed: python3 → py2"),
        "echo/i": ("stale", "input data.csv changed"),
        "echo/u": ("up to date", ""),
        "echo/f": ("failed", "ValueError: negative x in cell 3 (`if x < 0:`); see papermill_outputs/echo/f/echo_f.failed.ipynb"),
        "other/c": ("stale", "template code changed in cell 5 (`print('more')`)"),
        "echo/new": ("missing", "not run yet"),
    }
    assert "7 runs: 1 up to date, 4 stale, 1 failed, 1 missing" in proc.stdout
    assert (
        "outputs of 1 run no longer in the config (delete them with --remove-orphans):" in proc.stdout
        and "papermill_outputs/echo/old/" in proc.stdout
    )

    # Snakemake agrees: exactly the stale, failed and missing runs would run, for the same reasons.
    dry = project.snakemake("-n")
    assert [line for line in dry.stdout.splitlines() if line.startswith(("echo/", "other/", "nbsweep: "))] == [
        "echo/p: parameters changed: x 2 → 3",
        "echo/k: kernel changed: python3 → py2",
        "echo/i: input data.csv changed",
        "echo/f: failed last time",
        "other/c: template code changed in cell 5 (`print('more')`)",
        "echo/new: never run",
        "nbsweep: 6 runs would execute (Snakemake's reasons: --verbose)",
    ]

    proc = project.nbsweep("status", "--remove-orphans")
    assert "removed the outputs of 1 run no longer in the config" in proc.stdout
    assert not (project.out / "echo" / "old").exists() and (project.out / "echo" / "u").is_dir()
    assert "no longer in the config" not in project.nbsweep("status").stdout


def test_status_cut_short_by_its_reader_ends_without_a_traceback(project):
    """`nbsweep status | head -1`: more output than a pipe holds, its reader gone after one line."""
    project.notebook("echo", ECHO, "x = 0")
    project.write_config({"runs": [{"notebook": "notebooks/echo.ipynb", "label": "x{x}", "grid": {"x": list(range(3000))}}]})
    nbsweep = " ".join([*SNAKEMAKE[:1], "-m", "nbsweep"])
    proc = subprocess.run(
        ["bash", "-c", f"{nbsweep} status | head -1; echo ${{PIPESTATUS[0]}} >&2"], cwd=project.root, capture_output=True, text=True
    )
    assert proc.stdout.split() == ["run", "state", "detail"]
    assert proc.stderr.strip() == "1", proc.stderr  # SIGPIPE's exit status as Python docs advise, and not a word


def test_bad_config_is_one_sentence(project):
    project.write_config("runs: [")
    proc = project.nbsweep("status")
    assert proc.returncode == 1 and proc.stderr.startswith("nbsweep: config/config.yaml is not valid YAML")
    assert "Traceback" not in proc.stderr


def test_status_of_1000_big_notebooks(project, monkeypatch):
    """Status reads the record at the end of each notebook (its speed is measured in bench/, not here)."""
    project.notebook("grid", ["print(a, b)"], "a = 0\nb = 0")
    project.write_config(
        {"runs": [{"notebook": "notebooks/grid.ipynb", "label": "a{a}-b{b}", "grid": {"a": list(range(40)), "b": list(range(25))}}]}
    )
    monkeypatch.chdir(project.root)
    sweep = Sweep.load([], SCHEMA)
    filler = nbformat.v4.new_code_cell("print('x')", outputs=[nbformat.v4.new_output("stream", name="stdout", text="x" * 20_000)])
    for run in sweep.runs.values():
        doc = job_document(run, planned(run, {}))
        target = layout.target(sweep.output_dir, run.name, run.label)
        target.parent.mkdir(parents=True)
        nb = new_notebook(
            cells=[filler],
            metadata={"nbsweep": {key: doc[key] for key in ("fingerprint", "template_code", "kernel", "parameters", "inputs")}},
        )
        target.write_text(json.dumps(nb, indent=1, sort_keys=True))
    proc = project.nbsweep("status")
    assert "1000 runs: 1000 up to date" in proc.stdout
