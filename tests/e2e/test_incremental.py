"""End-to-end: fresh runs, no-op re-runs and exactly-what-changed re-runs."""

import json
import os
import shutil
import subprocess

import nbformat
import yaml
from conftest import stdout_of

ALL = {"echo/one", "echo/two", "other/one"}


def test_fresh_run_executes_every_run(echo_built):
    echo_project = echo_built[0]  # the session's fresh sweep of the echo project, read only
    assert echo_project.executed({}) == ALL
    for run in ALL:
        name, label = run.split("/")
        nb = json.loads(echo_project.target(name, label).read_text())
        assert not nb["metadata"]["papermill"]["exception"]
        assert nb["metadata"]["nbsweep"]["status"] == "ok"
        assert echo_project.target(name, label).with_suffix(".log").read_text()
    assert 'ECHO{"x": 2, "y": "b"}' in stdout_of(echo_project.target("echo", "two"))


def test_nothing_changed_runs_nothing(echo_swept):
    echo_project = echo_swept
    before = echo_project.outputs()
    proc = echo_project.snakemake()
    assert echo_project.executed(before) == set()
    assert "Nothing to be done" in proc.stdout + proc.stderr
    dry = echo_project.snakemake("-n")
    assert "Nothing to be done" in dry.stdout + dry.stderr


def test_parameter_change_reruns_only_that_run(echo_swept):
    echo_project = echo_swept
    config = yaml.safe_load((echo_project.root / "config/config.yaml").read_text())
    config["runs"][1]["parameters"]["y"] = "c"
    echo_project.write_config(config)
    dry = echo_project.snakemake("-n")
    assert 'echo/two: parameters changed: y "b" → "c"' in dry.stdout
    assert "echo/one" not in dry.stdout
    before = echo_project.outputs()
    echo_project.snakemake()
    assert echo_project.executed(before) == {"echo/two"}
    assert 'ECHO{"x": 2, "y": "c"}' in stdout_of(echo_project.target("echo", "two"))


def test_reordering_and_reformatting_config_runs_nothing(echo_swept):
    echo_project = echo_swept
    echo_project.write_config(
        """# same runs: other order, flow style, reordered keys, quoting
runs:
- {parameters: {x: 1}, label: 'one', notebook: "notebooks/other.ipynb"}
- parameters:
    y: "b"
    x: 2
  notebook: notebooks/echo.ipynb
  label: two
- {label: one, notebook: notebooks/echo.ipynb, parameters: {x: 1.0e0}, check_types: false}
"""
    )
    before = echo_project.outputs()
    echo_project.snakemake()
    # 1.0e0 is the float 1.0, which is a different parameter value than the int 1.
    assert echo_project.executed(before) == {"echo/one"}
    before = echo_project.outputs()
    echo_project.snakemake()
    assert echo_project.executed(before) == set()


def edit_template(project, name, change):
    path = project.root / "notebooks" / f"{name}.ipynb"
    nb = nbformat.read(path, as_version=4)
    change(nb)
    nbformat.write(nb, path)


def test_template_code_change_reruns_all_its_runs_only(echo_swept):
    echo_project = echo_swept
    edit_template(echo_project, "echo", lambda nb: nb.cells[-1].__setitem__("source", nb.cells[-1].source + "\nprint('edited')"))
    before = echo_project.outputs()
    echo_project.snakemake()
    assert echo_project.executed(before) == {"echo/one", "echo/two"}


def test_template_tag_change_reruns(echo_swept):
    echo_project = echo_swept
    edit_template(echo_project, "other", lambda nb: nb.cells[-1].metadata.__setitem__("tags", ["slow"]))
    before = echo_project.outputs()
    echo_project.snakemake()
    assert echo_project.executed(before) == {"other/one"}


def test_template_kernel_change_reruns(echo_swept):
    echo_project = echo_swept
    echo_project.add_kernel("alt")
    edit_template(echo_project, "other", lambda nb: nb.metadata.kernelspec.__setitem__("name", "alt"))
    before = echo_project.outputs()
    echo_project.snakemake()
    assert echo_project.executed(before) == {"other/one"}
    nb = json.loads(echo_project.target("other", "one").read_text())
    assert nb["metadata"]["nbsweep"]["kernel"] == "alt"


def jupyter_save(nb):
    """What saving in Jupyter without code edits does: outputs, counts and metadata change."""
    for count, cell in enumerate(c for c in nb.cells if c.cell_type == "code"):
        cell.execution_count = count + 7
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="stale output\n")]
        cell.metadata["collapsed"] = True
    nb.metadata["language_info"] = {"name": "python", "version": "3.99"}
    nb.metadata["widgets"] = {"state": {}}


def test_jupyter_save_touch_and_markdown_edit_rerun_nothing(echo_swept):
    echo_project = echo_swept
    edit_template(echo_project, "echo", jupyter_save)
    edit_template(echo_project, "other", lambda nb: nb.cells[0].__setitem__("source", "# reworded intro"))
    for path in (echo_project.root / "notebooks").iterdir():
        os.utime(path)
    (echo_project.root / "config/config.yaml").touch()
    before = echo_project.outputs()
    echo_project.snakemake()
    assert echo_project.executed(before) == set()


def test_git_checkout_round_trip_reruns_nothing(echo_swept):
    echo_project = echo_swept  # swept, then its sources committed (committing touches no file)

    def git(*args):
        return subprocess.run(["git", *args], cwd=echo_project.root, check=True, capture_output=True)

    git("init", "-q", "-b", "main")
    (echo_project.root / ".gitignore").write_text("papermill_outputs/\n.snakemake/\n")
    git("add", "-A")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "base")
    git("checkout", "-q", "-b", "feature")
    edit_template(echo_project, "echo", lambda nb: nb.cells[-1].__setitem__("source", "print('feature')"))
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "feature")
    git("checkout", "-q", "main")
    before = echo_project.outputs()
    echo_project.snakemake()
    assert echo_project.executed(before) == set()


def test_input_content_change_reruns_that_run(echo_project):
    data = echo_project.root / "data.csv"
    data.write_text("a,b\n1,2\n")
    config = yaml.safe_load((echo_project.root / "config/config.yaml").read_text())
    config["runs"][0]["inputs"] = ["data.csv"]
    echo_project.write_config(config)
    echo_project.snakemake()
    data.touch()
    before = echo_project.outputs()
    echo_project.snakemake()
    assert echo_project.executed(before) == set()
    data.write_text("a,b\n1,3\n")
    echo_project.snakemake()
    assert echo_project.executed(before) == {"echo/one"}


def test_losing_snakemake_metadata_changes_nothing(echo_swept):
    echo_project = echo_swept
    shutil.rmtree(echo_project.root / ".snakemake")
    before = echo_project.outputs()
    echo_project.snakemake()
    assert echo_project.executed(before) == set()
    config = yaml.safe_load((echo_project.root / "config/config.yaml").read_text())
    config["runs"][2]["parameters"]["x"] = 5
    echo_project.write_config(config)
    shutil.rmtree(echo_project.root / ".snakemake")
    echo_project.snakemake()
    assert echo_project.executed(before) == {"other/one"}


def test_reverted_change_reruns_nothing(echo_swept):
    """A change planned (e.g. by a dry-run) and then undone is not stale."""
    echo_project = echo_swept
    original = (echo_project.root / "config/config.yaml").read_text()
    config = yaml.safe_load(original)
    config["runs"][0]["parameters"]["x"] = 99
    echo_project.write_config(config)
    echo_project.snakemake("-n")
    echo_project.write_config(original)
    before = echo_project.outputs()
    echo_project.snakemake()
    assert echo_project.executed(before) == set()


def test_adding_a_run_executes_just_it_and_removing_executes_nothing(echo_swept):
    echo_project = echo_swept
    config = yaml.safe_load((echo_project.root / "config/config.yaml").read_text())
    config["runs"].append({"notebook": "notebooks/other.ipynb", "label": "new", "parameters": {"y": "n"}})
    echo_project.write_config(config)
    before = echo_project.outputs()
    echo_project.snakemake()
    assert echo_project.executed(before) == {"other/new"}
    del config["runs"][0]
    echo_project.write_config(config)
    before = echo_project.outputs()
    echo_project.snakemake()
    assert echo_project.executed(before) == set()


BINS = ["import json\nprint('ECHO' + json.dumps({'bins': bins, 'seed': seed}))"]


def status_lines(project) -> dict[str, str]:
    """Run id -> its state and detail in `nbsweep status` (spaces collapsed)."""
    proc = project.nbsweep("status")
    assert proc.returncode == 0, proc.stderr
    found = {}
    for line in proc.stdout.splitlines()[1:]:
        if not line.strip():
            break
        run, rest = line.split(None, 1)
        found[run] = " ".join(rest.split())
    return found


def bins_project(project, bins: dict) -> None:
    """Template ``hist`` (``bins = 40``) and two runs, with ``bins`` in both runs' parameters."""
    project.notebook("hist", BINS, "bins = 40\nseed = 0")
    runs = [
        {"notebook": "notebooks/hist.ipynb", "label": label, "parameters": {"seed": seed, **bins}} for label, seed in (("a", 1), ("b", 2))
    ]
    project.write_config({"runs": runs})


def test_writing_a_default_into_the_config_reruns_nothing(project):
    bins_project(project, {})
    project.snakemake()
    bins_project(project, {"bins": 40})  # the template's own default
    before = project.outputs()
    proc = project.snakemake()
    assert project.executed(before) == set() and "Nothing to be done" in proc.stdout + proc.stderr
    assert status_lines(project) == {"hist/a": "up to date", "hist/b": "up to date"}

    bins_project(project, {"bins": 41})
    assert status_lines(project)["hist/a"] == "stale parameters changed: bins 40 → 41"
    project.snakemake()
    assert project.executed(before) == {"hist/a", "hist/b"} and 'ECHO{"bins": 41, "seed": 1}' in stdout_of(project.target("hist", "a"))
    bins_project(project, {})  # back to the default: the notebooks were made with 41, those made with 40 are kept aside
    assert status_lines(project)["hist/a"] == (
        "stale parameters changed: bins 41 → 40; the notebook kept aside at "
        "papermill_outputs/hist/a/hist_a.previous.ipynb is current: the next invocation puts it back without executing"
    )


def stamp_as_before_effective_parameters(notebook) -> None:
    """Rewrite a notebook's record as nbsweep stamped it before effective parameters were hashed:
    no ``defaults``, and a fingerprint of the given parameters (records.FINGERPRINT_KEYS then)."""
    from nbsweep.canonical import digest

    nb = nbformat.read(notebook, as_version=4)
    record = dict(nb.metadata["nbsweep"])
    record.pop("defaults")
    record["fingerprint"] = digest({key: record[key] for key in ("template_code", "kernel", "parameters", "inputs")})
    nb.metadata["nbsweep"] = record
    stat = notebook.stat()
    nbformat.write(nb, notebook)
    os.utime(notebook, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_notebooks_stamped_before_effective_parameters_stay_current(project):
    bins_project(project, {})
    project.snakemake()
    for label in ("a", "b"):
        stamp_as_before_effective_parameters(project.target("hist", label))
    assert "defaults" not in project.record("hist", "a")
    before = project.outputs()
    proc = project.snakemake()
    assert project.executed(before) == set() and "Nothing to be done" in proc.stdout + proc.stderr
    assert status_lines(project) == {"hist/a": "up to date", "hist/b": "up to date"}
    bins_project(project, {"bins": 40})  # the default, written out: still current
    project.snakemake()
    assert project.executed(before) == set() and status_lines(project) == {"hist/a": "up to date", "hist/b": "up to date"}

    bins_project(project, {"bins": 20})
    assert status_lines(project)["hist/b"] == "stale parameters changed: bins 40 → 20"
    project.snakemake()
    assert project.executed(before) == {"hist/a", "hist/b"} and project.record("hist", "b")["defaults"] == {"bins": 40, "seed": 0}
