"""Switching --configfile in one folder: notebooks made from other settings are kept aside, and put back
instead of executing when the settings come back; the results name the config files they show."""

import csv
import html
import json

from conftest import ECHO, executions, stdout_of


def write_configs(project) -> None:
    project.notebook("echo", [ECHO], 'PARAMS = ["x"]\nx = 0')
    for name, xs in (("a.yaml", (1, 2, 3)), ("b.yaml", (10, 20, 30))):
        runs = [{"notebook": "notebooks/echo.ipynb", "label": label, "parameters": {"x": x}} for label, x in zip("pqr", xs, strict=True)]
        project.write_config({"runs": runs}, name)


def kept_aside(project) -> dict[str, str]:
    """Run id -> the execution its kept-aside notebook records."""
    found = {}
    for label in "pqr":
        previous = project.target("echo", label).with_suffix(".previous.ipynb")
        if previous.exists():
            found[f"echo/{label}"] = json.loads(previous.read_text())["metadata"]["nbsweep"]["execution"]
    return found


def test_config_a_then_b_then_a_keeps_notebooks_aside_and_executes_nothing_the_third_time(project):
    """Back to a.yaml: a dry-run counts the kept-aside notebooks as current and moves nothing; the
    invocation puts them back and executes nothing."""
    write_configs(project)
    project.snakemake("--configfile", "a.yaml")
    made_by_a = executions(project)
    assert len(made_by_a) == 3 and kept_aside(project) == {}

    to_b = project.snakemake("--configfile", "b.yaml")
    lines = [line for line in to_b.stderr.splitlines() if "kept aside" in line]
    assert len(lines) == 1 and "with b.yaml, 3 notebooks made from other settings" in lines[0], to_b.stderr[-2000:]
    assert "echo/p, echo/q, echo/r" in lines[0]
    made_by_b = executions(project)
    assert kept_aside(project) == made_by_a and set(made_by_b.values()).isdisjoint(made_by_a.values())

    status = project.nbsweep("status", "--configfile", "a.yaml").stdout
    assert status.count("is current: the next invocation puts it back without executing") == 3, status

    dry = project.snakemake("--configfile", "a.yaml", "-n")
    assert "Nothing to be done" in dry.stdout + dry.stderr, dry.stderr[-2000:]
    assert executions(project) == made_by_b and kept_aside(project) == made_by_a

    back = project.snakemake("--configfile", "a.yaml")
    assert executions(project) == made_by_a, back.stderr[-2000:]
    assert kept_aside(project) == made_by_b
    lines = [line for line in back.stderr.splitlines() if "put back" in line]
    assert len(lines) == 1 and "with a.yaml, 3 notebooks kept aside are what their runs would produce" in lines[0]
    assert "ok in" not in back.stderr  # no run executed
    assert 'ECHO{"x": 1}' in stdout_of(project.target("echo", "p"))
    rendering = project.target("echo", "p").with_suffix(".html")
    assert 'ECHO{"x": 1}' in html.unescape(rendering.read_text())  # the renderings swap places too
    assert 'ECHO{"x": 10}' in html.unescape(rendering.with_suffix(".previous.html").read_text())
    with open(project.out / "summary.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [row["config"] for row in rows] == ["a.yaml"] * 3 and all(row["status"] == "ok" for row in rows)
    assert '<p class="meta" id="config">Config: a.yaml</p>' in (project.out / "index.html").read_text()
    assert "3 runs: 3 up to date" in project.nbsweep("status", "--configfile", "a.yaml").stdout
