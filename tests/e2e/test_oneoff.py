"""``nbsweep run TEMPLATE -p NAME VALUE ...``: a one-off run through Snakemake and the packaged workflow."""

import json
import subprocess
from pathlib import Path

from conftest import SNAKEFILE, SNAKEMAKE, stdout_of, wait_for

PARAMS = 'lr = 0.5\nname = "x"\nn = 0\nflag = False\nnothing = None\ntag = "t"'
SHOW = 'print("TYPES", {k: type(v).__name__ for k, v in dict(lr=lr, name=name, n=n, flag=flag, nothing=nothing, tag=tag).items()})'
FAIL = 'if lr < 0:\n    raise ValueError("negative lr")'


def one_off_project(project):
    project.notebook("t", [FAIL, SHOW], PARAMS)
    return project


def test_one_off_run_executes_with_papermills_types_and_reruns_only_on_change(project):
    one_off_project(project)
    proc = project.nbsweep("run", "notebooks/t.ipynb", "-p", "lr", "0.1", "-p", "name", "abc", "-p", "n", "3", "-p", "flag", "True")
    assert proc.returncode == 0, proc.stderr
    label = "lr0.1_nameabc_n3_flagTrue"
    target = project.target("t", label)
    assert f"t/{label} executed: papermill_outputs/t/{label}/t_{label}.ipynb" in proc.stdout
    assert project.record("t", label)["parameters"] == {"lr": 0.1, "name": "abc", "n": 3, "flag": True}
    assert "'lr': 'float', 'name': 'str', 'n': 'int', 'flag': 'bool'" in stdout_of(target)
    assert target.with_suffix(".html").exists()  # rendered like a config run

    before = project.outputs()
    again = project.nbsweep("run", "notebooks/t.ipynb", "-p", "lr", "0.1", "-p", "name", "abc", "-p", "n", "3", "-p", "flag", "True")
    assert again.returncode == 0 and project.outputs() == before
    assert f"t/{label} is up to date, nothing executed" in again.stdout

    first = project.nbsweep("run", "notebooks/t.ipynb", "-p", "lr", "0.1", "-p", "nothing", "None", "--label", "mine")
    assert first.returncode == 0, first.stderr
    assert project.record("t", "mine")["parameters"] == {"lr": 0.1, "nothing": None}
    before = project.outputs()
    changed = project.nbsweep("run", "notebooks/t.ipynb", "-p", "lr", "0.2", "-p", "nothing", "None", "--label", "mine")
    assert changed.returncode == 0, changed.stderr
    assert project.executed(before) == {"t/mine"}
    assert project.record("t", "mine")["parameters"] == {"lr": 0.2, "nothing": None}


def test_parameter_flags_take_precedence_as_in_papermill_and_k_chooses_the_kernel(project):
    one_off_project(project)
    project.add_kernel("py2")
    (project.root / "params.yaml").write_text("lr: 0.3\nname: file\nn: 1\ntag: file\n")
    proc = project.nbsweep(
        "run", "notebooks/t.ipynb", "-p", "lr", "0.25", "-f", "params.yaml", "-y", "{name: yaml, n: 2}", "-r", "tag", "7", "--label", "mixed", "-k", "py2"
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert project.record("t", "mixed")["kernel"] == "py2"
    # -p beats -f whatever the order, -y beats -f, -r keeps text
    assert project.record("t", "mixed")["parameters"] == {"lr": 0.25, "name": "yaml", "n": 2, "tag": "7"}
    assert "'tag': 'str'" in stdout_of(project.target("t", "mixed"))


def test_failing_one_off_run_keeps_its_failure_beside_the_target(project):
    one_off_project(project)
    proc = project.nbsweep("run", "notebooks/t.ipynb", "-p", "lr", "-1", "--label", "neg")
    assert proc.returncode != 0
    target = project.target("t", "neg")
    assert not target.exists() and target.with_suffix(".failed.ipynb").exists()
    assert "t/neg is failed: ValueError: negative lr" in proc.stdout
    project.write_config({"runs": [{"notebook": "notebooks/t.ipynb", "label": "cfg"}]})
    status = project.nbsweep("status")
    assert "1 one-off run (nbsweep run; not in the config, the summary or index.html):" in status.stdout
    assert "t/neg  failed      ValueError: negative lr" in status.stdout


def test_one_off_runs_and_the_config_sweep_leave_each_other_alone(project):
    one_off_project(project)
    project.write_config({"runs": [{"notebook": "notebooks/t.ipynb", "grid": {"lr": [0.1, 0.7]}}]})
    project.snakemake()
    summary = {name: (project.out / name).read_bytes() for name in ("summary.csv", "summary.json", "index.html")}
    before = project.outputs()

    proc = project.nbsweep("run", "notebooks/t.ipynb", "-p", "lr", "0.9")
    assert proc.returncode == 0, proc.stderr
    assert project.executed(before) == {"t/lr0.9"}
    assert {path: mtime for path, mtime in project.outputs().items() if path.parent.name != "lr0.9"} == before  # summary too
    assert {name: (project.out / name).read_bytes() for name in summary} == summary

    status = project.nbsweep("status", "--remove-orphans")
    assert status.returncode == 0 and "no longer in the config" not in status.stdout
    assert "t/lr0.9  up to date" in status.stdout and project.target("t", "lr0.9").exists()

    one_off = project.outputs()
    project.snakemake()
    assert project.executed(one_off) == set()
    assert [row["label"] for row in json.loads((project.out / "summary.json").read_text())] == ["lr0.1", "lr0.7"]

    settled = project.outputs()
    clash = project.nbsweep("run", "notebooks/t.ipynb", "-p", "lr", "0.7", "-p", "name", "other", "--label", "lr0.7")
    assert clash.returncode == 1 and project.outputs() == settled
    assert clash.stderr.strip() == (
        "nbsweep: nbsweep run notebooks/t.ipynb: run t/lr0.7 is in the config (config/config.yaml: run #1) and would be "
        "replaced; give another --label, or run the config's run with snakemake."
    )


def test_bad_one_off_input_is_one_sentence_and_writes_nothing(project):
    one_off_project(project)
    (project.root / "bad.yaml").write_text("lr: [0.1\n")
    cases = {
        ("notebooks/nope.ipynb",): "notebook notebooks/nope.ipynb does not exist",
        ("notebooks/t.ipynb", "-y", "lr: [1"): "-y 'lr: [1' is not valid YAML",
        ("notebooks/t.ipynb", "-f", "bad.yaml"): "parameters file bad.yaml is not valid YAML at line 2",
        ("notebooks/t.ipynb", "-y", "[1, 2]"): "is a YAML list, not a mapping",
        ("notebooks/t.ipynb", "-p", "lr", "abc"): "gives parameter 'lr' a str",
        ("notebooks/t.ipynb", "--label", "a/b"): "label 'a/b' is not path-safe",
        ("notebooks/t.ipynb", "-p", "name", "b" * 30): "repeated 30 times, which Snakemake refuses in a file name pattern (it takes "
        "it for an endless recursion); write the repetition shorter, e.g. 'namebx30', or name the run with --label",
        ("notebooks/t.ipynb", "out.ipynb"): "takes no output path",
    }
    for args, phrase in cases.items():
        proc = project.nbsweep("run", *args)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 1 and len(lines) == 1 and phrase in lines[0], (args, proc.stderr)
        assert "Traceback" not in proc.stderr
    assert not project.out.exists() and not (project.root / ".snakemake").exists()


HOLD = (
    "import os, time\n"
    "open(gate + '.started', 'w').close()\n"
    "deadline = time.monotonic() + 600\n"
    "while not os.path.exists(gate) and time.monotonic() < deadline:\n"
    "    time.sleep(0.05)"
)


def test_a_one_off_run_is_refused_while_a_sweep_runs_and_leaves_nothing(project, tmp_path):
    gate = tmp_path / "release"
    project.notebook("hold", [HOLD], "gate = ''")
    one_off_project(project)
    project.write_config({"runs": [{"notebook": "notebooks/hold.ipynb", "label": "h", "parameters": {"gate": str(gate)}}]})
    cmd = [*SNAKEMAKE, "-s", str(SNAKEFILE), "-d", str(project.root), "--cores", "2"]
    sweep = subprocess.Popen(cmd, cwd=project.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=project.env)
    try:
        started = Path(f"{gate}.started")
        assert wait_for(lambda: started.exists() or sweep.poll() is not None, 300) and started.exists(), sweep.communicate()
        refused = project.nbsweep("run", "notebooks/t.ipynb", "-p", "lr", "0.1")
        assert refused.returncode != 0 and "another nbsweep invocation" in refused.stderr
        assert "t/lr0.1 did not execute (see the messages above)" in refused.stdout
        assert not (project.out / "t").exists()
    finally:
        gate.touch()
    _, err = sweep.communicate(timeout=300)
    assert sweep.returncode == 0, err[-3000:]
    assert [row["label"] for row in json.loads((project.out / "summary.json").read_text())] == ["h"]
