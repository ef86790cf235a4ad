"""Every executed notebook is rendered beside itself; a failing rerun keeps the last good notebook."""

import json

from conftest import stdout_of

CODE = [
    "from nbsweep import record\nif x == 0:\n    raise ZeroDivisionError('x must not be zero')\nrecord(inverse=1 / x)\nprint('ECHO', 1 / x)"
]


def calc(project, xs=(1, 0, 2), **extra):
    project.notebook("calc", CODE, "x = 1")
    project.write_config({"runs": [{"notebook": "notebooks/calc.ipynb", "label": "x{x}", "grid": {"x": list(xs)}, **extra}]})
    return project


def test_ok_and_failed_runs_are_rendered_and_linked_first(project):
    calc(project)
    assert project.snakemake(check=False).returncode != 0
    ok, failed = project.target("calc", "x1"), project.target("calc", "x0")
    html = ok.with_suffix(".html").read_text()
    assert "ECHO 1.0" in html and 'src="http' not in html
    failed_html = failed.with_suffix(".failed.html").read_text()
    assert "x must not be zero" in failed_html
    rows = {r["label"]: r for r in json.loads((project.out / "summary.json").read_text())}
    assert rows["x1"]["html"] == str(ok.with_suffix(".html").relative_to(project.root))
    assert rows["x0"]["html"] == str(failed.with_suffix(".failed.html").relative_to(project.root))
    page = (project.out / "index.html").read_text()
    for label, name in (("x1", "calc_x1.html"), ("x0", "calc_x0.failed.html")):
        files = page.split(f'data-run="calc/{label}"')[1].split("</tr>")[0]
        assert files.index(name) < files.index(".ipynb")  # the rendering is the first link


def test_render_false_writes_no_rendering(project):
    calc(project, xs=(1,), render=False)
    project.snakemake()
    assert not project.target("calc", "x1").with_suffix(".html").exists()


def test_a_failing_rerun_keeps_the_last_good_notebook_until_a_new_one_replaces_it(project):
    calc(project, xs=(1,))
    project.snakemake()
    target = project.target("calc", "x1")
    good = target.read_text()
    previous = target.with_suffix(".previous.ipynb")
    # A template edit that raises: the rerun fails, Snakemake removed the target, the old notebook stays.
    project.notebook("calc", ["raise RuntimeError('broken edit')"], "x = 1")
    proc = project.snakemake(check=False)
    assert proc.returncode != 0 and not target.exists()
    assert previous.read_text() == good and "ECHO 1.0" in stdout_of(previous)
    assert target.with_suffix(".previous.log").read_text()
    assert f"the previous good notebook is kept at {previous.relative_to(project.root)}" in proc.stderr
    assert f"the previous good notebook is kept at {previous.relative_to(project.root)}" in project.nbsweep("status").stdout
    row = json.loads((project.out / "summary.json").read_text())[0]
    assert row["status"] == "failed" and row["previous"] == str(previous.relative_to(project.root))
    # Failing again keeps it; a fixed template replaces it.
    assert project.snakemake("--forcerun", "nbsweep_run", check=False).returncode != 0
    assert previous.read_text() == good
    calc(project, xs=(1,))
    project.notebook("calc", [CODE[0] + "\nprint('fixed')"], "x = 1")
    project.snakemake()
    assert "fixed" in stdout_of(target) and not previous.exists() and not target.with_suffix(".failed.ipynb").exists()
