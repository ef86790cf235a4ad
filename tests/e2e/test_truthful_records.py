"""What an executed notebook records is exactly what ran: the template code it executed, the input
data it read, whatever the modification times, however much it prints."""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
import yaml
from conftest import Project, make_echo, make_notebook, one_sentence, stdout_of

from nbsweep.file_digests import file_digest
from nbsweep.model.templates import code_digest, read_notebook
from nbsweep.provenance.records import CHANGED_WHILE_READ, Provenance, explain, read_record

SWAP_KERNEL = """\
import os, runpy, sys
if not os.path.exists("swapped"):  # once: the template is saved while the run's kernel starts
    os.replace("notebooks/saved.ipynb", "notebooks/t.ipynb")
    open("swapped", "w").close()
sys.argv = ["ipykernel_launcher", *sys.argv[1:]]
runpy.run_module("ipykernel_launcher", run_name="__main__")
"""


def status(project) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "nbsweep", "status"], cwd=project.root, env=project.env, capture_output=True, text=True, timeout=120
    )
    return proc.stdout + proc.stderr


def stale_in_dry_run(project) -> str:
    return project.snakemake("-n", "--verbose").stdout  # Snakemake's job blocks, with their outputs


@pytest.mark.parametrize("warm", ["0", "1"])
def test_a_template_saved_while_the_kernel_starts_is_recorded_as_what_ran(project, warm, monkeypatch):
    # The kernel of this run saves a new version of the template as it starts: after the job read
    # the template, before papermill would have read it again (the race of a save in Jupyter).
    monkeypatch.setenv("NBSWEEP_WARM_RUNNER", warm)
    make_notebook(project.root / "notebooks/t.ipynb", ["print('version A')"], "x = 0")
    make_notebook(project.root / "notebooks/saved.ipynb", ["print('version B')"], "x = 0")
    project.add_kernel("swapping")
    spec = project.root / "share/jupyter/kernels/swapping/kernel.json"
    (project.root / "swap_kernel.py").write_text(SWAP_KERNEL)
    spec.write_text(
        json.dumps(
            {**json.loads(spec.read_text()), "argv": [sys.executable, str(project.root / "swap_kernel.py"), "-f", "{connection_file}"]}
        )
    )
    project.write_config({"runs": [{"notebook": "notebooks/t.ipynb", "label": "one", "kernel": "swapping", "parameters": {"x": 1}}]})
    project.snakemake()
    assert (project.root / "swapped").exists()
    target = project.target("t", "one")
    versions = {}
    for version in ("A", "B"):
        make_notebook(project.root / "notebooks/t.ipynb", [f"print('version {version}')"], "x = 0")
        versions[version] = code_digest(read_notebook(str(project.root / "notebooks/t.ipynb")))
    ran = "B" if "version B" in stdout_of(target) else "A"
    if warm == "0":
        assert ran == "A"  # the template as the job read it, before its kernel started
    assert read_record(target)["template_code"] == versions[ran]
    other = "A" if ran == "B" else "B"
    make_notebook(project.root / "notebooks/t.ipynb", [f"print('version {other}')"], "x = 0")
    assert "output: papermill_outputs/t/one/t_one.ipynb" in stale_in_dry_run(project)
    assert "template code changed" in status(project)


def test_an_input_replaced_while_runs_read_it_leaves_them_stale(project):
    data = project.root / "data/x.csv"
    data.parent.mkdir()
    data.write_text("old\n")
    code = [
        "print('READ', open('data/x.csv').read().strip())\n"
        "if replace:\n"
        "    open('data/x.tmp', 'w').write('new\\n')\n"
        "    __import__('os').replace('data/x.tmp', 'data/x.csv')"
    ]
    project.notebook("reader", code, "replace = False")
    runs = [{"notebook": "notebooks/reader.ipynb", "label": label, "inputs": ["data/x.csv"]} for label in ("first", "second", "third")]
    runs[0]["parameters"] = {"replace": True}
    project.write_config({"runs": runs})
    proc = project.snakemake(cores=1)  # one at a time, in config order
    assert "nbsweep: run reader/first: input data/x.csv changed while the run read it; the run stays stale" in proc.stderr
    first = read_record(project.target("reader", "first"))
    assert first["inputs"] == {"data/x.csv": CHANGED_WHILE_READ} and first["status"] == "ok"
    new = file_digest(data)
    for label in ("second", "third"):
        assert "READ new" in stdout_of(project.target("reader", label))
        assert read_record(project.target("reader", label))["inputs"] == {"data/x.csv": new}
    data.write_text("old\n")  # put back after the sweep
    dry = stale_in_dry_run(project)
    for label in ("first", "second", "third"):
        assert f"output: papermill_outputs/reader/{label}/reader_{label}.ipynb" in dry
    explained = status(project)
    assert "reader/first   stale       input data/x.csv changed while the run read it" in explained and "3 runs: 3 stale" in explained


@pytest.fixture(scope="session")
def echo_with_input(tmp_path_factory) -> Project:
    """The echo project whose run echo/one reads data.csv, swept once per test process (copied by each test)."""
    project = make_echo(Project(tmp_path_factory.mktemp("echo-input")))
    (project.root / "data.csv").write_text("a\n")
    config = yaml.safe_load((project.root / "config/config.yaml").read_text())
    config["runs"][0]["inputs"] = ["data.csv"]
    project.write_config(config)
    project.snakemake()
    return project


@pytest.mark.parametrize("when", ["future", "past"])
@pytest.mark.parametrize("dated", ["target", "input"])
def test_a_changed_fingerprint_executes_whatever_the_modification_times(echo_with_input, project, dated, when):
    shutil.copytree(echo_with_input.root, project.root, symlinks=True, dirs_exist_ok=True)
    echo_project, data = project, project.root / "data.csv"
    config = yaml.safe_load((echo_project.root / "config/config.yaml").read_text())
    stamp = time.time() + (2 if when == "future" else -400) * 86400
    os.utime(echo_project.target("echo", "one") if dated == "target" else data, (stamp, stamp))
    assert "Nothing to be done" in echo_project.snakemake("-n").stdout  # dates alone change nothing
    config["runs"][0]["parameters"]["x"] = 5
    echo_project.write_config(config)
    assert "output: papermill_outputs/echo/one/echo_one.ipynb" in stale_in_dry_run(echo_project)
    before = echo_project.outputs()
    echo_project.snakemake()
    assert echo_project.executed(before) == {"echo/one"}
    assert 'ECHO{"x": 5, "y": "a"}' in stdout_of(echo_project.target("echo", "one"))
    assert "Nothing to be done" in echo_project.snakemake("-n").stdout


def test_a_run_printing_tens_of_megabytes_succeeds(project):
    # 60 MB in big writes: the kernel is done long before its output has arrived (nbclient's 4 s
    # iopub_timeout failed 3 of 4 such runs on a loaded machine)
    project.notebook("loud", ["for _ in range(60):\n    print('x' * 10**6)", "print('done')"])
    project.write_config({"runs": [{"notebook": "notebooks/loud.ipynb", "label": "big", "timeout": None}]})
    proc = project.snakemake()
    assert "run loud/big ok" in proc.stderr
    assert stdout_of(project.target("loud", "big")).endswith("done\n")


def test_mapping_parameters_arrive_in_config_order_and_another_order_is_another_notebook(project):
    project.notebook("keys", ["print('KEYS', list(options), list(options['inner']))"], "options = {}")
    project.write_config(
        "runs:\n  - notebook: notebooks/keys.ipynb\n    label: one\n    parameters: {options: {b: 1, a: 2, inner: {z: 0, c: 1}}}\n"
    )
    project.snakemake()
    assert "KEYS ['b', 'a', 'inner'] ['z', 'c']" in stdout_of(project.target("keys", "one"))
    assert "Nothing to be done" in project.snakemake("-n").stdout
    # The same mappings in another order: another notebook (a loop over them runs in another order).
    project.write_config(
        "runs:\n  - notebook: notebooks/keys.ipynb\n    label: one\n    parameters: {options: {a: 2, b: 1, inner: {c: 1, z: 0}}}\n"
    )
    said = status(project)
    assert "parameters changed: options keys reordered (b, a, inner → a, b, inner), options.inner keys reordered (z, c → c, z)" in said
    project.snakemake()
    assert "KEYS ['a', 'b', 'inner'] ['c', 'z']" in stdout_of(project.target("keys", "one"))
    assert "Nothing to be done" in project.snakemake("-n").stdout


def test_a_failure_quoting_a_secret_is_masked_in_its_line_and_record(project, monkeypatch):
    secret = "s3cr3t-Value-42"
    monkeypatch.setenv("API_TOKEN", secret)
    project.notebook("api", ["raise ValueError(f'refused token {token}')"], 'token = ""')
    project.write_config({"runs": [{"notebook": "notebooks/api.ipynb", "label": "one", "secrets": {"token": "API_TOKEN"}}]})
    proc = project.snakemake(check=False)
    line = next(line for line in proc.stderr.splitlines() if "FAILED" in line)
    assert "ValueError: refused token ***" in line and secret not in proc.stderr
    failed = project.out / "api/one/api_one.failed.ipynb"
    record = read_record(failed)
    assert record["error"]["evalue"] == "refused token ***"
    assert secret not in (project.out / "api/one/api_one.log").read_text()


# --- paths that are not regular files ---


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "too-big"])
def test_a_template_that_is_not_a_sane_file_is_refused_unread(project, kind):
    path = project.root / "notebooks/odd.ipynb"
    path.parent.mkdir()
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "dev-zero":
        path.symlink_to("/dev/zero")
    else:
        with open(path, "wb") as fh:
            fh.truncate(51 * 2**20)  # sparse: nothing is written, and nothing must be read
    project.write_config({"runs": [{"notebook": "notebooks/odd.ipynb", "label": "one"}]})
    sentence = one_sentence(project.snakemake(check=False, timeout=120))
    expected = {
        "fifo": "is a FIFO, not a regular file",
        "dev-zero": "is a character device, not a regular file",
        "too-big": "is 51.0 MB, more than the 50 MB allowed",
    }
    assert f"run #1 ('one'): notebook notebooks/odd.ipynb {expected[kind]}; fix the 'notebook' path" in sentence
    assert not project.out.exists()


def test_an_input_that_becomes_a_fifo_fails_its_run_in_one_line(project):
    (project.root / "data").mkdir()
    (project.root / "data/x.csv").write_text("a\n")
    project.notebook("maker", ["import os\nos.remove('data/x.csv')\nos.mkfifo('data/x.csv')"])
    project.notebook("reader", ["print('read')"])
    project.write_config(
        {
            "runs": [
                {"notebook": "notebooks/maker.ipynb", "label": "one"},
                {"notebook": "notebooks/reader.ipynb", "label": "one", "inputs": ["data/x.csv"], "after": ["maker"]},
            ]
        }
    )
    proc = project.snakemake(check=False, timeout=240)
    assert "Traceback" not in proc.stderr
    failed = [line for line in proc.stderr.splitlines() if "input file data/x.csv is a FIFO, not a regular file" in line]
    assert len(failed) == 1 and "run reader/one FAILED" in failed[0]
    planned = one_sentence(project.snakemake(check=False, timeout=120))  # and planning refuses it too, without hanging
    assert "input file 'data/x.csv' is a FIFO, not a regular file (run 'one'); declare a regular file in 'inputs'" in planned


def test_an_input_that_changed_while_read_is_named_by_diff():
    made = Provenance("c", "python3", {}, {"data/x.csv": CHANGED_WHILE_READ})
    planned = Provenance("c", "python3", {}, {"data/x.csv": "0" * 64})
    assert explain(planned.diff(made)) == ["input data/x.csv changed while the run read it"]
    assert made.fingerprint != planned.fingerprint


def test_read_notebook_parses_the_bytes_it_read_once(tmp_path, monkeypatch):
    path = make_notebook(tmp_path / "t.ipynb", ["print(1)"])
    opened = []
    real_open = os.open
    monkeypatch.setattr(os, "open", lambda *args, **kwargs: opened.append(args[0]) or real_open(*args, **kwargs))
    nb = read_notebook(str(path))
    assert opened == [str(path)] and nb.cells[-1].source == "print(1)"
    assert isinstance(nb, nbformat.NotebookNode) and Path(path).exists()
